"""Learned rounding for :func:`arrayq.nn.distill_quantized` (``learn_rounding=True``): the
integer codes of an affine quantized weight made trainable, as SignRound/AutoRound do, and
written back in MLX's format.

Each weight ``j`` of a layer gets an *anchor* ``u_j`` next to its starting code ``q_j``:
``u_j = q_j + clip(x_j - q_j, -LIMIT, LIMIT)``, where ``x_j = (w_j - bias) / scale`` is the
float weight's place on its group's grid, or ``q_j + DEVIATED * sign(x_j - q_j)`` where
``q_j`` is not ``x_j``'s nearest code (``|x_j - q_j| > 0.5``: GPTQ's error feedback chose
it; anchored at the boundary, the first signed steps would undo those choices at random,
which on MiniLM doubled the training objective early on: docs/quantization-quality.md).
A trained offset ``v_j`` in ``[-0.5, 0.5]`` (starting at 0) gives the code
``clip(round(u_j + v_j), 0, 2**bits - 1)``. So ``v = 0`` gives back the starting codes
exactly (``|u_j - q_j| < 0.5``), a weight whose float value lies near the boundary between
two codes changes code after a small step, and every code can move at most one step,
towards the float weight's side. While training, the layer runs on the dense weight
``scale * (code + v - v') + bias``, where ``v'`` is ``v`` passed as data: its value is the
code's, and its gradient with respect to ``v`` is the code's straight-through estimate
(``d code / d v = 1``). ``v`` moves by signed gradient descent."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import arrayq as aq

from .quant import QuantizedWeight
from .quant._packing import pack, unpack

#: How far the anchor lies from the starting code at most, on the grid (below 0.5, so that
#: rounding the anchor gives the code back).
LIMIT = 0.49
#: Where the anchor of a code that is not the float weight's nearest lies, on the float
#: weight's side: the start chose that code for a reason (GPTQ: the error of the weights
#: before it), so it takes this much of an offset's range to undo.
DEVIATED = 0.25


def host(a: Any, rows: int) -> np.ndarray:
    """``a`` (rows of any width) as a float64 NumPy array of ``rows`` rows (via float32)."""
    return np.asarray(aq.to_numpy(aq.astype(a, "float32")), np.float64).reshape(rows, -1)


def codes_of(qw: QuantizedWeight) -> np.ndarray:
    """The integer codes of a 2-D affine QuantizedWeight (R, K) as float64 (NumPy)."""
    rows = int(qw.shape[0])
    return unpack(np, np.asarray(aq.to_numpy(qw.packed)).reshape(rows, -1), qw.bits).astype(np.float64)


def anchor(qw: QuantizedWeight, w: Any, path: str) -> Any:
    """The anchors ``u`` (R, K) float32 for ``qw``'s codes and the float weight ``w`` (R, K),
    on ``qw``'s backend (module docstring). A group whose scale is 0 anchors on its codes.
    Raises ValueError for a weight that is not 2-D or not of ``qw``'s shape."""
    if len(qw.shape) != 2 or tuple(int(d) for d in w.shape) != tuple(int(d) for d in qw.shape):
        raise ValueError(
            f"{path!r}: learn_rounding needs a 2-D quantized weight and the teacher's float weight of the same "
            f"shape there, got {tuple(qw.shape)} and {tuple(w.shape)}; pass the float model the student "
            "was quantized from as teacher"
        )
    rows = int(qw.shape[0])
    q = codes_of(qw)
    scales = np.repeat(host(qw.scales, rows), qw.group_size, axis=1)
    biases = np.repeat(host(qw.biases, rows), qw.group_size, axis=1)
    dense = host(w, rows)
    if not np.all(np.isfinite(dense)):
        raise ValueError(f"{path!r}: the teacher's weight is not all finite (NaN or inf)")
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(scales != 0, (dense - biases) / scales, q)
    r = x - q  # (beyond 0.5 where the start is not round-to-nearest, as GPTQ's error feedback makes it)
    u = np.where(np.abs(r) <= 0.5, q + np.clip(r, -LIMIT, LIMIT), q + np.sign(r) * DEVIATED)
    return aq.asarray(u.astype(np.float32), like=qw.scales)


def rounded(u: Any, v: Any, bits: int) -> Any:
    """The codes ``clip(round(u + v), 0, 2**bits - 1)`` as float32 (on u's backend)."""
    return aq.clip(aq.round(aq.add(u, v)), 0.0, float(2**bits - 1))


@dataclasses.dataclass
class Dense:
    """A Linear on a dense weight (R, K), for training: ``x @ weight.T + bias`` in x's dtype."""

    weight: Any
    bias: Any = None

    def __call__(self, x: Any) -> Any:
        y = aq.matmul(x, aq.matrix_transpose(aq.astype(self.weight, aq.dtype(x), copy=False)))
        return y if self.bias is None else aq.add(y, aq.astype(self.bias, aq.dtype(y), copy=False))


def dense(qw: QuantizedWeight, scales: Any, biases: Any, code: Any, v: Any, frozen: Any) -> Any:
    """``scale * (code + v - frozen) + bias`` (R, K) in float32 from ``scales``/``biases``
    (R, K / group_size) already in ``qw``'s stored dtype: the code's value, ``v``'s gradient."""
    rows, k = (int(d) for d in qw.shape)
    groups = k // qw.group_size
    steered = aq.reshape(aq.add(code, aq.subtract(v, frozen)), (rows, groups, qw.group_size))
    s, b = (aq.expand_dims(aq.astype(a, "float32"), axis=-1) for a in (scales, biases))
    return aq.reshape(aq.add(aq.multiply(steered, s), b), (rows, k))


def packed(qw: QuantizedWeight, code: Any) -> Any:
    """``code`` (R, K; whole numbers in range) packed as MLX packs ``qw``'s, on its backend."""
    rows = int(qw.shape[0])
    q = np.asarray(aq.to_numpy(code)).reshape(rows, -1).astype(np.uint32)
    return aq.asarray(pack(np, q, qw.bits).reshape(tuple(qw.packed.shape)), like=qw.packed)


def sign_step(v: Any, g: Any, rate: float) -> Any:
    """One signed gradient step on the offsets, kept in ``[-0.5, 0.5]``."""
    return aq.clip(aq.subtract(v, aq.multiply(aq.sign(g), rate)), -0.5, 0.5)
