"""arrayq's JAX backend, on ``jax.Array`` (XLA: CPU, or GPU where jax has one).

Install with ``pip install 'arrayq[jax]'`` (JAX's CPU wheel). Importing this package does not import
jax: :class:`JAXBackend` imports ``jax`` when it is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arrayq.backend import Array, UnsupportedDTypeError
from arrayq.backend import dtypes as dt
from arrayq.quant import QuantizedWeight
from arrayq_jax import _fast, _quantized
from arrayq_jax._linalg import JAXLinalg
from arrayq_jax._x64 import X64_HINT, gaps_without_x64, x64_enabled

# arrayq op name -> jax.numpy function name, where they differ. Ops not listed use the same
# name (jax.numpy follows the array API standard).
_UNARY_NAMES: dict[str, str] = {}
_BINARY_NAMES = {"pow": "power"}


class JAXBackend(JAXLinalg):
    """The JAX backend: ``jax.Array`` on XLA's CPU (or GPU) device, ``arrayq.compile`` as ``jax.jit``.

    **Dtypes and the x64 flag.** JAX keeps 64-bit dtypes behind its process-wide flag
    ``jax_enable_x64`` (off by default: float64 data silently becomes float32). This backend never
    changes the flag. With it off, float64, int64, uint64 and complex128 are declared gaps and asking
    for them raises UnsupportedDTypeError (never a silent narrowing); to use them, start the process
    with ``JAX_ENABLE_X64=1`` in the environment (read when jax is imported). The flag is read when an
    array is made, so a program that flips it with ``jax.config.update`` gets the new dtypes from
    then on. Defaults: float32 for Python floats (complex64 for complex), and the default integer
    int32 with x64 off, int64 with it on: indices (argmax, searchsorted, argsort, nonzero, unique
    indices) come in that dtype.

    **Precision.** Float matmuls run at ``lax.Precision.HIGHEST`` (no TF32 on GPUs); elementwise ops
    are XLA's, within the conformance tolerances of NumPy. quantize and dequantize reproduce MLX's
    formats bit for bit: XLA rewrites ``a / b`` into ``a * (1 / b)`` and contracts ``q * s + b`` into
    a fused multiply-add inside a jitted computation, so they run on the host in NumPy
    (:mod:`arrayq_jax._quantized`).

    **Linear algebra**: ``jax.numpy.linalg`` for the decompositions and solvers (:mod:`arrayq_jax._linalg`).

    **Indexing.** ``take`` and ``take_along_axis`` get indices the frontend has checked in range
    (IndexError otherwise, as on every backend); jax's own ``take`` would give NaN or clamp instead.

    **Compile.** :meth:`compile` is ``jax.jit``: arrayq traces once per signature (shapes, dtypes,
    static values), and reading a value inside the trace (``to_numpy``, ``float(x)``) raises
    arrayq's CompileError. Arrays a compiled function closes over become constants that XLA copies
    into the executable: pass weights as arguments (``models.generate``'s decode step does).

    **Devices.** ``"cpu"``, and ``"gpu"`` (the default) where jax's default backend is a GPU (a CUDA
    or ROCm jaxlib): ``device="gpu"`` is jax's first GPU device.
    """

    library_module = "jax"
    library_packages = ("jax", "jaxlib")
    install_hint = "pip install 'arrayq[jax]'"
    default_float = dt.float32

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self._native = {d: jnp.dtype(d.dtype) for d in dt.ALL_DTYPES}
        self._from_native = {v: k for k, v in self._native.items()}
        self.default_int = dt.int64 if x64_enabled(jax) else dt.int32
        self.declared_gaps = {} if x64_enabled(jax) else gaps_without_x64()

    # ------------------------------------------------------------------ data and dtypes
    def is_array(self, x: Any) -> bool:
        return isinstance(x, self.jax.Array)  # tracers inside jax.jit too

    def gaps(self, device: Any = None) -> dict[str, str]:
        """The 64-bit dtypes while ``jax_enable_x64`` is off; nothing while it is on."""
        return {} if x64_enabled(self.jax) else gaps_without_x64()

    def native_dtype(self, dtype: dt.DType) -> Any:
        """The numpy dtype jax uses for ``dtype``; UnsupportedDTypeError for a 64-bit one while
        ``jax_enable_x64`` is off."""
        dtype = dt.as_dtype(dtype)
        if dtype.name in self.gaps():
            raise UnsupportedDTypeError(f"backend {self.name!r} (JAX) has no {dtype.name} now: {X64_HINT}")
        return self._native[dtype]

    def dtype_of(self, x: Array) -> dt.DType:
        found = self._from_native.get(x.dtype)
        return found if found is not None else dt.as_dtype(x.dtype)

    def from_numpy(self, a: Any, device: Any = None) -> Array:
        import numpy as np

        a = np.asarray(a)
        self.native_dtype(dt.as_dtype(a.dtype))  # never let jax narrow a 64-bit array silently
        return self.jax.device_put(a, self._device(device))

    def to_numpy(self, x: Array) -> Any:
        """A NumPy copy of ``x``; RuntimeError inside ``jax.jit`` (arrayq.compile), where x has no value."""
        import numpy as np

        if isinstance(x, self.jax.core.Tracer):
            raise RuntimeError(
                "to_numpy of a traced JAX array: jax.jit (arrayq.compile) is tracing the function, and a "
                "tracer has no value to read"
            )
        return np.array(x)

    def astype(self, x: Array, dtype: dt.DType, copy: bool = True) -> Array:
        native = self.native_dtype(dtype)
        if x.dtype == native and not copy:
            return x
        return x.astype(native)  # jax arrays are immutable: a new array is as good as a copy

    def asarray(self, obj: Any, dtype: dt.DType | None, device: Any, copy: bool | None) -> Array:
        if self.is_array(obj):
            if dtype is None or self.dtype_of(obj) == dtype:
                return obj  # immutable: sharing is as good as a copy
            if copy is False:
                raise ValueError(f"asarray(copy=False) cannot change the dtype of a JAX array to {dtype.name}")
            return self.astype(obj, dtype)
        return super().asarray(obj, dtype, device, copy)

    # ------------------------------------------------------------------ devices, compile
    def devices(self) -> list[Any]:
        """``["cpu"]``, with ``"gpu"`` first where jax has a GPU (its default device)."""
        platform = self.jax.default_backend()
        return ["gpu", "cpu"] if platform in ("gpu", "cuda", "rocm") else ["cpu"]

    def _device(self, device: Any) -> Any:
        if device is None:
            return None
        self.check_device(device)
        return self.jax.devices("cpu" if device == "cpu" else self.jax.default_backend())[0]

    def device_of(self, x: Array) -> Any:
        try:
            (found,) = x.devices()
        except Exception:  # a tracer: on the default device
            return self.devices()[0]
        return "cpu" if found.platform == "cpu" else "gpu"

    def eval(self, *xs: Array) -> None:
        for x in xs:
            if not isinstance(x, self.jax.core.Tracer):
                x.block_until_ready()

    compile_copies_captured_arrays = True  # XLA embeds closed-over arrays in its program

    def compile(self, fn: Any) -> Any:
        """``jax.jit(fn)``: one XLA program per signature (arrayq keys the signatures)."""
        return self.jax.jit(fn)

    def notes(self) -> list[str]:
        versions = ", ".join(f"{p} {_version(p)}" for p in self.library_packages)
        x64 = "on" if x64_enabled(self.jax) else "off: 64-bit dtypes are declared gaps (JAX_ENABLE_X64=1 turns it on)"
        return [f"{versions} on {self.jax.default_backend()}; jax_enable_x64 {x64}"]

    # ------------------------------------------------------------------ creation
    def full(self, shape: tuple[int, ...], fill_value: Any, dtype: dt.DType | None, device: Any) -> Array:
        if dtype is None:
            dtype = (
                dt.bool_
                if isinstance(fill_value, bool)
                else self.default_int
                if isinstance(fill_value, int)
                else self.default_complex
                if isinstance(fill_value, complex)
                else self.default_float
            )
        return self.jnp.full(tuple(shape), fill_value, dtype=self.native_dtype(dtype), device=self._device(device))

    def arange(self, start: Any, stop: Any, step: Any, dtype: dt.DType | None, device: Any) -> Array:
        import numpy as np

        if dtype is None:
            ints = all(isinstance(v, int) for v in (start, stop, step))
            dtype = self.default_int if ints else self.default_float
        # computed in NumPy (exactly the array API's start + i * step), then moved
        return self.from_numpy(np.arange(start, stop, step, dtype=dtype.dtype), device)

    # ------------------------------------------------------------------ elementwise
    def unary(self, op: str, x: Array) -> Array:
        return getattr(self.jnp, _UNARY_NAMES.get(op, op))(x)

    def binary(self, op: str, x1: Array, x2: Array) -> Array:
        if op == "divide":
            return self._divide(x1, x2)
        return getattr(self.jnp, _BINARY_NAMES.get(op, op))(x1, x2)

    def _divide(self, x1: Array, x2: Array) -> Array:
        """IEEE division. XLA rewrites ``x1 / broadcast(x2)`` (a scalar or a broadcast divisor)
        into ``x1 * (1 / x2)``, an ulp off; so such a divisor is broadcast to the result's shape
        first, as its own array (eagerly), or behind an optimisation barrier inside ``jax.jit``."""
        jnp = self.jnp
        shape = jnp.broadcast_shapes(jnp.shape(x1), jnp.shape(x2))
        if jnp.shape(x2) == shape or not jnp.issubdtype(jnp.result_type(x1, x2), jnp.inexact):
            return jnp.divide(x1, x2)
        divisor = jnp.broadcast_to(jnp.asarray(x2, dtype=jnp.result_type(x1, x2)), shape)
        if isinstance(divisor, self.jax.core.Tracer):
            divisor = self.jax.lax.optimization_barrier(divisor)
        return jnp.divide(x1, divisor)

    def where(self, condition: Array, x1: Array, x2: Array) -> Array:
        return self.jnp.where(condition, x1, x2)

    # ------------------------------------------------------------------ reductions
    def _accumulator(self, x: Array, dtype: dt.DType | None) -> Any:
        """The array API's sum/prod/cumulative_sum dtype: ``dtype``, or for a narrower integer (or
        bool) the default int (its unsigned twin for unsigned)."""
        if dtype is not None:
            return self.native_dtype(dtype)
        d, wide = self.dtype_of(x), self.default_int
        if d.kind in ("bool", "signed") and d.bits < wide.bits:
            return self.native_dtype(wide)
        if d.kind == "unsigned" and d.bits < wide.bits:
            return self.native_dtype(dt.as_dtype("u" + wide.name))
        return x.dtype

    def reduce(self, op: str, x: Array, axis: tuple[int, ...] | None, keepdims: bool, dtype: dt.DType | None) -> Array:
        jnp = self.jnp
        if op in ("sum", "prod"):
            acc = self._accumulator(x, dtype)
            return getattr(jnp, op)(x.astype(acc), axis=axis, keepdims=keepdims, dtype=acc)
        return getattr(jnp, op)(x, axis=axis, keepdims=keepdims)

    def argreduce(self, op: str, x: Array, axis: int | None, keepdims: bool) -> Array:
        return self._index(getattr(self.jnp, op)(x, axis=axis, keepdims=keepdims))

    def _index(self, x: Array) -> Array:
        """An index array in the default integer dtype (jax gives int32 whatever the flag)."""
        return x.astype(self._native[self.default_int])

    def cumulative_sum(self, x: Array, axis: int, dtype: dt.DType | None, include_initial: bool) -> Array:
        acc = self._accumulator(x, dtype)
        return self.jnp.cumulative_sum(x.astype(acc), axis=axis, dtype=acc, include_initial=include_initial)

    # ------------------------------------------------------------------ shapes and indexing
    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.jnp.reshape(x, tuple(shape))

    def permute_dims(self, x: Array, axes: tuple[int, ...]) -> Array:
        return self.jnp.permute_dims(x, tuple(axes))

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.jnp.broadcast_to(x, tuple(shape))

    def concat(self, arrays: Sequence[Array], axis: int | None) -> Array:
        return self.jnp.concat(list(arrays), axis=axis)

    def flip(self, x: Array, axis: tuple[int, ...] | None) -> Array:
        return self.jnp.flip(x, axis=axis)

    def _in_range(self, indices: Array, size: int) -> Array:
        """``indices`` (checked in [-size, size) by the frontend) made non-negative."""
        return self.jnp.where(indices < 0, indices + size, indices)

    def take(self, x: Array, indices: Array, axis: int) -> Array:
        # the frontend has checked the range; "clip" keeps even a direct call from reading NaN fill
        indices = self._in_range(indices, x.shape[axis])
        return self.jnp.take(x, indices, axis=axis, mode="clip")

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        indices = self._in_range(indices, x.shape[axis])
        return self.jnp.take_along_axis(x, indices, axis=axis, mode="clip")

    # ------------------------------------------------------------------ searching, sorting, sets
    def nonzero(self, x: Array) -> tuple[Array, ...]:
        return tuple(self._index(i) for i in self.jnp.nonzero(x))

    def searchsorted(self, x1: Array, x2: Array, side: str, sorter: Array | None) -> Array:
        jnp = self.jnp
        if sorter is not None:
            x1 = jnp.take(x1, sorter, axis=0, mode="clip")
        if not self.is_array(x2):
            x2 = jnp.asarray(x2, dtype=x1.dtype)
        return self._index(jnp.searchsorted(x1, x2, side="right" if side == "right" else "left"))

    def sort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return self.jnp.sort(x, axis=axis, descending=descending, stable=True)

    def argsort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return self._index(self.jnp.argsort(x, axis=axis, descending=descending, stable=True))

    def unique_all(self, x: Array) -> tuple[Array, Array, Array, Array]:
        values, indices, inverse, counts = self.jnp.unique_all(x)
        return values, self._index(indices), self._index(self.jnp.reshape(inverse, x.shape)), self._index(counts)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, x1: Array, x2: Array) -> Array:
        return self.jnp.matmul(x1, x2, precision=self.jax.lax.Precision.HIGHEST)

    # ------------------------------------------------------------------ model composites
    # arrayq.nn has checked the arguments; the references, jitted once per shape (arrayq_jax._fast)
    def rms_norm(self, x: Array, weight: Array | None, eps: float) -> Any:
        return _fast.rms_norm(self, x, weight, eps)

    def scaled_dot_product_attention(self, q: Array, k: Array, v: Array, scale: float, mask: Any) -> Any:
        return _fast.scaled_dot_product_attention(self, q, k, v, scale, mask)

    # ------------------------------------------------------------------ quantized linear algebra
    # The frontend (arrayq.quant) has validated every argument before these run.
    def quantize(self, w: Array, group_size: int, bits: int, mode: str) -> Any:
        return _quantized.quantize(self, w, group_size, bits, mode)

    def dequantize(self, qw: QuantizedWeight, dtype: dt.DType) -> Any:
        return _quantized.dequantize(self, qw, dtype)

    def quantized_matmul(self, x: Array, qw: QuantizedWeight, transpose: bool) -> Any:
        return _quantized.quantized_matmul(self, x, qw, transpose)


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


__all__ = ["JAXBackend"]
