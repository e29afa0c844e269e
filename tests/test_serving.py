"""arrayq.serving in process, on the tiny checkpoint: the batched decode step against the
model's own single-sequence forward, concurrent greedy requests against
``arrayq.models.generate`` (one request at a time, no batching: a second implementation
of the decode loop), limits and back-pressure, cancellation."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import arrayq as aq
from arrayq import models
from arrayq.nn import parameters
from arrayq.serving import WINDOW, BatchCache, Limits, ServerBusy, Serving, ServingClosed, decode_step

BACKENDS = ["numpy"] + (["mlx"] if "mlx" in [b.name for b in aq.list_backends() if b.available] else [])

#: prompts of different lengths (and so different cache lengths in one batch)
PROMPTS = [[1, 2, 3], [7], [42, 17, 99, 5, 300, 12, 8], list(range(30, 80)), [255, 256]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


@pytest.fixture(scope="module", params=BACKENDS)
def model(request, tiny):
    return models.load(tiny, backend=request.param)


@pytest.fixture
def load(tiny, model):
    """The model's loader, for Serving to call on its worker thread (an MLX model has to
    be made on the thread that runs it)."""
    backend = aq.backend_of(model.norm.weight).name
    return lambda: models.load(tiny, backend=backend)


def reference(model, prompt, n, **kw):
    """One request alone through arrayq.models.generate."""
    return list(models.generate(model, prompt, n, stop_ids=kw.pop("stop_ids", ()), **kw))


def _prefilled(model, prompt):
    like = parameters(model)[0]
    cache = model.make_cache()
    model.hidden(aq.asarray([prompt], dtype=aq.int32, like=like), cache)
    return cache


def _alone(model, prompt, token):
    """The logits (vocab,) the model's own forward gives ``token`` after ``prompt``."""
    like = parameters(model)[0]
    return aq.to_numpy(model(aq.asarray([[token]], dtype=aq.int32, like=like), _prefilled(model, prompt)))[0, -1]


def test_the_compiled_step_is_the_eager_step(model):
    """decode_step(compiled=True) (a recorded plan on NumPy, the attention window padded
    to a power of two of at least WINDOW positions and hidden by the mask) gives the eager step's logits bit for bit
    (the same backend calls on the same values; NumPy's attention reads each row's own
    keys only), step after step, as rows leave and join, replaying one plan per batch
    size and window. Elsewhere it is refused (a compiler's trace writes no buffer in place)."""
    like = parameters(model)[0]
    if not getattr(aq.backend_of(like), "compile_records_plan", False):
        cache = BatchCache(len(model.layers))
        cache.add(_prefilled(model, PROMPTS[0]))
        with pytest.raises(ValueError, match="recorded plans"):
            decode_step(model, [1], cache, like, compiled=True)
        return
    caches = [BatchCache(len(model.layers)) for _ in range(2)]
    for cache in caches:
        for p in PROMPTS[:3]:
            cache.add(_prefilled(model, p))
    for step in range(10):
        if step == 3:  # a row leaves, another joins
            for cache in caches:
                cache.remove(1)
                cache.add(_prefilled(model, PROMPTS[3]))
        tokens = [11 + step, 22, 33 + step]
        eager, compiled = (
            aq.to_numpy(decode_step(model, tokens, c, like, compiled=flag)) for c, flag in zip(caches, (False, True))
        )
        np.testing.assert_array_equal(compiled, eager)
    assert caches[0].lengths == caches[1].lengths
    info = caches[1]._held[1].cache_info()
    # one plan, replayed for every step: the buffers hold WINDOW (256) positions, the rows
    # fewer, so the batch size, window and buffer size stay the same as rows leave and join
    assert info.native == info.signatures == 1 and info.hits == 9
    assert caches[1]._keys[0].shape[2] == WINDOW


def test_batched_step_rows_are_the_single_sequence_logits(model):
    """decode_step on 3 sequences of cache lengths 3, 1 and 7 in one padded BatchCache
    gives each row the logits the model's own forward gives that sequence alone, for two
    steps in a row. Float32 throughout; tolerance 1e-5 relative to the largest logit: the
    batched projections may take another kernel (M = 3 instead of 1), which may sum in
    another order (float32 rounding ~6e-8 per add, a few hundred adds per dot product),
    and the masked attention over padded keys may too. On NumPy the first step exactly: its
    decode kernel computes each row alone and its attention kernel reads each row's own
    keys, so each row is the single sequence's logits bit for bit (the one-position prompt
    included, whose cache once had a transposed layout that made attention take the
    reference). (Not the second: there the single sequence's prefill of its first new
    token runs the prompt's attention, which the batch ran as a decode step.)"""
    prompts = PROMPTS[:3]
    like = parameters(model)[0]
    cache = BatchCache(len(model.layers))
    for p in prompts:
        cache.add(_prefilled(model, p))
    for nxt in ([11, 22, 33], [44, 55, 66]):
        got = aq.to_numpy(decode_step(model, nxt, cache, like))
        want = np.stack([_alone(model, p, t) for p, t in zip(prompts, nxt)])
        assert got.shape == (3, model.config.vocab_size)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
        if aq.backend_of(like).name == "numpy" and nxt[0] == 11:
            np.testing.assert_array_equal(got, want)
        assert list(got.argmax(-1)) == list(want.argmax(-1))
        prompts = [p + [t] for p, t in zip(prompts, nxt)]
    assert cache.lengths == [len(p) for p in prompts]


def test_a_row_leaving_the_batch_cache_leaves_the_others_intact(model):
    """remove() moves the last row into the hole: the remaining sequences' next logits are
    still their single-sequence ones (same tolerance as above), and a sequence added after
    goes on from its own prompt."""
    prompts = [PROMPTS[0], PROMPTS[2], PROMPTS[1]]
    like = parameters(model)[0]
    cache = BatchCache(len(model.layers))
    for p in prompts:
        cache.add(_prefilled(model, p))
    cache.remove(0)  # rows: [PROMPTS[1], PROMPTS[2]]
    cache.add(_prefilled(model, PROMPTS[4]))
    rows = [PROMPTS[1], PROMPTS[2], PROMPTS[4]]
    assert cache.lengths == [len(p) for p in rows]
    got = aq.to_numpy(decode_step(model, [5, 6, 7], cache, like))
    want = np.stack([_alone(model, p, t) for p, t in zip(rows, [5, 6, 7])])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    with pytest.raises(ValueError, match="one token per cached sequence"):
        decode_step(model, [1, 2], cache, like)
    with pytest.raises(ValueError, match="prefilled cache of one sequence"):
        cache.add(model.make_cache())
    for row in (2, 0, 0):  # the last row, then the others: the cache is empty and takes new ones
        cache.remove(row)
    assert len(cache) == 0
    cache.add(_prefilled(model, PROMPTS[3]))
    got = aq.to_numpy(decode_step(model, [9], cache, like))
    want = _alone(model, PROMPTS[3], 9)[None]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_concurrent_greedy_requests_equal_single_requests(model, load):
    """Requests from 5 threads, started at staggered times so that they join a running
    batch, each give exactly the tokens generate() gives it alone."""
    lengths = [12, 30, 5, 20, 17]
    want = [reference(model, p, n) for p, n in zip(PROMPTS, lengths)]
    got: list = [None] * len(PROMPTS)
    with Serving(load, Limits(max_batch=3, max_queued=8), stop_ids=()) as serving:

        def client(i):
            time.sleep(0.01 * i)
            got[i] = serving.generate(PROMPTS[i], lengths[i])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert serving.steps > 0
        assert serving.stepped_sequences > serving.steps  # some steps decoded several sequences
        # the finished sequences leave the batch's KV cache, which keeps its buffers (of
        # WINDOW positions: every sequence here is shorter) for the next ones
        deadline = time.monotonic() + 10
        while len(serving._cache) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(serving._cache) == 0 and int(serving._cache._keys[0].shape[2]) == WINDOW
    assert got == want


def test_the_batch_cache_is_zero_past_each_rows_length(model):
    """Rows leaving (the last moving into the hole) and sequences joining rows that longer
    ones held before: every position past a row's length is zero, as in fresh buffers, and
    the row's own positions are its prompt's cache (checked after each change; the rows
    not in use may keep what left them); buffers of WINDOW positions stay when the last
    row leaves, grown ones go."""
    cache = BatchCache(len(model.layers), rows=3)

    def check(prompts):
        assert cache.lengths == [len(p) for p in prompts]
        for n in range(len(model.layers)):
            keys = aq.to_numpy(cache._keys[n])
            for i, p in enumerate(prompts):
                want = aq.to_numpy(_prefilled(model, p)[n].keys)[0]
                np.testing.assert_array_equal(keys[i, :, : len(p)], want)
                assert not keys[i, :, len(p) :].any()

    for p in (PROMPTS[3], PROMPTS[2], PROMPTS[1]):
        cache.add(_prefilled(model, p))
    cache.remove(0)  # the 1-token row moves into the 50-token row's place
    check([PROMPTS[1], PROMPTS[2]])
    cache.remove(1)
    cache.add(_prefilled(model, PROMPTS[0]))  # into the row the 7-token prompt held
    check([PROMPTS[1], PROMPTS[0]])
    cache.remove(0)
    cache.remove(0)
    assert len(cache) == 0 and int(cache._keys[0].shape[2]) == WINDOW  # kept
    cache.add(_prefilled(model, PROMPTS[4]))  # 2 tokens into the row that held 3
    check([PROMPTS[4]])
    cache.remove(0)
    cache.add(_prefilled(model, list(range(1, WINDOW + 2))))  # longer than WINDOW: the buffers grow
    assert int(cache._keys[0].shape[2]) == 2 * WINDOW
    cache.remove(0)
    assert cache._keys[0] is None  # grown buffers go with the last row


@pytest.mark.parametrize("chunk, together", [(512, True), (4, True), (512, False)])
def test_requests_that_arrive_together_join_the_batch_together(model, load, chunk, together):
    """While the worker is held (a listener blocking on the first request's first token),
    three more requests queue; released, the worker prefills all three in its next step
    (their prompts, 3 + 1 + 7 tokens, fit a prefill_chunk of 512) and they decode beside
    the first from then on: n steps in all (the first request's n - 1 decode steps,
    steps 1 to n - 1, the others' n - 1, steps 2 to n; one prompt a step, as before, made
    n + 2). With a prefill_chunk of 4 (prompt tokens a step) the 3- and 1-token prompts
    join at step 2 and the 7-token one, in chunks of 4 and 3, at step 4: n + 2 steps. Each
    request's tokens are generate()'s; with prefill_together off too, where each prompt is
    a forward pass of its own."""
    n = 6
    held, release = threading.Event(), threading.Event()

    def hold(request, token):
        if not held.is_set():
            held.set()
            release.wait(30)

    limits = Limits(max_batch=4, prefill_chunk=chunk, prefill_together=together)
    with Serving(load, limits, stop_ids=()) as serving:
        first = serving.submit(PROMPTS[4], n, listener=hold)
        assert held.wait(30)
        others = [serving.submit(p, n) for p in PROMPTS[:3]]
        release.set()
        got = [r.result(30) for r in [first, *others]]
        steps, stats = serving.steps, serving.stats()
    assert got == [reference(model, p, n) for p in [PROMPTS[4], *PROMPTS[:3]]]
    assert steps == (n if chunk == 512 else n + 2)
    # stats(): each request's first token comes from its prefill, the other n - 1 from steps
    assert stats["decode_steps"] == steps and stats["decoded_tokens"] == 4 * (n - 1)
    assert stats["decode_seconds"] > 0
    assert stats["prefilled_tokens"] == sum(map(len, [PROMPTS[4], *PROMPTS[:3]]))  # every prompt token once
    # forward passes: the first prompt's, then the three together (prompts of 3, 1 and 7
    # tokens in one pass); with a chunk of 4, the 3- and 1-token ones together and the
    # 7-token one alone, in two chunks; not together, one a prompt
    assert stats["prefill_passes"] == (4 if chunk == 4 or not together else 2)
    assert 0 < stats["sample_seconds"] < stats["decode_seconds"]  # (sampling is part of the steps' time)


def test_stats_split_the_workers_time_and_count_the_step_plans(model, load):
    """stats() after two requests of the same prompt, one after another with a pause:
    the pause is idle time (at least most of it); on NumPy the compiled step records one
    plan, at the first request's first decode step, and every later step of both requests
    (B = 1, the same window and buffer) finds it: no retracing. MLX steps eagerly: no plans."""
    n, pause = 5, 0.3
    with Serving(load, Limits(max_batch=2), stop_ids=()) as serving:
        zero = serving.stats()
        serving.generate(PROMPTS[0], n)
        time.sleep(pause)
        serving.generate(PROMPTS[0], n)
        stats = serving.stats()
    assert all(v == 0 for k, v in zero.items() if k != "idle_seconds")
    assert 0 <= zero["idle_seconds"] < stats["idle_seconds"]  # (idle time counts as it goes)
    assert stats["decode_steps"] == 2 * (n - 1) and stats["prefilled_tokens"] == 2 * len(PROMPTS[0])
    assert stats["idle_seconds"] >= pause / 2  # (the worker waits from the first result on)
    assert stats["prefill_seconds"] > 0 and stats["other_seconds"] >= 0
    assert stats["sample_seconds"] + stats["join_seconds"] < stats["decode_seconds"]
    compiled = aq.backend_of(parameters(model)[0]).name == "numpy"
    assert stats["step_plans"] == (1 if compiled else 0) and stats["step_plans_eager"] == 0
    assert stats["step_plan_hits"] == (2 * (n - 1) - 1 if compiled else 0)


def test_join_seconds_count_the_finished_sequences_leaving(model, load, monkeypatch):
    """join_seconds is the copies into and out of the batch cache (stats()' docstring,
    docs/serving.md): a request's sequence leaves the cache after the step that finished
    it; each removal made to take 0.2 s shows in join_seconds (and so in decode_seconds,
    of which it is a part), not in other_seconds."""
    pause, remove = 0.2, BatchCache.remove

    def slow_remove(self, row):
        time.sleep(pause)
        remove(self, row)

    monkeypatch.setattr(BatchCache, "remove", slow_remove)
    with Serving(load, Limits(max_batch=2), stop_ids=()) as serving:
        serving.generate(PROMPTS[0], 3)
        deadline = time.monotonic() + 10  # (the removal runs after the request's end)
        while serving.stats()["join_seconds"] < pause and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = serving.stats()
    assert len(serving._cache) == 0  # (the one removal ran)
    assert stats["join_seconds"] >= pause and stats["decode_seconds"] >= pause
    assert stats["other_seconds"] < pause


def test_stats_read_while_the_step_records_a_plan():
    """stats() runs on the caller's thread while the worker may record a new plan of the
    compiled step (a new batch size or window): cache_info, which stats() reads, must not
    iterate the plans' dict as it grows. The worker's insertion is made here at the point
    where a thread switch can put it: between two entries read."""
    f = aq.compile(lambda x: aq.multiply(x, 2.0))
    f(np.ones(1, np.float32))

    class Growing:
        @property
        def native(self):
            f._cache[object()] = next(iter(f._cache.values()))  # (another thread's new signature)
            return False

    f._cache["switch"] = Growing()
    info = f.cache_info()  # (RuntimeError: dictionary changed size during iteration, before)
    assert info.signatures == 2  # (the snapshot it read)


def test_stop_tokens_end_a_request_without_being_returned(model, load):
    prompt, n = PROMPTS[2], 20
    full = reference(model, prompt, n)
    stop = full[4]
    first = full.index(stop)
    with Serving(load, stop_ids=[stop]) as serving:
        r = serving.submit(prompt, n)
        assert r.result(30) == full[:first]
        assert r.finish_reason == "stop"
        r = serving.submit(prompt, n, stop_ids=())
        assert r.result(30) == full
        assert r.finish_reason == "length"


def test_sampled_requests_follow_their_seed(model, load):
    """Sampling with a seed gives generate()'s tokens for that seed (the same per-request
    random stream), whatever runs beside it."""
    kw = dict(temperature=0.8, top_k=50, top_p=0.9, seed=3)
    want = reference(model, PROMPTS[0], 10, **kw)
    with Serving(load, stop_ids=()) as serving:
        other = serving.submit(PROMPTS[3], 30)
        assert serving.generate(PROMPTS[0], 10, **kw) == want
        other.result(30)


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        ([], {}, "at least one token"),
        ([512], {}, r"\[0, 512\)"),
        ([-1], {}, r"\[0, 512\)"),
        ("abc", {}, "list of token ids"),
        ([1.5], {}, "integer token ids"),
        ([1], {"max_tokens": 0}, "max_tokens"),
        ([1], {"max_tokens": 101}, "max_tokens"),
        ([1], {"max_tokens": True}, "max_tokens"),
        (list(range(120)), {"max_tokens": 10}, "over the 128-token context"),
        ([1], {"temperature": float("nan")}, "temperature"),
        ([1], {"top_p": 0}, "top_p"),
        ([1], {"seed": -1}, "seed"),
        ([1], {"stop_ids": [600]}, "stop_ids"),
    ],
)
def test_bad_requests_are_refused_before_queueing(model, load, args, kw, message):
    with Serving(load, Limits(max_tokens=100, max_context=128)) as serving:
        with pytest.raises(ValueError, match=message):
            serving.submit(args, **kw)
        assert serving.counts()["waiting"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"max_batch": 0},
        {"max_queued": -1},
        {"max_tokens": 1.5},
        {"prefill_chunk": None},
        {"prefill_together": 1},
        *({"burst_wait": v} for v in (-0.001, 1.5, float("nan"), True, "0.005")),
    ],
)
def test_bad_limits(model, load, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Serving(load, Limits(**bad))


def test_back_pressure_and_cancel_free_places(model, load):
    """With max_batch 1 and max_queued 1, a third request is refused with ServerBusy;
    cancelling the running one lets the queued one run and makes room again."""
    with Serving(load, Limits(max_batch=1, max_queued=1, max_tokens=4000), stop_ids=()) as serving:
        long = serving.submit([1, 2], 4000)
        queued = serving.submit([3], 5)
        with pytest.raises(ServerBusy, match="max_batch 1.*max_queued 1"):
            serving.submit([4], 5)
        assert next(iter(long)) is not None  # it runs
        long.cancel()
        assert queued.result(30) == reference(model, [3], 5)
        assert long.finish_reason == "cancelled" and len(long.tokens) < 4000
        assert serving.counts() == {"running": 0, "waiting": 0, "max_batch": 1, "max_queued": 1}
        assert serving.generate([4], 5) == reference(model, [4], 5)
    with pytest.raises(ServingClosed):
        serving.submit([1], 1)


def test_close_ends_unfinished_requests(model, load):
    serving = Serving(load, Limits(max_batch=1, max_tokens=4000), stop_ids=())
    a, b = serving.submit([1], 4000), serving.submit([2], 4000)
    serving.close()
    assert a.finish_reason == b.finish_reason == "cancelled"
    assert list(b) == []  # iteration ends


def test_a_loader_that_fails_fails_the_constructor(tiny):
    def broken():
        raise FileNotFoundError("no such checkpoint")

    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        Serving(broken)


def test_a_failing_prefill_fails_its_request_alone(model, load, monkeypatch):
    """A request whose prompt fails in the forward pass ends with finish_reason "error" and
    its exception; the others, and later requests, go on (prompts prefilled together fail
    together, then each goes again alone)."""
    with Serving(load, stop_ids=()) as serving:
        norm = serving.model.layers[0].input_layernorm

        def fragile(x):
            if int(x.shape[1]) == 13:  # the poisoned prompt's length (the longest of its pass)
                raise MemoryError("no room for this prompt")
            return norm(x)

        monkeypatch.setattr(serving.model.layers[0], "input_layernorm", fragile)
        good = serving.submit(PROMPTS[0], 6)
        bad = serving.submit(list(range(13)), 6)
        with pytest.raises(MemoryError, match="no room"):
            bad.result(30)
        assert bad.finish_reason == "error"
        assert good.result(30) == reference(model, PROMPTS[0], 6)
        assert serving.generate(PROMPTS[1], 4) == reference(model, PROMPTS[1], 4)


def test_a_burst_from_an_empty_batch_starts_together(model, load):
    """Woken from an empty batch, the worker waits while requests keep arriving within
    burst_wait of each other: three submitted 50 ms apart (burst_wait 0.3 s, wide for a
    loaded machine) are prefilled in one pass and decode in step (n - 1 steps for all);
    one that comes after the batch started joins at a token boundary (a pass of its own);
    with burst_wait 0 the first starts alone. Tokens as generate() gives each alone."""
    n = 6
    for wait in (0.3, 0.0):
        limits = Limits(max_batch=4, prefill_together=True, burst_wait=wait)
        with Serving(load, limits, stop_ids=()) as serving:
            first = []
            for p in PROMPTS[:3]:
                first.append(serving.submit(p, n))
                time.sleep(0.05)
            if wait:
                assert not first[0].tokens  # (still gathering: nothing prefilled yet)
            got = [r.result(30) for r in first]
            steps = serving.steps
            late = serving.generate(PROMPTS[3], n)
            stats = serving.stats()
        assert got == [reference(model, p, n) for p in PROMPTS[:3]] and late == reference(model, PROMPTS[3], n)
        if wait:  # the burst in one pass, then the late one
            assert stats["prefill_passes"] == 2 and steps == n - 1
        else:  # the first alone, the other two (together or not), the late one
            assert stats["prefill_passes"] >= 3


def test_the_burst_wait_is_bounded(model, load):
    """Requests that keep coming (every 40 ms, within burst_wait 0.1 s of each other) hold
    the start for at most 4 x burst_wait: the first request's first token comes before the
    last of 16 requests is submitted (0.6 s), and they are prefilled in more than one pass."""
    limits = Limits(max_batch=16, prefill_together=True, burst_wait=0.1)
    with Serving(load, limits, stop_ids=()) as serving:
        requests = []
        for i in range(16):
            requests.append(serving.submit([1 + i, 2], 4))
            time.sleep(0.04)
        started_before_the_last = bool(requests[0].tokens) or requests[0].done
        for r in requests:
            r.result(30)
        passes = serving.stats()["prefill_passes"]
    assert started_before_the_last and passes > 1
