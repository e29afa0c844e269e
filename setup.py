"""The native kernels of the NumPy backend, an optional C extension.

Everything else is declared in pyproject.toml. ``optional=True``: where no C compiler is
found (or the build fails), the install goes on without the extension and the NumPy backend
uses its pure-NumPy path (``arrayq info`` says which path is in use).
"""

import os
import sys

from setuptools import Extension, setup

# -O3, unless CFLAGS names an optimization level of its own: kernels.c takes minutes to
# compile at -O3 and seconds at -O0, which the test suite's throwaway builds ask for
# (tests/test_packaging.py, tools/mutation_check.py)
own_level = any(flag.startswith("-O") for flag in os.environ.get("CFLAGS", "").split())
flags = [] if sys.platform == "win32" else ([] if own_level else ["-O3"]) + ["-std=gnu11", "-fno-strict-aliasing"]
csrc = "backends/arrayq_numpy/csrc/"
kernels = Extension(
    "arrayq_numpy._kernels",
    sources=[
        csrc + name
        for name in ("module.c", "bound.c", "kernels.c", "threadpool.c", "attention.c", "repack.c", "rowops.c")
    ],
    depends=[csrc + "kernels.h", csrc + "glue.h", csrc + "kernels_simd.inc", csrc + "repacked_simd.inc"],
    extra_compile_args=flags,
    optional=True,
)
setup(ext_modules=[kernels])
