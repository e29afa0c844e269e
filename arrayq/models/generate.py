"""Token generation: prefill with a KV cache, then one token at a time, greedy or sampled.

Sampling runs on the logits' backend with arrayq's ops (in float32, float64 for float64
logits); only the token id crosses to the host. The one random number a sampled token
needs is drawn on the host from NumPy's seeded generator (arrayq's frontend has no random
numbers), so a given seed gives the same tokens on every backend whenever the backends'
logits agree. The decode loop asks the backend to start computing token n+1
(``Backend.async_eval``: ``mx.async_eval`` on MLX) before it reads token n, as mlx-lm does.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

import arrayq as aq

from .._compile import flatten, unflatten
from .._kv_cache import _kv_dtype
from .._registry import backend_of
from ..backend import Backend
from ..nn import FixedKVCache, parameters


@dataclasses.dataclass
class GenerationStats:
    """Timings of one :func:`generate` run, filled in as it goes.

    ``prefill_seconds``: from the start until the first new token is known (the prompt's
    forward pass and one sampling). ``decode_seconds``: from then until the last token;
    ``decode_tokens`` = generated tokens after the first. ``compiled``: whether the tokens
    after the first came from a compiled step (see :func:`generate`'s ``compile``)."""

    prompt_tokens: int = 0
    prefill_seconds: float = 0.0
    generated_tokens: int = 0
    decode_seconds: float = 0.0
    compiled: bool = False  # decoded through a compiled step

    @property
    def decode_tokens(self) -> int:
        return max(self.generated_tokens - 1, 0)

    @property
    def prefill_tps(self) -> float:
        """Prompt tokens per second of prefill (0 before it ran)."""
        return self.prompt_tokens / self.prefill_seconds if self.prefill_seconds else 0.0

    @property
    def decode_tps(self) -> float:
        """Generated tokens per second after the first (0 with fewer than 2 tokens)."""
        return self.decode_tokens / self.decode_seconds if self.decode_seconds else 0.0


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    """ValueError unless temperature is a finite number >= 0, top_k an integer >= 0 and
    top_p a number in (0, 1] (NaN and inf refused: they would sample nothing)."""

    def real(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)

    ok_k = isinstance(top_k, (int, np.integer)) and not isinstance(top_k, bool) and top_k >= 0
    if not (real(temperature) and temperature >= 0 and ok_k and real(top_p) and 0 < top_p <= 1):
        raise ValueError(
            "need a finite temperature >= 0, an integer top_k >= 0 and 0 < top_p <= 1; "
            f"got temperature={temperature!r}, top_k={top_k!r}, top_p={top_p!r}"
        )


def sample(
    logits: Any, *, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, rng: np.random.Generator | None = None
) -> int:
    """One token id from ``logits`` (vocab,) of any backend.

    ``temperature`` 0 is greedy (the first maximum). Otherwise the logits are divided by
    ``temperature``; ``top_k`` > 0 keeps the k largest (and any equal to the k-th);
    ``top_p`` < 1 keeps the smallest set of most likely tokens whose probabilities sum to at
    least ``top_p`` (always at least one); a token is then drawn with ``rng`` (a fresh
    unseeded generator if None). The work runs on the logits' backend (:func:`sample_array`).
    Raises ValueError for a negative temperature or top_k, or top_p outside (0, 1]."""
    check_sampling(temperature, top_k, top_p)
    return int(aq.to_numpy(_sample(logits, temperature, top_k, top_p, rng)))


def sample_array(
    logits: Any, *, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, rng: np.random.Generator | None = None
) -> Any:
    """:func:`sample`, returning the token id as a 0-d integer array on the logits' backend
    (not read back to the host: a lazy backend has not computed it yet)."""
    check_sampling(temperature, top_k, top_p)
    return _sample(logits, temperature, top_k, top_p, rng)


def _sample(logits: Any, temperature: float, top_k: int, top_p: float, rng: np.random.Generator | None) -> Any:
    u = None if temperature == 0 else (rng if rng is not None else np.random.default_rng()).random()
    return _sample_with(logits, temperature, top_k, top_p, u)


def _sample_with(logits: Any, temperature: float, top_k: int, top_p: float, u: Any) -> Any:
    """The sampled id for the uniform draw ``u`` in [0, 1) (a float, or a 0-d array inside a
    compiled step; unused when greedy). Nothing is read on the host."""
    x = aq.reshape(logits, (-1,))
    if aq.dtype(x).name not in ("float32", "float64"):
        x = aq.astype(x, aq.float32)
    if temperature == 0:
        return aq.argmax(x)
    size = int(x.shape[0])
    x = x * (1.0 / temperature)
    if 0 < top_k < size:
        kth = aq.sort(x, descending=True)[top_k - 1]
        x = aq.where(x >= kth, x, -math.inf)
    probs = aq.exp(x - aq.max(x))
    order = None
    if top_p < 1:  # the most likely first; keep those whose more likely predecessors hold < top_p
        order = aq.argsort(probs, descending=True, stable=True)
        probs = aq.take(probs, order, mode="clip")  # (a permutation: in range)
        before = aq.cumulative_sum(probs) - probs
        probs = aq.where(before < top_p * aq.sum(probs), probs, 0.0)
    cdf = aq.cumulative_sum(probs)
    index = aq.minimum(aq.sum(aq.astype(cdf <= cdf[-1] * u, aq.int32)), size - 1)
    return index if order is None else aq.take(order, index, mode="clip")


#: Positions a compiled decode step's attention window grows by (each window compiles once).
WINDOW_STEP = 256


def generate(
    model: Any,
    prompt_ids: Sequence[int],
    max_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_ids: Sequence[int] | None = None,
    prefill_chunk: int = 512,
    stats: GenerationStats | None = None,
    compile: bool | None = None,  # noqa: A002 (the name arrayq.compile has)
    kv_dtype: Any = None,
) -> Iterator[int]:
    """Yield up to ``max_tokens`` new token ids after ``prompt_ids``, one as soon as it is
    known.

    ``model``: a language model with ``make_cache(capacity)``, ``hidden(ids, cache)`` and
    ``logits(h)`` (such as :class:`arrayq.models.Qwen3`); ``make_cache`` gets the total
    length, for a KV cache allocated once. The prompt runs in chunks of
    ``prefill_chunk`` tokens, and only its last position goes through the output head.
    Sampling as :func:`sample`, on the model's backend, with ``np.random.default_rng(seed)``;
    the next token's computation is started (``Backend.async_eval``) before the current
    one is read, so one token past a stop token is computed and dropped. Generation stops
    early at a token in ``stop_ids`` (which is not yielded). ``stats``, if given, is filled
    in as tokens come.

    ``compile``: decode through one :func:`arrayq.compile`'d step (the layers, the head and
    the sampling traced once, then replayed each token with the KV cache as
    :class:`~arrayq.nn.FixedKVCache` inputs and outputs); needs a model whose ``hidden``
    takes ``rope_tables=`` and ``index_mode=`` and which has ``rope_tables(position,
    length)`` (Qwen3 has). None (the default) compiles where the backend compiles (a hook of
    its own, MLX and JAX, or a recorded plan, NumPy: ``Backend.compile_records_plan``) and the
    model allows it; a recorded plan writes the cache buffers in place (``donate``). The
    attention window grows by :data:`WINDOW_STEP` positions, each size compiling
    once. The tokens are the same either way, up to the backend's compiled rounding
    (docs/compile.md).

    ``kv_dtype``: None (the cache keeps the activations' dtype), or a floating dtype such as
    ``"float16"`` for the compiled decode step's cache (:class:`~arrayq.nn.FixedKVCache`'s
    ``dtype``: half float32's cache memory; the prompt's keys and values are rounded to it
    when they move into that cache after the prefill; tokens may then differ from a float32
    cache's). It needs the compiled decode step. Raises ValueError for an empty prompt, ids
    outside the vocabulary, bad sampling parameters, ``compile=True`` for a model that
    cannot, or a ``kv_dtype`` where decode does not compile; TypeError for a ``kv_dtype``
    that is not a floating dtype."""
    prompt = [int(t) for t in prompt_ids]
    vocab = model.config.vocab_size
    if not prompt:
        raise ValueError("the prompt needs at least one token")
    if min(prompt) < 0 or max(prompt) >= vocab:
        raise ValueError(f"prompt ids must lie in [0, {vocab}), got values from {min(prompt)} to {max(prompt)}")
    if max_tokens < 0 or prefill_chunk < 1:
        raise ValueError(f"need max_tokens >= 0 and prefill_chunk >= 1, got {max_tokens}, {prefill_chunk}")
    check_sampling(temperature, top_k, top_p)
    if kv_dtype is not None:
        kv_dtype = _kv_dtype(kv_dtype).name  # (TypeError for a bad one, before any work)
    can_compile = hasattr(model, "rope_tables")
    if compile and not can_compile:
        raise ValueError(
            f"compile=True needs a model with rope_tables(position, length) and hidden(..., rope_tables=, "
            f"index_mode=); {type(model).__name__} has not: pass compile=False"
        )
    stats = stats if stats is not None else GenerationStats()
    stats.prompt_tokens = len(prompt)
    stop = {int(t) for t in (stop_ids or ())}
    rng = np.random.default_rng(seed)
    if max_tokens == 0:
        return
    start = time.perf_counter()
    capacity = len(prompt) + max_tokens
    cache = model.make_cache(capacity)
    chunks = [prompt[i : i + prefill_chunk] for i in range(0, len(prompt), prefill_chunk)]
    weights = parameters(model)  # the prompt's ids are made where the weights are, not moved there
    like = weights[0] if weights else None
    for chunk in chunks[:-1]:
        model.hidden(aq.asarray([chunk], dtype=aq.int32, like=like), cache)
        aq.eval(cache)  # lazy backends: compute this chunk now, keeping graphs small
    h = model.hidden(aq.asarray([chunks[-1]], dtype=aq.int32, like=like), cache)
    backend = aq.backend_of(h)
    assert backend is not None  # h is an array
    if compile is None:  # where the backend compiles (a hook of its own, or recorded plans) and the model can
        compiles = type(backend).compile is not Backend.compile or backend.compile_records_plan
        compile = can_compile and compiles  # noqa: A001
    stats.compiled = bool(compile)
    if kv_dtype is not None and not compile:
        raise ValueError(
            f"kv_dtype={kv_dtype!r} needs the compiled decode step (compile=True, on a backend that compiles)"
        )
    if compile:
        step = _compiled_steps(model, cache, capacity, temperature, top_k, top_p, rng, kv_dtype)
    else:

        def step(ids: Any) -> Any:  # sampled ids are in range: not checked on the host
            h = model.hidden(ids, cache, index_mode="clip")
            return _sample(model.logits(h[:, -1:])[0, -1], temperature, top_k, top_p, rng)

    pending = _sample(model.logits(h[:, -1:])[0, -1], temperature, top_k, top_p, rng)
    backend.async_eval(pending)
    token = int(aq.to_numpy(pending))
    stats.prefill_seconds = time.perf_counter() - start
    for n in range(max_tokens):
        t0 = time.perf_counter()  # decode time counts the model only, not the caller's time between tokens
        # token n+1 is built (and started) before token n goes to the caller
        following = None
        if n + 1 < max_tokens:
            following = step(aq.astype(aq.reshape(pending, (1, 1)), aq.int32))
            backend.async_eval(following)
        if n:
            token = int(aq.to_numpy(pending))
        stats.decode_seconds += time.perf_counter() - t0
        if token in stop:
            return
        stats.generated_tokens = n + 1
        yield token
        pending = following


def _compiled_step(model: Any, temperature: float, top_k: int, top_p: float) -> Any:
    """The model's decode step for these sampling settings, :func:`arrayq.compile`'d, and
    what to pass as its first argument: call it as ``step(weights, ids, cache, tables, u)``.

    Where the backend's compile copies the arrays a compiled function closes over into a
    program of its own (``Backend.compile_copies_captured_arrays``: JAX's XLA, which would
    keep a second copy of every weight), the weights are an input of the step: the model
    flattened here, once per :func:`generate` call, and rebuilt from the flat list inside
    the trace. Elsewhere (MLX) the step closes over the model and ``weights`` is empty:
    checking ~450 more inputs each token cost an H100's host ~1 ms of a ~5 ms qwen3-0.6b
    token. The compiled step is kept on the model while the model is the same: its structure
    (layers, static fields, the arrays' places) and, closed over, its arrays by identity (so
    replaced weights are traced anew)."""
    weights, structure = flatten(model, "the model")
    as_inputs = getattr(backend_of(weights[0]), "compile_copies_captured_arrays", False)
    same = (structure, None if as_inputs else tuple(map(id, weights)))
    held = vars(model).get("_arrayq_decode_steps")
    if held is None or held[0] != same:
        held = (same, {})
        vars(model)["_arrayq_decode_steps"] = held
    key = (temperature, top_k, top_p)
    if key not in held[1]:

        def traced(weights: list, ids: Any, cache: list, tables: Any, u: Any) -> tuple[Any, list]:
            traced_model = unflatten(structure, weights) if weights else model
            for c in cache[1:]:  # one position for all layers: its clamp, mask and advance are made once
                c.position = cache[0].position
            h = traced_model.hidden(ids, cache, rope_tables=tables, index_mode="clip")
            token = _sample_with(traced_model.logits(h[:, -1:])[0, -1], temperature, top_k, top_p, u)
            # one advanced position out for all layers (each layer's advance is the same sum): a
            # plan makes each of its results, so 28 positions out would be 28 adds a token
            for c in cache[1:]:
                c.position = cache[0].position
            return token, cache

        held[1][key] = aq.compile(traced, donate=("cache",))  # the buffers are ours: written in place
    return held[1][key], weights if as_inputs else []


def _compiled_steps(
    model: Any,
    cache: list,
    capacity: int,
    temperature: float,
    top_k: int,
    top_p: float,
    rng: np.random.Generator,
    kv_dtype: Any = None,
) -> Any:
    """A function of the fed token's ids (1, 1) giving the next token, through one compiled
    step per attention window; the cache moves into FixedKVCache buffers of ``capacity``
    (stored in ``kv_dtype`` where given)."""
    state = {"position": cache[0].offset}
    window = min(capacity, state["position"] + 1)
    fixed = [FixedKVCache.from_cache(c, capacity, window, kv_dtype) for c in cache]
    state["cache"] = fixed

    compiled, weights = _compiled_step(model, temperature, top_k, top_p)

    def step(ids: Any) -> Any:
        position = state["position"]
        window = min(capacity, -(-(position + 1) // WINDOW_STEP) * WINDOW_STEP)
        for c in state["cache"]:
            c.window = window
        host = model.rope_tables(position, 1)
        tables = None if host is None else tuple(aq.asarray(t, like=ids) for t in host)
        u = None if temperature == 0 else aq.asarray(rng.random(), dtype=aq.float32, like=ids)
        token, state["cache"] = compiled(weights, ids, state["cache"], tables, u)
        state["position"] = position + 1
        return token

    return step


__all__ = ["WINDOW_STEP", "GenerationStats", "generate", "sample", "sample_array"]
