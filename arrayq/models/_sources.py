"""Where a checkpoint's tensors come from, for any architecture: a :class:`Source` gives
tensors by their checkpoint name (mlx-lm's names, e.g. ``model.layers.0.self_attn.q_proj.weight``)
with the file each comes from.

* :class:`Quantization`: config.json's ``"quantization"`` section, each module's format;
* :class:`SafetensorsSource`: a checkpoint folder's ``model.safetensors``, or the shards listed
  in ``model.safetensors.index.json`` (every disagreement between index and shards refused);
* :class:`GGUFSource`: a GGUF file, its tensor names mapped to checkpoint names through the
  architecture's :class:`GGUFNames` table, each affine-quantized GGUF tensor (Q4_0, Q4_1,
  Q8_0) split into the ``weight`` / ``scales`` / ``biases`` triple of arrayq's packed format;
* :class:`RenamedSource`: another source's tensors under an architecture's names.

Nothing here knows a model: the architecture's name table is data handed in.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantizationError
from ..quant import check_format
from ._errors import CheckpointError
from ._files import member, read_json
from .gguf import AFFINE_TYPES, GGUFFile
from .safetensors import SafetensorsFile

#: a quantization format: (group_size, bits, mode)
Format = tuple[int, int, str]


@dataclasses.dataclass(frozen=True)
class GGUFNames:
    """An architecture's GGUF tensor names and the checkpoint names they stand for.

    ``top``: whole-model modules (``"token_embd"`` → ``"model.embed_tokens"``); ``block``:
    the modules of one layer (``"attn_q"`` → ``"self_attn.q_proj"``), GGUF's ``blk.N.<key>``
    being ``<layers>.N.<value>``. Every name ends in ``.weight`` or ``.bias`` (and, for
    checkpoint names of quantized modules, ``.scales`` or ``.biases``)."""

    top: Mapping[str, str]
    block: Mapping[str, str]
    layers: str = "model.layers"

    def to_checkpoint(self, name: str) -> str:
        """The checkpoint name of GGUF tensor ``name`` (``blk.3.attn_q.weight`` →
        ``model.layers.3.self_attn.q_proj.weight``); unknown names come back unchanged."""
        m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
        if m and m.group(2) in self.block:
            return f"{self.layers}.{m.group(1)}.{self.block[m.group(2)]}.{m.group(3)}"
        m = re.fullmatch(r"(\w+)\.(weight|bias)", name)
        if m and m.group(1) in self.top:
            return f"{self.top[m.group(1)]}.{m.group(2)}"
        return name

    def to_gguf(self, name: str) -> str:
        """The GGUF name of checkpoint name ``name`` (the inverse of :meth:`to_checkpoint`)."""
        m = re.fullmatch(rf"{re.escape(self.layers)}\.(\d+)\.(.+)\.(weight|bias|scales|biases)", name)
        if m:
            inverse = {v: k for k, v in self.block.items()}
            if m.group(2) in inverse:
                return f"blk.{m.group(1)}.{inverse[m.group(2)]}.{m.group(3)}"
        m = re.fullmatch(r"(.+)\.(weight|bias|scales|biases)", name)
        inverse = {v: k for k, v in self.top.items()}
        if m and m.group(1) in inverse:
            return f"{inverse[m.group(1)]}.{m.group(2)}"
        return name


class Quantization:
    """config.json's "quantization": the default format and per-module overrides."""

    def __init__(self, q: Any, path: str):
        self.path = path
        self.default: Format | None = None
        self.overrides: dict[str, Format | None] = {}
        if q is None:
            return
        if not isinstance(q, dict):
            raise CheckpointError(path, f"'quantization' must be an object, got {q!r}")
        gs, bits, mode = q.get("group_size"), q.get("bits"), q.get("mode", "affine")
        self.default = self._format(gs, bits, mode, None)
        for key, v in q.items():
            if v is False:
                self.overrides[key] = None
            elif isinstance(v, dict):
                self.overrides[key] = self._format(
                    v.get("group_size", gs), v.get("bits", bits), v.get("mode", mode), key
                )

    def _format(self, gs: Any, bits: Any, mode: Any, module: str | None) -> Format:
        where = "'quantization'" if module is None else f"'quantization' for {module!r}"
        try:
            g, b = check_format(gs, bits, mode)
        except QuantizationError as exc:
            raise CheckpointError(self.path, f"{where}: {exc}", module) from None
        return g, b, mode

    def lookup(self, module: str) -> tuple[bool, Format | None]:
        """(whether the config says anything about this module, its format or None)."""
        if module in self.overrides:
            return True, self.overrides[module]
        return self.default is not None, self.default


class Source:
    """Tensors by checkpoint name for the builder, with the file each comes from."""

    config_path = ""
    #: the file to name when a tensor is missing altogether
    missing_file = ""

    def module_format(self, module: str, quant: Quantization) -> tuple[bool, Format | None]:
        """(whether the format of ``module`` is stated, the format or None for dense)."""
        return quant.lookup(module)

    def names(self) -> Iterable[str]:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def get(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def file_of(self, name: str) -> str:
        raise NotImplementedError

    def label(self, name: str) -> str:
        return name

    def native(self, name: str, backend: str) -> Any:
        """Tensor ``name`` as ``backend``'s own array when the source can give it without
        a NumPy copy; None otherwise."""
        return None

    def release(self, name: str) -> None:
        """Tensor ``name`` has been copied: drop its memory-mapped pages from memory."""


class SafetensorsSource(Source):
    def __init__(self, directory: Path):
        self.config_path = str(directory / "config.json")
        index = directory / "model.safetensors.index.json"
        self.where: dict[str, SafetensorsFile] = {}
        self._native: dict[str, dict[str, Any]] = {}
        self.missing_file = str(directory / "model.safetensors")
        if os.path.lexists(index):
            self.missing_file = str(index)
            weight_map = read_json(member(directory, index.name), "the index")
            weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
            if not isinstance(weight_map, dict):
                raise CheckpointError(index, "is not a valid index: it needs a 'weight_map' object of name -> file")
            for name, shard in weight_map.items():
                if not isinstance(shard, str):
                    raise CheckpointError(index, f"maps a tensor to {shard!r}, not a file name (corrupted?)", name)
            files: dict[str, SafetensorsFile] = {}
            for shard in sorted(set(weight_map.values())):
                path = member(directory, shard, index)
                if not os.path.lexists(path):
                    listed = next(n for n, s in weight_map.items() if s == shard)
                    raise CheckpointError(path, f"is missing (model.safetensors.index.json puts {listed!r} there)")
                files[shard] = SafetensorsFile(path)
            for name, shard in weight_map.items():
                if name not in files[shard]:
                    raise CheckpointError(
                        files[shard].path,
                        "is listed in model.safetensors.index.json for this shard but the shard does not hold it",
                        name,
                    )
            for shard, f in files.items():
                for name in f.keys():
                    if weight_map.get(name) != shard:
                        raise CheckpointError(
                            f.path, "is in this shard but model.safetensors.index.json does not list it here", name
                        )
                    self.where[name] = f
        else:
            paths = sorted(directory.glob("model*.safetensors"))
            if not paths:
                raise CheckpointError(
                    directory, "holds no model.safetensors (nor model.safetensors.index.json with shards)"
                )
            if len(paths) > 1:
                self.missing_file = str(directory)
            for p in paths:
                f = SafetensorsFile(member(directory, p.name))
                for name in f.keys():
                    if name in self.where:
                        raise CheckpointError(p, f"is also in {self.where[name].path}", name)
                    self.where[name] = f

    def names(self) -> Iterable[str]:
        return self.where.keys()

    def has(self, name: str) -> bool:
        return name in self.where

    def get(self, name: str) -> np.ndarray:
        return self.where[name][name]

    def file_of(self, name: str) -> str:
        return self.where[name].path

    def native(self, name: str, backend: str) -> Any:
        # MLX reads safetensors itself, lazily, with plain reads into MLX memory: no page of
        # a memory map stays resident next to the copy (files already checked by our reader)
        if backend != "mlx":
            return None
        import mlx.core as mx

        path = self.where[name].path
        if path not in self._native:
            loaded = mx.load(path)
            assert isinstance(loaded, dict)  # a .safetensors file loads as name -> array
            self._native[path] = loaded
        # handed over: the model holds the only reference (a layer stacked at load frees its parts)
        return self._native[path].pop(name)

    def release(self, name: str) -> None:
        self.where[name].release(name)


class GGUFSource(Source):
    def __init__(self, f: GGUFFile, names: GGUFNames):
        self.f, self.gguf_names = f, names
        self.config_path = self.missing_file = f.path
        self.entries: dict[str, tuple[str, str]] = {}  # checkpoint name -> (gguf name, part)
        self.quantized: dict[str, Format] = {}  # module path -> format
        self._cache: tuple[str, Any] | None = None
        for gname, info in f.tensors.items():
            mname = names.to_checkpoint(gname)
            if info.type in AFFINE_TYPES and mname.endswith(".weight"):
                base = mname[: -len(".weight")]
                bits, group = AFFINE_TYPES[info.type]
                self.quantized[base] = (group, bits, "affine")
                for part in ("weight", "scales", "biases"):
                    self.entries[f"{base}.{part}"] = (gname, part)
            else:
                self.entries[mname] = (gname, "dense")

    def module_format(self, module: str, quant: Quantization) -> tuple[bool, Format | None]:
        return module in self.quantized, self.quantized.get(module)

    def names(self) -> Iterable[str]:
        return self.entries.keys()

    def has(self, name: str) -> bool:
        return name in self.entries

    def get(self, name: str) -> np.ndarray:
        gname, part = self.entries[name]
        if part == "dense":
            return self.f.dense(gname)
        if self._cache is None or self._cache[0] != gname:
            self._cache = (gname, self.f.affine(gname))
        packed, scales, biases, _, _ = self._cache[1]
        return {"weight": packed, "scales": scales, "biases": biases}[part]

    def file_of(self, name: str) -> str:
        return self.f.path

    def release(self, name: str) -> None:
        self.f.release(self.entries[name][0])

    def label(self, name: str) -> str:
        gname, part = self.entries.get(name, (self.gguf_names.to_gguf(name), "dense"))
        return gname if part == "dense" else f"{gname} ({part})"


class RenamedSource(Source):
    """``inner``'s tensors under the names ``rename`` gives them (an architecture's name map,
    such as BERT's dropping a ``bert.`` prefix); messages name each tensor as its file
    does, and config.json's per-module quantization keys are the file's module paths.
    CheckpointError when two tensors get the same name."""

    def __init__(self, inner: Source, rename: Any):
        self.inner = inner
        self.config_path, self.missing_file = inner.config_path, inner.missing_file
        self.to_inner: dict[str, str] = {}
        for name in inner.names():
            new = rename(name)
            if new in self.to_inner:
                raise CheckpointError(
                    inner.file_of(name),
                    f"is also in the checkpoint as {self.to_inner[new]!r}: both read as {new!r}",
                    name,
                )
            self.to_inner[new] = name

    def _inner(self, name: str) -> str:
        return self.to_inner.get(name, name)

    def module_format(self, module: str, quant: Quantization) -> tuple[bool, Format | None]:
        weight = self.to_inner.get(f"{module}.weight")
        return self.inner.module_format(module if weight is None else weight[: -len(".weight")], quant)

    def names(self) -> Iterable[str]:
        return self.to_inner.keys()

    def has(self, name: str) -> bool:
        return name in self.to_inner

    def get(self, name: str) -> np.ndarray:
        return self.inner.get(self.to_inner[name])

    def file_of(self, name: str) -> str:
        return self.inner.file_of(self._inner(name))

    def label(self, name: str) -> str:
        return self.inner.label(self._inner(name))

    def native(self, name: str, backend: str) -> Any:
        return self.inner.native(self.to_inner[name], backend)

    def release(self, name: str) -> None:
        self.inner.release(self.to_inner[name])
