"""``arrayq.compile``: a compiled function gives what the same function gives eagerly.

The reference runs every function eagerly (it has no ``compile`` hook); the backend under
test runs it through ``arrayq.compile``, so a backend whose hook traces (MLX's
``mx.compile``) is compared with eager execution. Each function is compiled once, at
module level, so the cases also exercise the per-signature cache across calls."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ._common import Case, _arrays, _dtype


def _block(x: Any, w: Any, b: Any, *, scale: float = 0.5) -> Any:
    """Elementwise ops, a reduction, matmul and a Python scalar: what a layer does."""
    import arrayq as aq

    h = aq.add(aq.matmul(x, aq.matrix_transpose(w)), b)
    h = aq.multiply(h, aq.divide(1, aq.add(aq.exp(aq.negative(h)), 1)))  # SiLU
    return aq.multiply(aq.divide(h, aq.add(aq.max(aq.abs(h), axis=-1, keepdims=True), 1)), scale)


def _quantized(x: Any, qw: Any) -> Any:
    import arrayq as aq

    y = aq.linalg.quantized_matmul(x, qw)
    return aq.nn.rms_norm(y, None, eps=1e-5)


# made on first use (importing arrayq here would be circular), then reused by every case
_BLOCK: Any = None
_QUANTIZED: Any = None


def _call_block(aq: Any, x: Any, w: Any, b: Any, scale: float = 0.5) -> Any:
    global _BLOCK
    _BLOCK = _BLOCK or aq.compile(_block)
    return _BLOCK(x, w, b, scale=scale)


def _call_quantized(aq: Any, x: Any, qw: Any) -> Any:
    global _QUANTIZED
    _QUANTIZED = _QUANTIZED or aq.compile(_quantized)
    return _QUANTIZED(x, qw)


def compile_cases() -> list[Case]:
    cases = []
    for dtype, rows in itertools.product(("float32", "float16", "bfloat16"), (1, 5)):
        cases.append(
            Case(
                f"compile[block,{dtype},x({rows},64)]",
                "compile",
                (dtype,),
                _arrays(((rows, 64), dtype, -1, 1), ((32, 64), dtype, -0.3, 0.3), ((32,), dtype, -1, 1)),
                _call_block,
                upcast=dtype != "float32",
            )
        )

    def make_quantized(rng: np.random.Generator) -> list[Any]:
        from ... import quant

        qw = quant.quantize(rng.standard_normal((48, 128)).astype(np.float32), group_size=64, bits=4)
        return [rng.uniform(-1, 1, (3, 128)).astype(_dtype("float32")), qw]

    cases.append(
        Case("compile[quantized_matmul+rms_norm,float32]", "compile", ("float32",), make_quantized, _call_quantized)
    )
    return cases
