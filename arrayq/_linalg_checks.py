"""What every function of ``arrayq.linalg`` checks and does around its backend call, once:
arrays of the right rank and dtype, half precision computed in float32, empty input to the
contract's composite, NaN/inf matrices kept away from the backend's kernels, singular
matrices reported as :class:`arrayq.errors.LinAlgError`.

The rules, the same on every backend:

* **Dtypes.** The decompositions and solvers take floating arrays, real or complex (a
  complex matrix is Hermitian where a real one is symmetric): bool and integer input
  raise TypeError (convert with ``astype``). float16 and bfloat16 are computed in float32
  and rounded back.
* **Empty input** (a zero-size batch or matrix) runs the contract's composite, which
  follows NumPy (the determinant of a 0 x 0 matrix is 1, its inverse is 0 x 0): native
  libraries crash on some of these (MLX's inv of a 0 x 0 matrix).
* **NaN and inf.** A matrix holding NaN or inf gives NaN in every element of its results
  (the other matrices of the batch are unaffected) and raises nothing; the backend is
  handed the identity in its place, so no kernel sees it.
* **Singular matrices.** ``inv``, ``solve``, ``triangular_solve`` (and ``matrix_power``
  with n < 0) raise LinAlgError naming the batch index; ``cholesky`` raises it for a
  matrix that is not positive definite. Detecting it reads one boolean per call from the
  result (on MLX, a sync: these ops cannot run inside ``arrayq.compile``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import _dtypes as dt
from ._dispatch import backend_of, resolve
from .backend import Backend
from .errors import LinAlgError

_HALF = (dt.float16, dt.bfloat16)


def arrays(name: str, *xs: Any) -> tuple[Backend, list[Any]]:
    """The backend of ``xs`` (all must be arrays; a NumPy scalar counts as a 0-d NumPy
    array) and the arrays on it."""
    import numpy as np

    xs = tuple(np.asarray(x) if isinstance(x, np.generic) else x for x in xs)
    for x in xs:
        if backend_of(x) is None:
            raise TypeError(f"linalg.{name} needs arrays, got {type(x).__name__}; make one with arrayq.asarray")
    return resolve(*xs)


def matrices(name: str, x: Any, square: bool = False, what: str = "x") -> None:
    """Raise ValueError unless x is a stack of (square) matrices."""
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"linalg.{name} needs {what} as a stack of matrices (..., M, N), got shape {shape}")
    if square and shape[-1] != shape[-2]:
        raise ValueError(f"linalg.{name} needs square matrices (..., M, M), got {what} of shape {shape}")


def floating(name: str, backend: Backend, x: Any) -> tuple[Any, dt.DType]:
    """``(x to compute with, the dtype of the results)``: float16/bfloat16 widened to float32."""
    d = backend.dtype_of(x)
    if d.kind not in ("float", "complex"):
        raise TypeError(
            f"linalg.{name} needs a floating-point array, got {d.name}; convert it first, e.g. astype(x, float64)"
        )
    return (backend.astype(x, dt.float32) if d in _HALF else x), d


def numeric(name: str, backend: Backend, x: Any) -> None:
    if backend.dtype_of(x) == dt.bool_:
        raise TypeError(f"linalg.{name} needs a numeric array, got bool; convert it with astype")


def finite(backend: Backend, x: Any, core: int = 2) -> Any:
    """Per matrix (the last ``core`` axes reduced): whether every element is finite."""
    if backend.dtype_of(x).kind not in ("float", "complex"):
        return backend.full(tuple(x.shape[: x.ndim - core]), True, dt.bool_, backend.device_of(x))
    axes = tuple(range(x.ndim - core, x.ndim))
    return backend.reduce("all", backend.unary("isfinite", x), axes, False, None)


def _expand(backend: Backend, mask: Any, ndim: int) -> Any:
    return backend.reshape(mask, tuple(mask.shape) + (1,) * (ndim - mask.ndim))


def replace(backend: Backend, x: Any, ok: Any, identity: bool) -> Any:
    """x with the matrices where ``ok`` is false replaced by the identity (or zeros)."""
    m, n = int(x.shape[-2]), int(x.shape[-1])
    device, dtype = backend.device_of(x), backend.dtype_of(x)
    filler = backend.eye(m, n, 0, dtype, device) if identity else backend.zeros((m, n), dtype, device)
    return backend.where(_expand(backend, ok, x.ndim), x, filler)


def poison(backend: Backend, outs: Sequence[Any], ok: Any) -> list[Any]:
    """The float (and complex) results with every element of the matrices where ``ok`` is
    false NaN."""
    done = []
    for out in outs:
        if backend.dtype_of(out).kind in ("float", "complex"):
            nan = backend.full((), float("nan"), backend.dtype_of(out), backend.device_of(out))
            out = backend.where(_expand(backend, ok, out.ndim), out, nan)
        done.append(out)
    return done


def method(backend: Backend, op: str, *xs: Any) -> Callable[..., Any]:
    """The backend's ``op``, or the contract's composite when an input is empty."""
    if any(x.size == 0 for x in xs):
        return getattr(Backend, op).__get__(backend)
    return getattr(backend, op)


def narrow(backend: Backend, outs: Sequence[Any], dtype: dt.DType) -> list[Any]:
    """Round float results back to the input's half dtype."""  # (complex has no half)
    if dtype not in _HALF:
        return list(outs)
    return [backend.astype(o, dtype) if backend.dtype_of(o).kind == "float" else o for o in outs]


def raise_where(backend: Backend, bad: Any, name: str, why: str, fix: str) -> None:
    """Raise LinAlgError if any element of the per-matrix bool ``bad`` is true, naming the
    first such batch index."""
    import numpy as np

    flags = np.asarray(backend.to_numpy(bad))
    if flags.any():
        where = tuple(int(i) for i in np.argwhere(flags)[0])
        at = f"the matrix at batch index {where}" if where else "the matrix"
        raise LinAlgError(f"linalg.{name}: {at} {why}; {fix}")


def not_finite(backend: Backend, out: Any, core: int = 2) -> Any:
    return backend.unary("logical_not", finite(backend, out, core))


def decompose(
    name: str,
    x: Any,
    call: Callable[[Backend, Callable[..., Any], Any], Any],
    *,
    square: bool,
    check: Callable[[Backend, list[Any], Any], None] | None = None,
) -> list[Any]:
    """The shared path of the one-matrix ops: check x, widen half precision, replace the
    non-finite matrices by the identity, run ``call(backend, the backend's method, x)``, let
    ``check(backend, results, finite mask)`` raise, then NaN-poison and narrow the
    results back. The backend method is the op called ``name``."""
    backend, (x,) = arrays(name, x)
    matrices(name, x, square)
    x, dtype = floating(name, backend, x)
    ok = finite(backend, x)
    clean = replace(backend, x, ok, True)
    outs = call(backend, method(backend, name, clean), clean)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    if check is not None:
        check(backend, outs, ok)
    return narrow(backend, poison(backend, outs, ok), dtype)


__all__ = [
    "arrays",
    "decompose",
    "finite",
    "floating",
    "matrices",
    "method",
    "narrow",
    "not_finite",
    "numeric",
    "poison",
    "raise_where",
    "replace",
]
