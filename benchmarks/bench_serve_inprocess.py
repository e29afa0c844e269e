"""The serving loop against its own decode step, in one process, interleaved: what a
decode step costs inside :class:`arrayq.serving.Serving` (no HTTP) and what the same step
costs alone, on the same batch, so that the machine's load drifts alike for both.

    python benchmarks/bench_serve_inprocess.py [--model DIR|PRESET] [--batch 8]
        [--prompt-tokens 8] [--tokens 32] [--rounds 5]

Each round: (served) ``--batch`` requests submitted at once to one ``Serving`` (greedy,
``--tokens`` new tokens each, the prompt ``bench_serve.py`` sends), its ``stats()`` before
and after: milliseconds a decode step (the step, sampling and the batch cache's
bookkeeping), the steps and the prefill; then (alone) the same prompts prefilled together
into a ``BatchCache`` (:func:`arrayq.serving.prefill`) and ``--tokens`` - 1 compiled
``decode_step`` calls on it, each with its greedy pick read back (as the server samples),
timed one by one. The first round warms up (plans recorded) and is not counted. Prints a
row per round and the median ratio served / alone; then the batch's prompts prefilled
together against one at a time (interleaved medians).

A NumPy-backend benchmark; short runs only on a shared machine (ratios, not levels).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen3-0.6b", help="checkpoint directory or preset (default qwen3-0.6b)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt-tokens", type=int, default=8)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    if not (1 <= args.batch <= 64 and 1 <= args.prompt_tokens <= 512 and 2 <= args.tokens <= 512 and args.rounds >= 1):
        p.error("--batch 1-64, --prompt-tokens 1-512, --tokens 2-512, --rounds >= 1")

    import arrayq as aq
    from arrayq import models
    from arrayq.nn import parameters
    from arrayq.serving import BatchCache, Limits, Serving, decode_step, prefill
    from arrayq.serving._cli import model_path

    model = models.load(model_path(args.model), backend="numpy")
    like = parameters(model)[0]
    prompt = [100 + 37 * i for i in range(args.prompt_tokens)]  # (bench_serve.py's prompt, as ids)
    cache = BatchCache(len(model.layers), args.batch)
    print(f"{args.batch} sequences, prompt {args.prompt_tokens} tokens, {args.tokens} new tokens, NumPy backend")
    columns = ["round", "served ms a step", "of it: sampling, joining", "steps", "prefill ms", "alone ms a step"]
    print("| " + " | ".join([*columns, "served / alone"]) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    with Serving(model, Limits(max_batch=args.batch, prefill_together=True), stop_ids=()) as serving:
        for r in range(args.rounds + 1):
            before = serving.stats()
            for request in [serving.submit(prompt, args.tokens) for _ in range(args.batch)]:
                request.result()
            after = serving.stats()
            d = {k: after[k] - before[k] for k in after}
            served, steps = 1e3 * d["decode_seconds"] / d["decode_steps"], d["decode_steps"]
            parts = f"{1e3 * d['sample_seconds'] / steps:.1f}, {1e3 * d['join_seconds'] / steps:.1f}"
            logits = prefill(model, [prompt] * args.batch, cache, like)
            times = []
            for _ in range(args.tokens - 1):
                tokens = [int(t) for t in aq.to_numpy(aq.argmax(logits, axis=-1))]
                t0 = time.perf_counter()
                logits = decode_step(model, tokens, cache, like, compiled=True)
                aq.to_numpy(aq.argmax(logits, axis=-1))
                times.append(time.perf_counter() - t0)
            while len(cache):
                cache.remove(len(cache) - 1)
            alone = 1e3 * statistics.fmean(times)
            if r == 0:  # (warm-up: plans recorded)
                continue
            ratios.append(served / alone)
            print(
                f"| {r} | {served:.1f} | {parts} | {steps:.0f} | {1e3 * d['prefill_seconds']:.0f} | {alone:.1f} "
                f"| {served / alone:.3f} |",
                flush=True,
            )
    print(f"\nmedian served / alone: {statistics.median(ratios):.3f} (rounds {', '.join(f'{x:.3f}' for x in ratios)})")
    prefill_table(model, like, prompt, args.batch, args.rounds)
    return 0


def prefill_table(model, like, prompt, batch: int, rounds: int) -> None:
    """The batch's prompts prefilled together (:func:`arrayq.serving.prefill`, one forward
    pass) against one at a time (each its own cache, ``model.hidden`` and the logits of its
    last position, then copied into the batch cache: the path before), interleaved; median
    milliseconds of ``rounds`` rounds after a warm-up."""
    import arrayq as aq
    from arrayq.serving import BatchCache, prefill

    cache = BatchCache(len(model.layers), batch)

    def together():
        aq.to_numpy(prefill(model, [prompt] * batch, cache, like))

    def alone():
        for _ in range(batch):
            own = model.make_cache(len(prompt))
            h = model.hidden(aq.asarray([prompt], dtype=aq.int32, like=like), own)
            aq.to_numpy(model.logits(h[:, -1]))
            cache.add(own)

    times: dict = {together: [], alone: []}
    for r in range(rounds + 1):
        for run in (together, alone):
            t0 = time.perf_counter()
            run()
            if r:
                times[run].append(time.perf_counter() - t0)
            while len(cache):
                cache.remove(len(cache) - 1)
    med = {run: 1e3 * statistics.median(t) for run, t in times.items()}
    print(f"\nprefill of {batch} prompts of {len(prompt)} tokens, median of {rounds} interleaved rounds")
    print("| prefill | ms | vs one at a time |\n|---|---:|---:|")
    for run, name in ((alone, "one at a time"), (together, "together (one forward pass)")):
        print(f"| {name} | {med[run]:.1f} | {med[run] / med[alone]:.2f}× |")


if __name__ == "__main__":
    sys.exit(main())
