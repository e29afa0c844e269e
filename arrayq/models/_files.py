"""Every check of a file a checkpoint names, in one place, each failure a CheckpointError
naming the file (and the tensor where one is at fault):

* :func:`member`: a path a checkpoint names (config, index, shards, tokenizer) stays
  inside the checkpoint folder once symlinks are resolved;
* :func:`open_regular`: only regular files are read (a FIFO or a device would block or
  never end);
* :func:`parse_json` / :func:`read_json`: JSON within explicit bounds of size and nesting
  depth (checked before parsing, so a deeply nested header never reaches the parser);
* :func:`check_shape`: a tensor shape is a short list of non-negative integers of a
  bounded element count;
* :func:`check_disjoint`: no two tensors share bytes;
* :func:`extract_zip`: a zip archive (a packaged checkpoint) unpacks inside its folder only.

And :func:`release_pages`, which drops a read-only memory map's pages from memory.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._errors import CheckpointError

#: Largest JSON read: a safetensors header (the reference implementation's limit), and
#: config.json / model.safetensors.index.json.
MAX_JSON_BYTES = 100 * 1024 * 1024
#: Deepest JSON nesting accepted (a safetensors header needs 3, a config.json 4 or so).
MAX_JSON_DEPTH = 32
#: Most dimensions of a tensor, and deepest nesting of GGUF metadata arrays.
MAX_DIMS = 8
MAX_ARRAY_DEPTH = 8
#: Most elements of a tensor, counting empty dimensions as 1 (NumPy refuses larger shapes
#: even when empty).
MAX_ELEMENTS = 2**48
#: Most bytes and members a zip archive may unpack to (checkpoints are a few files of
#: at most some GB).
MAX_UNPACKED_BYTES = 64 * 2**30
MAX_ARCHIVE_MEMBERS = 10_000


def containment_root(folder: str | os.PathLike) -> str:
    """The folder that files named by the checkpoint in ``folder`` must resolve into:
    ``folder`` itself (symlinks resolved), or, for a Hugging Face cache snapshot
    (``.../models--org--name/snapshots/REV``, whose files are symlinks into
    ``.../models--org--name/blobs``), the repository folder ``models--org--name``."""
    real = os.path.realpath(folder)
    parent = os.path.dirname(real)
    if os.path.basename(parent) == "snapshots" and os.path.basename(os.path.dirname(parent)).startswith("models--"):
        return os.path.dirname(parent)
    return real


def member(folder: str | os.PathLike, name: Any, named_by: str | os.PathLike | None = None) -> Path:
    """``folder / name`` for a file that the checkpoint in ``folder`` names, after checking
    that ``name`` is a relative path and that the file resolves (following symlinks) inside
    the folder (see :func:`containment_root`). ``named_by``: the file that names it, for
    the message (default: the file itself)."""
    path = Path(folder) / name if isinstance(name, str) else Path(folder)
    at_fault = named_by if named_by is not None else path
    if not isinstance(name, str) or not name or "\x00" in name:
        raise CheckpointError(at_fault, f"names a file {name!r}, which is not a file name (corrupted?)")
    if os.path.isabs(name):
        raise CheckpointError(at_fault, f"names {name!r}, an absolute path; a checkpoint names files in its own folder")
    root = containment_root(folder)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise CheckpointError(
            at_fault,
            f"names {name!r}, which resolves to {real}, outside the checkpoint folder {root}; "
            "a checkpoint may only name files inside its folder",
        )
    return path


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """``path`` opened for binary reading, if it is a regular file (checked on the open
    file, without blocking: opening a FIFO for reading would wait for a writer)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise CheckpointError(path, f"is {kind}; a checkpoint's files must be regular files")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped)."""
    brackets = np.frombuffer(_JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS), np.uint8)
    depth = peak = 0
    for i in range(0, brackets.size, 1 << 20):
        chunk = brackets[i : i + (1 << 20)]
        levels = depth + np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1))
        peak, depth = max(peak, int(levels.max())), int(levels[-1])
    return peak


def parse_json(path: str | os.PathLike, raw: bytes, what: str = "JSON") -> Any:
    """``raw`` parsed as JSON, or CheckpointError naming ``path`` when it is not UTF-8
    JSON or nests deeper than :data:`MAX_JSON_DEPTH`."""
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(path, f"{what} nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(path, f"{what} is not valid JSON (corrupted?): {exc}") from None


def read_json(path: str | os.PathLike, what: str = "JSON") -> Any:
    """The JSON in the regular file ``path`` (at most :data:`MAX_JSON_BYTES`)."""
    with open_regular(path) as fh:
        try:
            raw = fh.read(MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise CheckpointError(path, f"is larger than {MAX_JSON_BYTES} bytes, too large for {what}")
    return parse_json(path, raw, what)


def check_shape(path: str | os.PathLike, tensor: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple, if it is a list of at most :data:`MAX_DIMS` non-negative
    integers of at most :data:`MAX_ELEMENTS` elements (empty dimensions counted as 1)."""
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise CheckpointError(
            path, f"shape {shape!r} is not a list of at most {MAX_DIMS} non-negative integers (corrupted?)", tensor
        )
    if math.prod(max(d, 1) for d in shape) > MAX_ELEMENTS:
        raise CheckpointError(path, f"shape {shape} has more than {MAX_ELEMENTS} elements (corrupted?)", tensor)
    return tuple(shape)


def check_disjoint(path: str | os.PathLike, spans: Iterable[tuple[int, int, str]]) -> None:
    """No two of the (start, stop, tensor) byte ranges overlap (empty ranges aside)."""
    ordered = sorted(s for s in spans if s[1] > s[0])
    for (_, stop, a), (start, _, b) in zip(ordered, ordered[1:]):
        if start < stop:
            raise CheckpointError(path, f"its bytes overlap those of tensor {a!r} (corrupted)", b)


def release_pages(mapping: mmap.mmap, start: int, stop: int) -> None:
    """Drop the pages of bytes [start, stop) of a read-only file mapping from this process's
    resident memory (MADV_DONTNEED; a later read faults them in from the file again).
    Does nothing where the platform has no madvise."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or not hasattr(mapping, "madvise") or stop <= start:
        return
    begin = start - start % mmap.PAGESIZE
    mapping.madvise(advice, begin, min(stop, len(mapping)) - begin)


def extract_zip(archive: str | os.PathLike, folder: str | os.PathLike, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack the zip ``archive`` into ``folder`` (created if missing) and return it. Every
    member is checked before anything is written: CheckpointError naming the archive for
    a member whose name is empty, absolute or leads out of ``folder`` (``..``, or through a
    symlink already there; :func:`member`), a symlink or special-file member, a name given
    twice, more than :data:`MAX_ARCHIVE_MEMBERS` members or ``max_bytes`` bytes unpacked,
    and for an archive that is not a readable zip or whose data is corrupted (a member
    whose bytes fail its CRC raises while unpacking: unpack into a fresh folder)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(archive, f"is not a readable zip archive: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise CheckpointError(archive, f"has {len(infos)} members; at most {MAX_ARCHIVE_MEMBERS} are unpacked")
        total, names = sum(i.file_size for i in infos), set()
        if total > max_bytes:
            raise CheckpointError(archive, f"unpacks to {total} bytes; at most {max_bytes} are accepted")
        targets = []
        for info in infos:
            name = info.filename.rstrip("/")
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise CheckpointError(archive, f"member {info.filename!r} is a symlink or special file; not unpacked")
            if name in names:
                raise CheckpointError(archive, f"holds member {name!r} twice")
            names.add(name)
            targets.append((info, member(folder, name, archive)))
        os.makedirs(folder, exist_ok=True)
        try:
            for info, target in targets:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
            raise CheckpointError(archive, f"cannot be unpacked (corrupted?): {exc}") from None
    return Path(folder)
