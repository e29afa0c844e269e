"""The distillation objective that arrayq/bench/_encoders.py builds from DistillSettings:
which outputs it fits with which loss and weight, and that its sentence output is the
embedding the quality table measures (against tests/test_bert.py's float64 NumPy BERT)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import arrayq as aq
from arrayq import models, nn
from arrayq.bench._encoders import DistillSettings, block_states, objective
from tests import test_bert

# float32 forward of the two-layer random BERT against the float64 reference: a few float32
# ulps of O(1) values (tests/test_bert.py's ATOL); the pooled vector is normalised here.
ATOL = test_bert.ATOL


def test_block_states_alone_without_sentence_terms():
    forward, losses, weights = objective(DistillSettings(), 6)
    assert forward is block_states
    assert (losses, weights) == (["mse"] * 6, [1.0] * 6)


@pytest.mark.parametrize(
    ("embedding", "similarity", "extra"),
    [
        (1.0, 0.0, [("cosine", 6.0)]),
        (0.0, 10.0, [("similarity", 60.0)]),
        (0.5, 10.0, [("cosine", 3.0), ("similarity", 60.0)]),
    ],
)
def test_sentence_terms_are_weighted_against_the_blocks_together(embedding, similarity, extra):
    _, losses, weights = objective(DistillSettings(embedding=embedding, similarity=similarity), 6)
    assert losses == ["mse"] * 6 + [name for name, _ in extra]
    assert weights == [1.0] * 6 + [w for _, w in extra]


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError, match="DistillSettings.embedding must be a finite number, 0 or more"):
        DistillSettings(embedding=bad)
    with pytest.raises(ValueError, match="DistillSettings.similarity must be a finite number, 0 or more"):
        DistillSettings(similarity=bad)


def test_sentence_output_is_the_models_embedding(tmp_path):
    """With both terms, forward gives the two blocks' states (padding zeroed) and the pooled
    embedding twice; normalised, that is the float64 reference's sentence embedding, padding
    left out (the texts have 5 and 3 real tokens)."""
    w = test_bert.weights()
    model = models.load(test_bert.folder(tmp_path / "bert", w), backend="numpy")
    ids = np.array([[1, 7, 9, 4, 2], [1, 5, 2, 0, 0]], np.int32)
    real = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    forward, losses, _ = objective(DistillSettings(embedding=1.0, similarity=1.0), 2)
    h = model.embeddings(aq.asarray(ids), None, "float32")
    outputs = forward(model, h, nn.padding_mask(aq.asarray(real), dtype="float32"), aq.asarray(real[..., None] * 1.0))
    assert len(outputs) == len(losses) == 4
    states, expected = test_bert.reference(w, ids, real)
    np.testing.assert_allclose(aq.to_numpy(outputs[1]), states * real[..., None], atol=ATOL)
    for pooled in (aq.to_numpy(outputs[2]), aq.to_numpy(outputs[3])):
        unit = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
        np.testing.assert_allclose(unit, expected, atol=ATOL)
