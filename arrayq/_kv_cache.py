"""The KV cache of :class:`arrayq.nn.Attention` (re-exported there as ``arrayq.nn.KVCache``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import arrayq as aq

from ._functional import prefix_mask


def _writable(x: Any) -> bool:
    """Whether ``x`` takes slice assignment (NumPy's and MLX's arrays do; immutable arrays,
    such as JAX's, do not): tried on an empty slice."""
    try:
        x[..., 0:0, :] = x[..., 0:0, :]
        return True
    except (TypeError, ValueError, AttributeError, NotImplementedError, IndexError):
        return False


@dataclasses.dataclass
class KVCache:
    """Keys and values of the positions seen so far, (B, Hkv, S, D) each, or None before
    the first call. :meth:`update_and_fetch` appends in place where the backend's arrays
    can be written (NumPy's and MLX's can): into buffers of ``capacity`` positions,
    allocated at the first call (the generation loop knows its total length), that double
    when full (amortised cost: the new positions only); by concatenation elsewhere (O(S)
    per step, for immutable arrays). The caller's arrays are never written into."""

    _keys: Any = None  # buffers (B, Hkv, capacity, D); the first `_length` positions are valid
    _values: Any = None
    _length: int = 0
    _in_place: bool = False  # the buffers are arrayq's own and take slice assignment
    capacity: int = 0  # positions to allocate at the first call (0: as many as it brings)

    @property
    def offset(self) -> int:
        """Number of positions cached."""
        return self._length

    @property
    def keys(self) -> Any:
        """The cached keys (B, Hkv, S, D), or None."""
        return None if self._keys is None else self._keys[:, :, : self._length]

    @property
    def values(self) -> Any:
        """The cached values (B, Hkv, S, D), or None."""
        return None if self._values is None else self._values[:, :, : self._length]

    def update_and_fetch(self, keys: Any, values: Any) -> tuple[Any, Any]:
        """Append ``keys``/``values`` (B, Hkv, L, D) and return all cached (B, Hkv, S+L, D)."""
        length = int(keys.shape[2])
        end = self._length + length
        if self._in_place and end <= int(self._keys.shape[2]):
            self._keys[:, :, self._length : end] = keys
            self._values[:, :, self._length : end] = values
        elif self._keys is None and self.capacity <= length:  # held as given (not ours to write into)
            self._keys, self._values = keys, values
        else:  # a new buffer of twice the positions (at least `capacity`); then in place
            room = self.capacity if end <= self.capacity else 2 * end
            self._keys = _grown(self.keys, keys, room)
            self._values = _grown(self.values, values, room)
            self._in_place = _writable(self._keys)
        self._length = end
        return self.keys, self.values


def _grown(cached: Any, new: Any, room: int) -> Any:
    """``cached`` (or None) followed by ``new`` along axis 2, then zeros up to ``room``
    positions where the array takes slice assignment: a new array, neither is written."""
    parts = [new] if cached is None else [cached, new]
    end = sum(int(p.shape[2]) for p in parts)
    if room > end and _writable(new):
        parts.append(_zeros(new, room - end))
    return aq.concat(parts, axis=2)


def _zeros(like: Any, positions: int) -> Any:
    """Zeros (B, Hkv, positions, D) in the dtype and on the backend of ``like`` (B, Hkv, *, D):
    a new array, not a broadcast view (NumPy lays out a concatenation by its inputs' strides,
    and a view's zero stride then made the positions the last axis in memory when the new
    part was one position: attention kernels that need a contiguous last axis declined)."""
    b, h, _, d = (int(n) for n in like.shape)
    return aq.zeros((b, h, positions, d), dtype=aq.dtype(like), like=like)


@dataclasses.dataclass
class FixedKVCache:
    """A KV cache whose buffers never change size and whose position is a 0-d int32 array on
    the device: the cache a compiled decode step takes and returns (:func:`arrayq.compile`
    sees ``keys``, ``values`` and ``position`` as inputs and ``window`` as a static value, so
    every step replays one compiled version; nothing is read on the host).

    ``keys``/``values``: (B, Hkv, capacity, D) buffers whose first ``position`` entries are
    valid. :meth:`update_and_fetch` writes the new positions at ``position``
    (:func:`arrayq.slice_update`) and returns the first ``window`` positions of each buffer;
    :meth:`mask` hides those not yet written (and, for a decoder, each query's later
    positions). ``window`` <= capacity bounds what attention reads: the decode loop
    grows it in steps (each new window compiles once) instead of reading the whole capacity
    from the first token. ``update_and_fetch`` replaces the arrays (functional, as a compiled
    function must); the caller's arrays are never written into.

    ``dtype``: None (the buffers keep the dtype they are given), or a floating dtype (an
    arrayq dtype or its name, e.g. ``"float16"``) the buffers are stored in: the given buffers
    and every written position are converted once, when written (half the memory of float32
    for float16). Attention converts the keys and values it reads to the query's dtype
    (:func:`arrayq.nn.scaled_dot_product_attention`), so the result is attention over the
    rounded keys and values. TypeError for a name arrayq does not know or a dtype that is
    not floating; the backend's UnsupportedDTypeError where it lacks the dtype.

    The caller keeps ``position + L <= window <= capacity``: the position is never read on
    the host, so nothing can check it there. Past the capacity, the write is clamped onto the
    last positions; past the window, attention does not see the new keys. (generate grows
    the window before each step.)"""

    keys: Any
    values: Any
    position: Any
    window: int
    dtype: Any = None  # None, or the name of the floating dtype the buffers are stored in

    def __post_init__(self) -> None:
        if self.dtype is None:
            return
        target = _kv_dtype(self.dtype)
        self.dtype = target.name  # (a name: a static value for arrayq.compile, which rebuilds the cache each call)
        if aq.as_dtype(self.keys.dtype) is not target or aq.as_dtype(self.values.dtype) is not target:
            self.keys, self.values = aq.astype(self.keys, target), aq.astype(self.values, target)

    @classmethod
    def from_cache(cls, cache: KVCache, capacity: int, window: int, dtype: Any = None) -> FixedKVCache:
        """The positions ``cache`` holds, in buffers of ``capacity`` positions (its own
        buffers where they are that size already), stored in ``dtype`` where given (see the
        class); ValueError for an empty cache, or a capacity or window that does not hold
        them; TypeError for a ``dtype`` that is not floating."""
        length = cache.offset
        if cache._keys is None or not length <= window <= capacity:
            raise ValueError(f"need a filled cache and {length} <= window ({window}) <= capacity ({capacity})")
        buffers = []
        for held in (cache._keys, cache._values):
            if int(held.shape[2]) != capacity:
                held = aq.concat([held[:, :, :length], _zeros(held, capacity - length)], axis=2)
            buffers.append(held)
        position = aq.asarray(length, dtype=aq.int32, like=buffers[0])
        return cls(buffers[0], buffers[1], position, window, dtype)

    @property
    def offset(self) -> Any:
        """The position of the next key (a 0-d int32 array)."""
        return self.position

    def update_and_fetch(self, keys: Any, values: Any) -> tuple[Any, Any]:
        """Write ``keys``/``values`` (B, Hkv, L, D) at ``position``, advance it by L, and
        return the first ``window`` positions of both buffers (B, Hkv, window, D), in the
        cache's ``dtype`` where it has one (the new positions converted to it)."""
        if self.dtype is not None:
            keys, values = aq.astype(keys, self.dtype, copy=False), aq.astype(values, self.dtype, copy=False)
        self.keys = aq.slice_update(self.keys, keys, self.position, axis=2)
        self.values = aq.slice_update(self.values, values, self.position, axis=2)
        self.position = aq.add(self.position, int(keys.shape[2]))
        return self.keys[:, :, : self.window], self.values[:, :, : self.window]

    def mask(self, length: int, dtype: Any, causal: bool = True) -> Any:
        """The additive mask (1, 1, L, window) in ``dtype`` for the L positions just
        written: 0 where a query may see a key, -inf elsewhere (keys not yet written; with
        ``causal``, keys after the query's own position)."""
        return prefix_mask(self.position, length, self.window, causal=causal, dtype=dtype, like=self.position)


def _kv_dtype(dtype: Any) -> Any:
    """The arrayq dtype of a cache's ``dtype`` argument; TypeError where it names no
    floating dtype."""
    if isinstance(dtype, bool):
        raise TypeError(f"a KV cache dtype must be a floating dtype such as 'float16', got {dtype!r}")
    found = aq.as_dtype(dtype)  # (TypeError, listing the known names, for one arrayq does not know)
    if found.kind != "float":
        raise TypeError(f"a KV cache dtype must be a floating dtype such as 'float16', got {found.name}")
    return found
