"""The forward pass of all-MiniLM-L6-v2 (the real weights) on arrayq's backends: time per
batch, the share of it spent in ``erf`` (the exact GELU), and the embeddings' cosines to
sentence-transformers' own (tests/data/minilm_reference.json).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_minilm.py \\
        [--model DIR] [--backends numpy,mlx] [--texts 8] [--repeat 5]

``--model``: the unpacked sentence-transformers folder (default: where the tests' fixture
keeps it, ``$ARRAYQ_CACHE/all-MiniLM-L6-v2``; run ``pytest tests/test_minilm.py`` once to
fetch it). The batch is the first ``--texts`` texts of the reference file, tokenized as
sentence-transformers does (padded to the longest). After a warm-up, ``--repeat`` timed
forwards give the median; one more runs under cProfile, whose functions named ``erf`` give
erf's time in the forward pass ("erf prof"; only meaningful on an eager backend: on MLX
the profile sees graph building, the work happens at evaluation). "erf alone": ``aq.erf``
on an array of the GELU's shape (batch, length, intermediate_size), evaluated, times the
number of layers (median of the repeats), on any backend.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "minilm_reference.json"


def main(argv: list[str] | None = None) -> int:
    import arrayq as aq
    from arrayq import models
    from arrayq.models._host import cache_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="the all-MiniLM-L6-v2 folder (default: the tests' cached copy)")
    p.add_argument("--backends", default="numpy,mlx")
    p.add_argument("--texts", type=int, default=8, help="how many of the reference texts (at most 12)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    path = Path(args.model) if args.model else cache_dir() / "all-MiniLM-L6-v2"
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    texts = reference["texts"][: args.texts]
    want = np.array(reference["embeddings"][: args.texts], dtype=np.float64)
    batch = models.load_tokenizer(path)(texts)
    print(f"all-MiniLM-L6-v2, {len(texts)} texts, batch {batch.ids.shape} (padded)")
    print(
        f"{'backend':<8} {'forward ms':>11} {'erf prof ms':>12} {'erf alone ms':>13} {'share':>6} "
        f"{'min cos':>18} {'max cos':>18}"
    )
    for name in args.backends.split(","):
        model = models.load(path, backend=name)
        inputs = aq.to_backend((batch.ids, batch.attention_mask), name)

        def forward() -> np.ndarray:
            return np.asarray(aq.to_numpy(model(*inputs)), dtype=np.float64)  # noqa: B023

        got = forward()  # warm-up
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            forward()
            times.append(time.perf_counter() - start)
        profile = cProfile.Profile()
        profile.runcall(forward)
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        erf_prof = sum(row[3] for (_, _, func), row in stats.items() if func == "erf")  # cumulative seconds
        shape = (*batch.ids.shape, model.config.intermediate_size)
        x = aq.to_backend(np.random.default_rng(0).standard_normal(shape).astype(np.float32), name)
        alone = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            aq.eval(aq.erf(x))
            alone.append(time.perf_counter() - start)
        forward_s, erf_s = statistics.median(times), statistics.median(alone) * model.config.num_hidden_layers
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        print(
            f"{name:<8} {forward_s * 1000:>11.1f} {erf_prof * 1000:>12.1f} {erf_s * 1000:>13.1f} "
            f"{erf_s / forward_s:>6.0%} {cos.min():>18.15f} {cos.max():>18.15f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
