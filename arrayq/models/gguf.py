"""A small reader of GGUF files (versions 2 and 3, little-endian), on NumPy only.

Layout: magic ``GGUF``; uint32 version; uint64 tensor count; uint64 metadata count; the
metadata key/value pairs (a key is a uint64-length UTF-8 string, then a uint32 value type
and the value; arrays are a uint32 element type, a uint64 count and the elements); the
tensor infos (name, uint32 n_dims, n_dims uint64 sizes ``ne`` with ``ne[0]`` the
fastest-varying, uint32 ggml type, uint64 offset); padding up to ``general.alignment``
(default 32); then the tensor data, each tensor at its offset from the data start.
A GGUF shape ``ne`` is the NumPy shape reversed: a weight of ``ne = [K, N]`` is (N, K),
and quantization blocks run along K.

Tensors come out memory-mapped where they can (F32, F16, BF16, integer types), and as
arrayq's affine format where the GGUF block format maps onto it exactly
(docs/quantization-formats.md §7):

* Q4_0 (blocks of 32: float16 ``d``, 16 bytes of nibbles; ``w = d * (q - 8)``, element j
  in the low nibble of byte j for j < 16 and the high nibble of byte j - 16 otherwise):
  4-bit, group 32, scale ``d``, bias ``-8 d``;
* Q4_1 (float16 ``d`` and ``m``, nibbles as Q4_0; ``w = d * q + m``): 4-bit, group 32,
  scale ``d``, bias ``m``;
* Q8_0 (float16 ``d``, 32 int8 ``q``; ``w = d * q``): 8-bit, group 32, scale ``d``, bias
  ``-128 d``, code ``q + 128`` (the int8 byte with its sign bit flipped).

* Q4_K (super-blocks of 256: float16 ``d`` and ``dmin``, eight 6-bit scales ``sc_j`` and
  mins ``m_j`` packed in 12 bytes, 128 bytes of nibbles; sub-block j of 32 is
  ``w = d*sc_j * q - dmin*m_j``): 4-bit, group 32, scale ``d*sc_j``, bias ``-dmin*m_j``;
* Q6_K (super-blocks of 256: 6-bit codes in 4 + 2 bit planes, an int8 scale per 16
  elements, float16 ``d``; ``w = d*sc * (q - 32)``): a scale per 16 elements has no
  exact affine form with groups of 32 or more, so the values llama.cpp dequantizes to are
  requantized to 8-bit, group 32 (arrayq.quantize): within one 8-bit step of each group
  (its range / 255) of llama.cpp's weights, where Q6_K's own step is about range / 63.

Scales and biases are float32, which makes every step of arrayq's dequantization exact,
so the weights equal llama.cpp's float32 dequantization bit for bit (Q6_K: as above).
Other block formats (Q5_K, Q2_K, IQ formats, ...) raise CheckpointError naming the tensor
and its type.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from typing import Any

import ml_dtypes
import numpy as np

from ._errors import CheckpointError
from ._files import MAX_ARRAY_DEPTH, MAX_DIMS, check_disjoint, check_shape, open_regular, release_pages

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# metadata value types
_SCALAR_TYPES = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

#: ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    30: ("BF16", 1, 2),
}
#: ggml types read as plain arrays
DENSE_TYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F64": np.dtype("<f8"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}
#: ggml types mapped onto arrayq's affine format: (bits, group size)
AFFINE_TYPES = {"Q4_0": (4, 32), "Q4_1": (4, 32), "Q8_0": (8, 32), "Q4_K": (4, 32), "Q6_K": (8, 32)}
#: Byte offsets of the float16 scale fields (d, and m or dmin) in each block type's block.
_F16_FIELDS = {"Q4_0": (0,), "Q4_1": (0, 2), "Q8_0": (0,), "Q4_K": (0, 2), "Q6_K": (208,)}


class GGUFTensorInfo:
    """One tensor's entry: ``name``, ``shape`` (NumPy order), ``type`` (ggml type name),
    ``type_id``, ``start``/``stop`` (absolute byte offsets)."""

    __slots__ = ("name", "shape", "type", "type_id", "start", "stop")

    def __init__(self, name: str, shape: tuple[int, ...], type_name: str, type_id: int, start: int, stop: int):
        self.name, self.shape, self.type, self.type_id, self.start, self.stop = (
            name,
            shape,
            type_name,
            type_id,
            start,
            stop,
        )

    def __repr__(self) -> str:
        return f"GGUFTensorInfo({self.name!r}, {self.type}, {self.shape})"


class _Cursor:
    def __init__(self, buf: Any, path: str):
        self.buf, self.pos, self.path, self.size = buf, 0, path, len(buf)

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > self.size:
            raise CheckpointError(
                self.path,
                f"truncated or corrupted: reading {what} needs {n} bytes at "
                f"offset {self.pos}, but the file has {self.size}",
            )
        start = self.pos
        self.pos += n
        return start

    def scalar(self, fmt: str, what: str) -> Any:
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, start)[0]

    def string(self, what: str) -> str:
        n = self.scalar("<Q", what)
        start = self.take(n, what)
        try:
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(self.path, f"corrupted: {what} is not UTF-8") from None

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in _SCALAR_TYPES:
            return self.scalar(_SCALAR_TYPES[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            etype = self.scalar("<I", what)
            count = self.scalar("<Q", what)
            if etype in _SCALAR_TYPES and etype != 7:  # numeric arrays in one go
                dtype = np.dtype(_SCALAR_TYPES[etype])
                start = self.take(count * dtype.itemsize, what)
                return np.frombuffer(self.buf, dtype, count, start).tolist()
            if count > self.size - self.pos:  # every element takes at least one byte
                raise CheckpointError(self.path, f"corrupted: {what} claims {count} elements")
            if etype == _ARRAY and depth + 1 >= MAX_ARRAY_DEPTH:
                raise CheckpointError(self.path, f"corrupted: {what} nests arrays deeper than {MAX_ARRAY_DEPTH} levels")
            return [self.value(etype, what, depth + 1) for _ in range(count)]
        raise CheckpointError(self.path, f"corrupted: {what} has unknown value type {vtype}")


class GGUFFile:
    """A GGUF file, its header, metadata and tensor infos parsed and checked on
    construction. ``file.metadata``: key → value; ``file.tensors``: name → GGUFTensorInfo;
    ``file.dense(name)``, ``file.affine(name)`` read one tensor. Raises CheckpointError for
    a missing, truncated or corrupted file, a big-endian file or an unknown version."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        with open_regular(self.path) as fh:
            try:
                size = os.fstat(fh.fileno()).st_size
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            except OSError as exc:
                raise CheckpointError(self.path, f"cannot read: {exc.strerror or exc}") from None
        cur = _Cursor(self._map, self.path)
        start = cur.take(4, "the magic")
        if bytes(self._map[start : start + 4]) != MAGIC:
            raise CheckpointError(self.path, "not a GGUF file (the first 4 bytes are not 'GGUF')")
        self.version = cur.scalar("<I", "the version")
        if self.version not in (2, 3):
            swapped = int.from_bytes(self.version.to_bytes(4, "little"), "big")
            hint = " (a big-endian file; only little-endian GGUF is supported)" if swapped in (2, 3) else ""
            raise CheckpointError(
                self.path, f"unsupported GGUF version {self.version}{hint}; this reader takes 2 and 3"
            )
        n_tensors = cur.scalar("<Q", "the tensor count")
        n_kv = cur.scalar("<Q", "the metadata count")
        if n_tensors > cur.size or n_kv > cur.size:
            raise CheckpointError(self.path, f"corrupted: claims {n_tensors} tensors and {n_kv} metadata entries")
        self.metadata: dict[str, Any] = {}
        for i in range(n_kv):
            key = cur.string(f"metadata key #{i}")
            vtype = cur.scalar("<I", f"the type of metadata {key!r}")
            self.metadata[key] = cur.value(vtype, f"metadata {key!r}")
        alignment = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            not isinstance(alignment, int)
            or isinstance(alignment, bool)
            or alignment <= 0
            or alignment & (alignment - 1)
        ):
            raise CheckpointError(self.path, f"general.alignment {alignment!r} is not a power of two")
        self.alignment = alignment
        raw_infos = []
        for i in range(n_tensors):
            name = cur.string(f"the name of tensor #{i}")
            n_dims = cur.scalar("<I", f"tensor {name!r}")
            if n_dims > MAX_DIMS:
                raise CheckpointError(self.path, f"corrupted: {n_dims} dimensions, at most {MAX_DIMS} accepted", name)
            ne = [cur.scalar("<Q", f"tensor {name!r}") for _ in range(n_dims)]
            type_id = cur.scalar("<I", f"tensor {name!r}")
            offset = cur.scalar("<Q", f"tensor {name!r}")
            raw_infos.append((name, ne, type_id, offset))
        self.data_start = -(-cur.pos // alignment) * alignment
        self.tensors: dict[str, GGUFTensorInfo] = {}
        for name, ne, type_id, offset in raw_infos:
            if type_id not in GGML_TYPES:
                raise CheckpointError(self.path, f"unknown ggml type id {type_id}", name)
            type_name, block, block_bytes = GGML_TYPES[type_id]
            shape = check_shape(self.path, name, tuple(reversed(ne)))
            if ne and ne[0] % block:
                raise CheckpointError(
                    self.path, f"{type_name} needs a first dimension divisible by {block}, got ne={ne}", name
                )
            if offset % alignment:
                raise CheckpointError(
                    self.path, f"data offset {offset} is not a multiple of the alignment {alignment} (corrupted)", name
                )
            nbytes = math.prod(ne) // block * block_bytes
            begin = self.data_start + offset
            if begin + nbytes > cur.size:
                raise CheckpointError(
                    self.path,
                    f"its data ends at byte {begin + nbytes} but the file has only {cur.size} bytes (truncated file)",
                    name,
                )
            if name in self.tensors:
                raise CheckpointError(self.path, "appears twice (corrupted)", name)
            self.tensors[name] = GGUFTensorInfo(name, shape, type_name, type_id, begin, begin + nbytes)
        check_disjoint(self.path, ((i.start, i.stop, i.name) for i in self.tensors.values()))

    def _unsupported(self, info: GGUFTensorInfo) -> CheckpointError:
        supported = sorted(AFFINE_TYPES) + sorted(DENSE_TYPES)
        return CheckpointError(
            self.path, f"ggml type {info.type} is not supported; supported types: {supported}", info.name
        )

    def _bytes(self, info: GGUFTensorInfo) -> np.ndarray:
        return np.frombuffer(self._map, np.uint8, info.stop - info.start, info.start)

    def dense(self, name: str) -> np.ndarray:
        """A plain tensor (F32, F16, BF16, F64 or integer) as a read-only array of its NumPy
        shape, memory-mapped where aligned. CheckpointError for a block-quantized type."""
        info = self.tensors[name]
        if info.type in AFFINE_TYPES:
            raise CheckpointError(self.path, f"is {info.type}, not a plain float or integer type", name)
        if info.type not in DENSE_TYPES:
            raise self._unsupported(info)
        dtype = DENSE_TYPES[info.type]
        raw = self._bytes(info)
        if info.start % dtype.itemsize:
            raw = raw.copy()
        return raw.view(dtype).reshape(info.shape)

    def affine(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """A block-quantized tensor (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) of shape (..., N, K) as
        arrayq's affine format: (packed uint32 (..., N, K*bits/32), scales float32
        (..., N, K/32), biases float32 (..., N, K/32), group_size, bits). Exact (dequantizing
        it gives llama.cpp's float32 values) but for Q6_K, requantized to 8 bits (see the
        module docstring). CheckpointError for any other type, or a block whose float16 scale
        fields are NaN or infinite."""
        info = self.tensors[name]
        if info.type not in AFFINE_TYPES:
            raise self._unsupported(info)
        if len(info.shape) < 2:
            raise CheckpointError(
                self.path, f"a quantized tensor needs 2 or more dimensions, got shape {info.shape}", name
            )
        bits, group = AFFINE_TYPES[info.type]
        *lead, k = info.shape
        _, block, block_bytes = GGML_TYPES[info.type_id]
        blocks = self._bytes(info).reshape(*lead, k // block, block_bytes)
        for at in _F16_FIELDS[info.type]:  # one check for every type: a NaN/inf scale would make NaN weights
            if not np.isfinite(np.ascontiguousarray(blocks[..., at : at + 2]).view("<f2")).all():
                raise CheckpointError(self.path, f"a {info.type} block holds a NaN or infinite float16 scale", name)
        d = np.ascontiguousarray(blocks[..., 0:2]).view("<f2")[..., 0].astype(np.float32)
        if info.type == "Q4_K":
            return (*_q4_k(blocks, d, lead, k), group, bits)
        if info.type == "Q6_K":
            return (*_q6_k(blocks, lead, k), group, bits)
        if info.type == "Q8_0":
            codes = blocks[..., 2:] ^ np.uint8(0x80)  # int8 q -> uint8 q + 128
            packed = np.ascontiguousarray(codes).reshape(*lead, k).view("<u4")
            return packed, d, d * np.float32(-128), group, bits
        qs = blocks[..., 4:] if info.type == "Q4_1" else blocks[..., 2:]  # (..., G, 16)
        codes = np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=-1)  # elements 0..31 of each block
        packed = _pack4(codes, lead, k)
        if info.type == "Q4_1":
            m = np.ascontiguousarray(blocks[..., 2:4]).view("<f2")[..., 0].astype(np.float32)
            return packed, d, m, group, bits
        return packed, d, d * np.float32(-8), group, bits

    def release(self, name: str) -> None:
        """Drop tensor ``name``'s pages of the memory map from this process's memory (see
        SafetensorsFile.release)."""
        info = self.tensors[name]
        if isinstance(self._map, mmap.mmap):
            release_pages(self._map, info.start, info.stop)

    def __repr__(self) -> str:
        return f"GGUFFile({self.path!r}, v{self.version}, {len(self.tensors)} tensors)"


def _pack4(codes: np.ndarray, lead: list[int], k: int) -> np.ndarray:
    """4-bit codes (..., K) in natural order as MLX's packed uint32 words."""
    return (codes[..., 0::2] | (codes[..., 1::2] << np.uint8(4))).reshape(*lead, k // 2).view("<u4")


def _q4_k(blocks: np.ndarray, d: np.ndarray, lead: list[int], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q4_K super-blocks (..., K/256, 144) as 4-bit group-32 (packed, scales, biases), exact."""
    dmin = np.ascontiguousarray(blocks[..., 2:4]).view("<f2")[..., 0].astype(np.float32)
    lo, mid, hi = blocks[..., 4:8], blocks[..., 8:12], blocks[..., 12:16]
    six = np.uint8(63)
    sc = np.concatenate([lo & six, (hi & np.uint8(15)) | ((lo >> np.uint8(6)) << np.uint8(4))], axis=-1)
    mn = np.concatenate([mid & six, (hi >> np.uint8(4)) | ((mid >> np.uint8(6)) << np.uint8(4))], axis=-1)
    scales = (d[..., None] * sc.astype(np.float32)).reshape(*lead, k // 32)
    biases = -(dmin[..., None] * mn.astype(np.float32)).reshape(*lead, k // 32)
    qs = blocks[..., 16:].reshape(*blocks.shape[:-1], 4, 1, 32)  # 4 chunks of 32 bytes: 2 sub-blocks each
    codes = np.concatenate([qs & np.uint8(15), qs >> np.uint8(4)], axis=-2)  # low nibbles, then high
    return _pack4(codes.reshape(*lead, k), lead, k), scales, biases


def _q6_k(blocks: np.ndarray, lead: list[int], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q6_K super-blocks (..., K/256, 210) dequantized as llama.cpp does (float32), then
    requantized to 8-bit group-32 (packed, scales, biases)."""
    from ..quant import quantize

    shape = blocks.shape[:-1]
    ql = blocks[..., :128].reshape(*shape, 2, 64)  # two halves of 128 elements
    qh = blocks[..., 128:192].reshape(*shape, 2, 1, 32)
    sc = blocks[..., 192:208].view(np.int8).reshape(*shape, 2, 4, 2)  # half, quarter, 16 of 32
    d = np.ascontiguousarray(blocks[..., 208:210]).view("<f2")[..., 0].astype(np.float32)
    low = np.stack([ql[..., :32] & 15, ql[..., 32:] & 15, ql[..., :32] >> 4, ql[..., 32:] >> 4], axis=-2)
    high = (qh >> (np.uint8(2) * np.arange(4, dtype=np.uint8))[:, None]) & np.uint8(3)
    q = (low | (high << np.uint8(4))).astype(np.float32) - np.float32(32)  # (..., 2, 4, 32)
    scale = d[..., None, None, None] * np.repeat(sc, 16, axis=-1).astype(np.float32)
    w = (scale * q).reshape(*lead, k)
    qw = quantize(w, group_size=32, bits=8)
    return np.asarray(qw.packed), np.asarray(qw.scales), np.asarray(qw.biases)


def is_gguf(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file starting with the GGUF magic."""
    try:
        with open_regular(path) as fh:
            return fh.read(4) == MAGIC
    except (CheckpointError, OSError):
        return False


__all__ = ["AFFINE_TYPES", "DENSE_TYPES", "GGML_TYPES", "GGUFFile", "GGUFTensorInfo", "is_gguf"]
