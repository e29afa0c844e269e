"""The NumPy backend's native kernels (``_kernels``, from ``csrc/``), where the build compiled them.

Affine weights with ``transpose=True`` (``x @ W.T``, how models store them) and float32
activations run here:

* decode (``M <= _kernels.MAX_ROWS`` rows of x): one fused pass over the packed weight per
  call, multithreaded; x is read in the kernel's column order.
* prefill (more rows): the kernel dequantizes blocks of rows of W to float32 (in the same
  column order, with x permuted to match), and BLAS multiplies each block.

Without a compiler at install time ``_kernels`` does not exist and the pure-NumPy path in
``_fastpath`` runs instead; :func:`status` says which (``arrayq info`` prints it).

Settings, read once when the kernels are first used:

* ``ARRAYQ_NATIVE``: unset or ``auto`` uses the best SIMD level this CPU runs; ``off``
  (or ``0``) uses the pure-NumPy path; a level name (``avx512``, ``avx2``, ``portable``)
  forces that level (ValueError at first use if this CPU lacks it).
* ``ARRAYQ_NUM_THREADS``: threads per call (default: one per CPU this process may use);
  :func:`set_num_threads` changes it at run time.
* ``ARRAYQ_NATIVE_ACTIVATIONS``: ``float32`` (the default) or ``int8``, the decode
  kernel's activations; :func:`activations` sets them for a block of code.

8-bit activations (opt-in, as llama.cpp does): each group of x is rounded to int8 codes
with one float32 scale (``max|x_g| / 127``), and the kernel takes exact integer dot products
of weight codes and activation codes (VNNI on AVX-512, ``pmaddubsw`` on AVX2). A 2-D weight
is then read from a repacked copy (:class:`RepackedWeights`, ``csrc/repack.c``), for decode
and prefill alike; batched weights keep the earlier 8-bit kernel on MLX's layout for decode
(codes wider than 6 bits stay float32 there on AVX2) and float32 prefill. The cost is x's
rounding error, at most ``max|x_g| / 254`` per element (~0.5% relative error of the result
for Gaussian data; docs/native-kernels.md), instead of float32 rounding.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import mmap
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from arrayq.backend import Backend

from ._fastpath import blocks_times, rows_per_block

try:
    from . import _kernels  # type: ignore[attr-defined]

    _missing = ""
except ImportError as exc:  # built without a C compiler: the pure-NumPy path runs
    _kernels = None
    _missing = str(exc)

#: Rows of x at or below which the fused decode kernel runs (above: dequantize + BLAS).
DECODE_MAX_ROWS = 8 if _kernels is None else _kernels.MAX_ROWS


@functools.cache
def _scale_kinds() -> dict[np.dtype, int]:
    """The kernels' code for each scale dtype."""
    import ml_dtypes

    return {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(ml_dtypes.bfloat16): 2}


def levels() -> tuple[str, ...]:
    """SIMD levels of the native kernels that this CPU runs, best first (empty when the
    kernels were not built)."""
    return () if _kernels is None else tuple(_kernels.levels())


@functools.cache
def _chosen_level() -> int | None:
    """Index into :func:`levels` of the level in use, or None for the pure-NumPy path."""
    if _kernels is None:
        return None
    setting = os.environ.get("ARRAYQ_NATIVE", "auto").strip().lower()
    if setting in ("off", "0", "false", "no"):
        return None
    if setting not in ("", "auto", "on", "1", "true", "yes") and setting not in levels():
        raise ValueError(
            f"ARRAYQ_NATIVE={setting!r}: this CPU runs the native levels {list(levels())}; "
            "set one of them, 'auto' or 'off'"
        )
    threads = os.environ.get("ARRAYQ_NUM_THREADS", "").strip()
    if threads:
        if not threads.isdigit():
            raise ValueError(f"ARRAYQ_NUM_THREADS={threads!r}: give a whole number of threads (0: one per CPU)")
        if not _threads_set_by_call:  # set_num_threads() before the first use wins
            _kernels.set_num_threads(int(threads))
    return levels().index(setting) if setting in levels() else 0


def level() -> str | None:
    """The SIMD level quantized matmul uses (None: the pure-NumPy path)."""
    index = _chosen_level()
    return None if index is None else levels()[index]


def status() -> str:
    """One line for ``arrayq info``: which path quantized matmul takes and why."""
    if _kernels is None:
        return (
            "quantized matmul: pure-NumPy path (native kernels not built: "
            f"{_missing}; reinstall with a C compiler present to build them)"
        )
    if level() is None:
        return "quantized matmul: pure-NumPy path (native kernels turned off by ARRAYQ_NATIVE)"
    return (
        f"quantized matmul: native kernels, {level()} ({num_threads()} threads, {current_activations()} "
        f"activations; this CPU runs {list(levels())})"
    )


def num_threads() -> int:
    """Threads a native call uses, the calling thread included."""
    if _kernels is None:
        return 1
    _chosen_level()  # applies ARRAYQ_NUM_THREADS, as the first call would
    return int(_kernels.num_threads())


_threads_set_by_call = False


def set_num_threads(n: int) -> None:
    """Use ``n`` threads per native call (0: one per CPU); this overrides
    ``ARRAYQ_NUM_THREADS``. Raises ValueError outside 0..256. The pool restarts; calls in
    flight finish first."""
    global _threads_set_by_call
    if _kernels is not None:
        _kernels.set_num_threads(int(n))
        _threads_set_by_call = True


ACTIVATION_MODES = ("float32", "int8")


def _check_mode(mode: str, where: str) -> str:
    if mode not in ACTIVATION_MODES:
        raise ValueError(f"{where}: activations must be one of {list(ACTIVATION_MODES)}, got {mode!r}")
    return mode


@functools.cache
def _default_activations() -> str:
    setting = os.environ.get("ARRAYQ_NATIVE_ACTIVATIONS", "float32").strip().lower() or "float32"
    return _check_mode(setting, "ARRAYQ_NATIVE_ACTIVATIONS")


_activations: contextvars.ContextVar[str | None] = contextvars.ContextVar("arrayq_native_activations", default=None)


def current_activations() -> str:
    """The decode kernel's activations here: ``"float32"`` or ``"int8"``."""
    return _activations.get() or _default_activations()


@contextlib.contextmanager
def activations(mode: str) -> Iterator[None]:
    """Within the block (this thread or task only), the native decode kernel takes its
    activations as ``mode``: ``"float32"`` or ``"int8"`` (see the module docstring for
    the accuracy cost). Raises ValueError for another mode. Without native kernels, the
    setting has no effect (the pure-NumPy path is float32)."""
    token = _activations.set(_check_mode(mode, "activations()"))
    try:
        yield
    finally:
        _activations.reset(token)


class NativeActivations(Backend):
    """The NumPy backend's activation modes (a base of ``NumPyBackend``): the contract's
    ``activation_modes``, ``activations`` and ``batch_invariant`` on :func:`activations`."""

    def activation_modes(self) -> tuple[str, ...]:
        """int8 first where the native kernels run (``--activations auto``: as llama.cpp on
        a CPU, docs/serving.md); float32 alone on the pure-NumPy path, which int8 leaves as is."""
        return ("int8", "float32") if level() is not None else ("float32",)

    def activations(self, mode: str) -> contextlib.AbstractContextManager[None]:
        super().activations(mode)  # (ValueError for a mode this machine does not offer)
        return activations(mode)

    def batch_invariant(self, device: Any = None) -> bool:
        """With int8 activations the kernels compute each row of x alone, for any number of
        rows; with float32 the decode kernel (up to 8 rows) and dequantize + BLAS (more) sum
        in other orders."""
        return level() is not None and current_activations() == "int8"


def _scale_view(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Scales or biases as the kernel reads them: contiguous, 2-byte floats viewed as
    uint16, with their kind code (other dtypes are widened to float32)."""
    kind = _scale_kinds().get(a.dtype)
    if kind is None:
        a, kind = a.astype(np.float32), 0
    if not (a.flags.c_contiguous and a.flags.aligned):
        a = np.require(a, requirements=["C", "A"])
    return (a.view(np.uint16) if kind else a), kind


@functools.cache
def _column_order(level_index: int, k: int, group_size: int, bits: int) -> np.ndarray:
    """Permutation that puts x's columns in the kernel's order: ``x[:, order]``."""
    assert _kernels is not None
    return np.frombuffer(_kernels.slot_order(level_index, k, group_size, bits), np.int64)


#: A repacked weight: its bytes, the kind code of its stored scales, whether it is symmetric.
Repacked = tuple[np.ndarray, int, bool]


class HugePageArena:
    """Memory for repacked copies, handed out one after another from anonymous memory maps
    advised to use huge pages (Linux; elsewhere, or where a map fails, ``np.empty``).

    A model's copies then lie in a few large maps, in the order decode first reads them,
    rather than in one small heap allocation each (NumPy advises huge pages only from
    4 MiB): the qwen3-0.6b preset's decode GEMVs measured 1.19-1.21x faster per call, the
    LM head 1.13x (docs/benchmarks.md). A copy larger than a chunk gets a map of its own.
    Each copy is a view that keeps its map alive, and the arena refers to the map it is
    filling only weakly, so a map is unmapped once every copy in it is gone. Bytes a map
    reserves but nobody wrote are not resident."""

    CHUNK = 64 << 20
    ALIGN = 64  # a cache line

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._region: weakref.ref[mmap.mmap] | None = None
        self._used = 0

    @staticmethod
    def _map(size: int) -> mmap.mmap | None:
        if not hasattr(mmap, "MADV_HUGEPAGE"):
            return None
        try:
            region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            region.madvise(mmap.MADV_HUGEPAGE)
        except (OSError, ValueError):
            return None
        return region

    def take(self, size: int) -> np.ndarray:
        """``size`` uninitialized bytes (uint8; 64-byte aligned where they come from a map)."""
        if size > self.CHUNK:
            whole = self._map(size)
            return np.empty(size, np.uint8) if whole is None else np.frombuffer(whole, np.uint8)
        with self._lock:
            region = self._region() if self._region is not None else None
            start = -(-self._used // self.ALIGN) * self.ALIGN
            if region is None or start + size > len(region):
                region, start = self._map(self.CHUNK), 0
                if region is None:
                    return np.empty(size, np.uint8)
                self._region = weakref.ref(region)
            self._used = start + size
            return np.frombuffer(region, np.uint8, count=size, offset=start)


class RepackedWeights:
    """The repacked copies of affine weights that 8-bit-activation decode reads
    (``csrc/repack.c`` has the layout), one per (weight, SIMD level), made on a weight's
    first such call and dropped when its packed array is garbage-collected. Each backend
    instance owns one; :meth:`nbytes` is the memory they hold (about the size of the
    packed weights again: the public weight and its repacked copy both stay in memory).

    A copy is found again by the identity of the weight's packed, scales and biases
    arrays, so it is taken that they are not written into after first use (writing in
    place is not seen; :meth:`clear` forgets every copy)."""

    def __init__(self) -> None:
        # (id(packed), level) -> (scales, biases, repacked bytes); scales/biases held so
        # that their ids stay theirs while the entry lives
        self._copies: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, Repacked]] = {}
        self._lock = threading.Lock()
        self._arena = HugePageArena()

    def nbytes(self) -> int:
        """Bytes held by the repacked copies."""
        with self._lock:
            return sum(entry[2][0].nbytes for entry in self._copies.values())

    def clear(self) -> None:
        """Forget every repacked copy (they are rebuilt on next use)."""
        with self._lock:
            self._copies.clear()

    def get(
        self, packed: np.ndarray, scales: np.ndarray, biases: np.ndarray, group_size: int, bits: int, level_index: int
    ) -> Repacked:
        """The repacked copy of the 2-D affine weight (packed, scales, biases) at a level."""
        key = (id(packed), level_index)
        with self._lock:
            entry = self._copies.get(key)
        if entry is not None and entry[0] is scales and entry[1] is biases:
            return entry[2]
        data = repack(packed, scales, biases, group_size, bits, level_index, self._arena.take)
        with self._lock:
            if key not in self._copies:
                weakref.finalize(packed, self._forget, key)
            self._copies[key] = (scales, biases, data)
        return data

    def _forget(self, key: tuple[int, int]) -> None:
        with self._lock:
            self._copies.pop(key, None)


def repack(
    packed: np.ndarray,
    scales: np.ndarray,
    biases: np.ndarray,
    group_size: int,
    bits: int,
    level_index: int,
    allocate: Any = None,
) -> Repacked:
    """W (N, K) in MLX's affine format in the repacked layout of a level (``csrc/repack.c``):
    its bytes, the kind code of its stored scales, and whether it is symmetric. A symmetric
    weight (every bias exactly -2**(bits-1) times its scale: GGUF's Q4_0 and Q8_0 as the
    GGUF reader gives them) stores no biases, and its scales as float16 where that is exact
    (GGUF's own scales are), so a token reads as many bytes as llama.cpp's blocks (18 per
    32 weights for Q4_0, 34 for Q8_0). ``allocate(nbytes)`` gives the uint8 array the copy
    is written into (default ``np.empty``; :class:`RepackedWeights` uses its
    :class:`HugePageArena`)."""
    assert _kernels is not None
    n, k = packed.shape[0], packed.shape[1] * 32 // bits
    symmetric = _symmetric(scales, biases, bits)
    if symmetric:
        half = scales.astype(np.float16)
        if np.array_equal(half.astype(scales.dtype), scales):
            scales = half
    s, kind = _scale_view(scales)
    b, _ = _scale_view(biases if biases.dtype == scales.dtype else scales)  # (not read where symmetric)
    size = _kernels.repacked_size(level_index, n, k, group_size, bits, kind, symmetric)
    data = np.empty(size, np.uint8) if allocate is None else allocate(size)
    _kernels.repack(level_index, np.ascontiguousarray(packed), s, b, data, n, k, group_size, bits, kind, symmetric)
    return data, kind, symmetric


def _symmetric(scales: np.ndarray, biases: np.ndarray, bits: int) -> bool:
    """Whether every bias is exactly -2**(bits-1) times its scale (GGUF's Q4_0 and Q8_0
    read as affine weights): the repacked copy then stores no biases."""
    return bool(np.array_equal(biases, scales * scales.dtype.type(-(1 << (bits - 1)))))


def repacked_runs() -> bool:
    """Whether :func:`matmul_repacked` takes affine ``x @ W.T`` calls here: native kernels
    in use and 8-bit activations (decode and prefill alike: on the repacked layout, rows of
    x in passes of four over blocks of tiles that stay in cache, it measured 10-30x faster
    than dequantize + BLAS for 32 rows on 2 busy cores; benchmarks/bench_decode_gemv.py)."""
    return _chosen_level() is not None and current_activations() == "int8"


def matmul_repacked(x: np.ndarray, qw: Any, cache: RepackedWeights) -> np.ndarray | None:
    """``x @ W.T`` with 8-bit activations from W's repacked copy in ``cache``. x: (M, K)
    float32, M >= 1; qw: a 2-D affine QuantizedWeight of NumPy arrays. Returns (M, N)
    float32, or None where x holds a NaN or an infinity (the kernel reports it; such x
    takes the unfactored path, see the backend's ``_affine_2d``)."""
    index = _chosen_level()
    assert _kernels is not None and index is not None
    data, kind, symmetric = cache.get(qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, index)
    m, k = x.shape
    n = qw.packed.shape[0]
    xc = x if x.flags.c_contiguous and x.flags.aligned else np.require(x, np.float32, requirements=["C", "A"])
    out = np.empty((m, n), np.float32)
    finite = _kernels.gemv_repacked(index, xc, data, out, m, n, k, qw.group_size, qw.bits, kind, symmetric)
    return out if finite else None


def supports(x: np.ndarray, packed: np.ndarray, transpose: bool, group_size: int) -> bool:
    """Whether :func:`matmul` takes this call (2-D x and weight, ``x @ W.T``)."""
    return _chosen_level() is not None and transpose and x.ndim == 2 and packed.ndim == 2 and group_size % 32 == 0


def matmul(
    x: np.ndarray, packed: np.ndarray, scales: np.ndarray, biases: np.ndarray, group_size: int, bits: int
) -> np.ndarray:
    """``x @ W.T`` for an affine weight W (N, K), in float32.

    x: (M, K) float32. packed: (N, K*bits/32) uint32; scales/biases: (N, K/group_size)
    float32, float16 or bfloat16. Returns (M, N) float32."""
    index = _chosen_level()
    assert _kernels is not None and index is not None
    m, k = x.shape
    n = packed.shape[0]
    if not packed.flags.c_contiguous:
        packed = np.ascontiguousarray(packed)
    s, kind = _scale_view(scales)
    b, _ = _scale_view(biases)  # the same dtype as the scales (QuantizedWeight checks)
    if m <= DECODE_MAX_ROWS:
        out = np.empty((m, n), np.float32)
        int8 = current_activations() == "int8"
        aligned = x.flags.c_contiguous and x.flags.aligned and x.dtype == np.float32
        xc = x if aligned else np.require(x, np.float32, requirements=["C", "A"])
        _kernels.gemv(index, xc, packed, s, b, out, m, n, k, group_size, bits, kind, int8)
        return out
    # prefill: blocks of W dequantized in the kernel's column order, x permuted to match
    xt = np.ascontiguousarray(x[:, _column_order(index, k, group_size, bits)].T, np.float32)
    w = np.empty((min(rows_per_block(k), n), k), np.float32)  # one buffer for every block

    def dequantized(r: int, rows: int) -> np.ndarray:
        _kernels.dequantize(index, packed, s, b, w, r, rows, k, group_size, bits, kind)
        return w[:rows]

    return np.ascontiguousarray(blocks_times(dequantized, n, k, xt).T)


#: Where :func:`attention` takes a call: one query row (decode) against at most this many
#: keys. It re-reads the keys for every query row on one thread, so more query rows or
#: longer contexts run faster through the reference's BLAS calls (measured, 2 cores: one
#: row against 512 keys 117 us vs 248; 4096 keys 1.73 ms vs 1.68; 4 rows, 512 keys 389 us
#: vs 260).
ATTENTION_MAX_ROWS = 1
ATTENTION_MAX_KEYS = 2048


def attends(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> bool:
    """Whether :func:`attention` takes this call: float32 q, float32 or float16 k and v
    (:func:`kv_dtype_fits`), each with a contiguous last axis and non-negative strides, one
    query row, 1 to ATTENTION_MAX_KEYS keys."""
    return (
        _chosen_level() is not None
        and q.shape[2] <= ATTENTION_MAX_ROWS
        and 0 < k.shape[2] <= ATTENTION_MAX_KEYS
        and q.dtype == np.float32
        and kv_dtype_fits(k, v)
        and all(a.flags.aligned and a.strides[-1] == a.itemsize and min(a.strides) >= 0 for a in (q, k, v))
    )


def kv_dtype_fits(k: np.ndarray, v: np.ndarray) -> bool:
    """Keys and values the kernel reads: both float32, or both float16 (a float16 KV cache)
    with k's and v's last axes multiples of 16 (the widest level's lanes: no row has a
    scalar tail, which could round differently from the float32 kernel's)."""
    if k.dtype == np.float32 and v.dtype == np.float32:
        return True
    return k.dtype == np.float16 and v.dtype == np.float16 and k.shape[-1] % 16 == 0 and v.shape[-1] % 16 == 0


def key_lengths(mask: Any, batch: int, keys: int) -> np.ndarray | None:
    """The keys each batch row sees, where ``mask`` is a padding mask over ``keys`` keys
    (:func:`arrayq.nn.padding_mask`: shape (B, 1, 1, S) or (1, 1, 1, S), 0 on each row's
    first keys and float32's lowest value or -inf on the rest, each row seeing at least
    one key): int64 (B,). Then the kernel reading each row's first keys only is the same
    attention (the masked keys' weights are exactly 0). None for any other mask."""
    if not isinstance(mask, np.ndarray) or mask.ndim != 4 or mask.shape[1:] != (1, 1, keys):
        return None
    if mask.shape[0] not in (1, batch) or mask.dtype.kind != "f":
        return None
    rows = mask.reshape(mask.shape[0], keys)
    lengths = np.count_nonzero(rows == 0, axis=1)
    prefix = np.arange(keys) < lengths[:, None]
    if lengths.min() < 1 or not np.where(prefix, rows == 0, rows <= np.finfo(np.float32).min).all():
        return None
    return np.ascontiguousarray(np.broadcast_to(lengths, (batch,)), dtype=np.int64)


class KeyLengths:
    """:func:`key_lengths` with the last answer remembered: a batched decode step's layers
    all attend under one padding mask (28 checks of it a step for qwen3-0.6b), so a mask
    of the same shape, dtype and bytes as the last one gets the last lengths back (a byte
    comparison instead of the check). Safe across threads: the remembered answer is one
    tuple, replaced whole."""

    def __init__(self) -> None:
        self._last: tuple[Any, bytes, np.ndarray | None] | None = None

    def __call__(self, mask: Any, batch: int, keys: int) -> np.ndarray | None:
        if not isinstance(mask, np.ndarray):
            return None
        key, data, last = (mask.shape, mask.dtype.str, batch, keys), mask.tobytes(), self._last
        if last is not None and last[0] == key and last[1] == data:
            return last[2]
        lengths = key_lengths(mask, batch, keys)
        if lengths is not None:
            lengths.setflags(write=False)
        self._last = (key, data, lengths)
        return lengths


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, causal: bool, lengths: np.ndarray | None = None
) -> np.ndarray:
    """``softmax(scale * q @ k.T [+ causal mask]) @ v`` with grouped query heads, in
    float32 (k and v float32 or float16, widened as read), on the thread pool where the
    call is large enough (csrc/attention.c).
    q: (B, H, L, D); k: (B, Hkv, S, D); v: (B, Hkv, S, Dv) (shapes checked by the caller,
    :func:`attends` true). ``lengths``: int64 (B,) from
    :func:`key_lengths` (one query row, not causal): row b sees its first lengths[b] keys.
    Returns (B, H, L, Dv) float32."""
    index = _chosen_level()
    assert _kernels is not None and index is not None
    out = np.empty(q.shape[:3] + v.shape[3:], np.float32)
    if lengths is None:
        _kernels.attention(index, q, k, v, out, scale, causal)
    else:
        _kernels.attention(index, q, k, v, out, scale, causal, lengths)
    return out
