"""arrayq.serving.prefill: prompts of different lengths prefilled together in one forward
pass, against each prompt's own forward pass through the model (``model(ids, cache)``: the
single-sequence path, a second implementation of the layer loop and its attention), bit for
bit (within float32 rounding where a kernel changes with the rows); then decode steps on
the rows it wrote; bad input; and through ``Serving``, requests joining at once against
``arrayq.models.generate`` alone."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest

import arrayq as aq
from arrayq import models
from arrayq.nn import parameters
from arrayq.serving import BatchCache, Limits, Serving, decode_step, prefill

BACKENDS = ["numpy"] + (["mlx"] if "mlx" in [b.name for b in aq.list_backends() if b.available] else [])

#: prompts of different lengths: 1 token, a few, more than the NumPy decode kernel's 8 rows
PROMPTS = [[1, 2, 3], [7], [42, 17, 99, 5, 300, 12, 8], list(range(30, 50)), [255, 256]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


@pytest.fixture(scope="module", params=BACKENDS)
def model(request, tiny):
    return models.load(tiny, backend=request.param)


def _modes(model):
    """The activation modes of the model's backend: NumPy's native kernels take float32 or
    int8 activations (``arrayq_numpy.activations``); MLX one."""
    if aq.backend_of(model.norm.weight).name != "numpy":
        return [None]
    return ["float32", "int8"]


def _mode(mode):
    if mode is None:
        return contextlib.nullcontext()
    import arrayq_numpy

    return arrayq_numpy.activations(mode)


def _alone(model, prompt):
    """The prompt's own forward pass: its next-position logits (vocab,) and its cache."""
    like = parameters(model)[0]
    cache = model.make_cache()
    logits = model(aq.asarray([prompt], dtype=aq.int32, like=like), cache)
    return aq.to_numpy(logits)[0, -1], cache


def _exact(model, mode):
    """Whether prefilling together must give the prompt's own logits bit for bit: where the
    quantized matmul computes each row of x the same way whatever the number of rows (NumPy
    with int8 activations: integer dot products and per-row scales; MLX on the CPU, float32:
    measured so). NumPy with float32 activations takes its decode kernel up to 8 rows and
    dequantize + BLAS above, which sum in other orders: float32 rounding, ~6e-8 relative
    per add over a few hundred adds per dot product, and more through the layers."""
    return mode != "float32"


def _row(buffer, row):
    return aq.to_numpy(buffer[row])  # (Hkv, positions, D)


@pytest.mark.parametrize("mode_index", [0, 1])
def test_prompts_prefilled_together_are_each_prompts_own_forward(model, mode_index):
    """Five prompts of 1 to 20 tokens, right-padded to 20, prefilled together after a
    sequence already in the cache: each row's logits, and its keys and values, are the
    prompt's own forward pass bit for bit; the positions past each prompt stay zero; the
    row already there is untouched; a decode step on all six rows then gives each the
    logits its own cache gives the next token."""
    modes = _modes(model)
    if mode_index >= len(modes):
        pytest.skip("one activation mode on this backend")
    like = parameters(model)[0]
    with _mode(modes[mode_index]):
        cache = BatchCache(len(model.layers), rows=8)
        first = [9, 8, 7, 6]
        prefill(model, [first], cache, like)
        before = [(_row(k, 0), _row(v, 0)) for k, v in zip(cache._keys, cache._values)]
        got = aq.to_numpy(prefill(model, PROMPTS, cache, like))
        assert got.shape == (len(PROMPTS), model.config.vocab_size)
        assert cache.lengths == [len(first)] + [len(p) for p in PROMPTS]
        exact = _exact(model, modes[mode_index])
        # the backend's own answer (Backend.batch_invariant: what prefill_together's default follows)
        assert aq.backend_of(like).batch_invariant(aq.device(like).id) == exact
        for i, prompt in enumerate(PROMPTS):
            want, own = _alone(model, prompt)
            if exact:
                np.testing.assert_array_equal(got[i], want, err_msg=f"prompt {i}")
            else:  # (_exact says why; 1e-5 of the largest logit)
                np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-5 * np.abs(want).max())
            assert got[i].argmax() == want.argmax()
            for n, layer in enumerate(own):
                for buffers, mine in ((cache._keys, layer.keys), (cache._values, layer.values)):
                    row, mine = _row(buffers[n], 1 + i), aq.to_numpy(mine)[0]
                    if exact:
                        np.testing.assert_array_equal(row[:, : len(prompt)], mine)
                    else:
                        np.testing.assert_allclose(row[:, : len(prompt)], mine, rtol=0, atol=1e-5 * np.abs(mine).max())
                    assert not row[:, len(prompt) :].any()  # (the padding's keys never written)
        for (k, v), n in zip(before, range(len(model.layers))):
            np.testing.assert_array_equal(_row(cache._keys[n], 0), k)
            np.testing.assert_array_equal(_row(cache._values[n], 0), v)
        tokens = [5, 6, 7, 8, 9, 10]
        stepped = aq.to_numpy(decode_step(model, tokens, cache, like))
        for i, (prompt, token) in enumerate(zip([first, *PROMPTS], tokens)):
            _, own = _alone(model, prompt)
            want = aq.to_numpy(model(aq.asarray([[token]], dtype=aq.int32, like=like), own))[0, -1]
            # (the decode step's own tolerance, tests/test_serving.py: its batched kernels and
            # masked attention may round otherwise than a sequence alone)
            np.testing.assert_allclose(stepped[i], want, rtol=0, atol=1e-5 * np.abs(want).max(), err_msg=f"row {i}")
            assert stepped[i].argmax() == want.argmax()


def test_a_row_a_longer_sequence_left_is_zero_past_the_new_prompt(model):
    """A 20-token sequence leaves row 0; two prompts prefilled together then take rows 0
    and 1: nothing of the old sequence stays past the new prompt's length."""
    like = parameters(model)[0]
    cache = BatchCache(len(model.layers), rows=2)
    prefill(model, [PROMPTS[3]], cache, like)
    cache.remove(0)
    prefill(model, [PROMPTS[0], PROMPTS[4]], cache, like)
    for buffers in (cache._keys, cache._values):
        for b in buffers:
            assert aq.to_numpy(b[0, :, 3:]).any() == 0 and aq.to_numpy(b[0, :, :3]).any()
            assert not aq.to_numpy(b[1, :, 2:]).any()


@pytest.mark.parametrize(
    "prompts, error, message",
    [
        ([], ValueError, "at least one prompt"),
        ([[1, 2], []], ValueError, "at least one token"),
        ([[1, 2], [3, 512]], ValueError, "lie in"),  # (the tiny model's vocabulary: 512 ids)
        ([[1, -1]], ValueError, "lie in"),  # (not wrapped round to the vocabulary's end)
        ([[1.7, 2.2]], ValueError, "integer token ids"),  # (not truncated)
        ([[1, True]], ValueError, "integer token ids"),
        ([np.array([1, 2])], ValueError, "list of token ids"),
        ((p for p in [[1, 2]]), ValueError, "list of prompts"),
        (["ab"], ValueError, "list of token ids"),
    ],
)
def test_bad_prompts_are_refused_and_leave_the_cache_as_it_was(model, prompts, error, message):
    like = parameters(model)[0]
    cache = BatchCache(len(model.layers), rows=4)
    prefill(model, [PROMPTS[0]], cache, like)
    with pytest.raises(error, match=message):
        prefill(model, prompts, cache, like)
    assert cache.lengths == [3]
    # the cache goes on working: a prompt prefilled now is its own forward pass
    got = aq.to_numpy(prefill(model, [PROMPTS[2]], cache, like))
    np.testing.assert_array_equal(got[0], _alone(model, PROMPTS[2])[0])  # (one prompt: its own M)
    for buffers in (cache._keys, cache._values):
        assert not aq.to_numpy(buffers[0][1, :, len(PROMPTS[2]) :]).any()


def test_requests_joining_at_once_some_ending_at_their_first_token(model, tiny):
    """While the worker is held, five requests of prompts of 1 to 20 tokens queue; released,
    they are prefilled in one pass beside a running one. The two asking for one token end
    at their prefill and leave the batch cache at once; every request gets generate()'s
    tokens alone, and the cache is empty at the end."""
    backend = aq.backend_of(model.norm.weight).name
    held, release = threading.Event(), threading.Event()

    def hold(request, token):
        if not held.is_set():
            held.set()
            release.wait(30)

    wants = [5, 1, 6, 1, 4]
    with Serving(
        lambda: models.load(tiny, backend=backend), Limits(max_batch=8, prefill_together=True), stop_ids=()
    ) as serving:
        first = serving.submit([3, 4], 8, listener=hold)
        assert held.wait(30)
        others = [serving.submit(p, n) for p, n in zip(PROMPTS, wants)]
        passes = serving.stats()["prefill_passes"]
        release.set()
        got = [r.result(30) for r in [first, *others]]
        assert serving.stats()["prefill_passes"] == passes + 1  # (the five in one pass)
        deadline = time.monotonic() + 10  # (the last ones leave the cache at the end of their step)
        while len(serving._cache) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(serving._cache) == 0
    expect = [list(models.generate(model, p, n, stop_ids=())) for p, n in zip([[3, 4], *PROMPTS], [8, *wants])]
    assert got == expect
    assert [len(t) for t in got] == [8, *wants]
