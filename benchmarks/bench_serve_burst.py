"""A burst of requests against ``Limits.burst_wait``, in one process, interleaved: two
``Serving`` objects on one model, one waiting for a burst's requests (``--burst-wait-ms``),
one starting at the first (0), given the same bursts in turn.

    python benchmarks/bench_serve_burst.py [--model DIR|PRESET] [--batch 8] [--spread-ms 3]
        [--prompt-tokens 8] [--tokens 16] [--rounds 6] [--burst-wait-ms 5]

A burst is what ``bench_serve.py``'s clients send when their requests end together: one
request, then the other ``--batch`` - 1 ``--spread-ms`` later, all at once (the arrivals
measured on loopback: docs/serving.md, session 13). Each round sends one burst to each
server (greedy, ``--tokens`` new tokens each, int8 activations where NumPy's native kernels
run: ``activations="auto"``) and waits for every result; the first round of each warms up
(plans recorded) and is not counted. Prints each round's seconds, prefill passes and
decode steps, then the median ratio of the two servers' seconds.

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
    p.add_argument("--batch", type=int, default=8, help="requests a burst (default 8)")
    p.add_argument("--spread-ms", type=float, default=3.0, help="the first request's lead (default 3 ms)")
    p.add_argument("--prompt-tokens", type=int, default=8)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--burst-wait-ms", type=float, default=5.0, help="the waiting server's burst_wait (default 5)")
    args = p.parse_args()
    if not (2 <= args.batch <= 64 and 0 <= args.spread_ms <= 1000 and args.rounds >= 1 and 2 <= args.tokens <= 512):
        p.error("--batch 2-64, --spread-ms 0-1000, --rounds >= 1, --tokens 2-512")

    from arrayq import models
    from arrayq.serving import Limits, Serving
    from arrayq.serving._cli import model_path

    model = models.load(model_path(args.model), backend="numpy")
    prompt = [100 + 37 * i for i in range(args.prompt_tokens)]
    waits = (args.burst_wait_ms / 1000, 0.0)
    servers = [Serving(model, Limits(max_batch=args.batch, burst_wait=w), activations="auto") for w in waits]
    print(f"{args.batch} requests a burst, the first {args.spread_ms} ms ahead; {args.tokens} tokens each")
    print(f"activations {servers[0].activations}, prompts prefilled together: {servers[0].prefill_together}")
    print("| round | burst_wait ms | seconds | prefill passes | decode steps |\n|---:|---:|---:|---:|---:|")
    seconds: list[list[float]] = [[], []]
    try:
        for rnd in range(args.rounds + 1):
            for i, serving in enumerate(servers):
                before = serving.stats()
                t0 = time.perf_counter()
                first = [serving.submit(prompt, args.tokens, stop_ids=())]
                time.sleep(args.spread_ms / 1000)
                rest = [serving.submit(prompt, args.tokens, stop_ids=()) for _ in range(args.batch - 1)]
                for r in first + rest:
                    r.result(600)
                took = time.perf_counter() - t0
                after = serving.stats()
                passes = after["prefill_passes"] - before["prefill_passes"]
                steps = after["decode_steps"] - before["decode_steps"]
                if rnd:
                    seconds[i].append(took)
                label = f"{rnd}" if rnd else "warm-up"
                print(f"| {label} | {1000 * waits[i]:g} | {took:.3f} | {passes} | {steps} |", flush=True)
    finally:
        for serving in servers:
            serving.close()
    ratios = [b / a for a, b in zip(*seconds)]
    print(
        f"\nmedian seconds a burst: waiting {statistics.median(seconds[0]):.3f}, "
        f"not {statistics.median(seconds[1]):.3f}; "
        f"median of the rounds' ratios (not / waiting): {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
