"""What the model commands and the benchmarks ask of the host: where the default checkpoint
is cached, and the process's peak memory. (A leaf module: the CLI and arrayq.bench both
import it, and neither imports the other through it.)"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path


def cache_dir() -> Path:
    """Where ``arrayq generate`` keeps the checkpoint it makes when given no ``--model``:
    ``$ARRAYQ_CACHE``, else ``~/.cache/arrayq``."""
    return Path(os.environ.get("ARRAYQ_CACHE") or Path.home() / ".cache" / "arrayq")


def peak_memory_bytes() -> int:
    """The process's peak resident memory (``getrusage`` maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024
