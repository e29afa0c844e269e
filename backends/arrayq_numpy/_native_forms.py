"""Replay forms of the NumPy backend's native ops (:mod:`arrayq_numpy._replay` asks here):
the kernel call each method ends in, with what the recorded call settled bound.

A recorded plan replays arrays of the recorded shapes and dtypes (its signature fixes the
inputs', and so every step's), and its static arguments are the recorded ones; the native
kernels being in use (``ARRAYQ_NATIVE``, read once) and their SIMD level do not change in a
process. So a form is made only where the recorded call took the kernel path, and checks
on each call only what the signature leaves open:

* memory layout: the kernel path of a method reads a C-contiguous array without a copy
  (attention: any with a contiguous last axis, as a cache's window); another layout on
  replay calls the method.
* values: ``prefix_attention``'s key count (checked as the method checks it, and the
  kernel's limits, read per call as the method reads them), ``scaled_dot_product_attention``'s
  padding mask (its key lengths read per call, as the method reads them; a mask that is
  not a padding mask gets the method, and the frontend's reference where it declines),
  ``quantized_matmul``'s finite activations (the kernel reports them: it scans x for its
  scales anyway) and the thread's activation setting (a context variable): where they
  differ from the recorded call, the method runs.
* ``quantized_matmul``'s repacked weight is found once, when recording, and held weakly:
  once :meth:`RepackedWeights.clear` drops it, the method runs (building the copy anew),
  and the form finds the new copy for the next call; with another ``backend.repacked``,
  the method runs.

Each form returns what the method returns for such arrays, bit for bit: the same kernel on
the same arrays (tests/test_native_forms.py). The 8-bit ``quantized_matmul``,
``add_rms_norm``, ``swiglu_halves``, ``qkv_heads`` and ``prefix_attention`` forms are C
objects (``csrc/bound.c``) making these checks, the outputs and the kernel call in one call
from the replay, the method as their fallback (a Python closure cost ~4-6 us a call
around its kernel).
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from . import _native, _rowops

_F32 = np.dtype(np.float32)


def _f32(*arrays: Any) -> bool:
    """Plain float32 arrays, C-contiguous and non-empty (the recorded layout the forms bind)."""
    return all(type(a) is np.ndarray and a.dtype == _F32 and a.size and _laid(a) for a in arrays)


def _laid(a: np.ndarray) -> bool:
    """C-contiguous, aligned, writeable, with no negative stride (NumPy sets the contiguity
    flag whatever the stride of a length-1 axis): the layout the kernels read as it is."""
    return a.flags.carray and min(a.strides) >= 0


def _attendable(a: np.ndarray) -> bool:
    """The attention kernel's layout, as the method checks it (``_native.attends``): a
    contiguous last axis, aligned, no negative stride (a cache's window of a longer
    buffer is one, though not C-contiguous)."""
    return a.strides[-1] == a.itemsize and a.flags.aligned and min(a.strides) >= 0


def _weight(w: Any, width: int) -> bool:
    """A norm weight a form may bind: None, or a float32 (width,) C-contiguous array (bound
    by reference, as the plan binds its constants: a write into it is seen)."""
    return w is None or (_f32(w) and w.shape == (width,))


def form(backend: Any, method: str, args: tuple[Any, ...], fixed: tuple[bool, ...], result: Any) -> Any:
    """``(fn, positions)`` for a recorded call of one of the native ops, or None."""
    make = _FORMS.get(method)
    if make is None or not _rowops._runs():
        return None
    return make(backend, args, fixed, result)


def _rms_norm(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    x, weight, eps = args
    if not (fixed[1] and fixed[2] and _f32(x) and x.ndim and _weight(weight, x.shape[-1])):
        return None
    method, kernel, shape, rows = backend.rms_norm, _native._kernels.rms_norm, x.shape, (-1, x.shape[-1])

    def rms_norm(x: np.ndarray) -> np.ndarray:
        if not x.flags.carray:
            return method(x, weight, eps)
        out = np.empty(shape, _F32)
        kernel(x.reshape(rows), weight, out.reshape(rows), eps)
        return out

    return rms_norm, (0,)


def _add_rms_norm(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    x, y, weight, eps = args
    if not (fixed[2] and fixed[3] and _f32(x, y) and x.ndim and x.shape == y.shape and _weight(weight, x.shape[-1])):
        return None
    method, shape = backend.add_rms_norm, x.shape

    def add_rms_norm(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the bound call falls back to (another layout): the method."""
        return method(x, y, weight, eps)

    rows, d = math.prod(shape[:-1]), shape[-1]
    return _bound_rows("add_rms_norm", add_rms_norm, rows, d, (weight,), eps, (shape, shape)), (0, 1)


def _swiglu(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    gate, up = args
    if not (_f32(gate, up) and gate.ndim and gate.shape == up.shape):
        return None
    method, kernel, shape, rows = backend.swiglu, _native._kernels.swiglu, gate.shape, (-1, gate.shape[-1])

    def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
        if not (gate.flags.carray and up.flags.carray):
            return method(gate, up)
        out = np.empty(shape, _F32)
        kernel(gate.reshape(rows), up.reshape(rows), out.reshape(rows))
        return out

    return swiglu, (0, 1)


def _swiglu_halves(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    (gate_up,) = args
    if not (_f32(gate_up) and gate_up.ndim and gate_up.shape[-1] % 2 == 0):
        return None
    method, n = backend.swiglu_halves, gate_up.shape[-1] // 2
    shape = (*gate_up.shape[:-1], n)

    def swiglu_halves(gate_up: np.ndarray) -> np.ndarray:
        """What the bound call falls back to (another layout): the method."""
        return method(gate_up)

    return _bound_rows("swiglu_halves", swiglu_halves, math.prod(shape[:-1]), n, (), 0.0, (shape,)), (0,)


def _bound_rows(
    op: str, fallback: Any, rows: int, d: int, weights: tuple, eps: float, shapes: tuple, **more: Any
) -> Any:
    """The C object that replays ``op`` on float32 arrays of the recorded sizes and calls
    ``fallback`` (the method) for any other (csrc/bound.c, RowsCall): one C call a replay,
    where the form's Python cost ~4-6 us a call (flags, reshapes, np.empty, argument parsing)."""
    return _native._kernels.RowsCall(
        op, rows, d, weights, float(eps), np.ndarray, np.empty, _F32, shapes, fallback, fallback.__qualname__, **more
    )


def _tables(dims: int, base: float, scale: float, offset: Any, fixed: bool, length: int) -> Any:
    """The (cos, sin) tables of the backend's method: bound where the offset is a constant
    (read-only arrays the backend keeps), else a function of the replayed offset."""
    rope_tables = _rowops.rope_tables
    if fixed:
        tables = rope_tables(dims, base, scale, int(offset), length, _F32)
        return lambda offset: tables
    return lambda offset: rope_tables(dims, base, scale, int(offset), length, _F32)


def _rope(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    x, dims, traditional, base, scale, offset = args
    if not (all(fixed[1:5]) and _f32(x) and 2 <= x.ndim <= 4):
        return None
    method, kernel, shape = backend.rope, _native._kernels.rope, x.shape
    shape4, tables = (
        (1,) * (4 - x.ndim) + shape,
        _tables(dims, base, scale, offset, fixed[5], shape[-2]),
    )
    dims, traditional = int(dims), bool(traditional)

    def rope(x: np.ndarray, offset: Any) -> np.ndarray:
        if not _laid(x):
            return method(x, dims, traditional, base, scale, offset)
        cos, sin = tables(offset)
        out = np.empty(shape4, _F32)
        kernel(x.reshape(shape4), cos, sin, out, dims, traditional)
        return out.reshape(shape)

    return rope, (0, 5)


def _qkv_heads(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    qkv, n_heads, n_kv, head_dim, q_weight, k_weight, eps, dims, traditional, base, scale, offset = args
    if not (all(fixed[1:11]) and _f32(qkv) and qkv.ndim == 3):
        return None
    if not (_weight(q_weight, head_dim) and _weight(k_weight, head_dim) and q_weight is not None is not k_weight):
        return None
    method, (b, length, width) = backend.qkv_heads, qkv.shape
    tables = _tables(dims, base, scale, offset, fixed[11], length)
    q_shape, kv_shape, static = (b, n_heads, length, head_dim), (b, n_kv, length, head_dim), args[1:11]
    if (n_heads + 2 * n_kv) * head_dim != width:  # (the method's error, on each call)
        return None

    def qkv_heads(qkv: np.ndarray, offset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the bound call falls back to (another layout): the method."""
        return method(qkv, *static, offset)

    bound = _bound_rows(
        "qkv_heads", qkv_heads, b * length, head_dim, (q_weight, k_weight), eps, (q_shape, kv_shape, kv_shape),
        B=b, L=length, hq=n_heads, hkv=n_kv, dims=int(dims), traditional=bool(traditional), tables=tables,
    )  # fmt: skip
    return bound, (0, 11)


def _attended(q: Any, k: Any, v: Any) -> bool:
    """Arrays the attention kernel took when recording: plain arrays, non-empty, laid out as
    :func:`_attendable` says; q float32, 4-d, with at most ATTENTION_MAX_ROWS rows; k and v
    float32 or float16 (``_native.kv_dtype_fits``: dtypes fixed by the signature)."""
    arrays = (q, k, v)
    if not all(type(a) is np.ndarray and a.size and _attendable(a) for a in arrays):
        return False
    fits = q.dtype == _F32 and _native.kv_dtype_fits(k, v)
    return fits and q.ndim == 4 and q.shape[2] <= _native.ATTENTION_MAX_ROWS


def _attention_kernel(q: np.ndarray, v: np.ndarray) -> tuple[Any, int, tuple[int, ...]]:
    """The kernel, the SIMD level's index (fixed in a process) and the output's shape,
    bound once by the attention forms."""
    index = _native._chosen_level()
    assert index is not None, "forms are made only where the native kernels run"
    return _native._kernels.attention, index, q.shape[:3] + v.shape[3:]


def _eager(method: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """``method(k, v)`` as arrayq.nn calls an attention method, for a replayed call the
    kernel does not take: float16 keys and values it declines are widened to q's float32
    and offered again. Returns the result (NotImplemented where it declines those too) and
    the keys and values it was last given."""
    out = method(k, v)
    if out is NotImplemented and k.dtype != q.dtype:
        k, v = k.astype(q.dtype), v.astype(q.dtype)
        out = method(k, v)
    return out, k, v


def _prefix_attention(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    q, k, v, scale, length, causal = args
    if not (fixed[3] and fixed[5] and _attended(q, k, v)):
        return None
    method, native, rows = backend.prefix_attention, _native, q.shape[2]
    _, index, _ = _attention_kernel(q, v)
    low, masked = rows if causal else 1, bool(causal and rows > 1)  # (the method's mask: "causal" for rows > 1)

    def prefix_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, length: Any) -> np.ndarray:
        """What the bound call falls back to: the method (its error, or the reference, or
        another layout; float16 keys it declines: widened)."""
        return _eager(lambda k, v: method(q, k, v, scale, length, causal), q, k, v)[0]

    # (one C call a replay, csrc/bound.c: the key count checked as the method checks it, the
    # kernel's limits read per call as the method reads them, the layout as _attendable says)
    bound = _native._kernels.PrefixAttention(
        index, q.shape, k.shape, v.shape[3], k.itemsize, low, scale, masked, native, np.ndarray, np.empty, _F32,
        prefix_attention, prefix_attention.__qualname__,
    )  # fmt: skip
    return bound, (0, 1, 2, 4)


def _scaled_dot_product_attention(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    """Decode attention (a batched step's: under a padding mask, an input of the plan whose
    key lengths are read on each call through the backend's remembered last answer; or
    under none or the causal one, fixed when recording). Where the kernel does not take a
    call, the method runs, and where it declines, the frontend's reference (what eager
    code gets): a step with a form never declines."""
    q, k, v, scale, mask = args
    if not (fixed[3] and _attended(q, k, v) and type(result) is np.ndarray):
        return None
    if fixed[4] and not (mask is None or isinstance(mask, str)):
        return None
    method, native, lengths_of = backend.scaled_dot_product_attention, _native, backend.key_lengths
    (batch, rows), keys = (q.shape[0], q.shape[2]), k.shape[2]
    kernel, index, shape = _attention_kernel(q, v)
    padded = not fixed[4]  # (else None or a string, "causal": arrayq.nn checked it)
    causal = not padded and mask is not None

    def scaled_dot_product_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: Any = mask) -> np.ndarray:
        lengths = lengths_of(mask, batch, keys) if padded else None
        # (the kernel's limits read per call, as the method reads them)
        fits = rows <= native.ATTENTION_MAX_ROWS and keys <= native.ATTENTION_MAX_KEYS
        if (padded and lengths is None) or not (fits and _attendable(q) and _attendable(k) and _attendable(v)):
            out, k, v = _eager(lambda k, v: method(q, k, v, scale, mask), q, k, v)
            if out is NotImplemented:
                from arrayq.nn import attention_reference

                out = attention_reference(q, k, v, scale, mask)
            return out
        out = np.empty(shape, _F32)
        if lengths is None:
            kernel(index, q, k, v, out, scale, causal)
        else:
            kernel(index, q, k, v, out, scale, False, lengths)
        return out

    return scaled_dot_product_attention, (0, 1, 2, 4) if padded else (0, 1, 2)


def _quantized_matmul(backend: Any, args: tuple, fixed: tuple, result: Any) -> Any:
    x, qw, transpose = args
    if not (fixed[1] and fixed[2] and transpose and _f32(x) and _native.repacked_runs()):
        return None
    packed = qw.packed
    if qw.mode != "affine" or type(packed) is not np.ndarray or packed.ndim != 2 or qw.group_size % 32:
        return None
    if not (type(result) is np.ndarray and np.isfinite(x).all()):  # (the method's repacked path ran)
        return None
    index, cache = _native._chosen_level(), backend.repacked
    assert index is not None

    def lookup() -> tuple[Any, int, bool]:
        """The repacked copy (made where missing), held weakly: RepackedWeights.clear frees it."""
        data, kind, symmetric = cache.get(packed, qw.scales, qw.biases, qw.group_size, qw.bits, index)
        return weakref.ref(data), kind, symmetric

    found, kind, symmetric = lookup()
    method = backend.quantized_matmul

    def quantized_matmul(x: np.ndarray) -> np.ndarray:
        """What the bound call falls back to: the method (see RepackedMatmul)."""
        return method(x, qw, True)

    def relookup() -> tuple[Any, int, bool] | None:
        """After the method ran for a cleared copy: the copy it made, for the next call."""
        return lookup() if backend.repacked is cache and _native.current_activations() == "int8" else None

    # (one C call a replay: the checks above and the kernel, csrc/bound.c)
    bound = _native._kernels.RepackedMatmul(
        index, math.prod(x.shape[:-1]), packed.shape[0], x.shape[-1], qw.group_size, qw.bits, found, kind, symmetric,
        backend, cache, _native._activations, _native._default_activations(), np.ndarray, np.empty,
        (*x.shape[:-1], packed.shape[0]), _F32, quantized_matmul, relookup, quantized_matmul.__qualname__,
    )  # fmt: skip
    return bound, (0,)


_FORMS = {
    "rms_norm": _rms_norm,
    "add_rms_norm": _add_rms_norm,
    "swiglu": _swiglu,
    "swiglu_halves": _swiglu_halves,
    "rope": _rope,
    "qkv_heads": _qkv_heads,
    "prefix_attention": _prefix_attention,
    "scaled_dot_product_attention": _scaled_dot_product_attention,
    "quantized_matmul": _quantized_matmul,
}
