"""The conformance cases: what every backend must do, as data.

A :class:`Case` makes its inputs as NumPy arrays from a seeded generator, runs one call
through the arrayq frontend on the NumPy reference backend and on the backend under test
(inputs moved there with ``arrayq.to_backend``), and compares the two results. Tolerances
and the reason for each value are in :mod:`._common` (``TOLERANCE``).

One module per family: :mod:`.elementwise`, :mod:`.structural` (reductions, manipulation,
searching, linear algebra, creation), :mod:`.fft` (the fft extension), :mod:`.quantized`
(formats, matmul, gather, empty x, seeded random cases), :mod:`.errors` (bad input, with the
exception type and message each must raise), :mod:`.nn` (attention, rms_norm, rope, swiglu),
:mod:`.compiled` (``arrayq.compile`` against eager) and :mod:`.linalg` and
:mod:`.linalg_edges` (the linear algebra extension; decompositions compared by
reconstruction; hand, empty, NaN and bad-input cases). :func:`all_cases` lists them in that
order (errors before the empty-x and random quantized cases, as the suite always has).
"""

from __future__ import annotations

from ._common import FLOATS, INTS, TOLERANCE, Case
from .compiled import compile_cases
from .elementwise import BINARY, BINARY_SHAPES, SHAPES, UNARY, elementwise_cases
from .errors import ERROR_MESSAGES, QUANTIZED_OPS, error_cases
from .fft import fft_cases
from .linalg import linalg_cases
from .linalg_edges import linalg_edge_cases
from .nn import ATTENTION_SHAPES, nn_cases
from .quantized import empty_x_cases, quantized_cases, random_cases
from .structural import structural_cases

__all__ = [
    "ATTENTION_SHAPES",
    "BINARY",
    "BINARY_SHAPES",
    "ERROR_MESSAGES",
    "FLOATS",
    "INTS",
    "QUANTIZED_OPS",
    "SHAPES",
    "TOLERANCE",
    "UNARY",
    "Case",
    "all_cases",
    "compile_cases",
    "elementwise_cases",
    "empty_x_cases",
    "error_cases",
    "fft_cases",
    "linalg_cases",
    "linalg_edge_cases",
    "nn_cases",
    "quantized_cases",
    "random_cases",
    "structural_cases",
]


def all_cases() -> list[Case]:
    return (
        elementwise_cases()
        + structural_cases()
        + fft_cases()
        + quantized_cases()
        + error_cases()
        + empty_x_cases()
        + random_cases()
        + nn_cases()
        + compile_cases()
        + linalg_cases()
        + linalg_edge_cases()
    )
