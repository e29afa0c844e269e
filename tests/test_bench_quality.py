"""The quantization quality harness (arrayq/bench/_quality.py, _minilm.py): its scores on
hand-built embeddings, its erf against Python's, and one measurement end to end on a
small encoder defined here."""

from __future__ import annotations

import math

import numpy as np
import pytest

import arrayq as aq
from arrayq.bench import _quality
from arrayq.bench._minilm import dequantized_weights, erf


def _unit(rows):
    a = np.asarray(rows, np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_erf_matches_python_within_the_approximations_bound():
    x = np.linspace(-6, 6, 4001)
    want = np.array([math.erf(v) for v in x])
    # Abramowitz and Stegun 7.1.26 promise |error| <= 1.5e-7
    assert np.max(np.abs(erf(x) - want)) <= 1.5e-7


def test_nearest_and_scores_on_hand_built_embeddings():
    # texts 0 and 1 point almost the same way; 2 sits between 1 and 3
    reference = _unit([[1, 0, 0], [1, 0.1, 0], [0.5, 1, 0], [0, 1, 0.2]])
    assert _quality.nearest(reference).tolist() == [1, 0, 3, 2]
    # the candidate moves text 2 towards text 1: its nearest neighbour changes, and text 3
    # stays where it was
    candidate = _unit([[1, 0, 0], [1, 0.1, 0], [1, 0.3, 0], [0, 1, 0.2]])
    s = _quality.scores(reference, candidate, pairs=[(0, 1), (2, 3)])
    cos2 = float(_unit([[0.5, 1, 0]])[0] @ _unit([[1, 0.3, 0]])[0])
    assert s["min_cos"] == pytest.approx(cos2, abs=1e-12)
    assert s["mean_cos"] == pytest.approx((3 + cos2) / 4, abs=1e-12)
    # nearest under the candidate: 0->1, 1->0 (5.7 degrees away, text 2 11 degrees), 2->1,
    # 3->2 (cosine 0.28 against 0.10): only text 2 changed
    assert _quality.nearest(candidate).tolist() == [1, 0, 1, 2]
    assert s["nn_agree"] == 0.75
    # pairs: 0->1 yes, 1->0 yes, 2->3 no, 3->2 yes
    assert s["para_at1"] == 0.75


class _TinyEncoder:
    """Two Linear layers with a tanh between them and mean pooling over 'tokens' (a text's
    characters as rows of a fixed table): enough structure for the harness's calls."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.table = rng.standard_normal((128, 64)).astype(np.float32)
        self.weights = {"a": rng.standard_normal((96, 64)).astype(np.float32) * 0.2}
        self.weights["b"] = rng.standard_normal((32, 96)).astype(np.float32) * 0.2

    def _run(self, texts, weights, record):
        w = {**self.weights, **(weights or {})}
        out = []
        for t in texts:
            x = self.table[[ord(c) % 128 for c in t]]
            h = np.tanh(x @ w["a"].T)
            if record is not None:
                record.setdefault("a", []).append(x)
                record.setdefault("b", []).append(h)
            out.append((h @ w["b"].T).mean(axis=0))
        return _unit(out).astype(np.float32)

    def embed(self, texts, weights=None):
        return self._run(texts, weights, None)

    def quantized(self, bits, group_size, method, calibration):
        weights = dequantized_weights(self.weights, bits, group_size, method, calibration)
        return lambda texts: self.embed(texts, weights)

    def linear_inputs(self, texts, weights=None):
        record: dict = {}
        self._run(texts, weights, record)
        return {k: np.concatenate(v) for k, v in record.items()}

    def sequential(self, bits, group_size, texts):
        """a on its float inputs, then b on its inputs with a quantized, fitted to the float ones."""
        targets, done = self.linear_inputs(texts), {}
        for name in ("a", "b"):
            x = self.linear_inputs(texts, done)[name]
            how = {"method": "gptq", "calibration": x, "float_calibration": targets[name]}
            qw = aq.quantize(self.weights[name], bits=bits, group_size=group_size, **how)
            done[name] = np.asarray(aq.dequantize(qw), np.float32)
        return lambda texts: self.embed(texts, done)


def test_measure_end_to_end_on_a_small_encoder():
    texts = ["alpha beta", "alpha beta!", "gamma", "delta epsilon zeta", "eta theta"]
    calibration = ["iota kappa lambda", "mu nu xi omicron", "pi rho sigma tau upsilon", "phi chi psi omega"]
    rows = _quality.measure(_TinyEncoder(), texts, calibration, pairs=[(0, 1)], configs=[(8, 32), (3, 32)])
    assert [(r["bits"], r["method"]) for r in rows] == [(32, "float32")] + [
        (b, m) for b in (8, 3) for m in ("rtn", "mse", "gptq", "gptq-seq")
    ]
    assert rows[0]["min_cos"] == pytest.approx(1.0, abs=1e-6) and rows[0]["nn_agree"] == 1.0
    by = {(r["bits"], r["method"]): r for r in rows}
    # 8-bit: the weights move by ~1/255 of a group's range; measured min cosine 0.99997
    assert by[8, "rtn"]["min_cos"] > 0.9999
    # 3-bit loses visibly, and GPTQ (calibrated on the other texts) keeps more than rtn
    assert by[3, "rtn"]["mean_cos"] < 0.999
    assert by[3, "gptq"]["mean_cos"] > by[3, "rtn"]["mean_cos"]
    assert by[3, "gptq-seq"]["mean_cos"] > by[3, "rtn"]["mean_cos"]
    table = _quality.format_quality_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| 3-bit gs32 | gptq |" in table


def test_against_target_compares_4_bit_with_rtn_at_5_bits():
    def row(bits, method, value):
        return {"bits": bits, "group_size": 64, "method": method, "mean_cos": value, "min_cos": value - 0.01,
                "nn_agree": 0.9}  # fmt: skip

    rows = [row(5, "rtn", 0.98), row(4, "rtn", 0.95), row(4, "gptq", 0.99), row(5, "gptq", 0.999)]
    assert _quality.against_target(rows, "gptq") == {
        "mean_cos": (0.99, 0.98),
        "min_cos": (pytest.approx(0.98), pytest.approx(0.97)),
        "nn_agree": (0.9, 0.9),
    }
    assert _quality.against_target(rows[1:], "gptq") is None  # no 5-bit rtn row
    assert _quality.against_target(rows, "mse") is None


# -- on the real all-MiniLM-L6-v2 (the ``minilm`` fixture: skipped, saying why, without it) --


def test_the_numpy_forward_matches_sentence_transformers(minilm):
    """The measuring instrument itself: its float32 embeddings against sentence-transformers'
    recorded ones (tests/data/minilm_reference.json), at the issue's bar for arrayq's model."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    from arrayq.bench._minilm import NumpyMiniLM
    from tests.test_minilm import EXPECTED, MIN_COSINE, TEXTS, _cosines

    got = NumpyMiniLM.from_dir(minilm).embed(TEXTS).astype(np.float64)
    assert _cosines(got, EXPECTED).min() >= MIN_COSINE


def test_arrayq_encoder_agrees_with_the_numpy_forward(minilm):
    """arrayq's model through nn.quantize and the quantized kernels against the NumPy BERT
    on dequantized weights: the same Linear inputs (float32 through different summation
    orders: within 1e-4 of activations up to ~10; measured 6e-6) and, quantized the same
    way, embeddings within float32 rounding of each other (cosine 0.99999), so the loss
    the harness reports is the format's, whichever encoder it uses."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    from arrayq.bench._encoders import ArrayqEncoder
    from arrayq.bench._minilm import LINEARS, NumpyMiniLM

    texts = ["Good morning!", "The museum is closed on Mondays.", "Why is the sky blue?"]
    ours, plain = ArrayqEncoder(minilm), NumpyMiniLM.from_dir(minilm)
    paths = ("attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj", "intermediate", "output")
    names = {f"layers.{i}.{p}": f"encoder.layer.{i}.{part}.weight" for i in range(6) for p, part in zip(paths, LINEARS)}
    inputs, expected = ours.linear_inputs(texts), plain.linear_inputs(texts)
    assert sorted(inputs) == sorted(names)
    for path, name in names.items():
        np.testing.assert_allclose(inputs[path], expected[name], atol=1e-4)
    # (rtn: the method does not matter here, and GPTQ over 36 matrices twice takes minutes)
    a, b = ours.quantized(4, 64, "rtn", None)(texts), plain.quantized(4, 64, "rtn", None)(texts)
    assert np.sum(a.astype(np.float64) * b, axis=1).min() > 0.99999


def test_measure_asks_the_encoder_for_the_distilled_method():
    """gptq-dwq, gptq-rd, eq-dwq and gptq-round are the encoder's ``distilled(bits, group_size, calibration_texts,
    method)``; an encoder without one is refused by name (the NumPy forward has no gradients
    to distill with)."""
    texts, calibration = ["alpha beta", "gamma", "delta"], ["iota kappa", "mu nu"]
    asked = []

    class WithDistilled(_TinyEncoder):
        def distilled(self, bits, group_size, texts, method):
            asked.append((bits, group_size, list(texts), method))
            return self.quantized(bits, group_size, "rtn", None)

    methods = ["gptq-dwq", "gptq-rd", "eq-dwq", "gptq-round"]
    rows = _quality.measure(WithDistilled(), texts, calibration, configs=[(4, 32)], methods=methods)
    assert asked == [(4, 32, calibration, m) for m in methods]
    assert [r["method"] for r in rows] == ["float32", *methods]
    for method in methods:
        with pytest.raises(ValueError, match=f"cannot measure '{method}'.*no distilled"):
            _quality.measure(_TinyEncoder(), texts, calibration, configs=[(4, 32)], methods=[method])


def test_holdout_split_counts_only_among_the_first_span_texts():
    """Every k-th text of the first ``span`` is held out, in order; texts after the span are
    trained on, so a set extended at its end keeps its held-out texts (hand-listed)."""
    from arrayq.bench._encoders import holdout_split

    texts = [f"t{i}" for i in range(12)]
    assert holdout_split(texts, 5) == ([t for t in texts if t not in ("t4", "t9")], ["t4", "t9"])
    assert holdout_split(texts, 5, 7) == ([t for t in texts if t != "t4"], ["t4"])
    assert holdout_split(texts, 3, 100) == (
        ["t0", "t1", "t3", "t4", "t6", "t7", "t9", "t10"],
        ["t2", "t5", "t8", "t11"],
    )
    assert holdout_split(texts, 0) == (texts, [])  # 0: nothing held out
    assert holdout_split(texts, 5, 0) == (texts, [])
    assert holdout_split([], 5) == ([], [])
    extended = texts + ["u0", "u1", "u2", "u3", "u4"]
    assert holdout_split(extended, 5, len(texts))[1] == holdout_split(texts, 5)[1]


@pytest.mark.parametrize(("every", "span"), [(-1, None), (5, -1)])
def test_negative_holdouts_are_refused(every, span):
    from arrayq.bench._encoders import DistillSettings, holdout_split

    with pytest.raises(ValueError, match="holdout_split needs every >= 0 and span >= 0"):
        holdout_split(["a", "b"], every, span)
    with pytest.raises(ValueError, match="DistillSettings.holdout and holdout_span must be 0 or more"):
        DistillSettings(holdout=every, holdout_span=span)


def test_linear_inputs_are_the_same_recorded_in_chunks(minilm, monkeypatch):
    """Recorded a few texts a forward pass (shorter padding per pass), every Linear's inputs
    are the one-pass recording's: the same real tokens in the same order, within float32
    rounding of different summation lengths (activations up to ~10: 1e-4)."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    from arrayq.bench import _encoders

    texts = ["Good morning!", "The museum is closed on Mondays.", "Why?", "Bake the bread at two hundred degrees."]
    encoder = _encoders.ArrayqEncoder(minilm)
    whole = encoder.linear_inputs(texts)
    monkeypatch.setattr(_encoders, "RECORD_CHUNK", 3)
    chunked = encoder.linear_inputs(texts)
    tokens = int(encoder.tokenizer(texts).attention_mask.sum())
    assert sorted(chunked) == sorted(whole) and len(whole) == 36
    for path, x in whole.items():
        assert x.shape[0] == tokens
        np.testing.assert_allclose(chunked[path], x, atol=1e-4)
