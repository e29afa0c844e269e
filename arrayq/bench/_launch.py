"""Start the ranks of one MLX distributed job as local processes (what ``mlx.launch -n N``
does on one host), with what tests and benchmarks need on top: free ports chosen, a time
limit, and every process reaped whatever happens.

The networking is MLX's (its ring backend over loopback TCP, or NCCL between the GPUs of
one host): this only writes the environment MLX reads (``MLX_RANK`` and ``MLX_HOSTFILE`` for
the ring; ``MLX_RANK``, ``MLX_WORLD_SIZE``, ``NCCL_HOST_IP``, ``NCCL_PORT`` and one GPU per
rank for NCCL, NVLink multicast off).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


@dataclasses.dataclass
class RankResult:
    """One rank's exit: ``returncode`` (None where it was killed at the time limit or
    after another rank failed), and its whole stdout and stderr."""

    rank: int
    returncode: int | None
    stdout: str
    stderr: str


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago (bound to port 0,
    then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def rank_environments(n: int, engine: str, folder: Path) -> list[dict[str, str]]:
    """The environment variables of ranks 0..n-1 of a local job on ``engine`` ("ring" or
    "nccl"), files (the ring's hostfile) written to ``folder``. ValueError for another
    engine or n < 1."""
    if n < 1 or engine not in ("ring", "nccl"):
        raise ValueError(f"need n >= 1 and engine 'ring' or 'nccl', got n={n}, engine={engine!r}")
    if engine == "ring":
        hostfile = folder / "hosts.json"
        hostfile.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in free_ports(n)]))
        return [{"MLX_RANK": str(r), "MLX_HOSTFILE": str(hostfile)} for r in range(n)]
    (port,) = free_ports(1)
    common = {"MLX_WORLD_SIZE": str(n), "NCCL_HOST_IP": "127.0.0.1", "NCCL_PORT": str(port), "NCCL_NVLS_ENABLE": "0"}
    return [{**common, "MLX_RANK": str(r), "CUDA_VISIBLE_DEVICES": str(r)} for r in range(n)]


def run_local(
    n: int,
    argv: Sequence[str],
    *,
    engine: str = "ring",
    timeout: float = 120.0,
    grace: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> list[RankResult]:
    """Run ``argv`` as ``n`` local processes, the ranks of one job on ``engine`` (see
    :func:`rank_environments`), and wait for all of them. A rank still running ``timeout``
    seconds after the start, or ``grace`` seconds after another rank failed (its peers
    would wait for it forever), is killed with its process group. Every process is
    reaped before this returns, an exception or KeyboardInterrupt included."""
    base = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="arrayq-launch-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        procs: list[subprocess.Popen] = []
        files = []
        killed = set()
        try:
            for rank, extra in enumerate(rank_environments(n, engine, folder)):
                out, err = (stack.enter_context(open(folder / f"{rank}.{what}", "w+")) for what in ("out", "err"))
                files.append((out, err))
                procs.append(
                    subprocess.Popen(list(argv), stdout=out, stderr=err, env={**base, **extra}, start_new_session=True)
                )
            deadline = time.monotonic() + timeout
            while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
                if any(p.returncode not in (None, 0) for p in procs):
                    deadline = min(deadline, time.monotonic() + grace)
                time.sleep(0.05)
        finally:
            for p in procs:
                if p.poll() is None:
                    killed.add(p.pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
            for p in procs:
                p.wait()
        results = []
        for rank, (p, (out, err)) in enumerate(zip(procs, files, strict=True)):
            out.seek(0)
            err.seek(0)
            results.append(RankResult(rank, None if p.pid in killed else p.returncode, out.read(), err.read()))
        return results
