"""arrayq's MLX backend, on ``mlx.core.array``.

Install with ``pip install 'arrayq[mlx]'`` (Apple silicon, or the CPU build on Linux), or
``pip install 'arrayq[cuda]'`` for MLX's CUDA build on NVIDIA GPUs. Importing this
package does not import mlx: :class:`MLXBackend` imports ``mlx.core`` when it is created.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

from arrayq import _dtypes as dt
from arrayq.backend import Array, Backend
from arrayq.errors import UnsupportedDTypeError, UnsupportedOperationError

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
_COMPOSED_UNARY = frozenset({"signbit", "sign"})
_COMPOSED_BINARY = frozenset({"copysign", "remainder", "bitwise_left_shift", "bitwise_right_shift"})
#: Unary ops whose MLX kernels lose float64 accuracy; rebuilt in the backend for float64.
_FLOAT64_FIXED = frozenset({"exp", "sin", "cos"})
_DATA_DEPENDENT = "its output shape depends on the data, and MLX builds graphs of static shapes"
_SIGNED_INT_BITS = {8: "int8", 16: "int16", 32: "int32", 64: "int64"}

#: Rows of x (M, batch axes included) from which the CPU quantized_matmul of an *affine*
#: weight dequantizes it to float32 and runs one matmul instead of MLX's quantized kernel.
#: Measured in :meth:`MLXBackend.quantized_matmul`'s docstring: the gain is modest (MLX's
#: Linux CPU build multiplies with a reference BLAS) and starts between M = 24 and M = 128
#: depending on the machine, so the threshold sits where both machines measured gain.
CPU_DEQUANTIZE_MIN_ROWS = 128


def cpu_dequantizes_first(mode: str, rows: int) -> bool:
    """Whether the CPU quantized_matmul dequantizes the weight to float32 and runs one
    ``mx.matmul`` (affine weights, ``rows >= CPU_DEQUANTIZE_MIN_ROWS``) instead of calling
    ``mx.quantized_matmul``. ``rows``: x's rows, batch axes included."""
    return mode == "affine" and rows >= CPU_DEQUANTIZE_MIN_ROWS


class MLXBackend(Backend):
    """The MLX backend: lazy ``mlx.core.array`` graphs, CPU, Apple GPU (Metal) or NVIDIA GPU
    (CUDA build), with MLX's fused quantized kernels.

    **Devices.** :meth:`devices` is ``["cpu"]`` plus ``"gpu"`` when MLX has a Metal or CUDA
    device, MLX's default device first. Device arguments are ``"cpu"``/``"gpu"`` (an
    ``mx.Device`` is accepted too). MLX arrays do not belong to a device; MLX decides where
    an op runs when the op is created. arrayq's rule: *creation functions given
    ``device=`` (or run inside ``arrayq.default_backend("mlx", device=...)``) run inside
    ``mx.stream(device)``; every other op runs on MLX's default device*
    (``mx.default_device()``, set with ``mx.set_default_device`` or ``with mx.stream(...)``).
    So :meth:`device_of` reports MLX's default device, where ops on the array will run.

    **Dtypes.** All of arrayq's dtypes except complex128 (MLX has none). float64 exists only
    on the CPU device: asking for it while the GPU is the target raises
    UnsupportedDTypeError. Defaults: float32 and int32.

    **Laziness.** Every op returns MLX's lazy array without evaluating it;
    :meth:`eval` (``arrayq.eval``) calls ``mx.eval`` and :meth:`to_numpy` evaluates. The few
    places that must look at data are: ``repeat`` with an array of counts (the counts set
    the output shape), and the frontend's own validation (``arrayq.quantize`` checks the
    weight is finite; ``gather_qmm`` checks index ranges).

    **Scalars.** Python scalars mix as weak scalars: the array's dtype wins (MLX's rule).
    Every result is an ``mlx.core.array``, 0-d ones included.

    **Native, composed, gaps.** Every primitive maps to one ``mlx.core`` op (a small name
    map: acos -> arccos, atan2 -> arctan2, pow -> power, bitwise shifts -> left_shift /
    right_shift, ...), except where MLX lacks the op or differs from the array API, which
    are composed here from MLX ops: signbit (from the bits, so -0.0 and -NaN count),
    copysign, sign (NaN stays NaN), remainder (a zero takes the divisor's sign), shifts past
    the width (0 / sign-fill, as NumPy), integer and bool matmul (MLX's matmul is floating
    only), descending stable argsort. Composites with an MLX op are overridden (mean, var,
    std, erf, tensordot, vecdot, clip, eye, linspace, tril, triu, stack, unstack, tile, roll,
    repeat, expand_dims, squeeze, moveaxis, matrix_transpose, meshgrid, broadcast_arrays,
    logaddexp, square, count_nonzero, and the four quantized ops). ``nonzero`` and
    ``unique_*`` are declared gaps: their output shape depends on the data.

    **Precision.** float32 results agree with NumPy to a few ulp. On float64 (CPU) MLX's
    exp, sin, cos, erf and logaddexp are only float32-accurate (~1e-7 relative, measured
    with mlx 0.32.4), so for float64 they are rebuilt from ops MLX does compute to float64
    accuracy (measured against NumPy: exp and sin <= 4e-16 relative, cos <= 2.3e-16
    absolute, erf 6e-15, logaddexp 2e-16). On NVIDIA (and M5) GPUs MLX runs float32
    matmuls in TF32 (~1e-3 relative, measured on an H100) unless the environment sets
    ``MLX_ENABLE_TF32=0``.

    **MLX 0.32 defects worked around** (all by shape, so nothing is evaluated early):
    prod/all over every axis of an empty array made from data answer 0/False and mean
    -inf; var/std over an empty axis can hang; the CPU gather_qmm dies (SIGFPE) for M = 0
    and CUDA matmul/arange crash on empty operands; quantized_matmul of a 2-D x with a
    batched weight silently drops the weight's batch, and on CUDA mis-pairs broadcast batch
    axes and rejects a 1-D x; sum/prod widen int8/int16 even when a dtype is given.
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
        self._has_gpu = self._gpu_available()
        self._cuda_kernels: Any = None  # arrayq's own CUDA kernels, built on first use

    def _cuda_kernel_for(
        self,
        x: Array,
        packed: Array,
        scales: Array,
        biases: Array | None,
        transpose: bool,
        group_size: int,
        bits: int,
        mode: str,
    ) -> str | None:
        """The arrayq CUDA kernel (``"decode_tc"``/``"decode"``/``"qmm"``/``"dequant"``) for this GPU quantized matmul,
        or None for MLX's own kernel (see ``arrayq_mlx._cuda_kernels``). Only on MLX's CUDA
        device, and unless ``ARRAYQ_MLX_CUDA_KERNELS=0``."""
        from arrayq_mlx import cuda as ck

        if not (self._has_cuda() and ck.enabled()):
            return None
        x_name, s_name = self._from_native.get(x.dtype), self._from_native.get(scales.dtype)
        if x_name is None or s_name is None:
            return None
        return ck.choose(
            rows=math.prod(x.shape[:-1]),
            k=int(x.shape[-1]),
            n=int(packed.shape[-2]),
            bits=bits,
            group_size=group_size,
            mode=mode,
            transpose=transpose,
            x_dtype=x_name.name,
            scales_dtype=s_name.name,
            weight_ndim=packed.ndim,
            has_biases=biases is not None,
            arch=self._cuda_arch(),
        )

    def _cuda_arch(self) -> int:
        """The CUDA device's compute capability major (which of arrayq's kernels it runs), asked once."""
        if not hasattr(self, "_arch"):
            from arrayq_mlx import cuda as ck

            self._arch = ck.compute_capability(self.mx)
        return self._arch

    def _has_cuda(self) -> bool:
        if not hasattr(self, "_cuda_available"):
            cuda = getattr(self.mx, "cuda", None)
            try:
                self._cuda_available = bool(cuda is not None and cuda.is_available())
            except Exception:
                self._cuda_available = False
        return self._cuda_available

    def _cuda(self) -> Any:
        if self._cuda_kernels is None:
            from arrayq_mlx.cuda._launch import CudaKernels

            self._cuda_kernels = CudaKernels(self.mx)
        return self._cuda_kernels

    def _gpu_available(self) -> bool:
        mx = self.mx
        for sub in ("metal", "cuda"):
            module = getattr(mx, sub, None)
            try:
                if module is not None and module.is_available():
                    return True
            except Exception:  # a broken driver means no GPU, not a broken backend
                pass
        return False

    # ------------------------------------------------------------------ data and dtypes
    def is_array(self, x: Any) -> bool:
        return isinstance(x, self.mx.array)

    def _device_name(self, device: Any) -> str:
        mx = self.mx
        if isinstance(device, str):
            return device
        if isinstance(device, mx.Device):
            device = device.type
        if isinstance(device, mx.DeviceType):
            return "gpu" if device == mx.DeviceType.gpu else "cpu"
        raise ValueError(f"backend {self.name!r} takes devices 'cpu' or 'gpu', got {device!r}")

    def _target_is_gpu(self, device: Any = None) -> bool:
        if device is not None:
            return self._device_name(device) == "gpu"
        return self.mx.default_device().type == self.mx.DeviceType.gpu

    def _native_for(self, dtype: dt.DType, device: Any = None) -> Any:
        native = self._native.get(dtype)
        if native is None:
            raise UnsupportedDTypeError(
                f"backend {self.name!r} (MLX) has no dtype {dtype.name}; use complex64 or move "
                "the data to another backend"
            )
        if dtype == dt.float64 and self._target_is_gpu(device):
            raise UnsupportedDTypeError(
                f"backend {self.name!r} (MLX) has float64 only on the CPU device, and this op "
                "targets the GPU; cast to float32, or create on device='cpu' / use "
                "mx.set_default_device(mx.cpu)"
            )
        return native

    def native_dtype(self, dtype: dt.DType) -> Any:
        """The ``mlx.core`` dtype; UnsupportedDTypeError for complex128, and for float64 while
        MLX's default device is the GPU."""
        return self._native_for(dt.as_dtype(dtype))

    def dtype_of(self, x: Array) -> dt.DType:
        found = self._from_native.get(x.dtype)
        return found if found is not None else dt.as_dtype(x.dtype)

    def from_numpy(self, a: Any, device: Any = None) -> Array:
        import numpy as np

        a = np.asarray(a)
        dtype = dt.as_dtype(a.dtype)
        native = self._native_for(dtype, device)
        with self._on(device):
            if dtype == dt.bfloat16:
                # mx.array does not reliably take ml_dtypes.bfloat16: move the raw bits
                bits = self.mx.array((a if a.flags.c_contiguous else a.copy()).view(np.uint16))  # keeps 0-d
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
        """``["cpu"]``, plus ``"gpu"`` where MLX has a Metal or CUDA device; MLX's current
        default device first."""
        out = ["cpu", "gpu"] if self._has_gpu else ["cpu"]
        if self._has_gpu and self._target_is_gpu():
            out.reverse()
        return out

    def device_of(self, x: Array) -> Any:
        """MLX arrays carry no device; ops on ``x`` run on MLX's default device, which this
        names."""
        return "gpu" if self._target_is_gpu() else "cpu"

    def gaps(self, device: Any = None) -> dict[str, str]:
        """float64 is a gap on the GPU only; MLX has it on the CPU."""
        on_gpu = self._device_name(device) == "gpu" if device is not None else self._target_is_gpu()
        return self.declared_gaps if on_gpu else {k: v for k, v in self.declared_gaps.items() if k != "float64"}

    def check_device(self, device: Any) -> None:
        name = self._device_name(device) if isinstance(device, (str, self.mx.Device, self.mx.DeviceType)) else device
        if name not in self.devices():
            raise ValueError(f"backend {self.name!r} has no device {device!r}; it has {self.devices()}")

    def _on(self, device: Any) -> contextlib.AbstractContextManager[Any]:
        """The context that makes a creation op run on ``device`` (None: MLX's default)."""
        if device is None:
            return contextlib.nullcontext()
        self.check_device(device)
        mx = self.mx
        return mx.stream(mx.gpu if self._device_name(device) == "gpu" else mx.cpu)

    def eval(self, *xs: Array) -> None:
        if xs:
            self.mx.eval(*xs)

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
        with self._on(device):
            return self.mx.full(tuple(shape), fill_value, dtype=native)

    def arange(self, start: Any, stop: Any, step: Any, dtype: dt.DType | None, device: Any) -> Array:
        if dtype is None:
            ints = all(isinstance(v, int) for v in (start, stop, step))
            dtype = self.default_int if ints else self.default_float
        native = self._native_for(dtype, device)
        with self._on(device):
            if math.ceil((stop - start) / step) <= 0:  # MLX's CUDA arange crashes on an empty range
                return self.mx.zeros((0,), dtype=native)
            return self.mx.arange(start, stop, step, dtype=native)

    def zeros(self, shape: tuple[int, ...], dtype: dt.DType | None, device: Any) -> Array:
        native = self._dtype_or(dtype, self.default_float, device)
        with self._on(device):
            return self.mx.zeros(tuple(shape), dtype=native)

    def ones(self, shape: tuple[int, ...], dtype: dt.DType | None, device: Any) -> Array:
        native = self._dtype_or(dtype, self.default_float, device)
        with self._on(device):
            return self.mx.ones(tuple(shape), dtype=native)

    def full_like(self, x: Array, fill_value: Any, dtype: dt.DType | None, device: Any) -> Array:
        native = self._native_for(dtype or self.dtype_of(x), device)
        with self._on(device):
            return self.mx.full(x.shape, fill_value, dtype=native)

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: dt.DType | None, device: Any) -> Array:
        native = self._dtype_or(dtype, self.default_float, device)
        with self._on(device):
            return self.mx.eye(n_rows, n_cols, k, dtype=native)

    def linspace(self, start: Any, stop: Any, num: int, dtype: dt.DType | None, device: Any, endpoint: bool) -> Array:
        dtype = dtype or self.default_float
        native = self._native_for(dtype, device)
        if dtype.kind not in ("float",):  # MLX computes linspace in floating point only
            return super().linspace(start, stop, num, dtype, device, endpoint)
        with self._on(device):
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
            return getattr(self, "_" + op)(x)
        if op in _FLOAT64_FIXED and x.dtype == mx.float64:
            return getattr(self, "_" + op + "64")(x)
        return getattr(mx, _UNARY_NAMES.get(op, op))(x)

    # MLX's CPU exp, sin, cos and erf give float32 accuracy (~1e-7 relative) on float64
    # arrays. These rebuild them from ops MLX computes to float64 accuracy (sinh, cosh,
    # tan: measured <= 2.3e-16 relative).
    def _exp64(self, x: Array) -> Array:
        mx = self.mx
        ch, sh = mx.cosh(x), mx.sinh(x)
        # e^x = cosh x + sinh x; for x < 0 the reciprocal form avoids cancellation
        return mx.where(mx.greater_equal(x, 0), mx.add(ch, sh), mx.divide(1.0, mx.subtract(ch, sh)))

    def _half_angle(self, x: Array) -> Array:
        return self.mx.tan(self.mx.multiply(x, 0.5))  # x / 2 is exact (but for subnormals)

    def _sin64(self, x: Array) -> Array:
        mx = self.mx
        t = self._half_angle(x)  # sin x = 2t / (1 + t^2) = 2 / (t + 1/t)
        out = mx.divide(2.0, mx.add(t, mx.divide(1.0, t)))
        return mx.where(mx.less(mx.abs(x), 1e-8), x, out)  # sin x = x to float64 precision there

    def _cos64(self, x: Array) -> Array:
        mx = self.mx
        t2 = mx.square(self._half_angle(x))  # cos x = (1 - t^2) / (1 + t^2)
        return mx.divide(mx.subtract(1.0, t2), mx.add(1.0, t2))

    def binary(self, op: str, x1: Array, x2: Array) -> Array:
        if op in _COMPOSED_BINARY:
            return getattr(self, "_" + op)(x1, x2)
        return getattr(self.mx, _BINARY_NAMES.get(op, op))(x1, x2)

    def _is_float(self, x: Any) -> bool:
        return self.is_array(x) and self.dtype_of(x).kind == "float"

    def _signbit(self, x: Array) -> Array:
        """Whether the sign bit is set, -0.0 and -NaN included: read from the bits."""
        mx = self.mx
        d = self.dtype_of(x)
        if d.kind == "float":
            return mx.less(mx.view(x, self._native[dt.as_dtype(_SIGNED_INT_BITS[d.bits])]), 0)
        if d.kind == "signed":
            return mx.less(x, 0)
        if d.kind in ("unsigned", "bool"):
            return mx.zeros(x.shape, dtype=mx.bool_)
        raise TypeError(f"signbit needs a real-valued array, got {d.name}")

    def _sign(self, x: Array) -> Array:
        mx = self.mx
        out = mx.sign(x)
        if self._is_float(x):  # the array API wants sign(NaN) = NaN; MLX gives 0
            out = mx.where(mx.isnan(x), x, out)
        return out

    def _copysign(self, x1: Any, x2: Any) -> Array:
        mx = self.mx
        if not self.is_array(x1):  # a weak scalar takes the array's dtype
            x1 = mx.array(x1, dtype=x2.dtype)
        if not self.is_array(x2):  # a Python scalar
            negative = math.copysign(1.0, x2) < 0
            return mx.negative(mx.abs(x1)) if negative else mx.abs(x1)
        magnitude = mx.abs(x1)
        return mx.where(self._signbit(x2), mx.negative(magnitude), magnitude)

    def _remainder(self, x1: Any, x2: Any) -> Array:
        mx = self.mx
        out = mx.remainder(x1, x2)
        if self._is_float(out):
            # MLX keeps the dividend's sign on a zero result (-0.0 % 3 = -0.0); the array API
            # (and NumPy) give the divisor's sign.
            zero = mx.zeros_like(out)
            signed_zero = (
                self._copysign(zero, x2)
                if self.is_array(x2)
                else (mx.negative(zero) if math.copysign(1.0, x2) < 0 else zero)
            )
            out = mx.where(mx.equal(out, 0), signed_zero, out)
        return out

    def _shift_width(self, x1: Any, x2: Any) -> int:
        d = self.dtype_of(x1 if self.is_array(x1) else x2)
        return d.bits

    def _bitwise_left_shift(self, x1: Any, x2: Any) -> Array:
        # MLX (C++) shifts by x2 modulo the width; NumPy and the array API's intent: 0 once
        # every bit has been shifted out.
        mx = self.mx
        out = mx.left_shift(x1, x2)
        if self.is_array(x2) or x2 >= self._shift_width(x1, x2):
            out = mx.where(mx.greater_equal(x2, self._shift_width(x1, x2)), mx.zeros_like(out), out)
        return out

    def _bitwise_right_shift(self, x1: Any, x2: Any) -> Array:
        width = self._shift_width(x1, x2)
        capped = self.mx.minimum(x2, width - 1) if self.is_array(x2) else min(x2, width - 1)
        if self.is_array(x1) and self.dtype_of(x1).kind == "unsigned":
            out = self.mx.right_shift(x1, capped)
            return self.mx.where(self.mx.greater_equal(x2, width), self.mx.zeros_like(out), out)
        return self.mx.right_shift(x1, capped)  # signed: sign-fill, as NumPy

    def where(self, condition: Array, x1: Array, x2: Array) -> Array:
        return self.mx.where(condition, x1, x2)

    def square(self, x: Array) -> Array:
        return self.mx.square(x)

    def logaddexp(self, x1: Array, x2: Array) -> Array:
        mx = self.mx
        if any(self.is_array(v) and v.dtype == mx.float64 for v in (x1, x2)):
            # MLX's float64 logaddexp is float32-accurate: big + log1p(exp(-|x1 - x2|)),
            # with the float64 exp above; equal arguments (infinities too) give x + log 2
            out = super().logaddexp(x1, x2)
            return mx.where(mx.equal(x1, x2), mx.add(x1, math.log(2.0)), out)
        return mx.logaddexp(x1, x2)

    def clip(self, x: Array, min: Any, max: Any) -> Array:
        if min is None and max is None:
            return x
        return self.mx.clip(x, min, max)

    def erf(self, x: Array) -> Array:
        if x.dtype == self.mx.float64 and hasattr(Backend, "_erf_float64"):
            return self._erf_float64(x)  # MLX's erf is float32-accurate; arrayq's is ~5e-15
        return self.mx.erf(x)

    # ------------------------------------------------------------------ reductions
    def _axes(self, axis: tuple[int, ...] | None) -> list[int] | None:
        return None if axis is None else list(axis)

    def _accumulator(self, x: Array, dtype: dt.DType | None) -> dt.DType:
        """The array API's sum/prod/cumulative_sum dtype: ``dtype``, or for a narrow integer
        (or bool) input the default int (uint32 for unsigned)."""
        if dtype is not None:
            return dtype
        d = self.dtype_of(x)
        if d.kind in ("bool", "signed") and d.bits < 32:
            return dt.int32
        if d.kind == "unsigned" and d.bits < 32:
            return dt.uint32
        return d

    _IDENTITY = {"sum": 0, "prod": 1, "all": True, "any": False}

    def reduce(self, op: str, x: Array, axis: tuple[int, ...] | None, keepdims: bool, dtype: dt.DType | None) -> Array:
        mx = self.mx
        if op in ("sum", "prod"):
            x = self.astype(x, self._accumulator(x, dtype), copy=False)
        axes = range(x.ndim) if axis is None else axis
        if op in self._IDENTITY and any(x.shape[a] == 0 for a in axes):
            # An empty reduction is the identity. MLX (0.32) answers 0 / False for prod and
            # all over every axis of an empty array created from data, so say it here; the
            # shape alone decides, so nothing is evaluated.
            shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape) if keepdims or i not in axes)
            return mx.full(shape, self._IDENTITY[op], dtype=mx.bool_ if op in ("all", "any") else x.dtype)
        out = getattr(mx, op)(x, axis=self._axes(axis), keepdims=keepdims)
        if op in ("sum", "prod") and out.dtype != x.dtype:  # MLX widens int8/int16 even when asked not to
            out = out.astype(x.dtype)
        return out

    def argreduce(self, op: str, x: Array, axis: int | None, keepdims: bool) -> Array:
        mx = self.mx
        out = getattr(mx, op)(x, axis=axis, keepdims=keepdims)
        return out.astype(self._native[self.default_int])

    def cumulative_sum(self, x: Array, axis: int, dtype: dt.DType | None, include_initial: bool) -> Array:
        mx = self.mx
        x = self.astype(x, self._accumulator(x, dtype), copy=False)
        out = mx.cumsum(x, axis=axis)
        if include_initial:
            shape = list(x.shape)
            shape[axis] = 1
            out = mx.concatenate([mx.zeros(shape, dtype=out.dtype), out], axis=axis)
        return out

    def mean(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        out = self.mx.mean(x, axis=self._axes(axis), keepdims=keepdims)
        if self._count(x, axis) == 0:  # MLX (0.32) gives -inf for some empty arrays; the answer is NaN
            out = self.mx.full(out.shape, math.nan, dtype=out.dtype)
        return out

    def _var_or_std(self, op: str, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        mx = self.mx
        if correction != int(correction):
            return getattr(super(), op)(x, axis, correction, keepdims)
        out = getattr(mx, op)(x, axis=self._axes(axis), keepdims=keepdims, ddof=int(correction))
        if self._count(x, axis) == 0:
            # NaN, as NumPy; and MLX (0.32) can hang evaluating var over an empty axis when
            # the result is not empty, so that graph is never evaluated.
            out = mx.full(out.shape, math.nan, dtype=out.dtype)
        return out

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
        # mx.sort is stable (and puts NaN last); descending reverses it, as
        # array_api_compat.numpy does, so NaN comes first there.
        mx = self.mx
        is_bool = x.dtype == mx.bool_
        if is_bool:  # MLX sorts bool on the CPU only
            x = x.astype(mx.uint8)
        out = mx.sort(x, axis=axis)
        if descending:
            out = mx.flip(out, axis=axis)
        return out.astype(mx.bool_) if is_bool else out

    def argsort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        mx = self.mx
        index = self._native[self.default_int]
        if x.dtype == mx.bool_:
            x = x.astype(mx.uint8)
        if not descending:
            return mx.argsort(x, axis=axis).astype(index)
        # stable descending: sort the reversed array ascending, reverse, map indices back
        n = x.shape[axis]
        rev = mx.argsort(mx.flip(x, axis=axis), axis=axis).astype(index)
        return mx.subtract(n - 1, mx.flip(rev, axis=axis))

    # ------------------------------------------------------------------ linear algebra
    def _inexact(self, *xs: Array) -> bool:
        return all(self.dtype_of(x).kind in ("float", "complex") for x in xs)

    def _no_empty_kernel(self, out: Array, *xs: Array) -> Array:
        """``out``, or zeros of its shape where an operand is empty: MLX's CUDA matmul
        kernels crash on empty operands, and shape inference alone gives the answer."""
        if any(x.size == 0 for x in xs):
            return self.mx.zeros(out.shape, dtype=out.dtype)
        return out

    def matmul(self, x1: Array, x2: Array) -> Array:
        mx = self.mx
        if self._inexact(x1, x2):
            return self._no_empty_kernel(mx.matmul(x1, x2), x1, x2)
        # MLX's matmul takes floating types only: integers and bools multiply-and-sum, exactly
        # (O(M*K*N) memory; integer matmuls are small in practice).
        out_dtype = dt.result_type(self.dtype_of(x1), self.dtype_of(x2))
        v1, v2 = x1.ndim == 1, x2.ndim == 1
        a = mx.expand_dims(x1, 0) if v1 else x1
        b = mx.expand_dims(x2, -1) if v2 else x2
        if out_dtype == dt.bool_:
            prod = mx.logical_and(mx.expand_dims(a, -1), mx.expand_dims(b, -3))
            out = mx.any(prod, axis=-2)
        else:
            native = self._native_for(out_dtype)
            prod = mx.multiply(mx.expand_dims(a.astype(native), -1), mx.expand_dims(b.astype(native), -3))
            out = mx.sum(prod, axis=-2).astype(native)
        if v2:
            out = mx.squeeze(out, -1)
        if v1:
            out = mx.squeeze(out, -2 if not v2 else 0) if out.ndim else out
        return out

    def tensordot(self, x1: Array, x2: Array, axes: tuple[Sequence[int], Sequence[int]]) -> Array:
        if not self._inexact(x1, x2):
            return super().tensordot(x1, x2, axes)
        out = self.mx.tensordot(x1, x2, axes=[list(axes[0]), list(axes[1])])
        return self._no_empty_kernel(out, x1, x2)

    def vecdot(self, x1: Array, x2: Array, axis: int) -> Array:
        return self._no_empty_kernel(self.mx.vecdot(x1, x2, axis=axis), x1, x2)

    # ------------------------------------------------------------------ model composites
    # arrayq.nn has checked the arguments. MLX's fused kernels (mx.fast) keep their
    # statistics and softmax in float32, as the references do; float64 takes the reference.
    def rms_norm(self, x: Array, weight: Array | None, eps: float) -> Array:
        mx = self.mx
        if x.dtype in (mx.float32, mx.float16, mx.bfloat16) and x.ndim >= 1 and x.shape[-1] > 0:
            if weight is None or (weight.ndim == 1 and weight.dtype == x.dtype):
                return mx.fast.rms_norm(x, weight, eps)
        return super().rms_norm(x, weight, eps)

    def scaled_dot_product_attention(self, q: Array, k: Array, v: Array, scale: float, mask: Any) -> Array:
        mx = self.mx
        floats = (mx.float32, mx.float16, mx.bfloat16)
        if q.dtype in floats and k.dtype == q.dtype and v.dtype == q.dtype and 0 not in (*q.shape, *k.shape, *v.shape):
            # (MLX takes an additive mask only in the output's dtype; a wider one keeps the reference)
            if mask is None or isinstance(mask, str) or (self.is_array(mask) and mask.dtype == q.dtype):
                return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
        return super().scaled_dot_product_attention(q, k, v, scale, mask)

    # ------------------------------------------------------------------ quantized linear algebra
    # The frontend (arrayq.quantization) has validated every argument before these run.
    # MLX 0.32.4's CUDA kernels do not produce MLX's format exactly: quantize rounds exact
    # ties up (the CPU rounds them to even), dequantize rounds once where the CPU rounds
    # twice, fp modes encode -0 and all-zero groups differently, and 1-bit quantize and
    # dequantize return garbage without an error (docs/benchmarks-cuda.md). So these two
    # always run on MLX's CPU stream: the formats stay bit-exact on every device, and
    # quantize is a load-time op. quantized_matmul keeps the GPU kernels, except 1-bit.
    def quantize(self, w: Array, group_size: int, bits: int, mode: str) -> tuple[Array, Array, Array | None]:
        out = self.mx.quantize(w, group_size=group_size, bits=bits, mode=mode, stream=self.mx.cpu)
        return out[0], out[1], (out[2] if len(out) > 2 else None)

    def dequantize(
        self, packed: Array, scales: Array, biases: Array | None, group_size: int, bits: int, mode: str, dtype: dt.DType
    ) -> Array:
        return self.mx.dequantize(
            packed,
            scales,
            biases,
            group_size=group_size,
            bits=bits,
            mode=mode,
            dtype=self._native_for(dtype, "cpu"),
            stream=self.mx.cpu,
        )

    def _cpu_float32(
        self, x: Array, scales: Array, biases: Array | None, mode: str
    ) -> tuple[Array, Array, Array | None]:
        """x, scales, biases in float32 for MLX's CPU kernels (affine scales only: the other
        modes' scales are uint8 codes)."""
        f32 = self.mx.float32
        x = x.astype(f32) if x.dtype != f32 else x
        if mode == "affine" and scales.dtype != f32:
            scales = scales.astype(f32)
            biases = biases.astype(f32) if biases is not None else None
        return x, scales, biases

    def quantized_matmul(
        self,
        x: Array,
        packed: Array,
        scales: Array,
        biases: Array | None,
        transpose: bool,
        group_size: int,
        bits: int,
        mode: str,
    ) -> Array:
        """MLX's fused ``mx.quantized_matmul``, natively on the GPU; on MLX's CUDA device,
        arrayq's own kernels where they apply (``arrayq_mlx._cuda_kernels``: a tensor-core
        decode GEMV for <= 16 rows of x, a fused tensor-core kernel for 32-1024 rows,
        dequantize + dense matmul above; affine
        2/3/4/5/6/8-bit, groups 32/64/128, ``transpose=True``, unbatched weight, bfloat16
        or float16 x). ``ARRAYQ_MLX_CUDA_KERNELS=0`` turns them off.

        On the CPU, MLX's quantized kernel accumulates in its input dtype (bfloat16 or
        float16 inputs then break arrayq's "accumulated in float32" promise) and runs ~8-10x
        slower with bfloat16 scales than with float32 ones. So on the CPU x (and affine
        scales/biases) are cast to float32 for the call and the result is cast back to x's
        dtype. For affine weights with ``M >= CPU_DEQUANTIZE_MIN_ROWS`` rows the weight is
        instead dequantized to float32 and multiplied with ``mx.matmul``; for mxfp4/mxfp8/
        nvfp4 the float32 kernel always wins (dequantizing those formats is slow).

        Measurements, mlx 0.32.4 CPU build, x bfloat16 (M, 4096) times a 4096 x 4096 weight
        quantized from bfloat16 (scales bfloat16), median of 3, milliseconds. "native" is
        ``mx.quantized_matmul`` on the bfloat16 inputs; "f32 kernel" casts x/scales/biases
        to float32; "deq+matmul" dequantizes to float32 then ``mx.matmul``:

        ====  ========================================  ========================================
              2-core dev box (x86-64)                   16-core Xeon (device machine, noisy)
        M     native   f32 kernel   deq+matmul          native   f32 kernel   deq+matmul
        ====  ========================================  ========================================
        affine, group 64, 4 bits
        1      100.0       11.6        64.8              216.6       64.2        172.9
        4      409.5       46.5       100.4              883.1       97.7        197.9
        16    1609.5      185.6       199.1             2192.0      239.3        372.8
        32    3257.9      376.8       346.1               --        787.7        816.0
        64    6453.6      728.9       580.7               --       1333.8       1453.0
        128     --       1446.4      1140.5               --       2764.8       2192.8
        256     --       2965.3      2241.9
        mxfp4, group 32
        1       68.6        4.5       156.8               87.5        8.1        406.0
        16      --         85.5       286.1             1473.4      202.4        704.4
        64      --        281.8       696.9               --        573.2       1268.6
        128     --        556.6      1240.4               --        951.9       2682.5
        ====  ========================================  ========================================
        """
        mx = self.mx
        if x.ndim == 1:  # as a 1-row matrix (MLX's CUDA kernel fails on 1-D x), then drop the row
            out = self.quantized_matmul(mx.expand_dims(x, 0), packed, scales, biases, transpose, group_size, bits, mode)
            return mx.squeeze(out, -2)
        if x.ndim < packed.ndim:
            # MLX 0.32 silently drops the weight's batch axes when x has fewer dimensions
            # ((M, K) x (B, N, K) gives (M, N)); with leading 1s it broadcasts correctly.
            x = mx.reshape(x, (1,) * (packed.ndim - x.ndim) + tuple(x.shape))
        if bits == 1 and self._target_is_gpu():  # MLX's CUDA kernels have no 1-bit support
            with mx.stream(mx.cpu):
                return self.quantized_matmul(x, packed, scales, biases, transpose, group_size, bits, mode)
        on_gpu = self._target_is_gpu()
        if on_gpu:
            kind = self._cuda_kernel_for(x, packed, scales, biases, transpose, group_size, bits, mode)
            if kind is not None:  # arrayq's own CUDA kernels (decode GEMVs, fused prefill, or dequantize + matmul)
                return self._cuda().quantized_matmul(kind, x, packed, scales, biases, bits, group_size)
            if packed.ndim > 2 and tuple(x.shape[:-2]) != tuple(packed.shape[:-2]):
                # batch axes that broadcast: MLX 0.32's CUDA kernel pairs them wrongly
                # ((4, 1, M, K) x (3, N, K) repeats weight 0), so gather them explicitly
                return self._batched_as_gather(x, packed, scales, biases, transpose, group_size, bits, mode)
            out = mx.quantized_matmul(
                x, packed, scales, biases, transpose=transpose, group_size=group_size, bits=bits, mode=mode
            )
            return out if out.dtype == x.dtype else out.astype(x.dtype)
        out_dtype = x.dtype
        rows = math.prod(x.shape[:-1])
        x32, s32, b32 = self._cpu_float32(x, scales, biases, mode)
        if cpu_dequantizes_first(mode, rows):
            w = mx.dequantize(packed, s32, b32, group_size=group_size, bits=bits, mode=mode, dtype=mx.float32)
            out = mx.matmul(x32, mx.swapaxes(w, -1, -2) if transpose else w)
        else:
            out = mx.quantized_matmul(
                x32, packed, s32, b32, transpose=transpose, group_size=group_size, bits=bits, mode=mode
            )
        return out if out.dtype == out_dtype else out.astype(out_dtype)

    def _batched_as_gather(
        self,
        x: Array,
        packed: Array,
        scales: Array,
        biases: Array | None,
        transpose: bool,
        group_size: int,
        bits: int,
        mode: str,
    ) -> Array:
        """A quantized_matmul whose batch axes broadcast, as a gather_qmm with index grids
        (no copy of x or of the weight)."""
        from arrayq.backend import broadcast_shapes

        mx = self.mx
        xb, wb = tuple(x.shape[:-2]), tuple(packed.shape[:-2])
        batch = broadcast_shapes(xb, wb)

        def grid(shape: tuple[int, ...]) -> Array:
            ids = mx.reshape(mx.arange(math.prod(shape), dtype=mx.uint32), shape)
            return mx.broadcast_to(mx.reshape(ids, (1,) * (len(batch) - len(shape)) + shape), batch)

        return self.gather_qmm(x, packed, scales, biases, grid(xb), grid(wb), transpose, group_size, bits, mode)

    def gather_qmm(
        self,
        x: Array,
        packed: Array,
        scales: Array,
        biases: Array | None,
        lhs_indices: Array | None,
        rhs_indices: Array | None,
        transpose: bool,
        group_size: int,
        bits: int,
        mode: str,
    ) -> Array:
        """``mx.gather_qmm``; on the CPU with x, scales and biases in float32 (as
        :meth:`quantized_matmul`, for float32 accumulation and speed), result in x's dtype."""
        mx = self.mx
        if bits == 1 and self._target_is_gpu():  # MLX's CUDA kernels have no 1-bit support
            with mx.stream(mx.cpu):
                return self.gather_qmm(
                    x, packed, scales, biases, lhs_indices, rhs_indices, transpose, group_size, bits, mode
                )
        lhs = None if lhs_indices is None else lhs_indices.astype(mx.uint32)
        rhs = None if rhs_indices is None else rhs_indices.astype(mx.uint32)
        out_dtype = x.dtype
        if not self._target_is_gpu():
            x, scales, biases = self._cpu_float32(x, scales, biases, mode)
        out = mx.gather_qmm(
            x, packed, scales, biases, lhs, rhs, transpose=transpose, group_size=group_size, bits=bits, mode=mode
        )
        if out.size == 0:  # MLX's CPU kernel dies (SIGFPE) on an empty M: never evaluate it
            return mx.zeros(out.shape, dtype=out_dtype)
        return out if out.dtype == out_dtype else out.astype(out_dtype)


__all__ = ["MLXBackend"]
