"""The registry of architectures and the one :func:`load` for every checkpoint: the
architecture comes from the checkpoint itself (config.json's ``model_type``, else its
``architectures`` list; a GGUF file's ``general.architecture``), then the generic loader
(:mod:`._loader`) builds it.

Registered: Qwen3 (``"qwen3"``) and BERT (``"bert"``). :func:`register_architecture` adds
another (an :class:`~._loader.Architecture` value; see docs/models.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import bert, qwen3
from ._errors import CheckpointError
from ._files import member, read_json
from ._loader import Architecture, Progress
from ._loader import load as _load
from ._loader import read_config as _read_config
from .gguf import GGUFFile, is_gguf

_ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (qwen3.ARCHITECTURE, bert.ARCHITECTURE)}


def register_architecture(architecture: Architecture, *, replace: bool = False) -> None:
    """Make :func:`load` and :func:`read_config` take checkpoints whose ``model_type`` (or
    GGUF ``general.architecture``) is ``architecture.name``, or whose config.json
    ``architectures`` lists one of ``architecture.hf_architectures``. Raises ValueError
    when that name is registered already, unless ``replace``; TypeError for a value that is
    not an Architecture."""
    if not isinstance(architecture, Architecture):
        raise TypeError(f"register_architecture takes an arrayq.models.Architecture, got {type(architecture).__name__}")
    if architecture.name in _ARCHITECTURES and not replace:
        raise ValueError(f"architecture {architecture.name!r} is registered already; pass replace=True to replace it")
    _ARCHITECTURES[architecture.name] = architecture


def architectures() -> dict[str, Architecture]:
    """The registered architectures by name (a copy)."""
    return dict(_ARCHITECTURES)


def _unknown(path: str | os.PathLike, what: str) -> CheckpointError:
    known = ", ".join(repr(name) for name in sorted(_ARCHITECTURES))
    return CheckpointError(
        path, f"{what} is not supported; arrayq.models knows {known} (arrayq.models.register_architecture adds one)"
    )


def architecture_of(path: str | os.PathLike) -> Architecture:
    """The registered architecture of a checkpoint directory (config.json's ``model_type``,
    or, without one, the first of its ``architectures`` that one of them lists) or of a
    ``.gguf`` file (``general.architecture``). Raises CheckpointError for a missing path, a
    file that is not GGUF, an unreadable config, or an architecture nobody registered
    (the message lists the known ones)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "does not exist")
    if path.is_file():
        if not is_gguf(path):
            raise CheckpointError(path, "is a file but not a GGUF file; pass a checkpoint directory or a .gguf file")
        arch = GGUFFile(path).metadata.get("general.architecture")
        if not isinstance(arch, str) or arch not in _ARCHITECTURES:
            raise _unknown(path, f"general.architecture {arch!r}")
        return _ARCHITECTURES[arch]
    cfg = member(path, "config.json")
    d = read_json(cfg, "the model config")
    if not isinstance(d, dict):
        raise CheckpointError(cfg, "is not a JSON object")
    model_type = d.get("model_type")
    if model_type is not None:
        if not isinstance(model_type, str) or model_type not in _ARCHITECTURES:
            raise _unknown(cfg, f"model_type {model_type!r}")
        return _ARCHITECTURES[model_type]
    names = d.get("architectures")
    for name in names if isinstance(names, list) else []:
        for arch in _ARCHITECTURES.values():
            if name in arch.hf_architectures:
                return arch
    raise _unknown(cfg, f"a config without model_type, with architectures {names!r},")


def read_config(path: str | os.PathLike) -> Any:
    """The config of a checkpoint directory or ``.gguf`` file, of its architecture's
    config class (:class:`~arrayq.models.Qwen3Config`, :class:`~arrayq.models.BertConfig`,
    ...). Raises CheckpointError as :func:`architecture_of` and for bad values."""
    return _read_config(path, architecture_of(path))


def load(
    path: str | os.PathLike,
    *,
    backend: Any = None,
    device: Any = None,
    dtype: Any = "float32",
    progress: Progress | None = None,
    fuse: bool = True,
    shard: Any = None,
) -> Any:
    """Load the model of a checkpoint directory or ``.gguf`` file, of whichever registered
    architecture it is (:func:`architecture_of`), onto ``backend`` (a name or Backend;
    default: the current default backend) and ``device``: a :class:`~arrayq.models.Qwen3`,
    a :class:`~arrayq.models.Bert`, ...

    ``dtype``: the activations' dtype (float32 default; dense weights and norms are
    converted to it, quantized weights keep their format; float64 only for checkpoints
    without quantized layers). ``progress(done, total, what)`` is called after each module
    is built. ``fuse``: stack the matrices that run side by side (q/k/v, Qwen3's gate/up)
    into one quantized matmul each where their formats match (dense layers stay as they
    are; on NumPy the stacked weights are copied into memory instead of staying
    memory-mapped). Raises CheckpointError for anything wrong with the checkpoint (an
    unknown architecture included), BackendUnavailableError for a missing backend,
    ValueError for a bad dtype."""
    return _load(
        path,
        architecture_of(path),
        backend=backend,
        device=device,
        dtype=dtype,
        progress=progress,
        fuse=fuse,
        shard=shard,
    )


__all__ = ["architecture_of", "architectures", "load", "read_config", "register_architecture"]
