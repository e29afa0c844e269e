"""Where a compiled decode step's time goes, step by step, on the NumPy backend.

    ARRAYQ_NATIVE=avx2 python benchmarks/profile_plan_steps.py --model DIR [--activations int8]

The model decodes through ``arrayq.compile`` (a recorded plan) for a warm-up; the decode
step's plan (the one with the most steps) and its last inputs are then replayed on their
own, ``--repeat`` times per measurement, medians:

* **plan**: the replay as it runs in ``generate`` (one generated Python function);
* **steps**: the same steps called one by one from a loop, each timed with
  ``perf_counter_ns`` (the loop's and timer's own cost, measured on a step that does
  nothing, subtracted per step), summed by the step's function (``quantized_matmul``,
  ``add_rms_norm``, a ufunc, ``reshape``, ...);
* **in C**: each C function of the NumPy backend (``_kernels.*``) timed where the steps
  call it (bound when the plan is recorded, so wrapped before the warm-up), each step's
  median: a step's time minus its kernels' time is the Python around the kernel (the
  form, its checks, ``np.empty``; the timing wrapper's own ~0.3 us a kernel call too); the
  bound C steps (``_kernels.RepackedMatmul``, csrc/bound.c) time their kernel calls inside
  themselves (``_kernels.bound_clock``), without a wrapper; ``--untimed-c`` leaves the C
  kernels unwrapped (no "in C" column): each step's own time, comparable between trees;
* **floor**: the generated replay with every step's function replaced by one returning
  the step's recorded result (the plan's own Python: the calls, the locals);
* **what a native runner would leave**: the replay with each native step replaced by its
  recorded kernel calls on the same arrays (no checks, no allocation, the outputs reused),
  and also without the cache writes and views a runner would absorb, against the plan
  itself, in turn, the C matmul kernels writing zeros in all three (their time is not what
  a runner changes, and on a busy machine it swings by more than the difference).

Replaying one step's inputs again writes the same KV-cache rows again: the timing is that
of one decode position, repeated. No speed claim is made from one run on a shared machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="checkpoint directory")
    p.add_argument("--prompt-tokens", type=int, default=32)
    p.add_argument("--tokens", type=int, default=8)
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--activations", choices=["float32", "int8"])
    p.add_argument("--slowest", type=int, default=12, help="list the N steps with the most time outside C")
    p.add_argument("--fastest", action="store_true", help="each step's fastest time, not its median")
    p.add_argument(
        "--untimed-c",
        action="store_true",
        help="leave the C kernels unwrapped (no 'in C' column, none of the wrapper's ~0.3 us a kernel call: "
        "the steps' own times, comparable between trees)",
    )
    p.add_argument("--list", default="", metavar="A:B", help="list steps A to B (their arguments' places and results)")
    args = p.parse_args(argv)
    if args.activations:
        os.environ["ARRAYQ_NATIVE_ACTIVATIONS"] = args.activations

    import arrayq as aq
    from arrayq import _compile, _replay, models, nn
    from arrayq_numpy import _native

    kernel_ns: collections.Counter[str] = collections.Counter()
    timing = [False]
    real = _native._kernels
    timed = _Timed(real, kernel_ns, timing)
    if not args.untimed_c:
        _native._kernels = timed  # (forms bind the kernels when recorded)
    bound_clock = None if args.untimed_c else getattr(real, "bound_clock", None)  # (bound C steps' kernel clock)

    plans: list[Any] = []
    real_call = _replay.Plan.__call__

    def call(self: Any, *leaves: Any) -> Any:
        self.last_leaves = leaves
        if self not in plans:
            plans.append(self)
        return real_call(self, *leaves)

    _replay.Plan.__call__ = call  # type: ignore[method-assign]
    try:
        model = models.load(args.model, backend="numpy")
        aq.eval(nn.parameters(model))
        vocab = model.config.vocab_size
        prompt = [(i * 7919) % vocab for i in range(1, args.prompt_tokens + 1)]
        list(models.generate(model, prompt, args.tokens, compile=True))
    finally:
        _replay.Plan.__call__ = real_call  # type: ignore[method-assign]
    plan = max(plans, key=len)
    leaves = plan.last_leaves
    steps, names = plan.steps, plan.names

    def median_ns(fn: Any) -> float:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - t)
        return statistics.median(times)

    places = max(max([o for *_, o in steps if type(o) is int] or [0]), len(leaves)) + 1
    for *_, o in steps:
        if type(o) is tuple:
            places = max(places, max(o) + 1)
    env0: list[Any] = [None] * (places + 64)
    constants = _constants(plan)

    def loop(
        record: dict[int, list[int]] | None = None,
        results: list[Any] | None = None,
        inside: dict[int, list[int]] | None = None,
        calls: dict[int, list[tuple[Any, tuple]]] | None = None,
    ) -> None:
        env = list(env0)
        env[: len(leaves)] = leaves
        for p, v in constants.items():
            env[p] = v
        clock = time.perf_counter_ns
        if bound_clock is not None:
            bound_clock(1 if inside is not None else 0)
        for i, (fn, a, o) in enumerate(steps):
            if calls is not None:
                timed.capture = calls.setdefault(i, [])
            before = kernel_ns.total()
            t = clock()
            r = fn(*[env[j] for j in a])
            if record is not None:
                record.setdefault(i, []).append(clock() - t)
            if inside is not None:  # (and the kernels of the bound C steps, csrc/bound.c, timed there)
                bound_ns = bound_clock(1)[0] if bound_clock is not None else 0
                inside.setdefault(i, []).append(kernel_ns.total() - before + bound_ns)
            if results is not None:
                results.append(r)
            if type(o) is int:
                env[o] = r
            else:
                for j, v in zip(o, r):
                    if j >= 0:
                        env[j] = v
        timed.capture = None

    whole = median_ns(lambda: plan(*leaves))
    tokens: list[float] = []
    around: list[int] = []  # each compiled call's time minus its plan's (flattening, the signature, the result)
    inner = [0]
    real_compiled = _compile.Compiled.__call__

    def replayed(self: Any, *leaves: Any) -> Any:
        t = time.perf_counter_ns()
        out = real_call(self, *leaves)
        inner[0] = time.perf_counter_ns() - t
        return out

    def compiled(self: Any, *a: Any, **k: Any) -> Any:
        inner[0] = -1
        t = time.perf_counter_ns()
        out = real_compiled(self, *a, **k)
        if inner[0] >= 0:
            around.append(time.perf_counter_ns() - t - inner[0])
        return out

    _replay.Plan.__call__, _compile.Compiled.__call__ = replayed, compiled  # type: ignore[method-assign]
    try:
        for _ in range(3):  # a decoded token in generate: the plan plus generate's own work around it
            stats = models.GenerationStats()
            list(models.generate(model, prompt, args.tokens, stats=stats, compile=True))
            tokens.append(stats.decode_seconds / stats.decode_tokens)
    finally:
        _replay.Plan.__call__, _compile.Compiled.__call__ = real_call, real_compiled  # type: ignore[method-assign]
    token_us = 1e6 * statistics.median(tokens)
    samples: dict[int, list[int]] = {}
    c_samples: dict[int, list[int]] = {}
    timing[0] = True
    kernel_ns.clear()
    for _ in range(args.repeat):
        loop(samples, inside=c_samples)
    timing[0] = False
    # per step, medians over the repeats (a preemption on a shared machine hits one sample),
    # or the fastest (--fastest: on a busy machine, the least disturbed)
    pick = min if args.fastest else statistics.median
    per_step = {i: pick(v) for i, v in samples.items()}
    in_kernels = {i: pick(v) for i, v in c_samples.items()}
    empty_step = _empty_step_ns(args.repeat)
    recorded: list[Any] = []
    calls: dict[int, list[tuple[Any, tuple]]] = {}
    loop(results=recorded, calls=calls)
    floor = median_ns(_floor_replay(plan, recorded, leaves))
    # what a native runner would leave: the native steps' kernels called with the arguments
    # they got (the same arrays, outputs included: no checks, no allocation), every other
    # step as it is; "ideal" also drops the cache writes and views a runner would absorb
    kernels_only = [
        _kernel_calls(calls[i], recorded[i]) if names[i] in _NATIVE and calls.get(i) else None
        for i in range(len(steps))
    ]
    absorbed = [names[i] in _ABSORBED for i in range(len(steps))]
    runs = {"plan": lambda: plan(*leaves)}
    for label, drop in (("kernels only", False), ("ideal", True)):
        fns = [
            k if k is not None else (_returns(recorded[i]) if drop and absorbed[i] else steps[i][0])
            for i, k in enumerate(kernels_only)
        ]
        runs[label] = _replay_of(plan, fns, leaves)
    times: dict[str, list[int]] = {label: [] for label in runs}
    timed.stub = True  # (the matmul kernels' time, and its swings on a busy machine, left out)
    if bound_clock is not None:
        bound_clock(2)
    for _ in range(args.repeat):  # (the three in turn: each repeat sees the same machine)
        for label, fn in runs.items():
            t = time.perf_counter_ns()
            fn()
            times[label].append(time.perf_counter_ns() - t)
    timed.stub = False
    if bound_clock is not None:
        bound_clock(0)
    variants = {label: statistics.median(v) for label, v in times.items()}
    fastest = {label: min(v) for label, v in times.items()}  # (a busy machine's least disturbed run)
    saved = {
        label: statistics.median(p - v for p, v in zip(times["plan"], times[label]))
        for label in ("kernels only", "ideal")
    }

    by_fn: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for i, ns in per_step.items():
        key = _fn_name(steps[i][0], names[i])
        by_fn[key][0] += 1
        by_fn[key][1] += ns - empty_step
        by_fn[key][2] += in_kernels.get(i, 0)
    total = sum(v for _, v, _ in by_fn.values())
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"decode step plan: {len(steps)} steps; replay {whole / 1e3:.1f} us (median of {args.repeat})")
    print(f"a decoded token in generate: {token_us:.1f} us (median of 3 runs of {args.tokens} tokens)")
    print(
        f"the compiled call around its plan (flattening its inputs, the signature, the result): median "
        f"{statistics.median(around) / 1e3:.1f} us, fastest {min(around) / 1e3:.1f} us ({len(around)} calls)"
    )
    print(
        f"steps timed one by one, each step's {'fastest' if args.fastest else 'median'}: {total / 1e3:.1f} us "
        f"(timer cost {empty_step:.0f} ns a step subtracted)"
    )
    print(f"plan floor (every step returns its recorded result): {floor / 1e3:.1f} us")
    print(
        f"the matmul kernels writing zeros, in turn, medians: the plan {variants['plan'] / 1e3:.1f} us; "
        f"its native steps as their bare kernel calls "
        f"{variants['kernels only'] / 1e3:.1f} us (the plan minus it, each repeat's: "
        f"{saved['kernels only'] / 1e3:.1f} us); "
        f"also without the cache writes and views {variants['ideal'] / 1e3:.1f} us ({saved['ideal'] / 1e3:.1f} us)"
    )
    print("  fastest of each: " + ", ".join(f"{label} {ns / 1e3:.1f} us" for label, ns in fastest.items()))
    print(f"\n{'step function [method]':48}{'steps':>6}{'us':>9}{'in C':>9}{'around':>9}{'around/step':>12}")
    for key, (count, ns, c) in sorted(by_fn.items(), key=lambda kv: -kv[1][1]):
        print(f"{key:48}{count:6d}{ns / 1e3:9.1f}{c / 1e3:9.1f}{(ns - c) / 1e3:9.1f}{(ns - c) / count / 1e3:12.2f}")
    print(f"\n{'slowest steps outside C kernels':48}{'around us':>10}  result")
    around = {i: ns - empty_step - in_kernels.get(i, 0) for i, ns in per_step.items()}
    for i in sorted(around, key=lambda i: -around[i])[: args.slowest]:
        print(f"{i:4d} {_fn_name(steps[i][0], names[i])[:43]:43}{around[i] / 1e3:10.1f}  {_shape(recorded[i])}")
    if args.list:
        a, b = (int(v) for v in args.list.split(":"))
        print(f"\n{'step':48}{'us':>8}{'in C':>8}  args -> out: result")
        for i in range(a, min(b, len(steps))):
            _, places, o = steps[i]
            where = f"{list(places)} -> {o}"
            print(
                f"{i:4d} {_fn_name(steps[i][0], names[i])[:43]:43}{(per_step[i] - empty_step) / 1e3:8.1f}"
                f"{in_kernels.get(i, 0) / 1e3:8.1f}  {where}: {_shape(recorded[i])}"
            )
    qmm = sum(c for key, (_, _, c) in by_fn.items() if key.startswith("quantized_matmul"))
    c_total = sum(c for _, _, c in by_fn.values())
    print(f"\nthe sum of the steps' medians: {total / 1e3:.1f} us, of which")
    print(f"  inside the C matmul kernels {qmm / 1e3:.1f} us")
    print(f"  outside them {(total - qmm) / 1e3:.1f} us ({(total - qmm) / total:.1%}):")
    print(f"    other C kernels {(c_total - qmm) / 1e3:.1f} us; Python and NumPy {(total - c_total) / 1e3:.1f} us")
    _native._kernels = real
    return 0


def _fn_name(fn: Any, name: str) -> str:
    own = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None)
    own = own or getattr(fn, "__qualname__", "").rpartition(".")[2] or None  # (a bound C step's form name)
    if own is None and type(fn).__name__ == "methodcaller":
        own = repr(fn).split("(")[1].strip("'\"").split("'")[0]
    return f"{own or type(fn).__name__} [{name}]" if own != name else str(own)


def _constants(plan: Any) -> dict[int, Any]:
    """The plan's constants by place, read from its generated function's closure."""
    import inspect

    replay = plan._replay
    cells = dict(zip(replay.__code__.co_freevars, (c.cell_contents for c in replay.__closure__ or ())))
    del inspect
    return {int(k[1:]): v for k, v in cells.items() if k.startswith("v")}


#: the steps whose kernels a native runner would call (by the step's recorded method)
_NATIVE = {
    f"backend.{m}"
    for m in ("quantized_matmul", "rms_norm", "add_rms_norm", "qkv_heads", "swiglu", "swiglu_halves", "rope")
} | {"backend.prefix_attention"}
#: steps a runner would absorb: cache writes into fixed buffers, views
_ABSORBED = {"backend.slice_update", "backend.reshape", "backend.permute_dims"}


def _kernel_calls(calls: list[tuple[Any, tuple]], result: Any) -> Any:
    """A step that makes its recorded kernel calls again and returns its recorded result."""

    def step(*args: Any) -> Any:
        for fn, a in calls:
            fn(*a)
        return result

    return step


def _floor_replay(plan: Any, results: list[Any], leaves: tuple) -> Any:
    return _replay_of(plan, [_returns(r) for r in results], leaves)


def _replay_of(plan: Any, fns: list[Any], leaves: tuple) -> Any:
    """The plan's generated replay with its steps' functions replaced by ``fns``."""
    from arrayq import _replay

    steps = [(fn, a, o) for fn, (_, a, o) in zip(fns, plan.steps)]
    fixed = sorted(_constants(plan))
    source = _replay._source(plan.inputs, steps, [False] * len(steps), plan.outputs, fixed)
    namespace: dict[str, Any] = {}
    exec(compile(source, "<floor>", "exec"), namespace)
    consts = _constants(plan)
    replay = namespace["make"]([fn for fn, _, _ in steps], [consts[p] for p in fixed], NotImplemented, None)
    return lambda: replay(*leaves)


def _shape(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shape(v) for v in value) + ")"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    return f"{dtype}{list(shape)}" if shape is not None else type(value).__name__


def _returns(value: Any) -> Any:
    def step(*args: Any) -> Any:
        return value

    return step


def _empty_step_ns(repeat: int) -> float:
    clock, fn, record = time.perf_counter_ns, _returns(None), []
    for _ in range(repeat):
        for _ in range(400):
            t = clock()
            fn(*[None for j in (0,)])
            record.append(clock() - t)
    return statistics.median(record)


#: where each matmul kernel's output array is among its arguments
_OUT = {"gemv": 5, "gemv_repacked": 3}


class _Timed:
    """The kernels module with every function timed (ns by name) while ``timing[0]``."""

    def __init__(self, real: Any, acc: Any, timing: list[bool]) -> None:
        self._real, self._acc, self._timing = real, acc, timing
        self.capture: list[tuple[Any, tuple]] | None = None  # (kernel, arguments) of each call
        self.stub = False  # the matmul kernels write zeros

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._real, name)
        if not callable(fn) or isinstance(fn, type):  # (the bound C steps' types: made as they are)
            return fn
        acc, timing, clock = self._acc, self._timing, time.perf_counter_ns

        out = _OUT.get(name)

        def timed(*a: Any) -> Any:
            if self.capture is not None:
                self.capture.append((timed, a))
            if out is not None and self.stub:  # (a matmul kernel writing zeros; x reported finite)
                a[out].fill(0)
                return True
            if not timing[0]:
                return fn(*a)
            t = clock()
            y = fn(*a)
            acc[name] += clock() - t
            return y

        setattr(self, name, timed)
        return timed


if __name__ == "__main__":
    sys.exit(main())
