"""What a caller of :class:`arrayq.serving.Serving` holds: its :class:`Limits`, the
:class:`Request` it submitted, and the errors it may get."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import ArrayqError

_log = logging.getLogger("arrayq.serving")


class ServerBusy(ArrayqError, RuntimeError):
    """The queue of waiting requests is full (back-pressure): retry later, or start the
    server with a larger ``max_queued``."""


class ServingClosed(ArrayqError, RuntimeError):
    """The serving object was closed; it takes no more requests."""


@dataclasses.dataclass
class Limits:
    """What one :class:`Serving` accepts. ``max_batch``: sequences decoded together;
    ``max_queued``: requests waiting for a place in the batch (more are refused with
    :class:`ServerBusy`); ``max_tokens``: new tokens one request may ask for;
    ``max_context``: prompt plus new tokens of one request (default: the model's
    ``max_position_embeddings``); ``prefill_chunk``: prompt tokens per forward pass, and
    per step: the prompts waiting for prefill take a chunk each until the next one would
    pass it (at least one chunk a step); ``prefill_together``: whether the prompts of a
    step that fit a chunk whole are prefilled in one forward pass (where the model is
    decoded in batches), or each in a pass of its own, as it would be alone. None (the
    default): together where that gives each prompt its own pass's logits bit for bit
    (the backend's ``batch_invariant()`` in the worker's activation mode: NumPy with int8
    activations, MLX on the CPU), so that a request's tokens never depend on which others
    arrived with it; True on NumPy with float32 activations would prefill with another
    matmul kernel (more rows), whose logits differ in float32 rounding (docs/serving.md).
    ``burst_wait``: seconds the worker, woken from an empty batch, waits for more requests
    while they keep arriving within that of each other (at most 4 × it in all), so that
    requests sent at once start together (0, the default: start at the first)."""

    max_batch: int = 8
    max_queued: int = 32
    max_tokens: int = 2048
    max_context: int | None = None
    prefill_chunk: int = 512
    prefill_together: bool | None = None
    burst_wait: float = 0.0  # (off: it did not pay on the quiet machine, docs/serving.md)

    def check(self) -> None:
        """ValueError unless every limit is a positive integer (max_queued may be 0) and
        prefill_together True, False or None."""
        if not (self.prefill_together is None or isinstance(self.prefill_together, bool)):
            raise ValueError(f"prefill_together must be True, False or None (auto), got {self.prefill_together!r}")
        wait = self.burst_wait
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 1:
            raise ValueError(f"burst_wait must be a number of seconds from 0 to 1, got {wait!r}")
        for name in ("max_batch", "max_queued", "max_tokens", "max_context", "prefill_chunk"):
            v = getattr(self, name)
            low = 0 if name == "max_queued" else 1
            if v is None and name == "max_context":
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")


class Request:
    """One submitted generation. Read it with iteration (blocks for each new token id, ends
    when the request finishes) or :meth:`result`; :meth:`cancel` stops it and frees its
    place. After it ends, ``finish_reason`` is ``"stop"`` (a stop token, not included),
    ``"length"`` (max_tokens reached), ``"cancelled"`` or ``"error"`` (``error`` holds the
    exception). ``tokens``: the ids generated so far."""

    _ids = itertools.count(1)

    def __init__(
        self,
        prompt: list[int],
        max_tokens: int,
        sampling: tuple[float, int, float],
        seed: int | None,
        stop_ids: frozenset[int],
        listener: Callable[[Request, int | None], None] | None,
    ):
        self.id = next(Request._ids)
        self.prompt, self.max_tokens, self.stop_ids = prompt, max_tokens, stop_ids
        self.temperature, self.top_k, self.top_p = sampling
        self.rng = np.random.default_rng(seed)
        self.tokens: list[int] = []
        self.finish_reason: str | None = None
        self.error: BaseException | None = None
        self._listener = listener
        self._cond = threading.Condition()
        self._cancelled = False
        # the worker's state: the KV cache, prompt tokens not yet prefilled, the token to feed next
        self.cache: Any = None
        self.prefilled = 0
        self.pending: int | None = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def cancel(self) -> None:
        """Stop generating (no effect once finished); the worker frees its place at the next
        token boundary, and the request ends with finish_reason ``"cancelled"``."""
        self._cancelled = True

    def _emit(self, token: int | None, reason: str | None = None, error: BaseException | None = None) -> None:
        with self._cond:
            if self.finish_reason is not None:
                return
            if token is not None:
                self.tokens.append(token)
            if reason is not None:
                self.finish_reason, self.error, self.cache = reason, error, None
            self._cond.notify_all()
        if self._listener is None:
            return
        for item in ([token] if token is not None else []) + ([None] if reason is not None else []):
            try:
                self._listener(self, item)
            except Exception:  # a listener's failure is the caller's, not the batch's
                _log.exception("listener of request %d failed", self.id)

    def __iter__(self) -> Iterator[int]:
        seen = 0
        while True:
            with self._cond:
                while len(self.tokens) == seen and not self.done:
                    self._cond.wait()
                new, finished = self.tokens[seen:], self.done
            yield from new
            seen += len(new)
            if finished and seen == len(self.tokens):
                return

    def result(self, timeout: float | None = None) -> list[int]:
        """The generated ids once the request has finished (TimeoutError after ``timeout``
        seconds); re-raises the worker's exception for finish_reason ``"error"``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.done, timeout):
                raise TimeoutError(f"request {self.id} did not finish within {timeout} s")
        if self.error is not None:
            raise self.error
        return list(self.tokens)


__all__ = ["Limits", "Request", "ServerBusy", "ServingClosed"]
