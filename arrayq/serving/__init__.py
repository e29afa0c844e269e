"""``arrayq.serving``: one language model, many concurrent callers, continuous batching;
and ``arrayq serve``, an OpenAI-compatible HTTP server around it (:mod:`._http`, which
needs ``pip install 'arrayq[serve]'``).

:class:`Serving` takes requests from any thread and decodes the running ones together,
one quantized matmul with M = B per weight; new requests join at token boundaries and
finished ones leave (see :mod:`._engine` and :mod:`._batch`)."""

from ._batch import WINDOW, BatchCache, decode_step, prefill
from ._engine import Limits, Request, ServerBusy, Serving, ServingClosed

__all__ = [
    "WINDOW",
    "BatchCache",
    "Limits",
    "Request",
    "ServerBusy",
    "Serving",
    "ServingClosed",
    "decode_step",
    "prefill",
]
