"""The NumPy backend's replay forms (:meth:`arrayq.backend.Backend.replay_form`): what a
recorded plan calls on replay instead of a backend method, for the methods that are thin
wrappers of NumPy calls.

Each form is the call the method ends up making, with the static arguments bound and the
checks fixed by the recorded shapes and dtypes left out: ``reshape`` and ``permute_dims``
(NumPy's ``np.reshape`` / ``np.transpose``, two Python wrappers around the array's own
method) become ``x.reshape(shape)`` / ``x.transpose(axes)`` through
:func:`operator.methodcaller`; ``astype`` becomes ``x.astype(dtype, copy=...)``; ``binary``
and ``unary`` become the ufunc itself (with ``out=...`` where the result is 0-d: NumPy
gives a scalar there, which the method turns into an array); ``clip`` with Python bounds
inside the dtype's range becomes the one ``np.clip`` call that array-api-compat's
``clip`` ends in, its bounds converted once.
The native ops (rms_norm, add_rms_norm, swiglu, swiglu_halves, rope, qkv_heads, prefix_attention,
scaled_dot_product_attention's decode calls and 8-bit-activation quantized_matmul) get their
kernel call without the checks the recorded call settled (:mod:`arrayq_numpy._native_forms`).
Plain ``numpy.ndarray`` arguments only (NumPy scalars and subclasses keep the method; a
compiled function's signature includes its arrays' types, so a replay gets the same types).
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np

from arrayq.backend import dtypes as dt

from . import _native_forms

#: Methods that only reshape their first argument: replayed as ``x.reshape(result's shape)``
#: (the backend's composites ``expand_dims`` and ``squeeze`` end in its ``reshape``).
_RESHAPES = frozenset({"reshape", "expand_dims", "squeeze"})


def replay_form(backend: Any, method: str, args: tuple[Any, ...], fixed: tuple[bool, ...], result: Any) -> Any:
    """``(fn, positions)`` for a recorded call of ``backend``'s ``method`` (see
    :meth:`arrayq.backend.Backend.replay_form`), or None."""
    native = _native_forms.form(backend, method, args, fixed, result)
    if native is not None:
        return native
    # (plain arrays only: a NumPy scalar's methods and a subclass's ufuncs differ)
    if type(result) is not np.ndarray or not all(type(a) is np.ndarray for a in args if backend.is_array(a)):
        return None
    if method in ("unary", "binary") and fixed[0]:
        return _ufunc(backend, method, args, result)
    if not all(fixed[1:]):  # (x, then static arguments)
        return None
    if method in _RESHAPES:
        return operator.methodcaller("reshape", result.shape), (0,)
    if method == "permute_dims":
        return operator.methodcaller("transpose", args[1]), (0,)
    if method == "astype" and result.dtype == np.float16 and args[0].dtype == np.float32:
        # (the method: its F16C conversion, the same values as NumPy's, for a float16 KV cache)
        return functools.partial(backend.astype, dtype=args[1], copy=args[2] if len(args) > 2 else True), (0,)
    if method == "astype":  # (copy: True when not given, as the method's default)
        return operator.methodcaller("astype", result.dtype, copy=args[2] if len(args) > 2 else True), (0,)
    if method == "clip":
        return _clip(backend, *args)
    return None


def _ufunc(backend: Any, method: str, args: tuple[Any, ...], result: np.ndarray) -> Any:
    ufunc = getattr(backend.xp, args[0], None)
    if type(ufunc) is not np.ufunc or result.ndim == 0 and not _ARRAY_OUT:
        return None
    fn = ufunc if result.ndim else functools.partial(ufunc, out=...)
    if method == "unary":
        # (complex results of some ops get the array API's special cases after the ufunc)
        return None if result.dtype.kind == "c" else (fn, (1,))
    weak = backend._weak_floats(args[1], args[2])  # (a bfloat16 array and a Python float)
    return (fn, (1, 2)) if weak[0] is args[1] and weak[1] is args[2] else None


def _clip(backend: Any, x: np.ndarray, low: Any, high: Any) -> Any:
    """``clip`` as ``np.clip(x, low, high, casting="no")`` into a new array, the bounds
    converted to x's dtype once: for int and float dtypes (not bfloat16, which takes the
    contract's composite) and bounds that are None or Python numbers (ints inside the
    range of an integer dtype, where array-api-compat changes nothing about them)."""
    kind = x.dtype.kind
    if kind not in "iuf" or x.dtype == backend.native_dtype(dt.bfloat16):
        return None
    for bound in (low, high):
        if kind == "f" and type(bound) not in (int, float, type(None)):
            return None
        if kind != "f" and not (bound is None or type(bound) is int and _inside(bound, x.dtype)):
            return None
    low, high = (None if b is None else np.asarray(b, dtype=x.dtype) for b in (low, high))
    return functools.partial(_clipped, low, high), (0,)


def _inside(n: int, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return int(info.min) < n < int(info.max)


def _clipped(low: np.ndarray | None, high: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, x.dtype)
    np.clip(x, low, high, out=out, casting="no")
    return out


def _array_out() -> bool:
    """Whether this NumPy's ufuncs take ``out=...`` (an array back, also for a 0-d result)."""
    try:
        return type(np.negative(np.int8(1), out=...)) is np.ndarray
    except TypeError:
        return False


_ARRAY_OUT = _array_out()
