"""arrayq's MLX backend, on ``mlx.core.array``.

Install with ``pip install 'arrayq[mlx]'`` (Apple silicon, or the CPU build on Linux), or ``pip install 'arrayq[cuda]'``
for MLX's CUDA build on NVIDIA GPUs. Importing this package does not import mlx: :class:`MLXBackend` imports
``mlx.core`` when it is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arrayq.backend import Array, UnsupportedDTypeError, UnsupportedOperationError
from arrayq.backend import dtypes as dt
from arrayq.quant import QuantizedWeight
from arrayq_mlx import _composed, _distributed, _fast, _fft, _linalg, _quantized
from arrayq_mlx import _workarounds as fix
from arrayq_mlx._devices import Devices

# arrayq op name -> mlx.core function name, where they differ (or the arrayq name is an
# alias MLX may drop). Ops not listed use the same name.
_UNARY_NAMES = {
    "acos": "arccos",
    "acosh": "arccosh",
    "asin": "arcsin",
    "asinh": "arcsinh",
    "atan": "arctan",
    "atanh": "arctanh",
}
_BINARY_NAMES = {
    "atan2": "arctan2",
    "pow": "power",
    "bitwise_left_shift": "left_shift",
    "bitwise_right_shift": "right_shift",
}
#: Ops MLX lacks or gets wrong against the array API; built here from MLX ops.
_COMPOSED_UNARY = frozenset({"signbit", "sign", "expm1", "tanh"})
_COMPOSED_BINARY = frozenset({"copysign", "remainder", "bitwise_left_shift", "bitwise_right_shift"})
_DATA_DEPENDENT = "its output shape depends on the data, and MLX builds graphs of static shapes"


class MLXBackend(_fft.FFT, _distributed.Distributed, _linalg.MLXLinalg):
    """The MLX backend: lazy ``mlx.core.array`` graphs, CPU, Apple GPU (Metal) or NVIDIA GPU
    (CUDA build), with MLX's fused quantized kernels.

    **Devices.** ``"cpu"``, and ``"gpu"`` where MLX has a Metal or CUDA device. MLX arrays
    belong to no device: creation ops given ``device=`` run in ``mx.stream(device)``, every
    other op on MLX's default device (the rule: :mod:`arrayq_mlx._devices`).

    **Dtypes.** All of arrayq's dtypes except complex128 (MLX has none). float64 exists only
    on the CPU device: asking for it while the GPU is the target raises
    UnsupportedDTypeError. Defaults: float32 (complex64 for Python complex numbers) and int32.

    **Laziness.** Every op returns MLX's lazy array without evaluating it; :meth:`eval` (``arrayq.eval``) calls
    ``mx.eval`` and :meth:`to_numpy` evaluates. The few places that must look at data are: ``repeat`` with an array of
    counts (the counts set the output shape), and the frontend's own validation (``arrayq.quantize`` checks the weight
    is finite; ``gather_qmm`` checks index ranges).

    **Scalars.** Python scalars mix as weak scalars: the array's dtype wins (MLX's rule).
    Every result is an ``mlx.core.array``, 0-d ones included.

    **Native, composed, gaps.** Every primitive maps to one ``mlx.core`` op (the name maps
    below), except where MLX lacks the op or differs from the array API: those are composed
    from MLX ops in :mod:`arrayq_mlx._composed`. Composites with an MLX op are overridden
    (linalg's: :mod:`arrayq_mlx._linalg`, CPU stream; fft's: :mod:`arrayq_mlx._fft`); the
    distributed ops are ``mx.distributed``'s (:mod:`arrayq_mlx._distributed`). ``nonzero``,
    ``unique_*`` and boolean indexing are declared gaps: their output shape depends on the data.

    **Precision.** float32 results agree with NumPy to a few ulp; float64 (CPU) ones too, where MLX's own float64
    kernels are float32-accurate they are rebuilt (:mod:`arrayq_mlx._workarounds`). On NVIDIA (and M5) GPUs MLX runs
    float32 matmuls in TF32 (~1e-3 relative, measured on an H100) unless the environment sets ``MLX_ENABLE_TF32=0``.

    **MLX defects worked around**: one function each in :mod:`arrayq_mlx._workarounds`, with the MLX version it was
    seen in and the test that fails once MLX is fixed. The quantized strategy (CPU float32 and dequantize-then-matmul,
    arrayq's CUDA kernels) is :mod:`arrayq_mlx._quantized`.
    """

    library_module = "mlx.core"
    install_hint = "pip install 'arrayq[mlx]'"
    gives_way = False
    default_float = dt.float32
    default_int = dt.int32
    declared_gaps = {
        "complex128": "MLX has no complex128",
        "float64": "MLX has no float64 on the GPU; CPU only",
        "data-dependent shapes": _DATA_DEPENDENT,
        "boolean indexing": "MLX arrays cannot be indexed by a boolean mask (" + _DATA_DEPENDENT + ")",
        "nonzero": _DATA_DEPENDENT,
        "unique_all": _DATA_DEPENDENT,
        "unique_counts": _DATA_DEPENDENT,
        "unique_inverse": _DATA_DEPENDENT,
        "unique_values": _DATA_DEPENDENT,
    }

    #: The oldest MLX this backend was written and tested against (0.32.4): it uses
    #: mx.searchsorted, mx.count_nonzero, mx.vecdot, mx.unstack and dequantize(dtype=).
    min_mlx_version = (0, 32)

    def __init__(self) -> None:
        import re

        import mlx.core as mx

        mlx_version = str(getattr(mx, "__version__", "unknown"))  # (mlx's type stubs omit __version__)
        found = tuple(int(v) for v in re.findall(r"\d+", mlx_version)[:2])
        if found < self.min_mlx_version:
            # an ImportError, so the registry reports the backend unavailable with install_hint
            raise ImportError(
                f"arrayq's MLX backend needs mlx >= {'.'.join(map(str, self.min_mlx_version))}, found {mlx_version}"
            )
        self.mx = mx
        self._native = {}
        for d in dt.ALL_DTYPES:
            native = getattr(mx, "bool_" if d.name == "bool" else d.name, None)
            if native is not None:
                self._native[d] = native
        self._from_native = {v: k for k, v in self._native.items()}
        self._devices = Devices(mx, self)
        self._cuda_route = _quantized.CudaRoute(mx)  # arrayq's own CUDA kernels, built on first use

    # ------------------------------------------------------------------ data and dtypes
    def is_array(self, x: Any) -> bool:
        return isinstance(x, self.mx.array)

    def _native_for(self, dtype: dt.DType, device: Any = None) -> Any:
        native = self._native.get(dtype)
        if native is None:
            raise UnsupportedDTypeError(
                f"backend {self.name!r} (MLX) has no dtype {dtype.name}; use complex64 or move "
                "the data to another backend"
            )
        if dtype == dt.float64 and self._devices.targets_gpu(device):
            raise UnsupportedDTypeError(
                f"backend {self.name!r} (MLX) has float64 only on the CPU device, and this op "
                "targets the GPU; cast to float32, or create on device='cpu' / use "
                "mx.set_default_device(mx.cpu)"
            )
        return native

    def native_dtype(self, dtype: dt.DType) -> Any:
        """The ``mlx.core`` dtype; UnsupportedDTypeError for complex128, and for float64 on the GPU."""
        return self._native_for(dt.as_dtype(dtype))

    def dtype_of(self, x: Array) -> dt.DType:
        found = self._from_native.get(x.dtype)
        return found if found is not None else dt.as_dtype(x.dtype)

    def from_numpy(self, a: Any, device: Any = None) -> Array:
        import numpy as np

        a = np.asarray(a)
        dtype = dt.as_dtype(a.dtype)
        native = self._native_for(dtype, device)
        if not a.flags.c_contiguous:  # mx.array refuses negative strides
            a = np.ascontiguousarray(a)
        with self._devices.stream(device):
            if dtype == dt.bfloat16:
                # mx.array does not reliably take ml_dtypes.bfloat16: move the raw bits
                bits = self.mx.array(a.view(np.uint16))  # keeps 0-d
                return self.mx.view(bits, self.mx.bfloat16)
            return self.mx.array(a, dtype=native)

    def to_numpy(self, x: Array) -> Any:
        """A NumPy copy of ``x`` (evaluating it): a copy, so that writing to it cannot
        change an MLX array, which MLX treats as immutable."""
        import numpy as np

        if x.dtype == self.mx.bfloat16:
            import ml_dtypes

            return np.array(self.mx.view(x, self.mx.uint16)).view(ml_dtypes.bfloat16)
        return np.array(x)

    def astype(self, x: Array, dtype: dt.DType, copy: bool = True) -> Array:
        native = self._native_for(dtype)
        if x.dtype == native and not copy:
            return x
        return x.astype(native)

    def asarray(self, obj: Any, dtype: dt.DType | None, device: Any, copy: bool | None) -> Array:
        if self.is_array(obj):
            if dtype is None or self.dtype_of(obj) == dtype:
                return obj  # MLX arrays are immutable: sharing one is as good as a copy
            if copy is False:
                raise ValueError(f"asarray(copy=False) cannot change the dtype of an MLX array to {dtype.name}")
            return self.astype(obj, dtype)
        if copy is False:
            raise ValueError(
                "asarray(copy=False) cannot wrap a non-MLX object in an MLX array without copying; pass copy=None"
            )
        return super().asarray(obj, dtype, device, None)

    # ------------------------------------------------------------------ devices, laziness
    def devices(self) -> list[Any]:
        """``["cpu"]``, plus ``"gpu"`` where MLX has a Metal or CUDA device; the default first."""
        return self._devices.listed()

    def device_of(self, x: Array) -> Any:
        """MLX arrays carry no device; ops on ``x`` run on MLX's default device, which this names."""
        return "gpu" if self._devices.targets_gpu() else "cpu"

    def gaps(self, device: Any = None) -> dict[str, str]:
        """float64 is a gap on the GPU only; MLX has it on the CPU."""
        if self._devices.targets_gpu(device):
            return self.declared_gaps
        return {k: v for k, v in self.declared_gaps.items() if k != "float64"}

    def check_device(self, device: Any) -> None:
        self._devices.check(device)

    def batch_invariant(self, device: Any = None) -> bool:
        return not self._devices.targets_gpu(device)  # (the CPU measured so; a GPU not checked)

    def eval(self, *xs: Array) -> None:
        if xs:
            self.mx.eval(*xs)

    def async_eval(self, *xs: Array) -> None:
        if xs:
            self.mx.async_eval(*xs)

    def compile(self, fn: Any) -> Any:  # mx.compile: the graph traced once, fused where MLX can
        return self.mx.compile(fn)

    def value_and_grad(self, fn: Any) -> Any:  # gradients with respect to the first argument, a list
        return self.mx.value_and_grad(fn)

    # ------------------------------------------------------------------ creation
    def _dtype_or(self, dtype: dt.DType | None, fallback: dt.DType, device: Any) -> Any:
        return self._native_for(dtype or fallback, device)

    def full(self, shape: tuple[int, ...], fill_value: Any, dtype: dt.DType | None, device: Any) -> Array:
        if dtype is None:
            dtype = (
                dt.bool_
                if isinstance(fill_value, bool)
                else self.default_int
                if isinstance(fill_value, int)
                else self.default_float
            )
        native = self._native_for(dtype, device)
        with self._devices.stream(device):
            return fix.full(self.mx, shape, fill_value, native)

    def arange(self, start: Any, stop: Any, step: Any, dtype: dt.DType | None, device: Any) -> Array:
        if dtype is None:
            ints = all(isinstance(v, int) for v in (start, stop, step))
            dtype = self.default_int if ints else self.default_float
        native = self._native_for(dtype, device)
        with self._devices.stream(device):
            if fix.empty_range(start, stop, step):
                return self.mx.zeros((0,), dtype=native)
            return self.mx.arange(start, stop, step, dtype=native)

    def zeros(self, shape: tuple[int, ...], dtype: dt.DType | None, device: Any) -> Array:
        native = self._dtype_or(dtype, self.default_float, device)
        with self._devices.stream(device):
            return self.mx.zeros(tuple(shape), dtype=native)

    def ones(self, shape: tuple[int, ...], dtype: dt.DType | None, device: Any) -> Array:
        native = self._dtype_or(dtype, self.default_float, device)
        with self._devices.stream(device):
            return self.mx.ones(tuple(shape), dtype=native)

    def full_like(self, x: Array, fill_value: Any, dtype: dt.DType | None, device: Any) -> Array:
        native = self._native_for(dtype or self.dtype_of(x), device)
        with self._devices.stream(device):
            return fix.full(self.mx, x.shape, fill_value, native)

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: dt.DType | None, device: Any) -> Array:
        native = self._dtype_or(dtype, self.default_float, device)
        with self._devices.stream(device):
            return fix.eye(self.mx, n_rows, n_cols, k, native)

    def linspace(self, start: Any, stop: Any, num: int, dtype: dt.DType | None, device: Any, endpoint: bool) -> Array:
        dtype = dtype or self.default_float
        native = self._native_for(dtype, device)
        if dtype.kind not in ("float",):  # MLX computes linspace in floating point only
            return super().linspace(start, stop, num, dtype, device, endpoint)
        with self._devices.stream(device):
            return self.mx.linspace(start, stop, num, endpoint=endpoint, dtype=native)

    def meshgrid(self, arrays: Sequence[Array], indexing: str) -> list[Array]:
        return list(self.mx.meshgrid(*arrays, indexing=indexing))

    def tril(self, x: Array, k: int) -> Array:
        return self.mx.tril(x, k)

    def triu(self, x: Array, k: int) -> Array:
        return self.mx.triu(x, k)

    # ------------------------------------------------------------------ elementwise
    def unary(self, op: str, x: Array) -> Array:
        mx = self.mx
        if op in _COMPOSED_UNARY:
            return getattr(_composed, op)(self, x)
        if op in fix.FLOAT64_INACCURATE and x.dtype == mx.float64:
            return getattr(fix, op + "64")(mx, x)
        return getattr(mx, _UNARY_NAMES.get(op, op))(x)

    def binary(self, op: str, x1: Array, x2: Array) -> Array:
        if op in _COMPOSED_BINARY:
            return getattr(_composed, op)(self, x1, x2)
        return getattr(self.mx, _BINARY_NAMES.get(op, op))(x1, x2)

    def where(self, condition: Array, x1: Array, x2: Array) -> Array:
        return self.mx.where(condition, x1, x2)

    def square(self, x: Array) -> Array:
        return self.mx.square(x)

    def logaddexp(self, x1: Array, x2: Array) -> Array:
        mx = self.mx
        if any(self.is_array(v) and v.dtype == mx.float64 for v in (x1, x2)):
            return fix.logaddexp64(mx, super().logaddexp(x1, x2), x1, x2)  # MLX's is float32-accurate
        return mx.logaddexp(x1, x2)

    def clip(self, x: Array, min: Any, max: Any) -> Array:
        if min is None and max is None:
            return x
        return self.mx.clip(x, min, max)

    def erf(self, x: Array) -> Array:
        if x.dtype == self.mx.float64:
            return super().erf(x)  # MLX's erf is float32-accurate; the contract's is float64-accurate
        return self.mx.erf(x)

    # ------------------------------------------------------------------ reductions
    def _axes(self, axis: tuple[int, ...] | None) -> list[int] | None:
        return None if axis is None else list(axis)

    def reduce(self, op: str, x: Array, axis: tuple[int, ...] | None, keepdims: bool, dtype: dt.DType | None) -> Array:
        mx = self.mx
        if op in ("sum", "prod"):
            x = self.astype(x, _composed.accumulator(self, x, dtype), copy=False)
        identity = fix.empty_reduction(mx, op, x, axis, keepdims)
        if identity is not None:
            return identity
        return fix.sum_prod_in_dtype(op, getattr(mx, op)(x, axis=self._axes(axis), keepdims=keepdims), x.dtype)

    def argreduce(self, op: str, x: Array, axis: int | None, keepdims: bool) -> Array:
        mx = self.mx
        out = getattr(mx, op)(x, axis=axis, keepdims=keepdims)
        return out.astype(self._native[self.default_int])

    def cumulative_sum(self, x: Array, axis: int, dtype: dt.DType | None, include_initial: bool) -> Array:
        mx = self.mx
        x = self.astype(x, _composed.accumulator(self, x, dtype), copy=False)
        out = mx.cumsum(x, axis=axis)
        if include_initial:
            shape = list(x.shape)
            shape[axis] = 1
            out = mx.concatenate([mx.zeros(shape, dtype=out.dtype), out], axis=axis)
        return out

    def mean(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        return fix.nan_where_empty(
            self.mx, self.mx.mean(x, axis=self._axes(axis), keepdims=keepdims), self._count(x, axis)
        )

    def _var_or_std(self, op: str, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        mx = self.mx
        if correction != int(correction):
            return getattr(super(), op)(x, axis, correction, keepdims)
        out = getattr(mx, op)(x, axis=self._axes(axis), keepdims=keepdims, ddof=int(correction))
        return fix.nan_where_empty(mx, out, self._count(x, axis))

    def var(self, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        return self._var_or_std("var", x, axis, correction, keepdims)

    def std(self, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        return self._var_or_std("std", x, axis, correction, keepdims)

    def count_nonzero(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        out = self.mx.count_nonzero(x, axis=self._axes(axis), keepdims=keepdims)
        return out.astype(self._native[self.default_int])

    # ------------------------------------------------------------------ shapes and indexing
    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.mx.reshape(x, tuple(shape))

    def permute_dims(self, x: Array, axes: tuple[int, ...]) -> Array:
        return self.mx.transpose(x, list(axes))

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.mx.broadcast_to(x, tuple(shape))

    def concat(self, arrays: Sequence[Array], axis: int | None) -> Array:
        mx = self.mx
        arrays = [a if self.is_array(a) else mx.array(a) for a in arrays]
        if axis is None:
            arrays, axis = [mx.reshape(a, (-1,)) for a in arrays], 0
        return mx.concatenate(arrays, axis=axis)

    def flip(self, x: Array, axis: tuple[int, ...] | None) -> Array:
        if axis is not None and not axis:
            return x
        return self.mx.flip(x, axis=self._axes(axis))

    def take(self, x: Array, indices: Array, axis: int) -> Array:
        return self.mx.take(x, indices, axis=axis)

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        return self.mx.take_along_axis(x, indices, axis=axis)

    def expand_dims(self, x: Array, axis: int) -> Array:
        return self.mx.expand_dims(x, axis)

    def squeeze(self, x: Array, axis: tuple[int, ...]) -> Array:
        for a in axis:
            if x.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a}: its length is {x.shape[a]}, not 1")
        return self.mx.squeeze(x, axis=list(axis)) if axis else x

    def stack(self, arrays: Sequence[Array], axis: int) -> Array:
        return self.mx.stack(list(arrays), axis=axis)

    def unstack(self, x: Array, axis: int) -> tuple[Array, ...]:
        return tuple(self.mx.unstack(x, axis=axis))

    def moveaxis(self, x: Array, source: tuple[int, ...], destination: tuple[int, ...]) -> Array:
        if len(source) == 1:
            return self.mx.moveaxis(x, source[0], destination[0])
        return super().moveaxis(x, source, destination)

    def matrix_transpose(self, x: Array) -> Array:
        return self.mx.swapaxes(x, -1, -2)

    def broadcast_arrays(self, arrays: Sequence[Array]) -> list[Array]:
        return list(self.mx.broadcast_arrays(*arrays))

    def tile(self, x: Array, repetitions: tuple[int, ...]) -> Array:
        return self.mx.tile(x, list(repetitions))

    def repeat(self, x: Array, repeats: int | Array, axis: int | None) -> Array:
        if isinstance(repeats, int):
            if axis is None:
                return self.mx.repeat(self.mx.reshape(x, (-1,)), repeats, 0)
            return self.mx.repeat(x, repeats, axis)
        return super().repeat(x, repeats, axis)  # per-element counts: data sets the shape

    def roll(self, x: Array, shift: int | Sequence[int], axis: tuple[int, ...] | None) -> Array:
        if axis is None:
            # (mlx's stubs spell "a tuple of ints" tuple[int]; mx.roll takes any length)
            return self.mx.roll(x, shift if isinstance(shift, int) else tuple(shift))  # type: ignore[arg-type]
        shifts = (shift,) * len(axis) if isinstance(shift, int) else tuple(shift)
        return self.mx.roll(x, shifts, tuple(axis))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ searching, sorting, sets
    def _gap(self, op: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(f"backend {self.name!r} does not support {op!r}: {self.declared_gaps[op]}")

    def nonzero(self, x: Array) -> tuple[Array, ...]:
        raise self._gap("nonzero")

    def unique_all(self, x: Array) -> tuple[Array, Array, Array, Array]:
        raise self._gap("unique_all")

    def unique_counts(self, x: Array) -> tuple[Array, Array]:
        raise self._gap("unique_counts")

    def unique_inverse(self, x: Array) -> tuple[Array, Array]:
        raise self._gap("unique_inverse")

    def unique_values(self, x: Array) -> Array:
        raise self._gap("unique_values")

    def searchsorted(self, x1: Array, x2: Array, side: str, sorter: Array | None) -> Array:
        mx = self.mx
        if sorter is not None:
            x1 = mx.take(x1, sorter, axis=0)
        if not self.is_array(x2):
            x2 = mx.array(x2, dtype=x1.dtype)
        out = mx.searchsorted(x1, x2, side=side)
        return out.astype(self._native[self.default_int])

    def sort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return _composed.sort(self, x, axis, descending)

    def argsort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return _composed.argsort(self, x, axis, descending)

    # ------------------------------------------------------------------ linear algebra
    def _inexact(self, *xs: Array) -> bool:
        return all(self.dtype_of(x).kind in ("float", "complex") for x in xs)

    def matmul(self, x1: Array, x2: Array) -> Array:
        mx = self.mx
        if self._inexact(x1, x2):
            return fix.no_empty_kernel(mx, mx.matmul(x1, x2), x1, x2)
        return _composed.exact_matmul(self, x1, x2)

    def tensordot(self, x1: Array, x2: Array, axes: tuple[Sequence[int], Sequence[int]]) -> Array:
        if not self._inexact(x1, x2):
            return super().tensordot(x1, x2, axes)
        out = self.mx.tensordot(x1, x2, axes=[list(axes[0]), list(axes[1])])
        return fix.no_empty_kernel(self.mx, out, x1, x2)

    def vecdot(self, x1: Array, x2: Array, axis: int) -> Array:
        out = fix.no_empty_kernel(self.mx, self.mx.vecdot(x1, x2, axis=axis), x1, x2)
        # mx.vecdot sums bool and 8/16-bit integers in int32/uint32; the standard keeps the
        # operands' promoted dtype (the cast back wraps as a sum in that dtype would)
        dtype = dt.result_type(self.dtype_of(x1), self.dtype_of(x2))
        return out if self.dtype_of(out) == dtype else self.astype(out, dtype)

    # ------------------------------------------------------------------ model composites
    # arrayq.nn has checked the arguments. MLX's fused kernels (mx.fast) keep their statistics and softmax in
    # float32, as the references do; float64 takes the reference. (_fast's functions take the backend first.)
    rms_norm = _fast.rms_norm
    scaled_dot_product_attention = _fast.scaled_dot_product_attention
    prefix_attention = _fast.prefix_attention
    rope = _fast.rope
    qkv_heads, add_rms_norm, swiglu_halves = _fast.qkv_heads, _fast.add_rms_norm, _fast.swiglu_halves
    slice_update = _fast.slice_update

    # ------------------------------------------------------------------ quantized linear algebra
    # The frontend (arrayq.quant) has validated every argument before these run.
    # quantize runs on MLX's CPU stream on every device (fix.quantize_stream); the matmuls'
    # strategy (CPU float32 and dequantize-then-matmul, CUDA kernels) is arrayq_mlx._quantized.
    def quantize(self, w: Array, group_size: int, bits: int, mode: str) -> tuple[Array, Array, Array | None]:
        out = self.mx.quantize(w, group_size=group_size, bits=bits, mode=mode, stream=fix.quantize_stream(self.mx))
        return out[0], out[1], (out[2] if len(out) > 2 else None)

    def dequantize(self, qw: QuantizedWeight, dtype: dt.DType) -> Array:
        if self._devices.targets_gpu():  # the frontend's format code on the GPU: exact, and no hop to the
            return NotImplemented  # CPU stream (it made each compiled decode step wait for the one before)
        return self.mx.dequantize(
            qw.packed,
            qw.scales,
            qw.biases,
            group_size=qw.group_size,
            bits=qw.bits,
            mode=qw.mode,
            dtype=self._native_for(dtype, "cpu"),
            stream=fix.quantize_stream(self.mx),
        )

    def quantized_matmul(self, x: Array, qw: QuantizedWeight, transpose: bool) -> Array:
        """MLX's fused ``mx.quantized_matmul`` (on the GPU, arrayq's own CUDA kernels where they apply); on the
        CPU in float32, or dequantize-then-matmul for many rows. See :mod:`arrayq_mlx._quantized`."""
        return _quantized.quantized_matmul(self, x, qw, transpose)

    def gather_qmm(
        self, x: Array, qw: QuantizedWeight, lhs_indices: Array | None, rhs_indices: Array | None, transpose: bool
    ) -> Array:
        """``mx.gather_qmm``; on the CPU with x, scales and biases in float32. See :mod:`arrayq_mlx._quantized`."""
        return _quantized.gather_qmm(self, x, qw, lhs_indices, rhs_indices, transpose)


__all__ = ["MLXBackend"]
