"""One rank of tests/test_distributed_ranks.py's 2-process job (started by
``arrayq.bench._launch.run_local`` over MLX's ring backend on loopback). It runs every case
in one start, so the job pays the processes' start-up once, and writes what it saw to
``OUT/rank<r>.npz``; the test process compares that with its own single-process results.

    python tests/_distributed_worker.py OUT TINY LAYER BAD_HEADS BAD_GROUPS
"""

from __future__ import annotations

import sys

import mlx.core as mx
import numpy as np

from arrayq import distributed, models, nn

PROMPT = [3, 17, 101, 250, 42, 7, 64, 199]
DECODE = 8


def layer_bytes(model: object) -> int:
    return sum(int(a.nbytes) for a in nn.parameters(model.layers))  # type: ignore[attr-defined]


def run_model(path: str, fuse: bool, group: distributed.Group, out: dict, tag: str) -> None:
    before = mx.get_active_memory()
    mx.reset_peak_memory()
    model = models.load(path, backend="mlx", shard=group, fuse=fuse)
    out[f"{tag}_active"] = mx.get_active_memory() - before
    out[f"{tag}_peak"] = mx.get_peak_memory() - before
    out[f"{tag}_layer_bytes"] = layer_bytes(model)
    out[f"{tag}_bytes"] = sum(int(a.nbytes) for a in nn.parameters(model))
    out[f"{tag}_heads"] = model.layers[0].self_attn.n_heads
    out[f"{tag}_logits"] = np.asarray(model(mx.array([PROMPT], dtype=mx.int32)))
    out[f"{tag}_tokens"] = np.array(list(models.generate(model, PROMPT, DECODE)))  # compiled decode (MLX)
    out[f"{tag}_eager_tokens"] = np.array(list(models.generate(model, PROMPT, DECODE, compile=False)))
    out[f"{tag}_bytes_per_token"] = nn.bytes_per_token(model, group)


def main() -> int:
    folder, tiny, layer, bad_heads, bad_groups = sys.argv[1:6]
    mx.set_default_device(mx.cpu)
    group = distributed.init("mlx", "ring")
    out: dict = {"rank": group.rank, "size": group.size}

    # collectives against values computed by hand: rank r holds r + 1
    r = group.rank
    out["all_sum_f32"] = np.asarray(distributed.all_sum(mx.full((2, 3), r + 1.0), group))
    out["all_sum_i32"] = np.asarray(distributed.all_sum(mx.array([r + 1, 10 * (r + 1)], dtype=mx.int32), group))
    out["all_gather"] = np.asarray(distributed.all_gather(mx.array([[r, r + 1]], dtype=mx.int32), group))
    if r == 0:
        mx.eval(distributed.send(mx.array([1.5, -2.0, 4.0]), 1, group))
        out["recv"] = np.asarray(distributed.recv((3,), "float32", 1, group))
    else:
        out["recv"] = np.asarray(distributed.recv((3,), "float32", 0, group))
        mx.eval(distributed.send(out["recv"] * 2, 0, group))
    out["payload_after_collectives"] = group.payload_bytes

    # bad splits: refused on every rank before anything is communicated
    for tag, path in (("bad_heads", bad_heads), ("bad_groups", bad_groups)):
        group.payload_bytes = 0
        try:
            models.load(path, backend="mlx", shard=group)
            out[f"{tag}_error"] = "no error"
        except ValueError as exc:
            out[f"{tag}_error"] = str(exc)
        out[f"{tag}_payload"] = group.payload_bytes
    # ... and the group still works afterwards: every rank got here (none waits in a collective)
    out["after_bad"] = np.asarray(distributed.all_sum(mx.array([1]), group))

    run_model(tiny, True, group, out, "tiny")
    run_model(tiny, False, group, out, "tiny_unfused")
    run_model(layer, True, group, out, "layer")
    np.savez(f"{folder}/rank{group.rank}.npz", **out)
    print(f"rank {group.rank} done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
