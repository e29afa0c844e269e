"""The serving loop: many callers, one language model, continuous batching.

Callers :meth:`Serving.submit` requests from any thread; one worker thread owns the model.
At each token boundary the worker admits waiting requests into the running batch (up to
``max_batch``; from an empty batch after a burst wait, ``Limits.burst_wait``), prefills
the next chunk of the newly admitted prompts (up to ``prefill_chunk`` prompt tokens a step,
so that requests arriving together join the batch together), then runs one batched decode
step (:func:`._batch.decode_step`) for every running sequence that has a token,
hands each its new token and drops the finished ones. A prompt is prefilled into its own
KV cache (``model.make_cache``), which is then copied into the batch's padded cache
(:class:`._batch.BatchCache`) and freed; a finished sequence leaves that cache. Where the
batch cache is in use and ``prefill_together`` holds (by default where the backend is
batch-invariant), the prompts of a step that fit ``prefill_chunk`` whole are prefilled
together instead, in one forward pass written straight into the batch cache's next rows
(:func:`._batch.prefill`); only longer prompts take their own cache, a chunk a step.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import arrayq as aq

from .._kv_cache import _kv_dtype, _writable
from ..models.generate import check_sampling, sample_array
from ..nn import parameters
from . import _batch
from ._request import Limits, Request, ServerBusy, ServingClosed

_log = logging.getLogger("arrayq.serving")

#: positions a new sequence's KV cache holds before it first grows (it doubles when full)
_FIRST_CAPACITY = 256


class Serving:
    """Serve a language model to concurrent callers with continuous batching.

    ``model``: a decoder with ``config.vocab_size``, ``make_cache(capacity)``,
    ``hidden(ids, cache)``, ``logits(h)`` (such as :class:`arrayq.models.Qwen3`); models of
    the Qwen3/Llama layer layout are decoded in batches (one quantized matmul with M = B
    per weight), others one sequence at a time. Or a function of no arguments returning
    the model, called on the worker thread, which the constructor waits for (re-raising its
    exception): MLX's arrays belong to the thread that made them, so an MLX model must be
    loaded there, e.g. ``Serving(lambda: arrayq.models.load(path, backend="mlx"))``. ``limits``: a :class:`Limits`.
    ``stop_ids``: the default stop tokens (default: the model's ``config.eos_token_id``).
    The worker thread starts at construction; :meth:`close` (or leaving a ``with`` block)
    stops it. ``activations``: how the worker's quantized matmuls take their activations,
    one of the backend's ``activation_modes()`` (NumPy's native kernels: ``"float32"`` or
    ``"int8"``), ``"auto"`` (the first of them: int8 there, docs/serving.md) or None (the
    default: as the backend does unasked, float32 unless ``ARRAYQ_NATIVE_ACTIVATIONS``
    says otherwise); ``activations`` and ``prefill_together`` then hold what was chosen.
    Greedy tokens of a request do not depend on what else runs in the batch (but for
    float32 rounding where ``prefill_together`` is forced on: see :class:`Limits`).
    ``kv_dtype``: None (the batch's KV cache keeps the activations' dtype) or a floating
    dtype to store it in, as ``arrayq.models.generate``'s (``"float16"``: half a float32
    cache's memory, rounded once when written).
    Raises ValueError for bad limits, an activation mode the backend does not offer, or a
    ``kv_dtype`` for a model not decoded in batches; TypeError for a ``kv_dtype`` that is
    not floating."""

    def __init__(
        self,
        model: Any,
        limits: Limits | None = None,
        *,
        stop_ids: Sequence[int] | None = None,
        activations: str | None = None,
        kv_dtype: Any = None,
    ):
        self.limits = limits if limits is not None else Limits()
        self.limits.check()
        self._kv_dtype = None if kv_dtype is None else _kv_dtype(kv_dtype)  # (TypeError before any loading)
        if activations is not None and not isinstance(activations, str):
            raise ValueError(f"activations must be a mode's name, 'auto' or None, got {activations!r}")
        self.activations = activations
        self.prefill_together = False
        self._stop_ids = stop_ids
        self._waiting: collections.deque[Request] = collections.deque()
        self._running: list[Request] = []
        self._cond = threading.Condition()
        self._closed = False
        self.steps = 0  # decode steps run, the sequences they carried, and their seconds (stats())
        self.stepped_sequences = 0
        self.decode_seconds = 0.0
        # where the worker's time went (stats()): waiting for work, prefill, sampling, the rest
        self._seconds = dict.fromkeys(("idle", "prefill", "sample", "join", "other"), 0.0)
        self.prefilled_tokens = 0
        self.prefill_passes = 0
        self._idle_since: float | None = None  # (when the worker began waiting for requests)
        loader = model if callable(model) and not hasattr(model, "make_cache") else None
        if loader is None:
            self._setup(model)
        ready: list[BaseException | None] = []
        self._worker = threading.Thread(target=self._run, args=(loader, ready), name="arrayq-serving", daemon=True)
        self._worker.start()
        with self._cond:
            self._cond.wait_for(lambda: ready)
        if ready[0] is not None:
            self._worker.join()
            raise ready[0]

    def _setup(self, model: Any) -> None:
        config = model.config
        self.model = model
        self.vocab_size = int(config.vocab_size)
        self.max_context = self.limits.max_context or int(getattr(config, "max_position_embeddings", 1 << 30))
        stops = config.eos_token_id if self._stop_ids is None else self._stop_ids
        self.stop_ids = frozenset(int(t) for t in stops)
        weights = parameters(model)
        self._like = weights[0] if weights else None
        # one padded KV cache for the batch, where the backend's arrays take slice assignment
        self.batched = _batch.supports(model) and _writable(aq.zeros((1, 1, 1, 1), like=self._like))
        if self._kv_dtype is not None and not self.batched:
            raise ValueError(
                f"kv_dtype={self._kv_dtype.name!r} is the batch's KV cache's, and this model is not decoded in "
                "batches (a Qwen3/Llama layout on a backend whose arrays take slice assignment: NumPy, MLX)"
            )
        self._cache = (
            _batch.BatchCache(len(model.layers), self.limits.max_batch, self._kv_dtype) if self.batched else None
        )
        # a backend of recorded plans (NumPy) replays the step's backend calls without the frontend
        self._compiled = bool(getattr(aq.backend_of(self._like), "compile_records_plan", False))
        self._rows: list[Request] = []  # the requests in the batch cache, row i for request i

    # ------------------------------------------------------------------ callers

    def submit(
        self,
        prompt_ids: Sequence[int],
        max_tokens: int = 16,
        *,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop_ids: Sequence[int] | None = None,
        listener: Callable[[Request, int | None], None] | None = None,
    ) -> Request:
        """Queue a request for up to ``max_tokens`` new token ids after ``prompt_ids``;
        returns its :class:`Request` at once. Sampling as :func:`arrayq.models.sample`
        (temperature 0: greedy), with ``np.random.default_rng(seed)``; ``stop_ids``
        replaces the default stop tokens (``()``: none). ``listener(request, token)``, if
        given, is called on the worker thread for each new token and once more with None
        when the request ends: keep it short (it holds up the batch).

        Raises ValueError for an empty prompt, ids outside the vocabulary, max_tokens
        outside [1, limits.max_tokens], prompt plus max_tokens over ``max_context``, bad
        sampling parameters; :class:`ServerBusy` when ``max_queued`` requests wait
        already; :class:`ServingClosed` after :meth:`close`."""
        prompt = _batch.token_ids(prompt_ids, self.vocab_size, "prompt")
        if not prompt:
            raise ValueError("the prompt needs at least one token")
        if (
            not isinstance(max_tokens, int)
            or isinstance(max_tokens, bool)
            or not 1 <= max_tokens <= self.limits.max_tokens
        ):
            raise ValueError(f"max_tokens must be an integer from 1 to {self.limits.max_tokens}, got {max_tokens!r}")
        if len(prompt) + max_tokens > self.max_context:
            raise ValueError(
                f"the prompt ({len(prompt)} tokens) plus max_tokens ({max_tokens}) is over the "
                f"{self.max_context}-token context; shorten the prompt or ask for fewer tokens"
            )
        check_sampling(temperature, top_k, top_p)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        stops = (
            self.stop_ids if stop_ids is None else frozenset(_batch.token_ids(stop_ids, self.vocab_size, "stop_ids"))
        )
        request = Request(prompt, max_tokens, (float(temperature), int(top_k), float(top_p)), seed, stops, listener)
        with self._cond:
            if self._closed:
                raise ServingClosed("this Serving object is closed")
            if len(self._waiting) + len(self._running) >= self.limits.max_queued + self.limits.max_batch:
                raise ServerBusy(
                    f"the server is full: {len(self._running)} requests running (max_batch "
                    f"{self.limits.max_batch}) and {len(self._waiting)} waiting (max_queued "
                    f"{self.limits.max_queued}); retry later"
                )
            self._waiting.append(request)
            self._cond.notify_all()
        return request

    def generate(self, prompt_ids: Sequence[int], max_tokens: int = 16, **options: Any) -> list[int]:
        """:meth:`submit` and wait for the result (the generated ids)."""
        return self.submit(prompt_ids, max_tokens, **options).result()

    def counts(self) -> dict[str, int]:
        """Requests ``running`` and ``waiting`` now, and the limits ``max_batch`` and
        ``max_queued``."""
        with self._cond:
            return {
                "running": len(self._running),
                "waiting": len(self._waiting),
                "max_batch": self.limits.max_batch,
                "max_queued": self.limits.max_queued,
            }

    def stats(self) -> dict[str, float]:
        """What the worker did so far: ``decode_steps`` run, ``decoded_tokens`` (the
        sequences they carried: one token each) and ``decode_seconds`` spent in them (the
        batched step and its sampling; not prefill, nor waiting). ``decoded_tokens /
        decode_seconds`` is the decode throughput; differences between two calls give it
        for the time between them. Where the rest of the worker's time went:
        ``sample_seconds`` and ``join_seconds`` (the parts of ``decode_seconds`` spent
        sampling and handing the tokens over, and copying newly prefilled sequences into
        the batch's cache and finished ones out), ``prefill_seconds``, ``prefilled_tokens`` and
        ``prefill_passes`` (the forward passes that prefilled them: one a step for the prompts
        that fit ``prefill_chunk`` whole, which go together, one a chunk for longer ones),
        ``idle_seconds`` (waiting for requests, a burst's included, and the wait going
        on) and ``other_seconds`` (the loop's own
        bookkeeping: admitting, cancelling, finishing requests). Where the step runs
        compiled (NumPy): ``step_plans``, the signatures recorded so far (one per batch size,
        window, buffer size and mask or none: a count that keeps growing means retracing),
        ``step_plans_eager``, those of them that run eagerly instead (a recording failed),
        and ``step_plan_hits``, the steps that found their plan."""
        plans = self._cache.compiled_info() if self._cache is not None else None
        since = self._idle_since
        return {
            "decode_steps": self.steps,
            "decoded_tokens": self.stepped_sequences,
            "decode_seconds": self.decode_seconds,
            "prefilled_tokens": self.prefilled_tokens,
            "prefill_passes": self.prefill_passes,
            **{f"{name}_seconds": seconds for name, seconds in self._seconds.items()},
            # (an idle period counts as it goes, not once it ends: levels of a benchmark compare)
            "idle_seconds": self._seconds["idle"] + (time.perf_counter() - since if since is not None else 0.0),
            "step_plans": plans.signatures if plans else 0,
            "step_plans_eager": plans.signatures - plans.native if plans else 0,
            "step_plan_hits": plans.hits if plans else 0,
        }

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the worker; requests not finished end with finish_reason ``"cancelled"``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout)

    def __enter__(self) -> Serving:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ worker

    def _run(self, loader: Callable[[], Any] | None, ready: list) -> None:
        try:
            if loader is not None:
                self._setup(loader())
            backend = aq.backend_of(self._like) or aq.current_backend()
            if self.activations == "auto":
                self.activations = backend.activation_modes()[0]
            mode = backend.activations(self.activations) if self.activations else contextlib.nullcontext()
        except BaseException as exc:  # handed to the constructor, which raises it
            with self._cond:
                ready.append(exc)
                self._cond.notify_all()
            return
        with mode:  # (a backend's activation mode holds in the thread that enters it)
            together = self.limits.prefill_together
            if together is None and self._cache is not None:  # where that gives each prompt's own logits
                together = backend.batch_invariant(backend.device_of(self._like) if self._like is not None else None)
            self.prefill_together = bool(together) and self._cache is not None
            with self._cond:
                ready.append(None)
                self._cond.notify_all()
            self._loop()

    def _loop(self) -> None:
        seconds, clock = self._seconds, time.perf_counter
        while True:
            with self._cond:
                t0 = self._idle_since = clock()
                self._cond.wait_for(lambda: self._closed or self._waiting or self._running)
                if not self._running and self.limits.burst_wait:
                    self._gather_burst()
                t1, self._idle_since = clock(), None
                seconds["idle"] += t1 - t0
                if self._closed:
                    for r in [*self._waiting, *self._running]:
                        r._emit(None, "cancelled")
                    self._waiting.clear()
                    self._running.clear()
                    return
                while self._waiting and len(self._running) < self.limits.max_batch:
                    self._running.append(self._waiting.popleft())
                for r in [r for r in self._waiting if r._cancelled]:
                    self._waiting.remove(r)
                    r._emit(None, "cancelled")
                running = list(self._running)
            decode, prefill = self.decode_seconds, seconds["prefill"]
            try:
                self._step(running)
            except Exception as exc:  # the batch's requests fail; the server goes on
                _log.exception("serving step failed")
                for r in running:
                    r._emit(None, "error", exc)
            with self._cond:
                self._running = [r for r in self._running if not r.done]
            seconds["other"] = (
                seconds["other"] + (clock() - t1) - (self.decode_seconds - decode) - (seconds["prefill"] - prefill)
            )

    def _gather_burst(self) -> None:
        """From an empty batch (lock held): wait while requests keep arriving, each within
        ``burst_wait`` of the one before, for at most 4 × ``burst_wait`` or until the batch
        would be full, so that a burst is prefilled in one pass and decodes in step."""
        quiet = self.limits.burst_wait
        end = time.perf_counter() + 4 * quiet
        seen = -1
        while not self._closed and seen != len(self._waiting) and len(self._waiting) < self.limits.max_batch:
            seen = len(self._waiting)
            left = min(quiet, end - time.perf_counter())
            if left > 0:
                self._cond.wait(left)  # (woken by a submit, or quiet for left seconds)

    def _step(self, running: list[Request]) -> None:
        for r in running:
            if r._cancelled:
                r._emit(None, "cancelled")
        # the next chunk of each prompt still to prefill, in order of arrival, while this
        # step's prompt tokens stay within prefill_chunk (at least one chunk a step): requests
        # that arrive together join the batch together. Where the batch cache is in use, the
        # prompts that fit a chunk whole are prefilled together, in one forward pass
        spent, together = 0, []
        for r in [r for r in running if not r.done and r.pending is None]:
            part = min(self.limits.prefill_chunk, len(r.prompt) - r.prefilled)
            if spent and spent + part > self.limits.prefill_chunk:
                break
            spent += part
            if self.prefill_together and part == len(r.prompt):
                together.append(r)
                continue
            t0 = time.perf_counter()
            try:
                self._prefill_chunk(r)
            except Exception as exc:  # that request fails alone
                _log.exception("prefill of request %d failed", r.id)
                r._emit(None, "error", exc)
            self._seconds["prefill"] += time.perf_counter() - t0
            self.prefilled_tokens += part
        if together:
            t0 = time.perf_counter()
            self._prefill_together(together)
            self._seconds["prefill"] += time.perf_counter() - t0
            self.prefilled_tokens += sum(len(r.prompt) for r in together)
        decoding = [r for r in running if not r.done and r.pending is not None]
        if decoding:
            self._decode(decoding)
        if self._cache is not None:  # finished and cancelled sequences leave the batch cache now
            start = time.perf_counter()
            self._rows_for([r for r in self._rows if not r.done])
            took = time.perf_counter() - start  # (join_seconds: copies out, part of the decode's time)
            self._seconds["join"] += took
            self.decode_seconds += took

    def _prefill_chunk(self, r: Request) -> None:
        """One chunk of ``r``'s prompt into its cache; after the last, its first token."""
        model, chunk = self.model, self.limits.prefill_chunk
        if r.cache is None:
            # (batched, the prompt's cache is copied into the batch cache, which decodes)
            room = 0 if self._cache is not None else min(r.max_tokens, _FIRST_CAPACITY)
            r.cache = model.make_cache(len(r.prompt) + room)
        part = r.prompt[r.prefilled : r.prefilled + chunk]
        self.prefill_passes += 1
        h = model.hidden(aq.asarray([part], dtype=aq.int32, like=self._like), r.cache)
        r.prefilled += len(part)
        if r.prefilled < len(r.prompt):
            aq.eval(r.cache)  # lazy backends: compute this chunk now, keeping graphs small
            return
        self._take([r], model.logits(h[:, -1]))

    def _prefill_together(self, batch: list[Request]) -> None:
        """``batch``'s whole prompts in one forward pass, straight into the batch cache's
        next rows (:func:`._batch.prefill`), and their first tokens. Where that fails, each
        prompt again alone, so that a failing prompt fails its own request only."""
        assert self._cache is not None
        self.prefill_passes += 1
        try:
            logits = _batch.prefill(self.model, [r.prompt for r in batch], self._cache, self._like)
        except Exception as exc:
            if len(batch) > 1:
                _log.info("prefill of %d prompts together failed (%s); prefilling each alone", len(batch), exc)
                for r in batch:
                    self._prefill_together([r])
                return
            _log.exception("prefill of request %d failed", batch[0].id)
            batch[0]._emit(None, "error", exc)
            return
        for r in batch:
            r.prefilled = len(r.prompt)
        self._rows.extend(batch)
        self._take(batch, logits)

    def _rows_for(self, batch: list[Request]) -> list[Request]:
        """The batch cache holding exactly ``batch``'s sequences (finished ones out, each
        newly prefilled one copied in, its own cache freed); its rows' requests in order."""
        assert self._cache is not None
        keep = set(map(id, batch))
        for i in reversed(range(len(self._rows))):
            if id(self._rows[i]) not in keep:
                self._cache.remove(i)  # (the last row moves into row i)
                self._rows[i] = self._rows[-1]
                self._rows.pop()
        held = set(map(id, self._rows))
        for r in batch:
            if id(r) not in held:
                self._cache.add(r.cache)
                r.cache = None
                self._rows.append(r)
        return list(self._rows)

    def _decode(self, batch: list[Request]) -> None:
        start = time.perf_counter()
        if self.batched:
            batch = self._rows_for(batch)
            self._seconds["join"] += time.perf_counter() - start
        tokens = [int(r.pending) for r in batch if r.pending is not None]
        if self._cache is not None:
            logits = _batch.decode_step(self.model, tokens, self._cache, self._like, compiled=self._compiled)
        else:
            rows = [
                self.model.logits(self.model.hidden(aq.asarray([[t]], dtype=aq.int32, like=self._like), r.cache)[:, -1])
                for t, r in zip(tokens, batch)
            ]
            logits = aq.concat(rows, axis=0)
        t0 = time.perf_counter()
        self._take(batch, logits)
        self._seconds["sample"] += time.perf_counter() - t0
        self.steps += 1
        self.stepped_sequences += len(batch)
        self.decode_seconds += time.perf_counter() - start

    def _take(self, batch: list[Request], logits: Any) -> None:
        """Sample each request's next token from its row of ``logits`` (B, vocab) and hand
        it over; a request that reached a stop token or max_tokens ends."""
        if aq.dtype(logits).name not in ("float32", "float64"):
            logits = aq.astype(logits, aq.float32)
        greedy = aq.argmax(logits, axis=-1)
        rows = [
            greedy[i]
            if r.temperature == 0
            else sample_array(logits[i], temperature=r.temperature, top_k=r.top_k, top_p=r.top_p, rng=r.rng)
            for i, r in enumerate(batch)
        ]
        picked = aq.to_numpy(greedy) if all(r.temperature == 0 for r in batch) else aq.to_numpy(aq.stack(rows))
        for r, token in zip(batch, (int(t) for t in picked)):
            if token in r.stop_ids:
                r._emit(None, "stop")
            elif len(r.tokens) + 1 >= r.max_tokens:
                r._emit(token, "length")
            else:
                r.pending = token
                r._emit(token)


__all__ = ["Limits", "Request", "ServerBusy", "Serving", "ServingClosed"]
