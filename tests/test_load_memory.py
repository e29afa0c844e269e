"""Loading on a copying backend (MLX) holds the weights about once, not twice: MLX reads
safetensors itself, and every NumPy copy drops the memory map's pages after it
(benchmarks/bench_load_memory.py measures the qwen3-0.6b preset)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import arrayq as aq
from arrayq import models, nn
from arrayq.models import safetensors

needs_mlx = pytest.mark.skipif(
    not any(b.name == "mlx" and b.available for b in aq.list_backends()), reason="mlx is not installed"
)

CHILD = r"""
import json, sys
import numpy as np
import arrayq as aq
from arrayq import nn
from arrayq.models import _sources, load
def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
if sys.argv[2] == "copy":
    _sources.SafetensorsSource.native = lambda self, name, backend: None
aq.eval(aq.get_backend("mlx").from_numpy(np.zeros(1)))
floor = hwm()
aq.eval(nn.parameters(load(sys.argv[1], backend="mlx")))
print(json.dumps({"floor": floor, "peak": hwm()}))
"""


@needs_mlx
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("mode", ["native", "copy"])
def test_mlx_load_peaks_near_the_file_size(tmp_path_factory, mode):
    d = tmp_path_factory.getbasetemp() / "memory-ckpt"
    if not d.exists():  # ~40 MiB: 8 layers of hidden 1024, a 16k vocabulary
        models.make_checkpoint(
            d, "tiny", vocab_size=16384, hidden_size=1024, head_dim=128, num_attention_heads=8,
            num_key_value_heads=4, intermediate_size=3072, num_hidden_layers=8, eos_token_id=(1,),
        )  # fmt: skip
    size = sum(f.stat().st_size for f in d.glob("*.safetensors"))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(d), mode], capture_output=True, text=True, timeout=300, check=True
    )
    r = json.loads(proc.stdout.splitlines()[-1])
    extra = r["peak"] - r["floor"]
    assert extra <= 1.2 * size, f"{mode}: peak {extra / 2**20:.0f} MiB over the floor for {size / 2**20:.0f} MiB"


@needs_mlx
def test_mlx_gets_the_same_weights_from_every_path(tmp_path, monkeypatch):
    """The lazy MLX reader, the copy path and NumPy agree bit for bit (sharded, untied,
    dense bfloat16 weights converted to the activations' dtype)."""
    d = models.make_checkpoint(tmp_path / "c", shard_bytes=100_000, tie_word_embeddings=False, quantization=None)
    want = [np.asarray(aq.to_numpy(p)) for p in nn.parameters(models.load(d))]
    for native in (True, False):
        if not native:
            monkeypatch.setattr(models._sources.SafetensorsSource, "native", lambda self, name, backend: None)
        got = [np.asarray(aq.to_numpy(p)) for p in nn.parameters(models.load(d, backend="mlx"))]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and np.array_equal(g, w)


def test_released_pages_read_back_from_the_file(tmp_path):
    a = np.arange(3 * 4096, dtype=np.float32).reshape(3, -1)
    safetensors.save(tmp_path / "t.safetensors", {"a": a, "b": a[:1] + 1})
    f = safetensors.SafetensorsFile(tmp_path / "t.safetensors")
    view = f["a"]
    assert np.array_equal(view, a)
    f.release("a")
    f.release("b")
    assert np.array_equal(view, a) and np.array_equal(f["b"], a[:1] + 1)
