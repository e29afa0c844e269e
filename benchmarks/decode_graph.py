"""Count the nodes of one decoded token's MLX graph, by primitive: arrayq's compiled step,
arrayq's eager step, and mlx-lm's (when installed) on the same checkpoint. A node is work
MLX evaluates (most launch a kernel on a GPU), so the counts say where a launch-bound decode
spends its time.

    python benchmarks/decode_graph.py --model DIR [--prompt-tokens 128] [--dtype bfloat16]

Counted with ``mx.export_to_dot`` on the step's outputs (the next token and the caches),
after a prompt of ``--prompt-tokens`` ids. One layer's nodes ("per layer" rows) are the
compiled step's count less the count of the same model without its last layer. On a CPU,
MLX's fused ops (rms_norm, rope, attention) appear as the ops they fall back to, and
arrayq's CUDA kernels (attention, qkv_heads) do not run, so count on the device you care
about. ``benchmarks/gpu_qkv_check.py`` uses :func:`arrayq_counts` and :func:`mlx_lm_counts`.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.util
import io
import re
from pathlib import Path
from typing import Any

import arrayq as aq
from arrayq import models, nn
from arrayq.models.generate import _compiled_step


def count(mx: Any, outputs: list) -> collections.Counter:
    f = io.StringIO()
    mx.export_to_dot(f, *outputs)
    return collections.Counter(re.findall(r'label ="([A-Za-z_]+)', f.getvalue()))


def _compiled_count(mx: Any, model: Any, prompt: list[int]) -> collections.Counter:
    """Nodes of ``model``'s compiled decode step after ``prompt``."""
    capacity = len(prompt) + 64
    ids = aq.asarray([prompt], dtype=aq.int32, like=nn.parameters(model)[0])
    cache = model.make_cache(capacity)
    model.hidden(ids, cache)
    aq.eval(cache)
    fixed = [nn.FixedKVCache.from_cache(c, capacity, capacity) for c in cache]
    tables = tuple(aq.asarray(t, like=ids) for t in model.rope_tables(len(prompt), 1))
    compiled, weights = _compiled_step(model, 0.0, 0, 1.0)
    out, fixed = compiled(weights, aq.asarray([[5]], dtype=aq.int32, like=ids), fixed, tables, None)
    return count(mx, [out] + [c.keys for c in fixed] + [c.values for c in fixed])


def arrayq_counts(model: Any, prompt: list[int]) -> dict[str, collections.Counter]:
    """arrayq's nodes of one decoded token: "arrayq compiled", "arrayq eager" and "arrayq
    per layer" (the compiled step less the compiled step without the last layer)."""
    import mlx.core as mx

    rows = {"arrayq compiled": _compiled_count(mx, model, prompt)}
    shorter = dataclasses.replace(model, layers=model.layers[:-1])
    rows["arrayq per layer"] = rows["arrayq compiled"] - _compiled_count(mx, shorter, prompt)
    ids = aq.asarray([prompt], dtype=aq.int32, like=nn.parameters(model)[0])
    cache = model.make_cache(len(prompt) + 64)
    model.hidden(ids, cache)
    aq.eval(cache)
    h = model.hidden(aq.asarray([[5]], dtype=aq.int32, like=ids), cache, index_mode="clip")
    out = aq.argmax(aq.reshape(model.logits(h[:, -1:]), (-1,)))
    rows["arrayq eager"] = count(mx, [out] + [c.keys for c in cache] + [c.values for c in cache])
    return rows


def mlx_lm_counts(model_dir: str | Path, prompt: list[int]) -> dict[str, collections.Counter]:
    """mlx-lm's nodes of one decoded token on the checkpoint ("mlx-lm"), and one layer's
    ("mlx-lm per layer", as for arrayq); empty where mlx-lm is not installed."""
    if importlib.util.find_spec("mlx_lm") is None:
        return {}
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.utils import load_model

    lm, _ = load_model(Path(model_dir))

    def step() -> collections.Counter:
        lc = make_prompt_cache(lm)
        mx.eval(lm(mx.array([prompt]), cache=lc), [c.state for c in lc])
        logits = lm(mx.array([[5]]), cache=lc)
        return count(mx, [mx.argmax(logits[:, -1, :], axis=-1)] + [c.keys for c in lc] + [c.values for c in lc])

    rows = {"mlx-lm": step()}
    layers = lm.model.layers
    lm.model.layers = layers[:-1]
    try:
        rows["mlx-lm per layer"] = rows["mlx-lm"] - step()
    finally:
        lm.model.layers = layers
    return rows


def show(rows: dict[str, collections.Counter], top: int = 12) -> None:
    for name, c in rows.items():
        ops = ", ".join(f"{op} {n}" for op, n in c.most_common(top))
        print(f"{name:18} {sum(c.values()):5} nodes: {ops}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args(argv)
    prompt = list(range(1, args.prompt_tokens + 1))
    model = models.load(args.model, backend="mlx", dtype=args.dtype)
    show({**arrayq_counts(model, prompt), **mlx_lm_counts(args.model, prompt)}, top=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
