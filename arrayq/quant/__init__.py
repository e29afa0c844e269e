"""Quantized weights as a first-class value: :class:`QuantizedWeight`, :func:`quantize`,
:func:`dequantize`, and the checks every quantized op runs before any kernel does.

The formats are MLX's, bit for bit (docs/quantization-formats.md). A backend with a fused
kernel overrides ``Backend.quantize`` / ``dequantize`` / ``quantized_matmul`` /
``gather_qmm``), which receives a validated :class:`QuantizedWeight` on its own arrays and
returns its result or ``NotImplemented``; then the reference runs, on the backend's
primitives. All validation lives here, so every backend refuses the same bad input with
the same :class:`~arrayq.QuantizationError` (a ValueError) before its kernel runs.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any, NamedTuple

from .. import _dtypes as dt
from .._dispatch import backend_of, resolve
from .._registry import _type_cache
from ..backend import broadcast_shapes
from ..errors import QuantizationError
from . import _formats, _methods
from ._common import MODES
from ._fallback import _dequantized, _run_reference, reference_gather_qmm, reference_matmul

#: The largest magnitude nvfp4 holds: its E4M3 scale's largest value (448) times FP4's (6).
#: MLX clips larger values without a word; quantize refuses them.
NVFP4_MAX = 448.0 * 6.0
#: Float dtypes weights and activations may have (what MLX's kernels take).
FLOAT_DTYPES = (dt.float32, dt.float16, dt.bfloat16)


def _whole(value: Any, what: str) -> int:
    """``value`` as a Python int: ints and NumPy integers pass, anything else (a float,
    even 4.0; a bool; a string) raises QuantizationError."""
    if isinstance(value, bool):
        raise QuantizationError(f"{what} must be an int, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise QuantizationError(f"{what} must be an int, got {type(value).__name__} {value!r}") from None


def check_format(group_size: Any, bits: Any, mode: Any) -> tuple[int, int]:
    """Fill in the mode's defaults and check the triple; returns (group_size, bits) as
    Python ints. Raises QuantizationError naming the allowed values (also for a value of
    the wrong type: a float ``bits``, a non-string ``mode``)."""
    if not isinstance(mode, str) or mode not in MODES:
        raise QuantizationError(f"unknown quantization mode {mode!r}; use one of {list(MODES)}")
    default_gs, default_bits, sizes, widths = MODES[mode]
    group_size = default_gs if group_size is None else _whole(group_size, "group_size")
    bits = default_bits if bits is None else _whole(bits, "bits")
    if group_size not in sizes:
        raise QuantizationError(f"mode {mode!r} takes group_size in {sizes}, got {group_size}")
    if bits not in widths:
        raise QuantizationError(f"mode {mode!r} takes bits in {widths}, got {bits}")
    return group_size, bits


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(map(int, x.shape))


def _check_array(x: Any, what: str) -> None:
    """QuantizationError unless ``x`` is an array of a loaded backend, in native byte order
    (the kernels read the words and scales as this machine's integers and floats)."""
    try:
        is_array = backend_of(x) is not None
    except TypeError:
        is_array = False
    if not is_array:
        raise QuantizationError(
            f"{what} must be an array (NumPy, MLX, ... ), got {type(x).__name__}; convert it with arrayq.asarray"
        )
    if not getattr(x.dtype, "isnative", True):
        raise QuantizationError(
            f"{what} has non-native byte order ({x.dtype.str}); convert it first, "
            f"e.g. a.astype(a.dtype.newbyteorder('='))"
        )


def _backend_of(x: Any) -> Any:
    """The backend of ``x``, an array checked already (its type cached, unless the set of
    backends changed since)."""
    return _type_cache.get(type(x)) or backend_of(x)


def _dtype_of(x: Any) -> dt.DType:
    return dt.as_dtype(x.dtype)


@dataclasses.dataclass(frozen=True)
class QuantizedWeight:
    """A quantized matrix (or batch of matrices) in one of MLX's formats.

    Fields: ``packed`` (..., rows, cols * bits / 32) uint32 words; ``scales``
    (..., rows, cols / group_size), float16/bfloat16/float32 for affine and uint8 codes for
    mxfp4/mxfp8/nvfp4; ``biases`` like ``scales`` for affine and None otherwise;
    ``group_size``, ``bits``, ``mode``; ``dtype``, the float dtype :func:`dequantize`
    returns (for affine, the scales' dtype).

    The logical shape is ``(..., rows, cols)``: for ``quantized_matmul(x, w)`` with
    transpose=True that is (N, K); with transpose=False (K, N). Groups run along ``cols``.

    Validated at construction (so also after :func:`arrayq.to_backend`, which rebuilds it):
    raises QuantizationError for a wrong dtype, a shape that disagrees with the others, or
    a bad format triple.
    """

    packed: Any
    scales: Any
    biases: Any
    group_size: int = 64
    bits: int = 4
    mode: str = "affine"
    dtype: dt.DType | None = None

    def __post_init__(self) -> None:
        group_size, bits = check_format(self.group_size, self.bits, self.mode)
        object.__setattr__(self, "group_size", group_size)
        object.__setattr__(self, "bits", bits)
        for name in ("packed", "scales") + (("biases",) if self.biases is not None else ()):
            _check_array(getattr(self, name), name)
        if _dtype_of(self.packed) != dt.uint32:
            raise QuantizationError(f"packed weight must be uint32, got {_dtype_of(self.packed).name}")
        ps, ss = _shape(self.packed), _shape(self.scales)
        if len(ps) < 2:
            raise QuantizationError(f"packed weight must have at least 2 dimensions, got shape {ps}")
        cols = ps[-1] * 32 // bits
        if (ps[-1] * 32) % bits:
            raise QuantizationError(f"packed width {ps[-1]} words does not hold whole {bits}-bit values")
        expected = ps[:-1] + (cols // group_size,)
        if cols % group_size or ss != expected:
            raise QuantizationError(
                f"scales must have shape {expected} for packed weight {ps} "
                f"({cols} columns in groups of {group_size}), got {ss}"
            )
        if self.mode == "affine":
            if self.biases is None:
                raise QuantizationError("affine mode needs biases; pass the biases array quantize returned")
            if _shape(self.biases) != ss:
                raise QuantizationError(f"biases must have the scales' shape {ss}, got {_shape(self.biases)}")
            sdt = _dtype_of(self.scales)
            if sdt not in FLOAT_DTYPES or _dtype_of(self.biases) != sdt:
                raise QuantizationError(
                    f"affine scales and biases must share one float dtype of {[d.name for d in FLOAT_DTYPES]}, "
                    f"got {sdt.name} and {_dtype_of(self.biases).name}"
                )
            if self.dtype is None:
                object.__setattr__(self, "dtype", sdt)
        else:
            if self.biases is not None:
                raise QuantizationError(f"mode {self.mode!r} has no biases; pass biases=None")
            if _dtype_of(self.scales) != dt.uint8:
                raise QuantizationError(
                    f"mode {self.mode!r} stores scales as uint8 codes, got {_dtype_of(self.scales).name}"
                )
            if self.dtype is None:
                object.__setattr__(self, "dtype", dt.bfloat16)
        object.__setattr__(self, "dtype", _float_dtype(self.dtype, "the dequantized dtype"))
        # what every call asks of the weight, once (the weight is frozen): the ops re-check x only
        object.__setattr__(self, "_facts", _weight_facts(self.packed, self.scales, self.biases, ps[:-1] + (cols,)))

    @property
    def shape(self) -> tuple[int, ...]:
        """Logical (unpacked) shape (..., rows, cols)."""
        return self._facts.shape  # type: ignore[attr-defined]

    @property
    def nbytes(self) -> int:
        """Bytes held by packed words, scales and biases."""
        return sum(int(a.nbytes) for a in (self.packed, self.scales, self.biases) if a is not None)


class _Facts(NamedTuple):
    """What the quantized ops need of a validated :class:`QuantizedWeight`, computed once
    when it is built (it is frozen), so that a call checks only its other arguments."""

    shape: tuple[int, ...]  # logical (..., rows, cols)
    batch: tuple[int, ...]  # shape[:-2]
    rows: int
    cols: int
    matrices: int  # prod(batch): the range of gather_qmm's rhs_indices
    empty: bool  # 0 in shape
    #: type(packed) when scales and biases (or None) have that type too: then the weight's
    #: arrays are one backend's, and an x of this type needs no resolving; else None
    array_type: type | None


def _weight_facts(packed: Any, scales: Any, biases: Any, shape: tuple[int, ...]) -> _Facts:
    kind = type(packed)
    one_type = type(scales) is kind and (biases is None or type(biases) is kind)
    return _Facts(
        shape, shape[:-2], shape[-2], shape[-1], math.prod(shape[:-2]), 0 in shape, kind if one_type else None
    )


def _weight(w: Any, scales: Any, biases: Any, group_size: int | None, bits: int | None, mode: str) -> QuantizedWeight:
    """The QuantizedWeight for either call form (a QuantizedWeight, or loose arrays)."""
    if isinstance(w, QuantizedWeight):
        if scales is not None or biases is not None:
            raise QuantizationError("pass either a QuantizedWeight or packed/scales/biases arrays, not both")
        return w
    if scales is None:
        raise QuantizationError("a packed weight needs its scales (and biases for affine); or pass a QuantizedWeight")
    group_size, bits = check_format(group_size, bits, mode)  # the mode's defaults for None
    return QuantizedWeight(w, scales, biases, group_size, bits, mode)


def quantize(
    w: Any,
    /,
    *,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    method: str = "rtn",
    calibration: Any = None,
    float_calibration: Any = None,
    damping: float | None = None,
) -> QuantizedWeight:
    """Quantize ``w`` (..., rows, cols), float32/float16/bfloat16, in groups of
    ``group_size`` along the last axis, into MLX's format.

    ``method="rtn"`` (the default) does exactly what ``mlx.core.quantize`` does. For affine
    mode two methods choose better in the same format (every kernel runs the result
    unchanged), once on the host in NumPy float64 (docs/quantization-formats.md, section 10):

    * ``"mse"``: per group, the scale and bias of least squared error (clipping search,
      least-squares refits); never worse than rtn on any group.
    * ``"gptq"``: GPTQ error feedback with ``calibration``, the inputs ``x`` of ``x @ w.T``
      (shape (n_samples, cols), any backend, real numbers), shared by every matrix of a
      batched ``w``; per row never worse than rtn on them. ``float_calibration`` (optional,
      same shape): the float model's inputs on those samples when ``calibration`` comes
      from a partly quantized model, to fit ``float_calibration @ w.T`` (nn.quantize_sequential).
      ``damping`` (above 0; None: 0.3): ``H + damping * diag(H)`` is inverted (H = x^T x / n).

    Defaults per mode: affine 64/4, mxfp4 32/4, mxfp8 32/8, nvfp4 16/4.
    Raises QuantizationError for fewer than 2 dims, cols not divisible by group_size, a
    non-float dtype, an unsupported format, NaN/inf in ``w`` (a group holding them has no
    meaningful scale, and MLX would silently produce garbage), an unknown method, a method
    other than rtn for a non-affine mode, and calibration that is missing (gptq), not
    wanted (other methods), of the wrong shape, empty, or not finite (float_calibration
    likewise, and without calibration or of another shape than it), and a damping not
    finite and above 0 or given to another method than gptq."""
    group_size, bits = check_format(group_size, bits, mode)
    _methods.check_method(method, mode, calibration, float_calibration, damping)
    _check_array(w, "the weight")
    backend, (w,) = resolve(w)
    shape, wdt = _shape(w), _dtype_of(w)
    if len(shape) < 2:
        raise QuantizationError(f"quantize needs at least 2 dimensions (..., rows, cols), got shape {shape}")
    if shape[-1] % group_size:
        raise QuantizationError(f"the last axis ({shape[-1]}) must be divisible by group_size {group_size}")
    if wdt not in FLOAT_DTYPES:
        raise QuantizationError(
            f"quantize takes {[d.name for d in FLOAT_DTYPES]} weights, got {wdt.name}; cast it first"
        )
    x = _methods.host_calibration(calibration, shape[-1]) if calibration is not None else None
    xf = None if float_calibration is None or x is None else _methods.host_float_calibration(float_calibration, x)
    if 0 in shape:  # an empty weight: empty arrays of the format's shapes (some kernels fail on them)
        device = backend.device_of(w)
        lead, groups = shape[:-1], shape[-1] // group_size
        scale_dtype = wdt if mode == "affine" else dt.uint8
        packed = backend.zeros(lead + (shape[-1] * bits // 32,), dt.uint32, device)
        scales = backend.zeros(lead + (groups,), scale_dtype, device)
        biases = backend.zeros(lead + (groups,), wdt, device) if mode == "affine" else None
        return QuantizedWeight(packed, scales, biases, group_size, bits, mode, wdt)
    if not bool(backend.to_numpy(backend.reduce("all", backend.unary("isfinite", w), None, False, None))):
        raise QuantizationError("the weight holds NaN or inf; quantization needs finite values")
    if mode == "nvfp4":
        largest = float(backend.to_numpy(backend.reduce("max", backend.unary("abs", w), None, False, None)))
        if largest > NVFP4_MAX:
            raise QuantizationError(
                f"nvfp4 represents magnitudes up to {NVFP4_MAX:g} (E4M3 scale 448 x FP4 value 6), but the weight "
                f"holds {largest:.6g}: larger values would be clipped; scale the weight down (and the layer's "
                "output up by the same factor) or use mxfp4 or affine"
            )
    out = backend.quantize(w, group_size, bits, mode)
    if out is NotImplemented:
        out = _run_reference(backend, _formats.quantize, w, group_size, bits, mode)
    if method != "rtn":  # starts from rtn's result, which it keeps wherever it finds nothing better
        out = _methods.run(backend, w, out, group_size, bits, method, x, xf, damping)
    packed, scales, biases = out
    qw = QuantizedWeight(packed, scales, biases, group_size, bits, mode, wdt)
    _check_representable(backend, w, qw)
    return qw


#: Rows :func:`_check_representable` dequantizes at once: at most this many values.
_CHECK_BLOCK_VALUES = 1 << 22


def _check_representable(backend: Any, w: Any, qw: QuantizedWeight) -> None:
    """Raise QuantizationError if ``qw`` dequantizes to a non-finite value in its dtype.

    Finite weights can still overflow their format: a group whose range max - min exceeds
    the dtype's largest value has an infinite affine scale (float32 +-3e38 at any width,
    float16 +-40000 at 1 bit), and a value rounded up to the next step of its group can
    pass the dtype's largest value (mxfp4 from float16 near 65504). MLX returns inf/NaN
    there without a word. The check dequantizes the weight block by block (bounded
    memory) and names the first group that fails, with its values' range in float64."""
    dtype = dt.as_dtype(qw.dtype)  # (set by QuantizedWeight)
    cols = qw.shape[-1]
    rows = math.prod(qw.shape[:-1])
    flat = [None if a is None else backend.reshape(a, (rows, _shape(a)[-1])) for a in (qw.packed, qw.scales, qw.biases)]
    step = max(1, _CHECK_BLOCK_VALUES // cols)
    for r0 in range(0, rows, step):
        packed, scales, biases = (None if a is None else a[r0 : min(rows, r0 + step), :] for a in flat)
        deq = _dequantized(
            backend, QuantizedWeight(packed, scales, biases, qw.group_size, qw.bits, qw.mode, dtype), dtype
        )
        if bool(backend.to_numpy(backend.reduce("all", backend.unary("isfinite", deq), None, False, None))):
            continue
        import numpy as np

        bad = ~np.isfinite(np.asarray(backend.to_numpy(deq), dtype=np.float64))
        r, c = (int(i) for i in np.argwhere(bad)[0])
        row, group = r0 + r, c // qw.group_size
        g0 = group * qw.group_size
        group_values = backend.reshape(w, (rows, cols))[row, g0 : g0 + qw.group_size]
        values = np.asarray(backend.to_numpy(group_values), np.float64)
        where = tuple(int(i) for i in np.unravel_index(row, qw.shape[:-1]))
        raise QuantizationError(
            f"row {where[0] if len(where) == 1 else where}, group {group} (columns {group * qw.group_size}.."
            f"{(group + 1) * qw.group_size - 1}) holds values from {values.min():.6g} to {values.max():.6g} "
            f"(range {values.max() - values.min():.6g}), which {qw.mode} at {qw.bits} bits cannot represent in "
            f"{dtype.name} (largest finite value {float(np.finfo(_np_float(dtype)).max):.6g}): its "
            "scale or dequantized values overflow; scale the weight down (and the layer's output up by the same factor)"
        )


def _np_float(dtype: dt.DType) -> Any:
    import numpy as np

    if dtype == dt.bfloat16:
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype.name)


def dequantize(
    w: Any,
    /,
    scales: Any = None,
    biases: Any = None,
    *,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    dtype: Any = None,
) -> Any:
    """The float array a QuantizedWeight stands for, shape (..., rows, cols), exactly as
    ``mlx.core.dequantize`` computes it. Pass a QuantizedWeight, or the packed uint32 array
    with its ``scales`` and ``biases`` and format. ``dtype`` defaults to the weight's.
    Raises QuantizationError for inconsistent arguments."""
    qw = _weight(w, scales, biases, group_size, bits, mode)
    facts: _Facts = qw._facts  # type: ignore[attr-defined]
    out_dtype = _float_dtype(dtype, "dequantize dtype") if dtype is not None else qw.dtype
    assert out_dtype is not None  # (qw.dtype: a float dtype, set and checked when qw was built)
    if facts.array_type is not None:  # one backend's arrays: nothing to move
        backend = _backend_of(qw.packed)
    else:
        backend, (packed, scales_, biases_) = resolve(qw.packed, qw.scales, qw.biases)
        qw = _on(qw, packed, scales_, biases_)
    if facts.empty:  # nothing to decode (MLX's kernel fails on empty arrays)
        return backend.zeros(facts.shape, out_dtype, backend.device_of(qw.packed))
    return _dequantized(backend, qw, out_dtype)


def _on(qw: QuantizedWeight, packed: Any, scales: Any, biases: Any) -> QuantizedWeight:
    """``qw`` holding the arrays resolve() returned (rebuilt only where one was moved)."""
    if packed is qw.packed and scales is qw.scales and biases is qw.biases:
        return qw
    return dataclasses.replace(qw, packed=packed, scales=scales, biases=biases)


def _float_dtype(dtype: Any, what: str) -> dt.DType:
    """``dtype`` as one of FLOAT_DTYPES, or QuantizationError."""
    try:
        found = dt.as_dtype(dtype)
    except (TypeError, ValueError, KeyError):
        found = None
    if found not in FLOAT_DTYPES:
        raise QuantizationError(f"{what} must be one of {[d.name for d in FLOAT_DTYPES]}, got {dtype!r}")
    return found


#: x's native dtypes that passed :func:`_check_x` (float, native byte order): a call whose x
#: has one of these, an array type a backend claimed and the right K skips the full check
_X_DTYPES: dict[tuple[type, Any], bool] = {}  # keyed by type first, as _dtypes._BY_NATIVE


def _checked_x(x: Any, k: int, what: str) -> tuple[int, ...]:
    """x's shape, after :func:`_check_x`'s checks (QuantizationError), cheaply for an x like
    ones seen before (an array of a loaded backend, a native float dtype seen before, at least
    one axis, last axis K); any other x takes the full check and its messages."""
    try:
        seen = type(x) in _type_cache and (type(x.dtype), x.dtype) in _X_DTYPES
    except TypeError:  # an unhashable dtype
        seen = False
    if seen:
        xs = x.shape
        if type(xs) is tuple and xs and xs[-1] == k:
            return xs
    _check_x(x, k, what)
    if len(_X_DTYPES) < 64:  # bounded: dtypes are few
        _X_DTYPES[type(x.dtype), x.dtype] = True
    return _shape(x)


def _check_x(x: Any, k: int, what: str) -> None:
    _check_array(x, f"{what}'s x")
    xdt = _dtype_of(x)
    if xdt not in FLOAT_DTYPES:
        raise QuantizationError(
            f"{what} takes x of dtype {[d.name for d in FLOAT_DTYPES]}, got {xdt.name}; cast x first"
        )
    if not x.shape:
        raise QuantizationError(f"{what} needs x with at least 1 dimension, got a 0-d array")
    if int(x.shape[-1]) != k:
        raise QuantizationError(f"{what}: x's last dimension is {int(x.shape[-1])} but the weight expects K = {k}")


def _kn(facts: _Facts, transpose: bool) -> tuple[int, int]:
    return (facts.cols, facts.rows) if transpose else (facts.rows, facts.cols)


def quantized_matmul(
    x: Any,
    w: Any,
    /,
    scales: Any = None,
    biases: Any = None,
    transpose: bool = True,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
) -> Any:
    """``x @ dequantize(w).T`` (transpose=True) or ``x @ dequantize(w)`` without
    materialising the dequantized weight.

    ``x``: (..., M, K) or (K,), float32/float16/bfloat16. ``w``: a QuantizedWeight of logical
    shape (..., N, K) for transpose=True or (..., K, N) for transpose=False, or the packed
    array with ``scales``/``biases`` and format (the 7-argument form of
    ``Nx.LinAlg.quantized_matmul/7``). Batch axes of a batched weight broadcast against x's.
    Result: (..., M, N) in x's dtype ((N,) for 1-D x), accumulated in float32 or better.
    Raises QuantizationError for a bad format, mismatched K, a non-float x, or
    scales/biases that disagree with the weight; an empty x gives an empty result."""
    qw = _weight(w, scales, biases, group_size, bits, mode)
    facts: _Facts = qw._facts  # type: ignore[attr-defined]
    k, n = _kn(facts, transpose)
    xs = _checked_x(x, k, "quantized_matmul")
    if type(x) is facts.array_type:  # x and the weight on one backend: nothing to move
        backend = _backend_of(x)
    else:
        backend, (x, packed, scales_, biases_) = resolve(x, qw.packed, qw.scales, qw.biases)
        qw = _on(qw, packed, scales_, biases_)
    wbatch = facts.batch
    try:
        batch = broadcast_shapes(xs[:-2], wbatch) if wbatch else xs[:-2]
    except ValueError as exc:
        raise QuantizationError(
            f"quantized_matmul: x batch {xs[:-2]} and weight batch {wbatch} do not broadcast"
        ) from exc
    out_shape = (n,) if len(xs) == 1 and not wbatch else batch + xs[-2:-1] + (n,)
    if 0 in out_shape or k == 0:  # empty, or sums over nothing: some kernels crash (MLX: SIGFPE)
        return backend.zeros(out_shape, _dtype_of(x), backend.device_of(x))
    out = backend.quantized_matmul(x, qw, transpose)
    return reference_matmul(x, qw, transpose) if out is NotImplemented else out


def gather_qmm(
    x: Any,
    w: Any,
    /,
    scales: Any = None,
    biases: Any = None,
    lhs_indices: Any = None,
    rhs_indices: Any = None,
    transpose: bool = True,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
) -> Any:
    """Quantized matmul with gathered operands, for mixture-of-experts layers, with the
    semantics of ``mlx.core.gather_qmm``.

    ``x``: (..., M, K) float; ``w``: a QuantizedWeight (or packed arrays) of logical shape
    (E, N, K) (transpose=True) — one matrix per expert, with any extra leading batch axes.
    ``lhs_indices`` picks batch entries of x and ``rhs_indices`` picks entries of w's batch
    (expert ids), both integer arrays broadcasting to the output batch shape; None means
    "all, in order". Result: (*index batch shape, M, N) in x's dtype.
    Raises QuantizationError for bad formats or shapes, non-integer indices, and indices
    out of range (which some kernels would otherwise read out of bounds)."""
    qw = _weight(w, scales, biases, group_size, bits, mode)
    facts: _Facts = qw._facts  # type: ignore[attr-defined]
    k, n = _kn(facts, transpose)
    xs = _checked_x(x, k, "gather_qmm")
    if len(xs) < 2:
        raise QuantizationError(f"gather_qmm needs x with at least 2 dimensions (..., M, K), got shape {xs}")
    if type(x) is facts.array_type and all(
        i is None or type(i) is type(x) for i in (lhs_indices, rhs_indices)
    ):  # all on one backend: nothing to move
        backend, lhs, rhs = _backend_of(x), lhs_indices, rhs_indices
    else:
        backend, (x, packed, scales_, biases_, lhs, rhs) = resolve(
            x, qw.packed, qw.scales, qw.biases, lhs_indices, rhs_indices
        )
        qw = _on(qw, packed, scales_, biases_)
    for name, idx, limit in (("lhs_indices", lhs, math.prod(xs[:-2])), ("rhs_indices", rhs, facts.matrices)):
        if idx is None:
            continue
        _check_array(idx, name)
        kind = _dtype_of(idx).kind
        if kind not in ("signed", "unsigned"):
            raise QuantizationError(f"{name} must be an integer array, got {_dtype_of(idx).name}")
        host = backend.to_numpy(idx)
        if host.size and ((kind == "signed" and host.min() < 0) or host.max() >= limit):
            raise QuantizationError(f"{name} must lie in [0, {limit}), got values from {host.min()} to {host.max()}")
    # the output batch: the two index arrays broadcast, a missing one standing for "all of
    # its operand's batch, in order"
    lhs_batch = _shape(lhs) if lhs is not None else xs[:-2]
    rhs_batch = _shape(rhs) if rhs is not None else facts.batch
    try:
        batch = broadcast_shapes(lhs_batch, rhs_batch)
    except ValueError:
        raise QuantizationError(
            f"gather_qmm: lhs_indices {lhs_batch} and rhs_indices {rhs_batch} (the shapes, or the operands' batch "
            "shapes where an index array is None) do not broadcast; give index arrays of broadcastable shapes"
        ) from None
    m = xs[-2]
    if 0 in batch or m == 0 or n == 0 or k == 0:  # nothing to compute; some kernels crash (MLX: SIGFPE)
        return backend.zeros(batch + (m, n), _dtype_of(x), backend.device_of(x))
    out = backend.gather_qmm(x, qw, lhs, rhs, transpose)
    return reference_gather_qmm(x, qw, lhs, rhs, transpose) if out is NotImplemented else out


__all__ = [
    "QuantizedWeight",
    "dequantize",
    "gather_qmm",
    "quantize",
    "quantized_matmul",
    "reference_gather_qmm",
    "reference_matmul",
]
