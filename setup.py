"""The native kernels of the NumPy backend, an optional C extension.

Everything else is declared in pyproject.toml. ``optional=True``: where no C compiler is
found (or the build fails), the install goes on without the extension and the NumPy backend
uses its pure-NumPy path (``arrayq info`` says which path is in use).
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-fno-strict-aliasing"]
kernels = Extension(
    "arrayq_numpy._kernels",
    sources=["backends/arrayq_numpy/_kernels.c"],
    depends=["backends/arrayq_numpy/_kernels_body.h"],
    extra_compile_args=flags,
    optional=True,
)
setup(ext_modules=[kernels])
