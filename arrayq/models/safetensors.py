"""A small safetensors reader (memory-mapped) and writer, on NumPy and ml_dtypes only.

The format: 8 bytes, the little-endian length N of a JSON header; N bytes of JSON mapping
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the
data that follows the header) plus an optional ``"__metadata__"`` map of strings; then the
raw little-endian tensor bytes, C order, without holes.

:class:`SafetensorsFile` checks the whole header when it opens a file, so a truncated or
corrupted file raises :class:`~arrayq.models.CheckpointError` (naming the file, and the
tensor where one is at fault) before any data is read. Tensors are read-only NumPy views
of a memory map: nothing is read from disk until used.
"""

from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Iterator, Mapping
from typing import Any

import ml_dtypes
import numpy as np

from ._errors import CheckpointError
from ._files import check_disjoint, check_shape, open_regular, parse_json, release_pages

#: safetensors dtype code -> NumPy dtype
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
}
_CODES = {v: k for k, v in DTYPES.items()}
#: Largest header accepted (the reference implementation's limit).
MAX_HEADER_BYTES = 100 * 1024 * 1024


def dtype_code(dtype: Any) -> str:
    """The safetensors code ("F32", "BF16", ...) of a NumPy dtype; KeyError if it has none."""
    return _CODES[np.dtype(dtype)]


class TensorInfo:
    """Where one tensor lies: ``name``, ``dtype`` (safetensors code), ``shape``, and
    ``start``/``stop``, absolute byte offsets in the file."""

    __slots__ = ("name", "dtype", "shape", "start", "stop")

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...], start: int, stop: int):
        self.name, self.dtype, self.shape, self.start, self.stop = name, dtype, shape, start, stop

    def __repr__(self) -> str:
        return f"TensorInfo({self.name!r}, {self.dtype}, {self.shape})"


class SafetensorsFile:
    """One safetensors file, its header parsed and checked on construction.

    ``file.metadata``: the ``__metadata__`` strings; ``file.infos``: name → TensorInfo;
    ``file[name]``: the tensor, a read-only NumPy array backed by a memory map (a copy
    only when its bytes are not aligned for its dtype). Raises CheckpointError for a file
    that is missing, truncated or corrupted."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._map: mmap.mmap | None = None
        with open_regular(self.path) as fh:
            try:
                size = os.fstat(fh.fileno()).st_size
                head = fh.read(8)
                n = int.from_bytes(head, "little")
                raw = fh.read(n) if len(head) == 8 and n <= MAX_HEADER_BYTES and 8 + n <= size else b""
            except OSError as exc:
                raise CheckpointError(self.path, f"cannot read: {exc.strerror or exc}") from None
        if len(head) < 8:
            raise CheckpointError(self.path, f"file is {size} bytes, too short for a safetensors header (truncated?)")
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(
                self.path,
                f"header length {n} does not fit a file of {size} bytes (truncated or not a safetensors file)",
            )
        header = parse_json(self.path, raw, "header")
        if not isinstance(header, dict):
            raise CheckpointError(self.path, "header is not a JSON object (corrupted?)")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict):
            raise CheckpointError(self.path, "__metadata__ is not a JSON object")
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in meta.items()}
        self.data_start = 8 + n
        self.size = size
        self.infos: dict[str, TensorInfo] = {name: self._info(name, entry) for name, entry in header.items()}
        check_disjoint(self.path, ((i.start, i.stop, i.name) for i in self.infos.values()))

    def _info(self, name: str, entry: Any) -> TensorInfo:
        bad = lambda why: CheckpointError(self.path, why, name)  # noqa: E731
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise bad("header entry lacks dtype, shape or data_offsets (corrupted header)")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in DTYPES:
            raise bad(f"unsupported dtype {code!r}; this reader takes {sorted(DTYPES)}")
        shape = check_shape(self.path, name, shape)
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise bad(f"data_offsets {offsets!r} are not [begin, end] with 0 <= begin <= end (corrupted header)")
        nbytes = math.prod(shape) * DTYPES[code].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise bad(
                f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes, but {code} {tuple(shape)} needs "
                f"{nbytes} (corrupted header)"
            )
        start, stop = self.data_start + offsets[0], self.data_start + offsets[1]
        if stop > self.size:
            raise bad(f"its data ends at byte {stop} but the file has only {self.size} bytes (truncated file)")
        return TensorInfo(name, code, tuple(shape), start, stop)

    # ---- mapping interface
    def keys(self) -> list[str]:
        return list(self.infos)

    def __contains__(self, name: object) -> bool:
        return name in self.infos

    def __iter__(self) -> Iterator[str]:
        return iter(self.infos)

    def __len__(self) -> int:
        return len(self.infos)

    def __getitem__(self, name: str) -> np.ndarray:
        info = self.infos[name]
        dtype = DTYPES[info.dtype]
        if info.stop == info.start:
            return np.zeros(info.shape, dtype)
        if self._map is None:
            with open_regular(self.path) as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if info.start % dtype.itemsize:  # misaligned for its dtype: copy out
            raw = np.frombuffer(self._map, np.uint8, info.stop - info.start, info.start)
            return raw.copy().view(dtype).reshape(info.shape)
        count = (info.stop - info.start) // dtype.itemsize
        return np.frombuffer(self._map, dtype, count, info.start).reshape(info.shape)

    def release(self, name: str) -> None:
        """Drop tensor ``name``'s pages of the memory map from this process's memory (they
        are read again from the file if used again): after copying a tensor elsewhere, the
        mapped pages would otherwise stay resident next to the copy."""
        info = self.infos[name]
        if self._map is not None:
            release_pages(self._map, info.start, info.stop)

    def __repr__(self) -> str:
        return f"SafetensorsFile({self.path!r}, {len(self.infos)} tensors)"


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file, as memory-mapped read-only arrays."""
    f = SafetensorsFile(path)
    return {name: f[name] for name in f.keys()}


def save(path: str | os.PathLike, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> int:
    """Write ``tensors`` (name → NumPy array of a dtype in :data:`DTYPES`) to ``path`` as
    safetensors, streaming each array's bytes; returns the bytes written. Tensors are laid
    out widest dtype first so every tensor stays aligned for its dtype, and the header is
    padded with spaces to a multiple of 8 bytes. The file appears atomically (written to a
    temporary name, then renamed). Raises KeyError for an unsupported dtype."""
    arrays = {name: np.asarray(a) for name, a in tensors.items()}
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name in order:
        a = arrays[name]
        header[name] = {
            "dtype": dtype_code(a.dtype),
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(len(raw).to_bytes(8, "little"))
            fh.write(raw)
            for name in order:
                a = np.ascontiguousarray(arrays[name])
                if a.nbytes:
                    fh.write(a.reshape(-1).view(np.uint8).data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return 8 + len(raw) + offset


__all__ = ["DTYPES", "SafetensorsFile", "TensorInfo", "dtype_code", "load", "save"]
