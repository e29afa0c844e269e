"""The native kernels of the NumPy backend, an optional C extension.

Everything else is declared in pyproject.toml. ``optional=True``: where no C compiler is
found (or the build fails), the install goes on without the extension and the NumPy backend
uses its pure-NumPy path (``arrayq info`` says which path is in use).
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-fno-strict-aliasing"]
csrc = "backends/arrayq_numpy/csrc/"
kernels = Extension(
    "arrayq_numpy._kernels",
    sources=[csrc + name for name in ("module.c", "kernels.c", "threadpool.c", "attention.c", "repack.c", "rowops.c")],
    depends=[csrc + "kernels.h", csrc + "kernels_simd.inc", csrc + "repacked_simd.inc"],
    extra_compile_args=flags,
    optional=True,
)
setup(ext_modules=[kernels])
