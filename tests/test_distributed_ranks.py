"""arrayq.distributed and the tensor-parallel Qwen3 across 2 real processes: MLX's ring
backend over loopback TCP, the ranks started by ``arrayq.bench._launch.run_local`` (free
ports, a time limit, every process reaped). One job runs every case
(tests/_distributed_worker.py); each test reads its part and compares it with what this
process computes without any distribution (the model loaded whole, in one process)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

from arrayq import distributed, models, nn  # noqa: E402
from arrayq.bench._launch import run_local  # noqa: E402

WORKER = Path(__file__).with_name("_distributed_worker.py")
sys.path.insert(0, str(WORKER.parent))
from _distributed_worker import DECODE, PROMPT, layer_bytes  # noqa: E402

#: float32 activations. The sharded model adds the same products in another order (each
#: rank sums its half of a row-sharded layer's K, then all_sum adds the halves), so logits
#: differ by rounding only: a few float32 ulps per matmul, carried through the layers.
#: Measured ~1e-6 of the largest logit; bound 1e-4 of it.
LOGIT_RTOL = 1e-4
#: The job's time limit (it takes ~10-20 s on 2 busy cores).
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranks")
    paths = {
        "tiny": models.make_checkpoint(tmp / "tiny", "tiny", seed=1),
        # one layer of Qwen3-0.6B's real sizes (hidden 1024, 16/8 heads, MLP 3072), a small
        # vocabulary and an output head of its own (split by vocabulary too)
        "layer": models.make_checkpoint(
            tmp / "layer",
            "qwen3-0.6b",
            num_hidden_layers=1,
            vocab_size=4096,
            bos_token_id=None,
            eos_token_id=(4095,),
            tie_word_embeddings=False,
        ),
        # 4 query heads, 1 key/value head: the kv heads do not split over 2
        "bad_heads": models.make_checkpoint(tmp / "bad_heads", "tiny", num_key_value_heads=1),
        # MLP 320 = 5 groups of 64: 160 features a rank would cut a group of down_proj's input
        "bad_groups": models.make_checkpoint(tmp / "bad_groups", "tiny", intermediate_size=320),
    }
    out = tmp / "out"
    out.mkdir()
    argv = [
        sys.executable,
        str(WORKER),
        str(out),
        *(str(paths[k]) for k in ("tiny", "layer", "bad_heads", "bad_groups")),
    ]
    start = time.monotonic()
    results = run_local(2, argv, timeout=TIMEOUT_S)
    seconds = time.monotonic() - start
    for r in results:
        assert r.returncode == 0, f"rank {r.rank} exit {r.returncode} after {seconds:.0f} s:\n{r.stderr[-3000:]}"
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    return paths, ranks


def single(path: Path) -> tuple[np.ndarray, list[int], object]:
    """Logits of PROMPT and the greedy tokens of the whole model in this one process."""
    model = models.load(path, backend="mlx")
    logits = np.asarray(model(mx.array([PROMPT], dtype=mx.int32)))
    return logits, list(models.generate(model, PROMPT, DECODE)), model


def test_collectives_give_the_hand_computed_values(job):
    _, ranks = job
    for r, got in enumerate(ranks):
        assert int(got["rank"]) == r and int(got["size"]) == 2
        np.testing.assert_array_equal(got["all_sum_f32"], np.full((2, 3), 1.0 + 2.0, np.float32))
        np.testing.assert_array_equal(got["all_sum_i32"], [3, 30])
        np.testing.assert_array_equal(got["all_gather"], [[0, 1], [1, 2]])
    np.testing.assert_array_equal(ranks[1]["recv"], [1.5, -2.0, 4.0])  # what rank 0 sent
    np.testing.assert_array_equal(ranks[0]["recv"], [3.0, -4.0, 8.0])  # rank 1 sent it back doubled
    # payloads counted on each rank: all_sum 24 + 8 bytes, all_gather 8, and what it sent (12)
    assert [int(g["payload_after_collectives"]) for g in ranks] == [24 + 8 + 8 + 12] * 2


@pytest.mark.parametrize("tag", ["tiny", "tiny_unfused", "layer"])
def test_sharded_qwen3_matches_one_process(job, tag):
    paths, ranks = job
    logits, tokens, model = single(paths["layer" if tag == "layer" else "tiny"])
    heads = model.layers[0].self_attn.n_heads
    for got in ranks:
        assert int(got[f"{tag}_heads"]) == heads // 2  # each rank computes half of the heads
        scale = float(np.abs(logits).max())
        np.testing.assert_allclose(got[f"{tag}_logits"], logits, rtol=0, atol=LOGIT_RTOL * scale)
        assert got[f"{tag}_tokens"].tolist() == tokens
        assert got[f"{tag}_eager_tokens"].tolist() == tokens  # decoded without arrayq.compile too
    assert len(set(tokens)) > 1, "a prompt whose greedy continuation varies tests more"


@pytest.mark.parametrize("tag", ["tiny", "layer"])
def test_each_rank_holds_half_of_the_weights(job, tag):
    paths, ranks = job
    whole = models.load(paths[tag], backend="mlx")
    norms = [whole.norm] + [
        n
        for layer in whole.layers
        for n in (layer.input_layernorm, layer.post_attention_layernorm, layer.self_attn.q_norm, layer.self_attn.k_norm)
    ]
    norm_bytes = sum(int(a.nbytes) for a in nn.parameters(norms))
    layer_norm_bytes = norm_bytes - int(whole.norm.weight.nbytes)
    everything = sum(int(a.nbytes) for a in nn.parameters(whole))
    share = (everything - norm_bytes) // 2 + norm_bytes  # the matrices split in two, the norms whole
    for got in ranks:
        assert int(got[f"{tag}_layer_bytes"]) == (layer_bytes(whole) - layer_norm_bytes) // 2 + layer_norm_bytes
        assert int(got[f"{tag}_bytes"]) == share
        # what MLX allocated while loading: at the end, this rank's share and no more than 5%
        # besides (no whole copy of any layer was kept); at its peak, at most one layer's
        # share more (the loader copies and fuses one layer at a time)
        assert int(got[f"{tag}_active"]) <= share * 1.05
        one_layer = (layer_bytes(whole) - layer_norm_bytes) // 2 // len(whole.layers)
        assert int(got[f"{tag}_peak"]) <= share * 1.05 + one_layer


def test_bytes_per_token_are_the_collectives_payloads(job):
    _, ranks = job
    # tiny: 2 layers x 2 all_sums of 128 float32 values, the embedding lookup's all_sum of
    # 128 bfloat16 values (the table's dtype), the all_gather of 512/2 float32 logits
    want = 2 * 2 * 128 * 4 + 128 * 2 + 256 * 4
    assert [int(g["tiny_bytes_per_token"]) for g in ranks] == [want, want]


def test_bad_splits_raise_on_every_rank_before_any_communication(job):
    _, ranks = job
    for got in ranks:
        heads = str(got["bad_heads_error"])
        assert "num_key_value_heads = 1" in heads and "2 processes" in heads, heads
        groups = str(got["bad_groups_error"])
        assert "in_features = 320" in groups and "160" in groups and "group of 64" in groups, groups
        assert int(got["bad_heads_payload"]) == 0 and int(got["bad_groups_payload"]) == 0
        assert got["after_bad"].tolist() == [2]  # both ranks went on to the next collective


def test_a_failing_rank_does_not_hang_the_job(tmp_path):
    """Rank 1 dies before the collective rank 0 waits in: the launcher kills rank 0 after
    the grace period instead of waiting for the time limit, and reaps both."""
    script = tmp_path / "fail.py"
    script.write_text(
        "import os, sys\nimport mlx.core as mx\nfrom arrayq import distributed\n"
        "g = distributed.init('mlx', 'ring')\n"
        "if g.rank == 1:\n    sys.exit(3)\n"
        "mx.eval(distributed.all_sum(mx.array([1.0]), g))\n"
    )
    start = time.monotonic()
    results = run_local(2, [sys.executable, str(script)], timeout=60, grace=2)
    assert time.monotonic() - start < 30
    assert results[1].returncode == 3
    assert results[0].returncode != 0  # killed (None) or failed: it cannot have summed with a dead peer


def test_numpy_refuses_a_launch_of_several_processes(tmp_path):
    script = tmp_path / "np.py"
    script.write_text("from arrayq import distributed\ndistributed.init('numpy')\n")
    results = run_local(2, [sys.executable, str(script)], timeout=60)
    for r in results:
        assert r.returncode == 1
        assert "has no distributed engine" in r.stderr and "mlx backend" in r.stderr, r.stderr


def test_groups_of_one_need_no_launcher():
    group = distributed.init("mlx")
    assert (group.rank, group.size) == (0, 1)


def test_arrayq_generate_under_a_launcher_shards_and_rank_0_prints(job):
    paths, _ = job
    _, tokens, _ = single(paths["tiny"])
    ids = ",".join(map(str, PROMPT))
    argv = [sys.executable, "-m", "arrayq.cli", "generate", "--model", str(paths["tiny"]), "--backend", "mlx"]
    results = run_local(2, [*argv, "--prompt-ids", ids, "--max-tokens", str(DECODE)], timeout=TIMEOUT_S)
    assert [r.returncode for r in results] == [0, 0], results[0].stderr[-2000:] + results[1].stderr[-2000:]
    assert [int(t) for t in results[0].stdout.split()] == tokens
    assert results[1].stdout == "" and results[1].stderr == ""  # only rank 0 prints
    assert "sharded over 2 processes" in results[0].stderr and "per rank" in results[0].stderr
    # on NumPy: the one-line error naming the MLX backend, exit status 2, on every rank
    numpy_argv = [*argv[:-1], "numpy", "--prompt-ids", ids, "--max-tokens", "2"]
    for r in run_local(2, numpy_argv, timeout=TIMEOUT_S):
        assert r.returncode == 2 and "arrayq: error: backend 'numpy' has no distributed engine" in r.stderr
