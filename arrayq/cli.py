"""The ``arrayq`` command line: ``arrayq info``, ``arrayq demo``, ``arrayq --version``,
``arrayq conformance``, ``arrayq bench``, ``arrayq make-checkpoint``, ``arrayq generate`` and
``arrayq embed`` (these three live in ``arrayq.models._cli``), and ``arrayq serve``
(``arrayq.serving._cli``).
Each subcommand is one function taking the parsed arguments and returning an exit code."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from ._cli_common import CommandError, _Parser, check_output_file
from ._version import __version__


def _library_version(module: str | None) -> str:
    if not module:
        return "-"
    try:
        return version(module.split(".")[0])
    except PackageNotFoundError:
        return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    """Backends found, available or not and why, their devices and library versions."""
    import arrayq

    print(f"arrayq {__version__} on Python {platform.python_version()} ({platform.system()} {platform.machine()})")
    print(f"default backend: {arrayq._dispatch._chosen().backend!r}")
    for row in arrayq.list_backends():
        if row.available:
            b = arrayq.get_backend(row.name)
            library = f"{b.library_module} {_library_version(b.library_module)}"
            print(f"  {row.name:<10} available  {library}  devices: {b.devices()}")
            for note in b.notes():
                print(f"  {'':<10} {note}")
        else:
            print(f"  {row.name:<10} unavailable: {row.reason}")
            if row.install_hint:
                print(f"  {'':<10} fix: {row.install_hint}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """A backend-agnostic example: quantize a weight, run quantized_matmul, compare."""
    import arrayq as aq

    with aq.default_backend(args.backend or aq.current_backend()):
        backend = aq.current_backend()
        k, n = 256, 128
        w = aq.reshape(aq.sin(aq.arange(n * k, dtype=aq.float32) * 0.37), (n, k))
        x = aq.cos(aq.reshape(aq.arange(4 * k, dtype=aq.float32), (4, k)) * 0.11)
        qw = aq.quantize(w, group_size=64, bits=4)
        y_q = aq.linalg.quantized_matmul(x, qw)
        y_ref = aq.matmul(x, aq.matrix_transpose(aq.dequantize(qw)))
        y_dense = aq.matmul(x, aq.matrix_transpose(w))
        err_kernel = float(aq.to_numpy(aq.max(aq.abs(y_q - y_ref))))
        err_quant = float(aq.to_numpy(aq.max(aq.abs(y_q - y_dense)) / aq.max(aq.abs(y_dense))))
    print(f"backend {backend.name}: {n}x{k} weight, 4-bit gs64: {qw.nbytes} bytes instead of {n * k * 4}")
    print(f"  quantized_matmul vs matmul with the dequantized weight: max |diff| = {err_kernel:.2e}")
    print(f"  quantization error relative to the float32 result: {err_quant:.2%}")
    return 0 if err_kernel < 1e-3 else 1


def cmd_conformance(args: argparse.Namespace) -> int:
    """Run the conformance suite on a backend; exit 1 on any failure."""
    from .conformance import runner

    if args.json:
        check_output_file(args.json, "--json")
    report = runner.run(args.backend, device=args.device, pattern=args.k, progress=runner.progress_bar())
    if not report.results:
        raise CommandError(f"-k {args.k!r} matches no conformance case; case ids look like 'abs[float32,(3, 4)]'")
    print(report.table())
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(report.to_json())
    return 1 if report.failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmarks, print their tables; optionally write the rows as JSON and a chart."""
    import importlib.util
    import json

    from . import bench

    if args.plot and importlib.util.find_spec("matplotlib") is None:  # say so before running anything
        raise CommandError(bench.MATPLOTLIB_MISSING)
    for path, option in ((args.json, "--json"), (args.plot, "--plot")):
        if path:
            check_output_file(path, option)
    rows = bench.run(args.only, quick=args.quick)
    print(bench.format_rows(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
            fh.write("\n")
    if args.plot:
        try:
            bench.plot(rows, args.plot)
        except RuntimeError as exc:  # matplotlib missing
            raise CommandError(str(exc)) from None
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


BENCH_EPILOG = """\
quantized: 4-bit quantized matmul, arrayq on NumPy vs MLX's CPU kernel vs dense NumPy.
dispatch: 1000 small ops through arrayq vs the library directly (NumPy; MLX graph
building and a decode-shape quantized_matmul when MLX is installed), µs per op.
generate: tokens/s of arrayq on NumPy and MLX (and mlx-lm when installed), each engine
in its own process (benchmarks/bench_generate.py prints more: mlx-lm, the memory floor).

NumPy note: some machines set OPENBLAS_CORETYPE (an old-OpenBLAS workaround that slows
current NumPy); benchmark with them unset:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE arrayq bench
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="arrayq", description="arrayq: one array API, any backend, quantized linear algebra.")
    parser.add_argument("--version", action="version", version=f"arrayq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="backends, availability, devices, versions").set_defaults(func=cmd_info)
    demo = sub.add_parser("demo", help="a small backend-agnostic quantized example")
    demo.add_argument("--backend", help="backend name (default: the default backend)")
    demo.set_defaults(func=cmd_demo)
    conf = sub.add_parser("conformance", help="run the conformance suite on a backend")
    conf.add_argument("backend", help="backend name, e.g. numpy or mlx")
    conf.add_argument("--device", help="device to run on (default: the backend's default)")
    conf.add_argument("-k", metavar="PATTERN", help="only cases whose id contains PATTERN (or matches it as a glob)")
    conf.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    conf.set_defaults(func=cmd_conformance)
    bench = sub.add_parser(
        "bench",
        help="benchmarks: quantized matmul, dispatch overhead, generation",
        description="Run arrayq's benchmarks side by side and print medians.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--only", choices=["quantized", "dispatch", "generate"], help="run one benchmark only")
    bench.add_argument("--quick", action="store_true", help="smaller runs (tens of seconds in all on 2 cores)")
    bench.add_argument("--json", metavar="FILE", help="also write every row as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="also draw a bar chart (needs matplotlib: arrayq[plot])")
    bench.set_defaults(func=cmd_bench)
    from .models._cli import add_parsers as add_model_parsers  # make-checkpoint, generate, embed

    add_model_parsers(sub)
    from .serving._cli import add_parser as add_serve_parser  # serve

    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every user error (a bad option, a bad checkpoint or input, a path
    that cannot be read or written) takes this one path: one ``arrayq: error:`` line on
    stderr, no traceback, exit status 2."""
    from .errors import ArrayqError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (CommandError, ArrayqError, ValueError, TypeError, OSError) as exc:
        print(f"arrayq: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
