"""Qwen3 on the JAX backend: the tiny checkpoint of tests/test_qwen3.py gives NumPy's greedy
tokens, eagerly (with the KV cache) and through arrayq.compile (jax.jit), with logits within
float32 rounding of NumPy's; ``arrayq generate --backend jax`` prints the same tokens."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

pytest.importorskip("jax")

import arrayq as aq
from arrayq import cli, models
from tests.test_qwen3 import LOGIT_RTOL, PROMPT, _greedy

STEPS = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


@pytest.fixture(scope="module")
def numpy_run(tiny):
    return _greedy(models.load(tiny), PROMPT, STEPS)


def _forward(model, h):
    """The decoder layers and the head on embeddings ``h`` (B, L, hidden), without a cache: pure,
    so it compiles. (The embedding lookup stays outside: its bounds check reads the token ids.)"""
    for layer in model.layers:
        h = layer(h)
    return model.logits(h)


def _close(got, want, scale):
    # LOGIT_RTOL (tests/test_qwen3.py): float32 summation order and exp/sqrt implementations,
    # ~1e-6 of the largest logit observed between backends; 5e-5 leaves a 50x margin
    np.testing.assert_allclose(got, want, rtol=0, atol=LOGIT_RTOL * scale)


def test_greedy_tokens_and_logits_equal_numpy_eagerly(tiny, numpy_run):
    import jax

    model = models.load(tiny, backend="jax")
    assert isinstance(model.layers[0].mlp.down_proj.weight.packed, jax.Array)
    tokens, logits = _greedy(model, PROMPT, STEPS)
    want_tokens, want_logits = numpy_run
    assert tokens == want_tokens and len(set(tokens)) > 1
    scale = max(np.abs(a).max() for a in want_logits)
    for got, want in zip(logits, want_logits):
        _close(got, want, scale)
    assert list(models.generate(model, PROMPT, STEPS)) == want_tokens


def test_greedy_tokens_equal_numpy_through_arrayq_compile(tiny, numpy_run):
    """Greedy decoding by recomputing a fixed window of PROMPT + STEPS positions (zeros after the
    tokens so far): attention is causal, so the padding never reaches the positions read, and one
    signature (one jax.jit trace) serves every step."""
    model = models.load(tiny, backend="jax")
    forward = aq.compile(_forward)
    want_tokens, want_logits = numpy_run
    scale = max(np.abs(a).max() for a in want_logits)
    window = np.zeros((1, len(PROMPT) + STEPS), np.int32)
    window[0, : len(PROMPT)] = PROMPT
    tokens = []
    for step in range(STEPS):
        n = len(PROMPT) + step
        h = aq.astype(model.embed_tokens(aq.asarray(window, like=model.norm.weight)), model.dtype)
        logits = aq.to_numpy(forward(model, h))[0]
        # the cached run's logits: the prompt's positions at step 0, then one position a step
        _close(logits[:n] if step == 0 else logits[n - 1], want_logits[step][-1] if step else want_logits[0], scale)
        tokens.append(int(np.argmax(logits[n - 1])))
        window[0, n] = tokens[-1]
    assert tokens == want_tokens
    info = forward.cache_info()
    assert (info.signatures, info.native) == (1, 1)


def test_cli_generate_on_jax(tiny, numpy_run, capsys):
    argv = ["generate", "--model", str(tiny), "--prompt-ids", ",".join(map(str, PROMPT)), "--max-tokens", "6"]
    assert cli.main([*argv, "--backend", "jax"]) == 0
    out, err = capsys.readouterr()
    assert [int(t) for t in out.split()] == numpy_run[0][:6]
    assert "decode:  6 tokens" in err


def _constant_elements(hlo: str) -> int:
    """Elements of every array constant in a lowered program's text (``stablehlo.constant
    dense<...> : tensor<4x8xf32>``; scalars count 1)."""
    total = 0
    for dims in re.findall(r"stablehlo\.constant dense<[^>]*> : tensor<((?:\d+x)*)\w+>", hlo):
        total += math.prod(int(d) for d in dims.split("x") if d)
    return total


def test_compiled_decode_step_takes_the_weights_as_arguments(tiny, numpy_run, monkeypatch):
    """The compiled decode step on JAX gets the model's arrays as arguments of the XLA program:
    a step that closed over them would have them embedded as constants, which XLA keeps a copy
    of in the executable (twice the weights' memory). Checked on the lowered program the hook
    compiles: every model array is an argument, and its constants hold a small fraction of the
    weights' elements (the unpacking's shift tables; the tiny model's weights are ~80k elements)."""
    from arrayq import nn

    model = models.load(tiny, backend="jax")
    weights = nn.parameters(model)
    backend = aq.get_backend("jax")
    real = type(backend).compile
    lowered: list[str] = []

    def spy(self, fn):
        jitted = real(self, fn)

        def run(*args):
            if not lowered:
                lowered.append(jitted.lower(*args).as_text())
            return jitted(*args)

        return run

    monkeypatch.setattr(type(backend), "compile", spy)
    assert list(models.generate(model, PROMPT, STEPS)) == numpy_run[0]
    (hlo,) = lowered
    main = re.search(r"func\.func public @main\((.*?)\) ->", hlo).group(1)
    assert main.count("%arg") >= len(weights)
    elements = sum(math.prod(w.shape) for w in weights)
    assert _constant_elements(hlo) < elements / 100
