"""The KV cache of :class:`arrayq.nn.Attention` (re-exported there as ``arrayq.nn.KVCache``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import arrayq as aq


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
        b, h, _, d = (int(n) for n in new.shape)
        parts.append(aq.broadcast_to(aq.zeros_like(new[:, :, :1]), (b, h, room - end, d)))
    return aq.concat(parts, axis=2)
