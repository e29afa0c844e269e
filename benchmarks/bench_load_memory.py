"""Peak memory of loading a checkpoint: `arrayq.models.load` of the qwen3-0.6b preset on
each backend, each in its own process, peak RSS (getrusage maxrss) against the size of
the weight files.

    python benchmarks/bench_load_memory.py [--model DIR] [--backends numpy,mlx] [--preset qwen3-0.6b]

Without --model it writes the preset's random-weight checkpoint to $ARRAYQ_CACHE (or
~/.cache/arrayq) first. Rows: each backend as `load` runs it (MLX reads safetensors itself, lazily, with
plain reads), then MLX through the NumPy-copy path that every other source and backend
takes (`copy`: each tensor copied from the memory map, whose pages are then dropped), and
that path without dropping the pages (`copy-keep`, arrayq before the fix). Columns: the
peak RSS after importing arrayq and the backend library (the floor any load starts from),
the peak RSS during the load (the weights evaluated on the backend), the peak's excess
over the floor, peak / file size, and the RSS once loaded. Resident pages of a
memory-mapped file count in RSS. On Linux the peak is the process's own VmHWM
(getrusage's maxrss would include the parent's RSS at fork).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, resource, sys
def status(key):  # Linux: this process's own high-water mark (ru_maxrss also counts the parent before exec)
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))
    except (OSError, StopIteration):
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r if sys.platform == "darwin" else r * 1024
def rss():
    return status("VmHWM")
def current():
    return status("VmRSS")
import arrayq as aq
from arrayq import nn
from arrayq.models import load
from arrayq.models import _sources
backend = aq.get_backend(sys.argv[2])
mode = sys.argv[3]
if mode in ("copy", "copy-keep"):  # the NumPy-copy path (every backend but MLX-with-safetensors)
    _sources.SafetensorsSource.native = lambda self, name, backend: None
if mode == "copy-keep":  # ... without dropping the mapped pages (arrayq before issue 15)
    _sources.SafetensorsSource.release = lambda self, name: None
import numpy as np
aq.eval(backend.from_numpy(np.zeros(1)))  # the backend library loaded and initialised
floor = rss()
model = load(sys.argv[1], backend=backend)
aq.eval(nn.parameters(model))
print(json.dumps({"floor": floor, "peak": rss(), "after": current()}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint directory (default: the preset, made in the cache)")
    p.add_argument("--preset", default="qwen3-0.6b")
    p.add_argument("--backends", default="numpy,mlx")
    args = p.parse_args(argv)

    from arrayq.models import make_checkpoint
    from arrayq.models._host import cache_dir

    path = Path(args.model) if args.model else cache_dir() / args.preset
    if not (path / "config.json").is_file():
        print(f"writing the {args.preset} checkpoint to {path} ...", file=sys.stderr)
        make_checkpoint(path, args.preset)
    size = sum(f.stat().st_size for f in path.glob("*.safetensors"))
    mib = 2**20
    print(f"{args.preset}: {size / mib:.0f} MiB of safetensors in {path.name}")
    print(f"{'backend':<18} {'floor MiB':>10} {'peak MiB':>9} {'peak-floor':>11} {'peak/file':>10} {'RSS after':>10}")
    runs = [(b, "default") for b in args.backends.split(",")]
    if "mlx" in args.backends.split(","):
        runs += [("mlx", "copy"), ("mlx", "copy-keep")]
    for backend, mode in runs:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), backend, mode], capture_output=True, text=True, check=False
        )
        backend = backend if mode == "default" else f"{backend} ({mode})"
        if proc.returncode:
            print(f"{backend:<18} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{backend:<18} {r['floor'] / mib:>10.0f} {r['peak'] / mib:>9.0f} {(r['peak'] - r['floor']) / mib:>11.0f} "
            f"{r['peak'] / size:>10.2f} {r['after'] / mib:>10.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
