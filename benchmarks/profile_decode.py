"""Where a decoded token's time goes on the NumPy backend: inside the quantized matmuls or
outside them (the framework: attention, norms, RoPE, KV cache, sampling, dispatch, Python).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_decode.py \\
        [--model DIR] [--prompt-tokens 32] [--tokens 32] [--repeat 3] [--cprofile 15] \\
        [--compile on|off|both]

The qwen3-0.6b preset checkpoint (4-bit, written to the cache first when missing, as
``arrayq bench`` does) is loaded on the NumPy backend; after a warm-up, ``--repeat`` greedy
generations of ``--tokens`` tokens each run with the NumPy backend's ``quantized_matmul``
wrapped by a timer. Two boundaries are reported: the backend's kernel call (everything
arrayq does before it, validation and dispatch, counts as outside) and the frontend's
``arrayq.linalg.quantized_matmul`` (validation counts as inside). ``--model`` also takes a
GGUF file; ``--activations int8`` runs decode with 8-bit activations. Decode time is
:class:`~arrayq.models.GenerationStats`' ``decode_seconds`` (the model and sampling, per
token after the first). Medians over the repeats. ``--cprofile N`` adds the N functions
with the most own time outside the kernels (one extra generation, its decode profiled;
cProfile's own cost inflates it). ``--compile`` decodes through ``arrayq.compile``'s recorded
plan (on), eagerly (off), or both, alternating run by run (the default, ``generate``'s default
being on): a replayed plan calls the backend directly, so the frontend's quantized_matmul is
not called at all (its row reads 0). ``--stub-kernels`` replaces the backend's quantized matmul
by one returning zeros of the right shape: every op outside it runs as before (on other
values), so the token's time is the time outside alone, without the kernels' variance on a
shared machine. ``--untimed-kernels`` leaves the backend's quantized matmul unwrapped
(the rows inside it read 0): a recorded plan replays a wrapped method as it is, so only
then does the decode time include the NumPy backend's replay form of the kernel call.
``--c-kernels`` moves the boundary down to the C matmul kernels (``gemv``,
``gemv_repacked``), timed wherever they are called from (the replay forms included; the
bound C steps of a plan, ``_kernels.RepackedMatmul``, time theirs inside themselves):
everything else, the Python around each kernel call too, counts as outside — the
strictest split, and the one that sees the forms. ``--stub-c-kernels`` is that boundary
with the C matmul kernels writing zeros instead (the output of the right shape, as
``--stub-kernels``): the replay forms and everything else run as before (on other values),
so the token's time is the time outside alone, forms included. ``--kv-dtype float16`` decodes
with a float16 KV cache (``generate(kv_dtype=...)``; compiled decode only).

To compare two versions side by side, run the script from each tree alternately
(``PYTHONPATH=<other tree>``); it prints one table and, with ``--json``, one line of JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="checkpoint directory (default: the qwen3-0.6b preset in the cache)")
    p.add_argument("--prompt-tokens", type=int, default=32)
    p.add_argument("--tokens", type=int, default=32, help="tokens generated per run")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cprofile", type=int, default=0, metavar="N", help="show the N top functions by own time")
    p.add_argument("--kv-dtype", default="", help="store the KV cache in this dtype (e.g. float16; needs --compile on)")
    p.add_argument("--label", default="", help="a name for this tree in the output")
    p.add_argument("--json", action="store_true", help="also print one line of JSON")
    p.add_argument("--stub-kernels", action="store_true", help="quantized matmuls return zeros (time outside alone)")
    p.add_argument(
        "--untimed-kernels",
        action="store_true",
        help="leave the backend's quantized_matmul as it is (its rows read 0; a recorded plan replays its form)",
    )
    p.add_argument("--compile", choices=["on", "off", "both"], default="both", help="decode compiled, eagerly, or both")
    p.add_argument(
        "--c-kernels",
        action="store_true",
        help="time the C matmul kernels themselves (gemv, gemv_repacked): their Python wrappers count as outside",
    )
    p.add_argument(
        "--stub-c-kernels",
        action="store_true",
        help="--c-kernels, the C matmul kernels writing zeros (time outside alone, forms included)",
    )
    p.add_argument(
        "--activations", choices=["float32", "int8"], help="the decode kernel's activations (default: the setting)"
    )
    args = p.parse_args(argv)
    args.c_kernels = args.c_kernels or args.stub_c_kernels
    if sum((args.untimed_kernels, args.stub_kernels, args.c_kernels)) > 1:
        p.error("--untimed-kernels, --stub-kernels and --c-kernels exclude each other (each sets the boundary)")
    if args.activations:  # read at the first quantized matmul
        import os

        os.environ["ARRAYQ_NATIVE_ACTIVATIONS"] = args.activations

    import arrayq as aq
    import arrayq.linalg
    from arrayq import _replay, models, nn

    if args.model is None:
        from arrayq.models._host import cache_dir

        args.model = cache_dir() / "qwen3-0.6b"
        if not (Path(args.model) / "config.json").exists():
            models.make_checkpoint(args.model, preset="qwen3-0.6b")
    model = models.load(args.model, backend="numpy")
    aq.eval(nn.parameters(model))
    backend = aq.get_backend("numpy")
    vocab = model.config.vocab_size
    prompt = [(i * 7919) % vocab for i in range(1, args.prompt_tokens + 1)]

    kernel_real = type(backend).quantized_matmul
    front_real = arrayq.linalg.quantized_matmul
    acc: dict[str, Any] = {"kernel": 0.0, "front": 0.0, "calls": 0, "stats": None, "prof": None}

    def decoding() -> bool:
        # counted from the end of prefill on (its stats are set before the first decode
        # step starts: a pipelined loop computes token 1 before it yields token 0)
        stats = acc["stats"]
        if stats is None or not stats.prefill_seconds:
            return False
        if acc["prof"] is not None and not acc["prof_on"]:
            acc["prof"].enable()
            acc["prof_on"] = True
        return True

    def kernel_stub(self: Any, x: Any, qw: Any, transpose: bool) -> Any:
        import numpy as np

        return np.zeros((*x.shape[:-1], qw.shape[-2] if transpose else qw.shape[-1]), x.dtype)

    kernel = kernel_stub if args.stub_kernels else kernel_real

    def kernel_timed(self: Any, *a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        y = kernel(self, *a, **kw)
        if decoding():
            acc["kernel"] += time.perf_counter() - t
            acc["calls"] += 1
        return y

    def front_timed(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        y = front_real(*a, **kw)
        if decoding():
            acc["front"] += time.perf_counter() - t
        return y

    kv_dtype = args.kv_dtype or None

    def run(compiled: bool, prof: cProfile.Profile | None = None) -> models.GenerationStats:
        stats = models.GenerationStats()
        acc.update(kernel=0.0, front=0.0, calls=0, stats=stats, prof=prof, prof_on=False)
        for _ in models.generate(model, prompt, args.tokens, stats=stats, compile=compiled, kv_dtype=kv_dtype):
            pass
        if prof is not None:
            prof.disable()
        acc.update(stats=None, prof=None)
        return stats

    modes = {"on": [True], "off": [False], "both": [False, True]}[args.compile]
    rows: dict[bool, list[dict[str, float]]] = {m: [] for m in modes}
    profiles = {}
    # timed from the warm-up on: a recorded plan keeps the (timed) method it was traced with
    from arrayq_numpy import _native

    c_real = _native._kernels
    bound_clock = getattr(c_real, "bound_clock", None)  # (bound C steps time their own kernels)
    plan_call = _replay.Plan.__call__
    if args.c_kernels:  # a plan's forms bind the module's functions when lowered: after this
        _native._kernels = _TimedKernels(c_real, acc, decoding, args.stub_c_kernels)
        if bound_clock is not None:
            mode = 2 if args.stub_c_kernels else 1

            def plan_timed(self: Any, *leaves: Any) -> Any:
                counted = decoding()
                bound_clock(mode)  # (drops what came before)
                out = plan_call(self, *leaves)
                ns, calls = bound_clock(mode)
                if counted:
                    acc["kernel"] += ns / 1e9
                    acc["calls"] += calls
                return out

            _replay.Plan.__call__ = plan_timed  # type: ignore[method-assign]
    elif not args.untimed_kernels:
        type(backend).quantized_matmul = kernel_timed
    arrayq.linalg.quantized_matmul = front_timed
    try:
        for m in modes:  # warm-up (the compiled step is traced here, for the timed runs' shapes)
            list(models.generate(model, prompt, args.tokens, compile=m, kv_dtype=kv_dtype))
        for _ in range(args.repeat):
            for m in modes:  # alternating, so that both see the same machine
                s = run(m)
                n = s.decode_tokens
                rows[m].append(
                    {
                        "token_ms": 1e3 * s.decode_seconds / n,
                        "kernel_ms": 1e3 * acc["kernel"] / n,
                        "front_ms": 1e3 * acc["front"] / n,
                        "calls": acc["calls"] / n,
                    }
                )
        for m in modes if args.cprofile else ():
            prof = cProfile.Profile()
            run(m, prof)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.cprofile)
            profiles[m] = out.getvalue()
    finally:
        _native._kernels = c_real
        _replay.Plan.__call__ = plan_call  # type: ignore[method-assign]
        if bound_clock is not None:
            bound_clock(0)
        type(backend).quantized_matmul = kernel_real
        arrayq.linalg.quantized_matmul = front_real

    meds = {}
    for m in modes:
        med = meds[m] = {k: statistics.median(r[k] for r in rows[m]) for k in rows[m][0]}
        tok = med["token_ms"]
        label = f" ({args.label})" if args.label else ""
        print(
            f"decode on numpy{label}, compile {'on' if m else 'off'}: {args.prompt_tokens}-token prompt, "
            f"{args.tokens} tokens, medians of {args.repeat}"
        )
        print(f"{'':34}{'ms/token':>10}{'share':>8}")
        print(f"{'decoded token':34}{tok:10.2f}{1:8.1%}")
        inside = "  inside the C matmul kernels" if args.c_kernels else "  inside backend quantized_matmul"
        print(f"{inside:34}{med['kernel_ms']:10.2f}{med['kernel_ms'] / tok:8.1%}")
        print(f"{'  outside it':34}{tok - med['kernel_ms']:10.2f}{1 - med['kernel_ms'] / tok:8.1%}")
        print(f"{'  inside linalg.quantized_matmul':34}{med['front_ms']:10.2f}{med['front_ms'] / tok:8.1%}")
        print(f"{'  outside it':34}{tok - med['front_ms']:10.2f}{1 - med['front_ms'] / tok:8.1%}")
        print(f"tokens/s {1e3 / tok:.1f}; quantized_matmul calls per token {med['calls']:.0f}")
        if m in profiles:
            print(profiles[m])
        if args.json:
            print(json.dumps({"label": args.label, "compile": m, **med, "tok_s": 1e3 / tok}))
    if len(meds) == 2:
        off, on = meds[False], meds[True]
        outside = (off["token_ms"] - off["kernel_ms"], on["token_ms"] - on["kernel_ms"])
        print(
            f"compile on / off: token time x{on['token_ms'] / off['token_ms']:.3f}, outside the kernels "
            f"x{outside[1] / outside[0]:.3f} ({outside[0]:.2f} -> {outside[1]:.2f} ms/token)"
        )
    return 0


class _TimedKernels:
    """The kernels module with its matmul kernels timed (``--c-kernels``); the rest as is."""

    #: where each kernel's output array is among its arguments
    _OUT = {"gemv": 5, "gemv_repacked": 3}

    def __init__(self, real: Any, acc: dict[str, Any], decoding: Any, stub: bool = False) -> None:
        self._real = real
        for name, out in self._OUT.items():
            fn = getattr(real, name)
            setattr(self, name, self._timed(functools.partial(_zeros, out) if stub else fn, acc, decoding))

    @staticmethod
    def _timed(fn: Any, acc: dict[str, Any], decoding: Any) -> Any:
        def timed(*a: Any) -> Any:
            t = time.perf_counter()
            y = fn(*a)
            if decoding():
                acc["kernel"] += time.perf_counter() - t
                acc["calls"] += 1
            return y

        return timed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _zeros(out: int, *args: Any) -> bool:
    """A stub kernel: zeros into its output argument; True (``gemv_repacked``'s report that
    x was finite, so that the replay form takes the result)."""
    args[out].fill(0)
    return True


if __name__ == "__main__":
    sys.exit(main())
