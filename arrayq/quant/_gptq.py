"""GPTQ within MLX's affine group structure, on the host in NumPy float64 (method="gptq").

GPTQ (Frantar et al., 2022) quantizes a weight ``w`` (R, K), used as ``x @ w.T``, one input
column at a time, and after each column spreads that column's rounding error over the
columns not yet quantized through the inverse of ``H = X^T X / n`` (X the calibration
inputs, (n, K)). That lowers the layer's output error ``||X w^T - X wq^T||`` rather than
the weight error value by value.

Within MLX's format, where a row has one scale and bias per group of ``group_size`` columns:

* **Groups start with their scale and bias.** When a group's turn comes, ``_search.fit``
  chooses its scale and bias on the weights as the earlier columns' error feedback has left
  them, each value's squared error weighted by its input's mean square ``H_kk``; they stay
  fixed while the group's columns are rounded and their errors fed forward.
* **Order.** Groups go in order of their largest ``H_kk`` and, inside a group, columns too
  (GPTQ's "act order" without breaking a group apart): the columns whose inputs are largest
  are rounded while the most columns remain to absorb their error.
* **Damping.** ``H + DAMPING * diag(H)`` is inverted: a few hundred tokens estimate H
  poorly, and shrinking it towards its diagonal keeps the feedback from fitting the
  calibration's noise.
* **Refit.** With all codes chosen, each row's scales and biases are refitted to the least
  output error for those codes, a least-squares problem of 2 values per group (``refit``).

The calibration objective separates by output row: ``(w_r - wq_r) H (w_r - wq_r)^T``. At
the end each row keeps whichever of GPTQ's and MLX's rtn rows has the smaller objective
(undamped ``H``), so on the calibration data the result is never worse than rtn, row by row.

**Float targets** (``x_float``, the float model's inputs to the layer on the same samples as
``x``, which are then the inputs in the model whose earlier layers are already quantized):
the objective becomes ``||x wq^T - x_float w^T||^2 / n``, the layer's output against the
float model's own, so the layer also makes up for the error its inputs already carry
(asymmetric calibration, as in GPTAQ, Li et al., 2025). Per row it is
``(wq_r - t_r) H (wq_r - t_r)^T`` plus a constant, with ``t`` the least-squares weight for
those targets; GPTQ runs as above on ``t``, computed with the same damping, towards ``w``:
``t = w + (x_float - x) w^T`` regressed on ``x`` (``float_target``). The final comparison
with rtn uses the exact objective.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import QuantizationError
from ._search import codes, dequantized, fit, pick, stored_group, to_stored

#: The default damping: H's diagonal is scaled by 1 + DAMPING before inverting (see the
#: module's docstring). On MiniLM at 4-bit gs64 with 114 calibration texts
#: (docs/quantization-quality.md, before the refit was added), 0.3 kept a minimum cosine of
#: 0.981, 1.0 kept 0.978, and GPTQ's usual 0.01 * mean(diag H) * I in natural column order
#: kept 0.977; with 546 texts, 0.1 did better than 0.3 on held-out texts.
DAMPING = 0.3


def _inverse_cholesky(h: np.ndarray, damping: float) -> np.ndarray:
    """The upper Cholesky factor U of the damped inverse, ``inv(H + damping diag(H)) = U^T U``.
    Features no sample uses (``H_kk == 0``) get ``H_kk = 1``: no error flows to or from them.
    The damping grows tenfold while the factorisation fails (rounding can leave a
    near-singular H indefinite)."""
    damped = h.copy()
    diag = np.where(np.diagonal(h) > 0, np.diagonal(h), 1.0)
    damp = damping
    for _ in range(6):
        np.fill_diagonal(damped, diag * (1.0 + damp))
        try:
            return np.linalg.cholesky(np.linalg.inv(damped)).T
        except np.linalg.LinAlgError:
            damp *= 10.0
    raise QuantizationError(
        "GPTQ could not invert the calibration inputs' Gram matrix X^T X even with strong damping; "
        "check the calibration data (it should be the layer's real inputs, finite and not all alike)"
    )


def _expand(a: np.ndarray, group_size: int) -> np.ndarray:
    """(R, G) per-group values as (R, G * group_size), one per column."""
    return np.repeat(a, group_size, axis=1)


def objective(w: np.ndarray, wq: np.ndarray, h: np.ndarray, cross: np.ndarray | None = None) -> np.ndarray:
    """Per row, the squared output error on the calibration inputs divided by n; shape (R, 1).
    Without ``cross``: ``(w_r - wq_r) H (w_r - wq_r)^T``. With ``cross = x^T x_float / n``:
    ``||x wq_r^T - x_float w_r^T||^2 / n`` less its part that no ``wq`` changes
    (``w_r H_float w_r^T``), i.e. ``wq_r H wq_r^T - 2 wq_r cross w_r^T``."""
    if cross is None:
        e = w - wq
        return np.sum((e @ h) * e, axis=1, keepdims=True)
    return np.sum((wq @ h - 2.0 * (w @ cross.T)) * wq, axis=1, keepdims=True)


def _damped(h: np.ndarray, damping: float) -> np.ndarray:
    """``H + damping * diag(H)``, an unused feature's zero diagonal counted as 1."""
    diag = np.diagonal(h)
    return h + damping * np.diag(np.where(diag > 0, diag, 1.0))


def float_target(w: np.ndarray, x: np.ndarray, x_float: np.ndarray, h: np.ndarray, damping: float) -> np.ndarray:
    """The weight ``t`` (R, K) whose outputs on ``x`` come closest to the float outputs
    ``x_float @ w.T``, with ``w`` as the prior: ``t^T = w^T + (H + D)^-1 x^T (x_float - x) w^T / n``,
    ``H + D`` damped as GPTQ's (a ridge regression towards ``w``: a few hundred samples
    cannot pin down K x K interactions, and equal inputs give ``t = w``)."""
    drift = (x.T @ (x_float - x)) / x.shape[0]  # (K, K)
    return w + np.linalg.solve(_damped(h, damping), drift @ w.T).T


def gptq(
    w: np.ndarray,
    x: np.ndarray,
    rtn: tuple[np.ndarray, ...],
    bits: int,
    group_size: int,
    dtype: Any,
    x_float: np.ndarray | None = None,
    damping: float = DAMPING,
    grid: bool = False,
) -> tuple[np.ndarray, ...]:
    """method="gptq": ``w`` (R, K) float64, ``x`` (n, K) float64 calibration inputs, ``rtn``
    MLX's (codes (R, K), scales (R, G), biases (R, G)) for ``w``; ``x_float`` (n, K): the
    float model's inputs on the same samples (float targets, see the module's docstring) or
    None; ``damping`` (> 0): H's diagonal is scaled by 1 + damping. Returns the same three
    arrays for the result, float64 holding values of the stored ``dtype``. ``grid``: keep
    ``rtn``'s scales and biases (any stored values, e.g. distilled ones) and choose only the
    codes, without the refit; each row then keeps whichever of the new codes and ``rtn``'s
    has the smaller objective (re-rounding, :func:`arrayq.nn.reround_quantized`)."""
    rows, k = w.shape
    groups = k // group_size
    n = (1 << bits) - 1
    h = (x.T @ x) / x.shape[0]
    cross = None if x_float is None else (x.T @ x_float) / x.shape[0]
    given, w = w, (w if x_float is None else float_target(w, x, x_float, h, damping))
    mean_square = np.diagonal(h)
    by_group = mean_square.reshape(groups, group_size)
    group_order = np.argsort(-by_group.max(axis=1), kind="stable")
    inner = np.argsort(-by_group, axis=1, kind="stable")[group_order]
    perm = (group_order[:, None] * group_size + inner).reshape(-1)  # columns in the order quantized
    u = _inverse_cholesky(h[np.ix_(perm, perm)], damping)
    work = w[:, perm]  # a copy (fancy indexing); updated in place by the error feedback
    q = np.zeros_like(w)
    scales = np.zeros((rows, groups))
    biases = np.zeros_like(scales)
    for g, original in enumerate(group_order):
        c0, c1 = g * group_size, (g + 1) * group_size
        block = work[:, c0:c1]  # a view
        if grid:
            scale, bias = rtn[1][:, original : original + 1], rtn[2][:, original : original + 1]
        else:
            _, scale, bias = stored_group(block, *fit(block, bits, mean_square[perm[c0:c1]]), bits, dtype)
        scales[:, original], biases[:, original] = scale[:, 0], bias[:, 0]
        err = np.zeros((rows, group_size))
        for j in range(group_size):
            col = block[:, j : j + 1]
            qj = codes(col, scale, bias, n)
            q[:, perm[c0 + j]] = qj[:, 0]
            err[:, j] = (col - dequantized(qj, scale, bias, dtype))[:, 0] / u[c0 + j, c0 + j]
            block[:, j + 1 :] -= np.outer(err[:, j], u[c0 + j, c0 + j + 1 : c1])
        work[:, c1:] -= err @ u[c0:c1, c1:]
    result = (q, scales, biases) if grid else (q, *refit(w, q, scales, biases, _damped(h, damping), group_size, dtype))

    def dense(codes_: np.ndarray, s: np.ndarray, b: np.ndarray) -> np.ndarray:
        return dequantized(codes_, _expand(s, group_size), _expand(b, group_size), dtype)

    better = objective(given, dense(*result), h, cross) < objective(given, dense(*rtn), h, cross)
    return pick(better, result, rtn)


#: Rows refitted at once: bounds refit's per-row linear systems (2G x 2G each) to ~64 MiB.
_REFIT_VALUES = 1 << 23


def refit(
    w: np.ndarray, q: np.ndarray, scales: np.ndarray, biases: np.ndarray, h: np.ndarray, group_size: int, dtype: Any
) -> tuple[np.ndarray, np.ndarray]:
    """With the codes ``q`` fixed, each row's scales and biases (R, G) of least output error
    ``(w_r - wq_r) H (w_r - wq_r)^T``: ``wq_r`` is linear in the row's 2G values, so they
    solve a 2G x 2G linear system per row. Rounded to ``dtype``; a row keeps its old
    values unless the new ones are better."""
    step = max(1, _REFIT_VALUES // (2 * scales.shape[1]) ** 2)
    parts = [
        _refit_rows(w[r : r + step], q[r : r + step], scales[r : r + step], biases[r : r + step], h, group_size, dtype)
        for r in range(0, w.shape[0], step)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _refit_rows(
    w: np.ndarray, q: np.ndarray, scales: np.ndarray, biases: np.ndarray, h: np.ndarray, group_size: int, dtype: Any
) -> tuple[np.ndarray, np.ndarray]:
    rows, k = w.shape
    groups = k // group_size

    def by_group(a: np.ndarray) -> np.ndarray:  # (R, K) -> (R, G): sums over each group
        return a.reshape(rows, groups, group_size).sum(axis=-1)

    # the normal equations' blocks: [[Q^T H Q, Q^T H 1], [1^T H Q, 1^T H 1]] per row, where
    # Q holds the row's codes group by group and 1 the groups' indicators
    system = np.zeros((rows, 2 * groups, 2 * groups))
    rhs = np.zeros((rows, 2 * groups))
    for g in range(groups):
        c = slice(g * group_size, (g + 1) * group_size)
        qh = q[:, c] @ h[c, :]  # (R, K): the row's group-g codes times H's rows of group g
        system[:, g, :groups] = by_group(qh * q)
        system[:, g, groups:] = by_group(qh)
        rhs[:, g] = np.sum(qh * w, axis=1)
    system[:, groups:, :groups] = np.swapaxes(system[:, :groups, groups:], 1, 2)
    system[:, groups:, groups:] = h.reshape(groups, group_size, groups, group_size).sum(axis=(1, 3))
    rhs[:, groups:] = by_group(w @ h)
    # a tiny ridge: a group whose codes are all equal makes its scale and bias collinear
    ridge = 1e-9 * np.trace(system, axis1=1, axis2=2)[:, None, None] / (2 * groups)
    theta = np.linalg.solve(system + ridge * np.eye(2 * groups), rhs[..., None])[..., 0]
    new_s, new_b = to_stored(theta[:, :groups], dtype), to_stored(theta[:, groups:], dtype)
    finite = np.isfinite(new_s).all(axis=1, keepdims=True) & np.isfinite(new_b).all(axis=1, keepdims=True)
    new_s, new_b = np.where(finite, new_s, scales), np.where(finite, new_b, biases)

    def error(s: np.ndarray, b: np.ndarray) -> np.ndarray:
        return objective(w, dequantized(q, _expand(s, group_size), _expand(b, group_size), dtype), h)

    better = error(new_s, new_b) < error(scales, biases)
    return np.where(better, new_s, scales), np.where(better, new_b, biases)
