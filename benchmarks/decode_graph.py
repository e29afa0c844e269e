"""Count the nodes of one decoded token's MLX graph, by primitive: arrayq's compiled step,
arrayq's eager step, and mlx-lm's (when installed) on the same checkpoint. A node is work
MLX evaluates (most launch a kernel on a GPU), so the counts say where a launch-bound decode
spends its time.

    python benchmarks/decode_graph.py --model DIR [--prompt-tokens 128] [--dtype bfloat16]

Counted with ``mx.export_to_dot`` on the step's outputs (the next token and the caches),
after a prompt of ``--prompt-tokens`` ids. On a CPU, MLX's fused ops (rms_norm, rope,
attention) appear as the ops they fall back to, so count on the device you care about.
"""

from __future__ import annotations

import argparse
import collections
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args(argv)
    import mlx.core as mx

    prompt = list(range(1, args.prompt_tokens + 1))
    capacity = args.prompt_tokens + 64
    model = models.load(args.model, backend="mlx", dtype=args.dtype)
    ids = aq.asarray([prompt], dtype=aq.int32, like=nn.parameters(model)[0])
    token = aq.asarray([[5]], dtype=aq.int32, like=ids)
    rows = {}
    cache = model.make_cache(capacity)
    model.hidden(ids, cache)
    aq.eval(cache)
    fixed = [nn.FixedKVCache.from_cache(c, capacity, capacity) for c in cache]
    tables = tuple(aq.asarray(t, like=ids) for t in model.rope_tables(len(prompt), 1))
    compiled, weights = _compiled_step(model, 0.0, 0, 1.0)
    out, fixed = compiled(weights, token, fixed, tables, None)
    rows["arrayq compiled"] = count(mx, [out] + [c.keys for c in fixed] + [c.values for c in fixed])
    h = model.hidden(token, cache, index_mode="clip")
    out = aq.argmax(aq.reshape(model.logits(h[:, -1:]), (-1,)))
    rows["arrayq eager"] = count(mx, [out] + [c.keys for c in cache] + [c.values for c in cache])
    if importlib.util.find_spec("mlx_lm") is not None:
        from mlx_lm.models.cache import make_prompt_cache
        from mlx_lm.utils import load_model

        lm, _ = load_model(Path(args.model))
        lc = make_prompt_cache(lm)
        mx.eval(lm(mx.array([prompt]), cache=lc), [c.state for c in lc])
        logits = lm(mx.array([[5]]), cache=lc)
        outputs = [mx.argmax(logits[:, -1, :], axis=-1)] + [c.keys for c in lc] + [c.values for c in lc]
        rows["mlx-lm"] = count(mx, outputs)
    for name, c in rows.items():
        top = ", ".join(f"{op} {n}" for op, n in c.most_common(12))
        print(f"{name:16} {sum(c.values()):5} nodes: {top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
