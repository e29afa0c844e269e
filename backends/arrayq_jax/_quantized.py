"""The JAX backend's quantized ops.

* **quantize, dequantize: on the host, in NumPy.** MLX's formats are defined to the last bit
  (docs/quantization-formats.md), and XLA's optimiser changes the arithmetic of a jitted
  computation: it rewrites ``a / broadcast(b)`` into ``a * (1 / b)`` and its CPU code generator
  contracts ``q * s + b`` into one fused multiply-add, each of which moves results by an ulp
  (benchmarks/jax_rewrites.py shows both). So eager calls move the arrays to NumPy, run arrayq's
  NumPy backend (the reference formats, bit for bit), and move the result back: exact, and
  about as fast as NumPy. Inside ``jax.jit`` (``arrayq.compile``) there is no host to go to:
  they return NotImplemented and arrayq's reference runs on this backend's primitives, traced,
  so a dequantize *inside a compiled function* may differ from MLX's by an ulp where XLA
  rewrites it (documented in docs/backends-jax.md).
* **quantized_matmul: a fused dequantize-matmul in one jitted function** for affine weights
  (every bit width, both ``transpose`` values): the packed words are unpacked with shifts and
  masks and widened with the scales and biases to float32. A linear layer (an unbatched weight,
  ``transpose``) takes the form of the platform XLA lowers the program for
  (``lax.platform_dependent``; :func:`linear_form`): on the CPU a ``lax.map`` over row blocks
  (the fastest of the forms measured there: benchmarks/bench_jax_qmm.py, docs/benchmarks.md),
  on a GPU a fused multiply-reduce for a few rows and a whole-weight dequantize + dot for more.
  The mx formats (mxfp4, mxfp8, nvfp4) take arrayq's reference.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from arrayq.backend import Array

if TYPE_CHECKING:
    from arrayq.backend import dtypes as dt
    from arrayq.quant import QuantizedWeight
    from arrayq_jax import JAXBackend


def _tracing(backend: JAXBackend, *xs: Any) -> bool:
    return any(isinstance(x, backend.jax.core.Tracer) for x in xs if x is not None)


def _on_host(backend: JAXBackend, fn: Any, like: Array, out_shapes: list[Any], *arrays: Any) -> list[Any]:
    """``fn`` (NumPy arrays in, a list of NumPy arrays out) on the host: directly when the arrays
    have values, through ``jax.pure_callback`` while ``jax.jit`` traces (the host runs it when the
    compiled program reaches it). Results land on ``like``'s device."""
    jax = backend.jax
    if _tracing(backend, *arrays):
        specs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in out_shapes]
        return list(jax.pure_callback(lambda *a: [np.asarray(o) for o in fn(*a)], specs, *arrays))
    out = fn(*(np.asarray(a) for a in arrays))
    device = backend.device_of(like)
    return [backend.from_numpy(o, device) for o in out]


def quantize(backend: JAXBackend, w: Array, group_size: int, bits: int, mode: str) -> Any:
    """``(packed, scales, biases)`` computed by arrayq's NumPy backend on the host (exact)."""
    import arrayq

    def host(w_np: np.ndarray) -> list[np.ndarray]:
        qw = arrayq.quantize(w_np, group_size=group_size, bits=bits, mode=mode)
        return [qw.packed, qw.scales] + ([] if qw.biases is None else [qw.biases])

    lead, k = tuple(w.shape[:-1]), int(w.shape[-1])
    scale_dtype = w.dtype if mode == "affine" else np.dtype(np.uint8)
    shapes = [(lead + (k * bits // 32,), np.dtype(np.uint32))] + [(lead + (k // group_size,), scale_dtype)] * (
        2 if mode == "affine" else 1
    )
    out = _on_host(backend, host, w, shapes, w)
    return out[0], out[1], (out[2] if mode == "affine" else None)


def dequantize(backend: JAXBackend, qw: QuantizedWeight, dtype: dt.DType) -> Any:
    """The dequantized weight computed by arrayq's NumPy backend on the host (exact)."""
    import arrayq

    def host(packed: np.ndarray, scales: np.ndarray, *biases: np.ndarray) -> list[np.ndarray]:
        on_host = arrayq.QuantizedWeight(packed, scales, biases[0] if biases else None, qw.group_size, qw.bits, qw.mode)
        return [arrayq.dequantize(on_host, dtype=dtype)]

    arrays = [qw.packed, qw.scales] + ([] if qw.biases is None else [qw.biases])
    (out,) = _on_host(backend, host, qw.packed, [(tuple(qw.shape), dtype.dtype)], *arrays)
    return out


# ---------------------------------------------------------------------- the fused matmul


@functools.lru_cache(maxsize=64)
def _unpack_plan(n_words: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of the ``n_words * 32 // bits`` codes of a row: the word its low bits are in, the
    shift within that word, and the shift that brings the high bits from the next word (32 where
    the code does not cross into it). MLX packs codes from the least significant bit up, a code
    straddling two words for 3, 5 and 6 bits."""
    start = np.arange(n_words * 32 // bits, dtype=np.int64) * bits
    word, shift = start // 32, start % 32
    spill = np.where(shift + bits > 32, 32 - shift, 32)
    return word.astype(np.int32), shift.astype(np.uint32), spill.astype(np.uint32)


def _codes(jnp: Any, packed: Array, bits: int) -> Array:
    """The codes (..., rows, K) of packed words (..., rows, K * bits / 32), as uint32."""
    mask = np.uint32((1 << bits) - 1)
    if 32 % bits == 0:  # each word holds whole codes
        shifts = np.arange(0, 32, bits, dtype=np.uint32)
        codes = (packed[..., None] >> shifts) & mask
        return codes.reshape(*packed.shape[:-1], -1)
    word, shift, spill = _unpack_plan(int(packed.shape[-1]), bits)
    low = jnp.take(packed, word, axis=-1) >> shift
    nxt = jnp.take(jnp.concatenate([packed, jnp.zeros_like(packed[..., :1])], axis=-1), word + 1, axis=-1)
    high = jnp.where(spill < 32, nxt << (spill % 32), np.uint32(0))
    return (low | high) & mask


def _dequantized_f32(jnp: Any, packed: Array, scales: Array, biases: Array, group_size: int, bits: int) -> Array:
    """The weight (..., rows, K) in float32: scale * code + bias, with scales and biases widened
    to float32 first (the reference matmul's arithmetic)."""
    codes = _codes(jnp, packed, bits).astype(jnp.float32)
    grouped = codes.reshape(*codes.shape[:-1], -1, group_size)
    w = grouped * scales.astype(jnp.float32)[..., None] + biases.astype(jnp.float32)[..., None]
    return w.reshape(codes.shape)


#: Bytes of float32 weight one block of rows dequantizes at a time (row-block form): 2 MiB,
#: the fastest of 0.5, 2, 8 and 32 MiB measured for a 4096 x 4096 weight (docs/benchmarks.md).
BLOCK_BYTES = 2 << 20

#: Rows of x up to which a GPU runs the multiply-reduce form (decoding); more rows (prefill)
#: dequantize the weight once and take the GPU's matrix multiply.
GPU_REDUCE_ROWS = 8


def block_rows(n: int, k: int) -> int:
    """Rows of an (n, k) weight per block of the row-block form: BLOCK_BYTES of float32, a power of
    two, at least 8; 0 (one dot over the whole weight) where the weight holds fewer than two blocks."""
    rows = max(8, 1 << (max(1, BLOCK_BYTES // (4 * k)).bit_length() - 1))
    return rows if n >= 2 * rows else 0


def linear_form(platform: str, rows: int) -> str:
    """The form of ``x @ dequantize(w).T`` for an (N, K) weight and ``rows`` rows of x on an XLA
    ``platform`` ("cpu", "cuda", "rocm", "gpu", ...). docs/backend-jax.md gives the reasons:

    * "row_blocks" on the CPU: ``lax.map`` over blocks of output rows, each dequantized in cache
      and contracted by one ``dot_general`` (the fastest there at 1 and at 32 rows:
      benchmarks/bench_jax_qmm.py);
    * "reduce" on a GPU for up to :data:`GPU_REDUCE_ROWS` rows: ``sum(x * w, -1)`` with the
      dequantization as the reduction's input, which XLA fuses into one kernel reading the packed
      words once (a loop of ``lax.map`` on a GPU is one small kernel launch per block);
    * "dequantize" on a GPU for more rows: the whole weight dequantized (in x's dtype where that
      is a 16-bit float), then one ``dot_general`` on the GPU's matrix units."""
    if platform == "cpu":
        return "row_blocks"
    return "reduce" if rows <= GPU_REDUCE_ROWS else "dequantize"


def _forms(jax: Any, group_size: int, bits: int) -> dict[str, Any]:
    """The forms of :func:`linear_form`, each ``(x, packed, scales, biases) -> x @ w.T`` for an
    unbatched weight (N, K), in x's dtype."""
    jnp, lax = jax.numpy, jax.lax
    hi = lax.Precision.HIGHEST
    f32 = jnp.float32

    def rows_of(xf: Array, packed: Array, scales: Array, biases: Array) -> Array:  # (..., rows)
        w = _dequantized_f32(jnp, packed, scales, biases, group_size, bits)
        return lax.dot_general(xf, w, (((xf.ndim - 1,), (1,)), ((), ())), precision=hi)

    def row_blocks(x: Array, packed: Array, scales: Array, biases: Array) -> Array:
        xf = x.astype(f32)
        n, k = packed.shape[0], xf.shape[-1]
        block = block_rows(n, k)
        if not block:
            return rows_of(xf, packed, scales, biases).astype(x.dtype)
        whole = n // block * block
        blocks = tuple(a[:whole].reshape(n // block, block, -1) for a in (packed, scales, biases))
        out = lax.map(lambda a: rows_of(xf, *a), blocks)  # (n // block, ..., block)
        parts = [jnp.moveaxis(out, 0, -2).reshape(*xf.shape[:-1], whole)]
        if whole < n:
            parts.append(rows_of(xf, packed[whole:], scales[whole:], biases[whole:]))
        return jnp.concatenate(parts, axis=-1).astype(x.dtype)

    def reduce(x: Array, packed: Array, scales: Array, biases: Array) -> Array:
        w = _dequantized_f32(jnp, packed, scales, biases, group_size, bits)  # fused into the sum
        return jnp.sum(x.astype(f32)[..., None, :] * w, axis=-1).astype(x.dtype)

    def dequantize(x: Array, packed: Array, scales: Array, biases: Array) -> Array:
        # a 16-bit float x: the weight in x's dtype, products on the matrix units, float32 sums;
        # else float32 throughout, at HIGHEST precision (no TF32)
        half = x.dtype in (jnp.bfloat16, jnp.float16)
        dtype = x.dtype if half else f32
        w = _dequantized_f32(jnp, packed, scales, biases, group_size, bits).astype(dtype)
        dims = (((x.ndim - 1,), (1,)), ((), ()))
        y = lax.dot_general(x.astype(dtype), w, dims, precision=None if half else hi, preferred_element_type=f32)
        return y.astype(x.dtype)

    return {"row_blocks": row_blocks, "reduce": reduce, "dequantize": dequantize}


@functools.cache
def _fused(jax: Any, group_size: int, bits: int, transpose: bool) -> Any:
    """The jitted ``x @ dequantize(w).T`` (or ``x @ dequantize(w)``), result in x's dtype.

    For an unbatched weight and ``transpose`` (a linear layer), the form :func:`linear_form`
    picks for the platform the program is lowered for (``lax.platform_dependent``: the device
    of the arrays, also inside an outer ``jax.jit``) and x's rows. Otherwise the whole weight
    is dequantized in float32 and multiplied with ``matmul``."""
    jnp, lax = jax.numpy, jax.lax
    forms = _forms(jax, group_size, bits)

    def qmm(x: Array, packed: Array, scales: Array, biases: Array) -> Array:
        if transpose and packed.ndim == 2:
            rows = int(np.prod(x.shape[:-1]))
            gpu = forms[linear_form("gpu", rows)]
            return lax.platform_dependent(x, packed, scales, biases, cpu=forms["row_blocks"], default=gpu)
        w = _dequantized_f32(jnp, packed, scales, biases, group_size, bits)
        w = jnp.swapaxes(w, -1, -2) if transpose else w
        y = jnp.matmul(x.astype(jnp.float32), w, precision=lax.Precision.HIGHEST)
        return y.astype(x.dtype)

    return jax.jit(qmm)


def quantized_matmul(backend: JAXBackend, x: Array, qw: QuantizedWeight, transpose: bool) -> Any:
    """The fused dequantize-matmul for affine weights; NotImplemented (the reference) otherwise."""
    if qw.mode != "affine":
        return NotImplemented
    return _fused(backend.jax, qw.group_size, qw.bits, transpose)(x, qw.packed, qw.scales, qw.biases)
