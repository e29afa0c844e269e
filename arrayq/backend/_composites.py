"""The contract's defaults: every composite written once on the primitives, plus the
defaults of devices and laziness. A backend overrides a composite only where its library
has something native or faster; :func:`arrayq.capabilities` reports which it did."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

from .. import _dtypes as dt
from .._dtypes import DType
from ..errors import UnsupportedDTypeError
from . import _erf, _fft
from . import _jacobi as jac
from . import _linalg_composites as la
from ._contract import Array, Contract


class Backend(Contract):
    """Base class of every arrayq backend: the contract (``_contract.Contract``) with the
    defaults of its composites. Subclass it and implement the primitives."""

    default_float: DType = dt.float32
    default_int: DType = dt.int32

    @property
    def default_complex(self) -> DType:
        """The dtype Python complex numbers become: the complex dtype whose parts are
        ``default_float`` (complex128 for float64, else complex64), as the array API asks."""
        return dt.complex128 if self.default_float == dt.float64 else dt.complex64

    def dtype_of(self, x: Array) -> DType:
        return dt.as_dtype(x.dtype)

    def devices(self) -> list[Any]:
        """Devices this backend can put arrays on; the first is its default."""
        return ["cpu"]

    def device_of(self, x: Array) -> Any:
        return self.devices()[0]

    def check_device(self, device: Any) -> None:
        """Raise ValueError unless ``device`` is one of :meth:`devices`."""
        if device not in self.devices():
            raise ValueError(f"backend {self.name!r} has no device {device!r}; it has {self.devices()}")

    def gaps(self, device: Any = None) -> dict[str, str]:
        """The declared gaps that apply on ``device`` (None: the default device); a backend
        whose gaps differ per device overrides this."""
        return self.declared_gaps

    def eval(self, *xs: Array) -> None:
        """Force lazy arrays to be computed. Eager backends do nothing."""

    def async_eval(self, *xs: Array) -> None:
        """Start computing lazy arrays and return at once (MLX: ``mx.async_eval``), so the
        host can build the next step meanwhile; reading them later waits for the result.
        Eager backends, and lazy ones without the facility, do nothing (reading them
        computes them then)."""

    #: Whether :meth:`compile` copies the arrays a compiled function closes over into a
    #: program of its own (JAX's XLA embeds them as constants). Code that compiles a step
    #: over large arrays (``models.generate``'s decode step over the weights) then passes
    #: them as inputs instead; where it does not (MLX refers to its arrays), closing over
    #: them is cheaper per call. False by default.
    compile_copies_captured_arrays: bool = False
    #: Whether :func:`arrayq.compile`, where :meth:`compile` gives NotImplemented, records the
    #: backend calls of a function's first run per signature and replays them (a *plan*: no
    #: dispatch or validation per op; docs/compile.md). For eager backends whose methods
    #: compute their results from their arguments alone and never write into them (NumPy):
    #: a plan runs a repeated call once. False by default: eager.
    compile_records_plan: bool = False

    def compile(self, fn: Any) -> Any:
        """A compiled version of ``fn`` for :func:`arrayq.compile`, or NotImplemented (the
        default: the frontend then runs ``fn`` eagerly). ``fn`` takes this backend's arrays
        positionally (the call's arrays, flattened; shapes and dtypes fixed for this version)
        and returns a list of arrays; the result is called with arrays of the same shapes and
        dtypes. MLX: ``mx.compile(fn)``. A host sync inside the trace should raise an error
        the frontend turns into :class:`arrayq.errors.CompileError`."""
        return NotImplemented

    def replay_form(self, method: str, args: tuple[Any, ...], fixed: tuple[bool, ...], result: Any) -> Any:
        """For a recorded plan (``compile_records_plan``): a cheaper way to replay one call
        ``getattr(self, method)(*args)`` that gave ``result``, or None (the default: the
        method itself is called on every replay). ``fixed[i]`` says whether ``args[i]`` is
        the same object on every replay (a static value, or a constant array of the plan);
        the others are arrays of the same shapes and dtypes as ``args[i]`` (other values).

        A form is ``(fn, positions)``: on replay ``fn(*(arg[i] for i in positions))`` must
        give what the method would give, bit for bit, for any such arguments (choices made
        from shapes and dtypes may be made here once; none from values or memory layouts,
        which may differ from one replay to the next), and must never return
        NotImplemented. Every argument not fixed is among ``positions``; fixed ones may be
        bound into ``fn`` instead. NumPy: ``reshape`` as the array's own ``reshape`` with
        the shape bound, ``binary`` as the ufunc."""
        return None

    def value_and_grad(self, fn: Any) -> Any:
        """Automatic differentiation for :func:`arrayq.nn.distill_quantized`, or
        NotImplemented (the default: no gradients on this backend). ``fn(params, *args)``
        takes a list of this backend's float arrays and further arguments (arrays, or lists
        and tuples of them), and returns a scalar array; the result, called the same way,
        returns ``(value, grads)`` with ``grads`` a list of the gradients of the value with
        respect to ``params`` (their shapes and dtypes). MLX: ``mx.value_and_grad(fn)``;
        JAX: ``jax.jit(jax.value_and_grad(fn))``."""
        return NotImplemented

    def activation_modes(self) -> tuple[str, ...]:
        """How this backend's quantized matmuls may take their activations here (for
        :meth:`activations`), the first the one ``--activations auto`` of ``arrayq serve``
        and ``arrayq generate`` picks. ``"float32"``: as they come, in their own float dtype
        (the default, and the only mode by default); NumPy's native kernels add ``"int8"``."""
        return ("float32",)

    def activations(self, mode: str) -> contextlib.AbstractContextManager[None]:
        """A context manager within which this thread's quantized matmuls take their
        activations as ``mode``. Raises ValueError for a mode not in :meth:`activation_modes`.
        The default checks ``mode`` and changes nothing (float32 is how activations come)."""
        modes = self.activation_modes()
        if mode not in modes:
            raise ValueError(
                f"backend {self.name!r} takes its activations as {' or '.join(map(repr, modes))} here, not "
                f"{mode!r} (arrayq info says how it runs)"
            )
        return contextlib.nullcontext()

    def batch_invariant(self, device: Any = None) -> bool:
        """Whether a model's forward pass on ``device`` (None: the default) gives each
        sequence bit for bit the same rows whatever other sequences share the pass, in this
        thread's activation mode (``arrayq.serving`` then prefills prompts together by
        default). False (not known) by default; NumPy with int8 activations and MLX on the
        CPU say True (tests/test_serving_prefill.py checks it)."""
        return False

    def notes(self) -> list[str]:
        """Lines about how this backend runs on this machine (which kernels, why not
        others), for ``arrayq info``. None by default."""
        return []

    def asarray(self, obj: Any, dtype: DType | None, device: Any, copy: bool | None) -> Array:
        """From a backend array, a NumPy array, nested sequences or a scalar. Python floats
        become ``default_float`` and ints ``default_int`` unless ``dtype`` says otherwise."""
        import numpy as np

        if self.is_array(obj):
            if dtype is None or self.dtype_of(obj) == dtype:
                return self.astype(obj, self.dtype_of(obj), copy=True) if copy else obj
            if copy is False:
                raise ValueError(
                    f"asarray(copy=False) cannot make {self.dtype_of(obj).name} into {dtype.name} without a copy"
                )
            return self.astype(obj, dtype)
        if copy is False:
            raise ValueError("asarray(copy=False) would have to copy to make an array of this object; pass copy=None")
        a = np.asarray(obj)
        if dtype is None and not isinstance(obj, np.ndarray):
            if a.dtype.kind == "f":
                dtype = self.default_float
            elif a.dtype.kind == "c":
                dtype = self.default_complex
            elif a.dtype.kind in "iu" and a.dtype != np.uint64:
                dtype = self.default_int
        if dtype is not None:
            a = a.astype(dtype.dtype)
        return self.from_numpy(a, device)

    def zeros(self, shape: tuple[int, ...], dtype: DType | None, device: Any) -> Array:
        return self.full(shape, 0, dtype or self.default_float, device)

    def ones(self, shape: tuple[int, ...], dtype: DType | None, device: Any) -> Array:
        return self.full(shape, 1, dtype or self.default_float, device)

    def empty(self, shape: tuple[int, ...], dtype: DType | None, device: Any) -> Array:
        return self.zeros(shape, dtype, device)

    def full_like(self, x: Array, fill_value: Any, dtype: DType | None, device: Any) -> Array:
        return self.full(tuple(x.shape), fill_value, dtype or self.dtype_of(x), device or self.device_of(x))

    def zeros_like(self, x: Array, dtype: DType | None, device: Any) -> Array:
        return self.full_like(x, 0, dtype, device)

    def ones_like(self, x: Array, dtype: DType | None, device: Any) -> Array:
        return self.full_like(x, 1, dtype, device)

    def empty_like(self, x: Array, dtype: DType | None, device: Any) -> Array:
        return self.zeros_like(x, dtype, device)

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: DType | None, device: Any) -> Array:
        rows = self.reshape(
            self.arange(0, n_rows, 1, dt.int64 if self._has(dt.int64) else dt.int32, device), (n_rows, 1)
        )
        cols = self.arange(0, n_cols, 1, self.dtype_of(rows), device)
        hit = self.binary("equal", self.binary("add", rows, k), cols)
        return self.astype(hit, dtype or self.default_float)

    def linspace(self, start: Any, stop: Any, num: int, dtype: DType | None, device: Any, endpoint: bool) -> Array:
        dtype = dtype or self.default_float
        steps = self.astype(self.arange(0, num, 1, self.default_int, device), dtype)
        div = (num - 1) if endpoint else num
        delta = (stop - start) / div if div > 0 else 0.0
        out = self.binary("add", self.binary("multiply", steps, delta), start)
        if endpoint and num > 1:  # make the last point exactly ``stop``
            out = self.concat([out[: num - 1], self.full((1,), stop, dtype, device)], 0)
        return out

    def meshgrid(self, arrays: Sequence[Array], indexing: str) -> list[Array]:
        n = len(arrays)
        sizes = [int(a.shape[0]) for a in arrays]
        if indexing == "xy" and n >= 2:
            sizes[0], sizes[1] = sizes[1], sizes[0]
        out = []
        for i, a in enumerate(arrays):
            axis = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and n >= 2 else i
            shape = [1] * n
            shape[axis] = -1
            out.append(self.broadcast_to(self.reshape(a, tuple(shape)), tuple(sizes)))
        return out

    def _triangle_mask(self, x: Array, k: int, lower: bool) -> Array:
        n, m = int(x.shape[-2]), int(x.shape[-1])
        rows = self.reshape(self.arange(0, n, 1, self.default_int, None), (n, 1))
        cols = self.arange(0, m, 1, self.default_int, None)
        diff = self.binary("subtract", cols, rows)
        return self.binary("less_equal" if lower else "greater_equal", diff, k)

    def tril(self, x: Array, k: int) -> Array:
        return self.where(self._triangle_mask(x, k, True), x, self.zeros_like(x, None, None))

    def triu(self, x: Array, k: int) -> Array:
        return self.where(self._triangle_mask(x, k, False), x, self.zeros_like(x, None, None))

    def positive(self, x: Array) -> Array:
        return x

    def square(self, x: Array) -> Array:
        return self.binary("multiply", x, x)

    def hypot(self, x1: Array, x2: Array) -> Array:
        # scale by the larger magnitude so squares neither overflow nor underflow
        x1, x2 = self._array_operands(x1, x2)
        a, b = self.unary("abs", x1), self.unary("abs", x2)
        big, small = self.binary("maximum", a, b), self.binary("minimum", a, b)
        safe = self.where(self.binary("equal", big, 0), self.ones_like(big, None, None), big)
        ratio = self.binary("divide", small, safe)
        out = self.binary("multiply", big, self.unary("sqrt", self.binary("add", 1, self.square(ratio))))
        # an infinite side gives +inf, even against NaN or another infinity (where ratio is NaN)
        infinite = self.binary("logical_or", self.unary("isinf", a), self.unary("isinf", b))
        return self.where(infinite, self.full_like(out, math.inf, None, None), out)

    def logaddexp(self, x1: Array, x2: Array) -> Array:
        big = self.binary("maximum", x1, x2)
        diff = self.unary("negative", self.unary("abs", self.binary("subtract", x1, x2)))
        # equal infinities: their difference is NaN, but the answer is that infinity
        diff = self.where(self.binary("equal", x1, x2), self.zeros_like(big, None, None), diff)
        return self.binary("add", big, self.unary("log1p", self.unary("exp", diff)))

    def clip(self, x: Array, min: Any, max: Any) -> Array:
        if min is not None:
            x = self.binary("maximum", x, min)
        if max is not None:
            x = self.binary("minimum", x, max)
        return x

    def erf(self, x: Array) -> Array:
        return _erf.erf(self, x)

    def _count(self, x: Array, axis: tuple[int, ...] | None) -> int:
        axes = range(x.ndim) if axis is None else axis
        return math.prod(int(x.shape[a]) for a in axes)

    def mean(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        return self.binary("divide", self.reduce("sum", x, axis, keepdims, None), self._count(x, axis))

    def var(self, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        centred = self.binary("subtract", x, self.mean(x, axis, True))
        sq = self.binary("multiply", centred, self.unary("conj", centred))
        total = self.reduce("sum", sq, axis, keepdims, None)
        return self.binary("divide", total, max(self._count(x, axis) - correction, 0))

    def std(self, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        return self.unary("sqrt", self.var(x, axis, correction, keepdims))

    def count_nonzero(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        nonzero = self.binary("not_equal", x, 0)
        return self.reduce("sum", self.astype(nonzero, self.default_int), axis, keepdims, self.default_int)

    def expand_dims(self, x: Array, axis: int) -> Array:
        shape = list(x.shape)
        shape.insert(axis, 1)
        return self.reshape(x, tuple(shape))

    def squeeze(self, x: Array, axis: tuple[int, ...]) -> Array:
        for a in axis:
            if x.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a}: its length is {x.shape[a]}, not 1")
        return self.reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axis))

    def stack(self, arrays: Sequence[Array], axis: int) -> Array:
        return self.concat([self.expand_dims(a, axis) for a in arrays], axis)

    def unstack(self, x: Array, axis: int) -> tuple[Array, ...]:
        moved = self.moveaxis(x, (axis,), (0,))
        return tuple(moved[i, ...] for i in range(int(moved.shape[0])))

    def moveaxis(self, x: Array, source: tuple[int, ...], destination: tuple[int, ...]) -> Array:
        order = [i for i in range(x.ndim) if i not in source]
        for dst, src in sorted(zip(destination, source)):
            order.insert(dst, src)
        return self.permute_dims(x, tuple(order))

    def matrix_transpose(self, x: Array) -> Array:
        axes = list(range(x.ndim))
        axes[-2], axes[-1] = axes[-1], axes[-2]
        return self.permute_dims(x, tuple(axes))

    def broadcast_arrays(self, arrays: Sequence[Array]) -> list[Array]:
        shape = broadcast_shapes(*(tuple(a.shape) for a in arrays))
        return [self.broadcast_to(a, shape) for a in arrays]

    def tile(self, x: Array, repetitions: tuple[int, ...]) -> Array:
        reps = (1,) * (x.ndim - len(repetitions)) + tuple(repetitions)
        shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
        x = self.reshape(x, shape)
        # interleave a repetition axis before each axis, broadcast, then merge pairs
        inter = self.reshape(x, tuple(v for n in shape for v in (1, n)))
        big = self.broadcast_to(inter, tuple(v for r, n in zip(reps, shape) for v in (r, n)))
        return self.reshape(big, tuple(r * n for r, n in zip(reps, shape)))

    def repeat(self, x: Array, repeats: int | Array, axis: int | None) -> Array:
        if axis is None:
            x, axis = self.reshape(x, (-1,)), 0
        n = int(x.shape[axis])
        counts = [repeats] * n if isinstance(repeats, int) else [int(v) for v in self.to_numpy(repeats).ravel()]
        if len(counts) == 1:  # one count (a 0-d or length-1 array) broadcasts to every element
            counts = counts * n
        if len(counts) != n:
            raise ValueError(f"repeats has {len(counts)} entries but axis {axis} has length {n}")
        if any(c < 0 for c in counts):
            raise ValueError(f"repeats must be >= 0, got {counts}")
        index = [i for i, c in enumerate(counts) for _ in range(c)]
        return self.take(x, self.asarray(index, self.default_int, self.device_of(x), None), axis)

    def roll(self, x: Array, shift: int | Sequence[int], axis: tuple[int, ...] | None) -> Array:
        if axis is None:
            return self.reshape(self.roll(self.reshape(x, (-1,)), shift, (0,)), tuple(x.shape))
        shifts = (shift,) * len(axis) if isinstance(shift, int) else tuple(shift)
        for s, a in zip(shifts, axis):
            n = int(x.shape[a])
            if n:
                index = [(i - s) % n for i in range(n)]
                x = self.take(x, self.asarray(index, self.default_int, self.device_of(x), None), a)
        return x

    def diff(self, x: Array, axis: int, n: int, prepend: Array | None, append: Array | None) -> Array:
        parts = [p for p in (prepend, x, append) if p is not None]
        if len(parts) > 1:
            parts = [
                self.broadcast_to(
                    p, tuple(x.shape[:axis]) + (p.shape[axis] if p.ndim == x.ndim else 1,) + tuple(x.shape[axis + 1 :])
                )
                if p.ndim == x.ndim
                else self.expand_dims(p, axis)
                for p in parts
            ]
            x = self.concat(parts, axis)
        for _ in range(n):
            hi = tuple(slice(1, None) if i == axis else slice(None) for i in range(x.ndim))
            lo = tuple(slice(None, -1) if i == axis else slice(None) for i in range(x.ndim))
            x = self.binary("subtract", x[hi], x[lo])
        return x

    def unique_counts(self, x: Array) -> tuple[Array, Array]:
        values, _, _, counts = self.unique_all(x)
        return values, counts

    def unique_inverse(self, x: Array) -> tuple[Array, Array]:
        values, _, inverse, _ = self.unique_all(x)
        return values, inverse

    def unique_values(self, x: Array) -> Array:
        return self.unique_all(x)[0]

    def tensordot(self, x1: Array, x2: Array, axes: tuple[Sequence[int], Sequence[int]]) -> Array:
        a_axes, b_axes = axes
        a_free = [i for i in range(x1.ndim) if i not in a_axes]
        b_free = [i for i in range(x2.ndim) if i not in b_axes]
        k = math.prod(int(x1.shape[i]) for i in a_axes)
        a = self.reshape(
            self.permute_dims(x1, tuple(a_free) + tuple(a_axes)),
            (-1, k) if x1.size else (math.prod(int(x1.shape[i]) for i in a_free), k),
        )
        b = self.reshape(
            self.permute_dims(x2, tuple(b_axes) + tuple(b_free)), (k, math.prod(int(x2.shape[i]) for i in b_free))
        )
        out = self.matmul(a, b)
        return self.reshape(out, tuple(int(x1.shape[i]) for i in a_free) + tuple(int(x2.shape[i]) for i in b_free))

    def vecdot(self, x1: Array, x2: Array, axis: int) -> Array:
        products = self.binary("multiply", self.unary("conj", x1), x2)
        # sum in the operands' promoted dtype: a plain sum would widen small integers
        return self.reduce("sum", products, (axis,), False, self.dtype_of(products))

    # ---- the linear algebra extension: the defaults are in _linalg_composites.py and
    # _jacobi.py. The frontend (arrayq._linalg) has checked shapes and dtypes: the
    # decompositions get finite float32/float64/complex matrices, batch axes broadcast.
    def cholesky(self, x: Array, upper: bool) -> Array:
        """The Cholesky factor (lower, or upper if ``upper``); a matrix that is not positive
        definite gives a factor with a diagonal entry <= 0 or NaN (never raises)."""
        return la.cholesky(self, x, upper)

    def cross(self, x1: Array, x2: Array, axis: int) -> Array:
        """Cross product of 3-vectors along ``axis`` (non-negative); x1, x2 of one shape."""
        return la.cross(self, x1, x2, axis)

    def det(self, x: Array) -> Array:
        return la.det(self, x)

    def diagonal(self, x: Array, offset: int) -> Array:
        return la.diagonal(self, x, offset)

    def eigh(self, x: Array) -> tuple[Array, Array]:
        """(eigenvalues ascending, eigenvectors as columns) of the symmetric matrix whose
        lower triangle x holds."""
        return jac.eigh(self, x)

    def eigvalsh(self, x: Array) -> Array:
        return jac.eigvalsh(self, x)

    def inv(self, x: Array) -> Array:
        """The inverse; a singular matrix gives NaN or inf (never raises)."""
        return la.inv(self, x)

    def lstsq(self, a: Array, b: Array, rtol: Array | None) -> Array:
        """The minimum-norm least-squares solution of ``a @ out = b``, b (..., M, K)."""
        return jac.lstsq(self, a, b, rtol)

    def lu(self, x: Array) -> tuple[Array, Array, Array]:
        """(perm, L, U), ``x[..., perm, :] = L @ U``, with partial pivoting; perm in the
        default int dtype."""
        return la.lu(self, x)

    def matrix_norm(self, x: Array, ord: Any, keepdims: bool) -> Array:
        return la.matrix_norm(self, x, ord, keepdims)

    def matrix_power(self, x: Array, n: int) -> Array:
        """``x`` to the power ``n >= 0`` (the frontend inverts for n < 0)."""
        return la.matrix_power(self, x, n)

    def matrix_rank(self, x: Array, rtol: Array | None) -> Array:
        return jac.matrix_rank(self, x, rtol)

    def outer(self, x1: Array, x2: Array) -> Array:
        return la.outer(self, x1, x2)

    def pinv(self, x: Array, rtol: Array | None) -> Array:
        return jac.pinv(self, x, rtol)

    def qr(self, x: Array, mode: str) -> tuple[Array, Array]:
        return la.qr(self, x, mode)

    def slogdet(self, x: Array) -> tuple[Array, Array]:
        return la.slogdet(self, x)

    def solve(self, x1: Array, x2: Array) -> Array:
        """``x1^-1 @ x2`` for x2 (..., M, K) of x1's batch; singular: NaN or inf."""
        return la.solve(self, x1, x2)

    def svd(self, x: Array, full_matrices: bool) -> tuple[Array, Array, Array]:
        return jac.svd(self, x, full_matrices)

    def svdvals(self, x: Array) -> Array:
        return jac.svdvals(self, x)

    def trace(self, x: Array, offset: int, dtype: DType | None) -> Array:
        return la.trace(self, x, offset, dtype)

    def triangular_solve(self, a: Array, b: Array, lower: bool) -> Array:
        """Solve ``a @ out = b`` for triangular ``a`` (only its ``lower`` or upper triangle is
        read), b (..., M, K) of a's batch; a zero diagonal entry gives NaN or inf."""
        return la.triangular_solve(self, a, b, lower)

    def vector_norm(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool, ord: float) -> Array:
        return la.vector_norm(self, x, axis, keepdims, ord)

    def from_dlpack(self, x: Any, device: Any, copy: bool | None) -> Array:
        """An array of this backend from ``x``, an object with ``__dlpack__`` (checked by the
        frontend). Default: through NumPy (``numpy.from_dlpack``, CPU memory only) and
        :meth:`from_numpy`; ``copy=True`` copies, ``copy=False`` raises BufferError (a
        backend that can share the memory overrides this)."""
        import numpy as np

        if copy is False:
            raise BufferError(
                f"backend {self.name!r} cannot import a DLPack array without a copy; pass copy=None or copy=True"
            )
        host = np.from_dlpack(x)
        return self.from_numpy(host.copy() if copy else host, device)

    # ---- the fft extension (reference: arrayq/backend/_fft.py); the frontend has made x
    # complex (real for rfftn) in float32 or float64 precision, ``axes`` unique non-negative
    # ints and ``s`` their lengths (for irfftn: of the output), all >= 1.
    def fftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        """The n-dimensional DFT of complex ``x`` over ``axes``, cut or zero-padded to ``s``."""
        return _fft.c2c(self, x, s, axes, norm, inverse=False)

    def ifftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        """The n-dimensional inverse DFT of complex ``x`` (``norm`` as for the inverse)."""
        return _fft.c2c(self, x, s, axes, norm, inverse=True)

    def rfftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        """The DFT of real ``x``; the last axis of ``axes`` keeps ``s[-1] // 2 + 1`` outputs."""
        return _fft.r2c(self, x, s, axes, norm)

    def irfftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        """The real inverse of :meth:`rfftn`: ``s`` are the output lengths."""
        return _fft.c2r(self, x, s, axes, norm)

    def _array_operands(self, x1: Any, x2: Any) -> tuple[Array, Array]:
        """Both operands of a binary composite as arrays: a Python scalar becomes a 0-d
        array of the other operand's dtype (array API scalar rules), so it can go to unary."""
        if not self.is_array(x1):
            x1 = self.asarray(x1, self.dtype_of(x2), self.device_of(x2), None)
        if not self.is_array(x2):
            x2 = self.asarray(x2, self.dtype_of(x1), self.device_of(x1), None)
        return x1, x2

    def _has(self, dtype: DType) -> bool:
        try:
            self.native_dtype(dtype)
            return True
        except UnsupportedDTypeError:
            return False

    def __repr__(self) -> str:
        return f"<arrayq backend {self.name!r} ({type(self).__name__})>"


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The array API broadcast of ``shapes``; raises ValueError naming them if they clash."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        sizes = {s[i] for s in shapes if len(s) >= -i and s[i] != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {', '.join(map(str, shapes))} do not broadcast (axis {i}: sizes {sorted(sizes)})")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
