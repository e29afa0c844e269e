"""The model ops arrayq.nn calls, on MLX's fused kernels (``mlx.core.fast``): RMS norm,
attention and rotary positions; on MLX's CUDA device also arrayq's own (``arrayq_mlx.cuda``:
prefix attention, qkv_heads, add_rms_norm, swiglu_halves). Each returns NotImplemented for what its kernel does not
take, and arrayq.nn then runs the contract's reference. Called from the ``MLXBackend``
method of the same name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arrayq.backend import Array

if TYPE_CHECKING:
    from arrayq_mlx import MLXBackend


def _floats(b: MLXBackend) -> tuple:
    mx = b.mx
    return (mx.float32, mx.float16, mx.bfloat16)


def rms_norm(b: MLXBackend, x: Array, weight: Array | None, eps: float) -> Any:
    if x.dtype in _floats(b) and x.ndim >= 1 and x.shape[-1] > 0:
        if weight is None or (weight.ndim == 1 and weight.dtype == x.dtype):
            return b.mx.fast.rms_norm(x, weight, eps)
    return NotImplemented


def scaled_dot_product_attention(b: MLXBackend, q: Array, k: Array, v: Array, scale: float, mask: Any) -> Any:
    if q.dtype in _floats(b) and k.dtype == q.dtype and v.dtype == q.dtype and 0 not in (*q.shape, *k.shape, *v.shape):
        # (MLX takes an additive mask only in the output's dtype; a wider one keeps the reference)
        if mask is None or isinstance(mask, str) or (b.is_array(mask) and mask.dtype == q.dtype):
            return b.mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    return NotImplemented


def prefix_attention(b: MLXBackend, q: Array, k: Array, v: Array, scale: float, length: Any, causal: bool) -> Any:
    # One query row on MLX's CUDA device: arrayq's kernel, which reads the key count on the
    # device (MLX 0.32's fused attention leaves its vector kernel for any mask array, and
    # takes no key count). Elsewhere NotImplemented: the frontend then masks the prefix.
    from arrayq_mlx import cuda as ck

    length_q, d = q.shape[2], q.shape[3]
    fits = length_q == 1 and d % 32 == 0 and d <= 256 and k.dtype == q.dtype and v.dtype == q.dtype
    if fits and q.dtype in _floats(b) and v.shape == k.shape and b._devices.targets_gpu():
        if b._cuda_route.available() and ck.enabled():
            return b._cuda_route.kernels().prefix_attention(q, k, v, scale, length)
    return NotImplemented


def rope(b: MLXBackend, x: Array, dims: int, traditional: bool, base: float, scale: float, offset: Any) -> Any:
    # Half precision only: mx.fast.rope computes its angles in float32 (position 1000 is off
    # by ~3e-5, 40000 by ~1e-3), below bfloat16/float16 rounding but not float32's, where
    # the reference's float64 tables keep the rotation exact. It takes 3 or more dimensions.
    if x.dtype in (b.mx.float16, b.mx.bfloat16) and x.ndim >= 3 and x.size:
        return b.mx.fast.rope(x, dims, traditional=traditional, base=base, scale=scale, offset=offset)
    return NotImplemented


def qkv_heads(
    b: MLXBackend,
    qkv: Array,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    q_weight: Array,
    k_weight: Array,
    eps: float,
    dims: int,
    traditional: bool,
    base: float,
    scale: float,
    offset: Any,
) -> Any:
    # On MLX's CUDA device one launch of arrayq's kernel (qkv_heads.cu) for what the composed
    # path makes ~12 graph nodes of (slices, reshapes, transposes, two norms, two rotations);
    # elsewhere NotImplemented, and the frontend composes mx.fast.rms_norm and rope as before.
    from arrayq_mlx import cuda as ck

    if not (b._devices.targets_gpu() and b._cuda_route.available() and ck.fused_enabled("qkv_heads")):
        return NotImplemented
    names = tuple(getattr(b._from_native.get(a.dtype), "name", "") for a in (qkv, q_weight, k_weight))
    if not ck.qkv_heads_fits(names[0], names[1:], head_dim, qkv.size):
        return NotImplemented
    rope_args = (dims, traditional, base, scale)
    return b._cuda_route.kernels().qkv_heads(qkv, q_weight, k_weight, (n_heads, n_kv_heads), eps, rope_args, offset)


def add_rms_norm(b: MLXBackend, x: Array, y: Array, weight: Array | None, eps: float) -> Any:
    # On MLX's CUDA device one launch (add_rms_norm.cu) with both results for the add and
    # mx.fast.rms_norm nodes; elsewhere NotImplemented (the frontend adds, then rms_norm).
    from arrayq_mlx import cuda as ck

    if not (b._devices.targets_gpu() and b._cuda_route.available() and ck.fused_enabled("add_rms_norm")):
        return NotImplemented
    name = getattr(b._from_native.get(x.dtype), "name", "")
    w_name = None if weight is None else getattr(b._from_native.get(weight.dtype), "name", "")
    if not ck.add_rms_norm_fits(name, w_name, int(x.shape[-1]), x.size):  # (x is 1-D or more: checked)
        return NotImplemented
    return b._cuda_route.kernels().add_rms_norm(x, y, weight, eps)


def swiglu_halves(b: MLXBackend, gate_up: Array) -> Any:
    # On MLX's CUDA device one launch (swiglu_halves.cu) for the two halves' slices and the
    # elementwise silu(gate) * up; elsewhere NotImplemented (the frontend slices and composes).
    from arrayq_mlx import cuda as ck

    if not (b._devices.targets_gpu() and b._cuda_route.available() and ck.fused_enabled("swiglu")):
        return NotImplemented
    if not ck.swiglu_fits(getattr(b._from_native.get(gate_up.dtype), "name", ""), gate_up.size):
        return NotImplemented
    return b._cuda_route.kernels().swiglu_halves(gate_up)


def slice_update(b: MLXBackend, x: Array, update: Array, start: Any, axis: int) -> Any:
    # mx.slice_update takes the start as an array (a traced one inside mx.compile)
    start = start.reshape(1) if b.is_array(start) else b.mx.array([start], dtype=b.mx.int32)
    return b.mx.slice_update(x, update, start, (axis,))
