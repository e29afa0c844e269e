"""arrayq.distributed in one process (a group of one; refusals) and the tensor-parallel
layers' arithmetic, checked rank by rank in this process against the whole layer's float64
product (tests/test_distributed_ranks.py runs them across real processes)."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest

import arrayq as aq
from arrayq import distributed, models, nn
from arrayq.backend import DISTRIBUTED_OPS
from arrayq.distributed import Group

#: float32 products of K <= 256 terms in another order or blocking: a few ulps of the sum
#: of |terms|; 1e-5 of the output's scale is well above that and far below any wrong row.
F32_RTOL = 1e-5


@pytest.fixture
def no_launcher(monkeypatch):
    for key in ("MLX_WORLD_SIZE", "MLX_HOSTFILE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        monkeypatch.delenv(key, raising=False)


def test_numpy_is_a_group_of_one_process(no_launcher):
    group = distributed.init("numpy")
    assert (group.rank, group.size, group.backend) == (0, 1, "numpy")
    x = np.arange(6.0).reshape(2, 3)
    assert distributed.all_sum(x, group) is x and distributed.all_gather(x, group) is x
    with pytest.raises(ValueError, match="none: a group of one process"):
        distributed.send(x, 0, group)
    with pytest.raises(ValueError, match="none: a group of one process"):
        distributed.recv((2, 3), "float32", 1, group)
    assert group.payload_bytes == 0


def test_capabilities_report_the_engine(no_launcher):
    caps = aq.capabilities("numpy")
    for op in DISTRIBUTED_OPS:
        assert caps[op].startswith("gap: NumPy has no distributed engine") and "mlx" in caps[op]
    try:
        mlx_caps = aq.capabilities("mlx")
    except aq.BackendUnavailableError:
        return
    assert all(mlx_caps[op] == "native" for op in DISTRIBUTED_OPS)


def test_numpy_refuses_a_launch_of_several_naming_mlx(monkeypatch):
    monkeypatch.setenv("MLX_WORLD_SIZE", "2")
    with pytest.raises(aq.UnsupportedOperationError, match="launched as one of 2.*mlx backend"):
        distributed.init("numpy")


def test_launched_size_reads_the_launchers_environment(tmp_path):
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([["10.0.0.1:5000"], ["10.0.0.2:5000"], ["10.0.0.3:5000"]]))
    assert distributed.launched_size({}) == 1
    assert distributed.launched_size({"MLX_HOSTFILE": str(hosts)}) == 3
    assert distributed.launched_size({"MLX_WORLD_SIZE": "4", "MLX_HOSTFILE": str(hosts)}) == 4
    assert distributed.launched_size({"OMPI_COMM_WORLD_SIZE": "2"}) == 2
    empty = tmp_path / "empty.json"
    empty.write_text("")  # what mlx.launch writes for one host
    assert distributed.launched_size({"MLX_HOSTFILE": str(empty)}) == 1
    assert distributed.launched_size({"MLX_HOSTFILE": str(tmp_path / "missing")}) == 1
    (tmp_path / "bad.json").write_text("{not json")
    assert distributed.launched_size({"MLX_HOSTFILE": str(tmp_path / "bad.json")}) == 1


def test_launched_engine_follows_the_launcher():
    assert distributed.launched_engine({}) == "any"
    assert distributed.launched_engine({"MLX_HOSTFILE": "/tmp/h.json", "MLX_RANK": "0"}) == "ring"
    nccl = {"NCCL_HOST_IP": "10.0.0.1", "NCCL_PORT": "12345", "MLX_WORLD_SIZE": "2", "MLX_RANK": "1"}
    assert distributed.launched_engine(nccl) == "nccl"
    assert distributed.launched_engine({"OMPI_COMM_WORLD_SIZE": "4"}) == "mpi"


def test_bad_arguments(no_launcher):
    with pytest.raises(ValueError, match="engine must be one of"):
        distributed.init("numpy", engine="tcp")
    with pytest.raises(TypeError, match="arrayq.distributed.Group"):
        distributed.all_sum(np.ones(2), "world")
    two = Group(0, 2, "numpy")
    with pytest.raises(ValueError, match=r"another rank of the group \(\[1\]\), got 0"):
        distributed.send(np.ones(2), 0, two)
    with pytest.raises(ValueError, match="got True"):
        distributed.recv((2,), "float32", True, two)
    with pytest.raises(TypeError, match="takes an array"):
        distributed.all_sum(1.0, two)
    with pytest.raises(TypeError, match="recognises as an array"):
        distributed.all_gather([1.0, 2.0], two)
    with pytest.raises(ValueError, match="sizes >= 0"):
        distributed.recv((2, -1), "float32", 1, two)
    with pytest.raises(ValueError, match="at least one axis"):
        distributed.all_gather(np.float32(1.0).reshape(()), two)
    # a group of several without an engine behind it (made by hand) cannot communicate
    with pytest.raises(aq.UnsupportedOperationError, match="has no all_sum"):
        distributed.all_sum(np.ones(2), two)


def test_eval_keeps_no_array_alive():
    """arrayq.eval once held its arrays in a reference cycle until the next gc: a model
    fused on MLX after loading kept its unfused weights that long."""
    x = np.ones(4)
    ref = weakref.ref(x)
    gc.disable()
    try:
        aq.eval([x])
        del x
        assert ref() is None
    finally:
        gc.enable()


# ---------------------------------------------------------------------- layers, rank by rank


def quantized_layer(n: int, k: int, bias: bool, seed: int = 0) -> nn.QuantizedLinear:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    return nn.QuantizedLinear(aq.quantize(w, group_size=64, bits=4), b)


def whole(layer: nn.QuantizedLinear, x: np.ndarray) -> np.ndarray:
    """The whole layer's output in float64, from the dequantized weight (independent of
    the sharded code and of quantized_matmul)."""
    w = np.asarray(aq.dequantize(layer.weight), np.float64)
    y = x.astype(np.float64) @ w.T
    return y if layer.bias is None else y + layer.bias


@pytest.mark.parametrize("bias", [False, True])
def test_column_sharded_ranks_hold_consecutive_output_features(bias):
    layer = quantized_layer(96, 128, bias)
    x = np.random.default_rng(1).standard_normal((3, 128)).astype(np.float32)
    want = whole(layer, x)
    outs = [nn.column_sharded(layer, Group(r, 2, "numpy"))(x) for r in range(2)]
    assert [o.shape for o in outs] == [(3, 48), (3, 48)]
    np.testing.assert_allclose(np.concatenate(outs, axis=-1), want, rtol=0, atol=F32_RTOL * np.abs(want).max())


def test_column_sharded_blocks_give_each_rank_its_share_of_each():
    """Fused q/k/v: rank r gets rows r of each block, not a contiguous slice of the stack."""
    layer = quantized_layer(40 + 24 + 24, 128, True)
    x = np.random.default_rng(2).standard_normal((2, 128)).astype(np.float32)
    want = whole(layer, x)
    q, k, v = want[:, :40], want[:, 40:64], want[:, 64:]
    for r in range(2):
        got = nn.column_sharded(layer, Group(r, 2, "numpy"), blocks=(40, 24, 24))(x)
        half = np.concatenate([q[:, r * 20 : r * 20 + 20], k[:, r * 12 : r * 12 + 12], v[:, r * 12 : r * 12 + 12]], -1)
        np.testing.assert_allclose(got, half, rtol=0, atol=F32_RTOL * np.abs(want).max())


@pytest.mark.parametrize("bias", [False, True])
def test_row_sharded_partial_products_add_up_to_the_layer(bias):
    layer = quantized_layer(32, 256, bias)
    x = np.random.default_rng(3).standard_normal((2, 5, 256)).astype(np.float32)
    want = whole(layer, x)
    partial = []
    for r in range(2):
        sharded = nn.row_sharded(layer, Group(r, 2, "numpy"))
        assert isinstance(sharded, nn.RowShardedLinear) and sharded.in_features == 256
        assert sharded.inner.bias is None  # the bias is added once, after the sum
        partial.append(np.asarray(sharded.inner(x[..., r * 128 : (r + 1) * 128]), np.float64))
    total = partial[0] + partial[1] + (0 if layer.bias is None else layer.bias)
    np.testing.assert_allclose(total, want, rtol=0, atol=F32_RTOL * np.abs(want).max())


def test_dense_layers_shard_too():
    rng = np.random.default_rng(4)
    layer = nn.Linear(rng.standard_normal((8, 6)), rng.standard_normal(8))
    x = rng.standard_normal((2, 6))
    rows = [nn.column_sharded(layer, Group(r, 2, "numpy"))(x) for r in range(2)]
    np.testing.assert_allclose(np.concatenate(rows, -1), x @ layer.weight.T + layer.bias, rtol=1e-12)
    parts = [nn.row_sharded(layer, Group(r, 2, "numpy")).inner(x[:, r * 3 : r * 3 + 3]) for r in range(2)]
    np.testing.assert_allclose(parts[0] + parts[1] + layer.bias, x @ layer.weight.T + layer.bias, rtol=1e-12)


def test_bad_splits_name_the_sizes():
    layer = quantized_layer(96, 128, False)
    with pytest.raises(ValueError, match=r"out_features = 96 evenly over 5 processes"):
        nn.column_sharded(layer, Group(0, 5, "numpy"))
    with pytest.raises(ValueError, match=r"in_features = 128 over 4 processes: each would get 32 .* group of 64"):
        nn.row_sharded(layer, Group(0, 4, "numpy"))
    with pytest.raises(ValueError, match=r"blocks \[40, 40\] add up to 80, but the layer has 96"):
        nn.column_sharded(layer, Group(0, 2, "numpy"), blocks=(40, 40))
    with pytest.raises(TypeError, match="Linear or QuantizedLinear"):
        nn.row_sharded(nn.RMSNorm(np.ones(4)), Group(0, 2, "numpy"))
    with pytest.raises(TypeError, match="a list of layers"):
        nn.shard(layer, Group(0, 2, "numpy"))
    with pytest.raises(TypeError, match="arrayq.distributed.Group"):
        nn.column_sharded(layer, 2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny", "tiny", seed=1)


def test_sharding_fused_and_unfused_models_gives_the_same_weights(tiny):
    """Sharding the fused model (q/k/v stacked) must give each rank the rows of sharding
    q, k and v apart and then stacking them."""
    unfused = models.load(tiny, backend="numpy", fuse=False)
    fused = unfused.fused()
    for r in range(2):
        g = Group(r, 2, "numpy")
        a = nn.shard(fused, g).layers[0]
        b = nn.shard(unfused, g).fused().layers[0]
        for x, y in ((a.self_attn.qkv_proj, b.self_attn.qkv_proj), (a.mlp.gate_up_proj, b.mlp.gate_up_proj)):
            for name in ("packed", "scales", "biases"):
                np.testing.assert_array_equal(getattr(x.weight, name), getattr(y.weight, name))
        assert a.self_attn.n_heads == 2 and a.self_attn.n_kv_heads == 1


def test_shard_on_a_group_of_one_is_the_model(tiny, no_launcher):
    model = models.load(tiny, backend="numpy")
    assert nn.shard(model, distributed.init("numpy")) is model
    again = models.load(tiny, backend="numpy", shard=distributed.init("numpy"))
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(again(ids), model(ids))


def test_sharded_models_move_between_backends_keeping_their_group(tiny):
    group = Group(1, 2, "numpy")
    model = nn.shard(models.load(tiny, backend="numpy", fuse=False), group)
    moved = nn.to_backend(model, "numpy")
    assert moved.layers[0].self_attn.o_proj.group is group
    with pytest.raises(TypeError):
        aq.to_backend(model, "numpy")  # arrayq.to_backend does not know groups: nn.to_backend does


def test_vocab_sharding_keeps_a_vocabulary_that_does_not_divide_whole(tiny):
    model = models.load(tiny, backend="numpy", fuse=False)  # vocabulary 512
    assert nn.shard_vocab(model, Group(0, 3, "numpy")) == {}
    halves = [nn.shard_vocab(model, Group(r, 2, "numpy"))["embed_tokens"] for r in range(2)]
    assert [(h.start, h.vocab_size) for h in halves] == [(0, 512), (256, 512)]
    whole = np.asarray(aq.dequantize(model.embed_tokens.weight))
    for h in halves:  # each rank's rows are the table's rows start .. start + 256
        np.testing.assert_array_equal(np.asarray(aq.dequantize(h.inner.weight)), whole[h.start : h.start + 256])


def test_the_benchmark_table_marks_tokens_that_differ():
    from arrayq.bench._distributed import format_table

    row = {
        "processes": 1,
        "prefill_tps": 10.0,
        "decode_tps": 5.0,
        "bytes_per_token": 0,
        "weight_bytes": [2**20],
        "peak_rss": [3 * 2**20],
        "peak_device": [2**21],
        "tokens": [1, 2, 3],
    }
    other = {**row, "processes": 2, "bytes_per_token": 4096, "weight_bytes": [2**19] * 2, "tokens": [1, 2, 4]}
    lines = format_table([row, other]).splitlines()
    assert lines[2] == "| 1 | 10.0 | 5.0 | 0 | 1 | 3 | 2 | yes |"
    assert lines[3].startswith("| 2 | 10.0 | 5.0 | 4,096 | 0 / 0 |") and lines[3].endswith("| NO |")
