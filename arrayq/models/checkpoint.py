"""Checkpoints with deterministic random weights, in exactly the on-disk format of an
mlx-community Qwen3 model: ``config.json`` and ``model.safetensors`` (or shards with
``model.safetensors.index.json``), quantized layers as packed uint32 ``weight`` with
bfloat16 ``scales`` and ``biases``.

The packed words are uniformly random, so every code value is equally likely; each
output row gets its own scale, and the bias centres the codes on zero, so a weight is
uniform on about ``[-sqrt(3) std, sqrt(3) std]`` with ``std = gain / sqrt(in_features)``.
Norm weights are close to 1. Every tensor has its own random stream, seeded from the
checkpoint seed and the tensor's name: the same call gives the same bytes on any machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from . import safetensors
from .qwen3 import Qwen3Config

#: name -> config.json values (beyond the defaults of Qwen3Config) and quantization
PRESETS: dict[str, dict[str, Any]] = {
    # a few layers and small sizes, for tests and the default `arrayq generate`
    "tiny": dict(
        vocab_size=512,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        intermediate_size=384,
        tie_word_embeddings=True,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=(511,),
        quantization={"group_size": 64, "bits": 4},
    ),
    # the shapes of Qwen/Qwen3-0.6B as mlx-community/Qwen3-0.6B-4bit ships it
    "qwen3-0.6b": dict(
        vocab_size=151936,
        hidden_size=1024,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=3072,
        tie_word_embeddings=True,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=40960,
        bos_token_id=151643,
        eos_token_id=(151645,),
        quantization={"group_size": 64, "bits": 4},
    ),
    # the shapes of Qwen/Qwen3-8B (mlx-community/Qwen3-8B-4bit): for benchmarks on large devices
    "qwen3-8b": dict(
        vocab_size=151936,
        hidden_size=4096,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=12288,
        tie_word_embeddings=False,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=40960,
        bos_token_id=151643,
        eos_token_id=(151645,),
        quantization={"group_size": 64, "bits": 4},
    ),
}


#: weight std = gain / sqrt(in_features); the embedding's gain sets the logits' std
#: (large attention/MLP outputs make generations depend on context rather than repeat the
#: last token, which a random tied-embedding model otherwise does)
GAINS = {"embed_tokens": 3.0, "lm_head": 3.0, "o_proj": 4.0, "down_proj": 2.0}


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _quantized(name: str, n: int, k: int, std: float, fmt: dict, seed: int) -> dict[str, np.ndarray]:
    """Random packed affine weight (n, k) with per-row scales: uniform codes centred on 0."""
    bits, gs = fmt["bits"], fmt["group_size"]
    rng = _rng(seed, name)
    levels = 2**bits
    code_std = math.sqrt((levels * levels - 1) / 12)
    packed = rng.integers(0, 2**32, size=(n, k * bits // 32), dtype=np.uint32)
    row = (std / code_std) * rng.uniform(0.75, 1.25, size=(n, 1))
    scales = (row * rng.uniform(0.9, 1.1, size=(n, k // gs))).astype(ml_dtypes.bfloat16)
    biases = (scales.astype(np.float32) * np.float32(-(levels - 1) / 2)).astype(ml_dtypes.bfloat16)
    return {f"{name}.weight": packed, f"{name}.scales": scales, f"{name}.biases": biases}


def _dense(name: str, n: int, k: int, std: float, seed: int) -> dict[str, np.ndarray]:
    w = _rng(seed, name).normal(0.0, std, size=(n, k)).astype(ml_dtypes.bfloat16)
    return {f"{name}.weight": w}


def _norm(name: str, dim: int, seed: int) -> dict[str, np.ndarray]:
    return {f"{name}.weight": (1 + 0.1 * _rng(seed, name).standard_normal(dim)).astype(ml_dtypes.bfloat16)}


def random_tensors(config: Qwen3Config, seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of a random checkpoint for ``config``, one module at a time, by
    mlx-lm name. Quantized as ``config.quantization`` says (with per-module overrides; a
    module mapped to ``False`` or a config without quantization is dense bfloat16)."""
    c = config
    quant = c.quantization or None

    def linear(name: str, n: int, k: int, gain: float = 1.0, bias: bool = False) -> dict[str, np.ndarray]:
        fmt = None
        if quant is not None:
            fmt = quant.get(name, {"group_size": quant["group_size"], "bits": quant["bits"]})
            if isinstance(fmt, dict):
                fmt = {"group_size": fmt.get("group_size", quant["group_size"]), "bits": fmt.get("bits", quant["bits"])}
        std = gain / math.sqrt(k)
        out = _quantized(name, n, k, std, fmt, seed) if fmt else _dense(name, n, k, std, seed)
        if bias:
            out[f"{name}.bias"] = (0.02 * _rng(seed, name + ".bias").standard_normal(n)).astype(ml_dtypes.bfloat16)
        return out

    hd, h, kv, hid, inter = c.head_dim, c.num_attention_heads, c.num_key_value_heads, c.hidden_size, c.intermediate_size
    # the embedding is scaled so that logits (normed hidden . embedding row) have std ~3
    yield from linear("model.embed_tokens", c.vocab_size, hid, GAINS["embed_tokens"]).items()
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}"
        ab = c.attention_bias
        parts = [
            linear(f"{p}.self_attn.q_proj", h * hd, hid, bias=ab),
            linear(f"{p}.self_attn.k_proj", kv * hd, hid, bias=ab),
            linear(f"{p}.self_attn.v_proj", kv * hd, hid, bias=ab),
            linear(f"{p}.self_attn.o_proj", hid, h * hd, GAINS["o_proj"]),
            _norm(f"{p}.self_attn.q_norm", hd, seed),
            _norm(f"{p}.self_attn.k_norm", hd, seed),
            linear(f"{p}.mlp.gate_proj", inter, hid),
            linear(f"{p}.mlp.up_proj", inter, hid),
            linear(f"{p}.mlp.down_proj", hid, inter, GAINS["down_proj"]),
            _norm(f"{p}.input_layernorm", hid, seed),
            _norm(f"{p}.post_attention_layernorm", hid, seed),
        ]
        for part in parts:
            yield from part.items()
    yield from _norm("model.norm", hid, seed).items()
    if not c.tie_word_embeddings:
        yield from linear("lm_head", c.vocab_size, hid, GAINS["lm_head"]).items()


def preset_config(preset: str, **overrides: Any) -> Qwen3Config:
    """The Qwen3Config of a preset in :data:`PRESETS`, with fields replaced by ``overrides``
    (e.g. ``tie_word_embeddings=False``, ``quantization=None`` for a dense model, or a
    ``quantization`` dict with per-module overrides). ValueError for an unknown preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Qwen3Config)})
    if unknown:
        raise TypeError(
            f"unknown config fields {unknown}; Qwen3Config has {[f.name for f in dataclasses.fields(Qwen3Config)]}"
        )
    values = dict(PRESETS[preset])
    values.update(overrides)
    quant = values.get("quantization")
    if quant is not None:
        values["quantization"] = dict(quant)
        modes = {quant.get("mode", "affine")} | {v.get("mode", "affine") for v in quant.values() if isinstance(v, dict)}
        if modes != {"affine"}:
            raise ValueError(f"random checkpoints use affine quantization only, got modes {sorted(modes)}")
    return Qwen3Config.from_dict(values, f"preset {preset!r} with {overrides}" if overrides else f"preset {preset!r}")


#: The file by which make_checkpoint knows a folder as one it wrote: it lists the files written.
MARKER = "arrayq-checkpoint.json"


def _files_written_before(directory: Path) -> list[str] | None:
    """The files an earlier make_checkpoint wrote to ``directory`` (from its marker), []
    for an empty folder, None for no folder. FileExistsError for a file, or a non-empty
    folder without a marker: make_checkpoint never deletes or overwrites files it did not write."""
    if not directory.exists():
        return None
    if not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder; give a new or empty folder for the checkpoint")
    entries = os.listdir(directory)
    if not entries:
        return []
    fix = "give a new or empty folder (arrayq never deletes files it did not write)"
    if MARKER not in entries:
        raise FileExistsError(f"{directory} is not empty and holds no checkpoint written by arrayq ({MARKER}); {fix}")
    try:
        files = json.loads((directory / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileExistsError(f"{directory / MARKER} is unreadable or damaged ({exc}); {fix}") from None
    if not isinstance(files, list) or not all(isinstance(f, str) and f == os.path.basename(f) != "" for f in files):
        raise FileExistsError(f"{directory / MARKER} does not list plain file names; {fix}")
    return [f for f in files if f not in (".", "..")]


def make_checkpoint(
    directory: str | os.PathLike,
    preset: str = "tiny",
    *,
    seed: int = 0,
    shard_bytes: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    **overrides: Any,
) -> Path:
    """Write a checkpoint of random weights for ``preset`` (see :func:`preset_config` for
    ``overrides``) to ``directory`` and return its path. ``shard_bytes``: split the
    weights into ``model-0000i-of-0000n.safetensors`` files of at most about that many bytes
    with a ``model.safetensors.index.json`` (default: one ``model.safetensors``).

    ``directory`` must be new, empty, or a checkpoint that make_checkpoint wrote before
    (it lists its files in ``arrayq-checkpoint.json``): then only those files are replaced
    and any other file there is kept. Anything else raises FileExistsError (a file, a
    folder with other files), or OSError for a folder that cannot be written, before any
    weight is made. The files are written under a temporary name first: a new folder
    appears complete or not at all."""
    config = preset_config(preset, **overrides)
    if shard_bytes is not None and (
        not isinstance(shard_bytes, int) or isinstance(shard_bytes, bool) or shard_bytes < 1
    ):
        raise ValueError(f"shard_bytes must be a positive integer or None, got {shard_bytes!r}")
    given = Path(directory)
    directory = Path(os.path.realpath(given))
    old = _files_written_before(directory)
    ancestor = directory.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(f"{ancestor} is a file, so {given} cannot be made a folder; choose another path")
    work_in = directory if old is not None else directory.parent
    try:
        work_in.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".arrayq-tmp-", dir=work_in))
    except OSError as exc:
        raise type(exc)(
            f"cannot write a checkpoint to {given}: {exc.strerror or exc}; choose a folder you can write to"
        ) from None
    try:
        written = _write(tmp, config, preset, seed, shard_bytes, progress)
        if old is None:  # a new folder: appears at once
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            os.replace(tmp, directory)
        else:  # replace this function's own files, keep everything else
            for name in written:
                os.replace(tmp / name, directory / name)
            for name in set(old) - set(written):
                (directory / name).unlink(missing_ok=True)
            os.replace(tmp / MARKER, directory / MARKER)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return given


def _write(
    tmp: Path,
    config: Qwen3Config,
    preset: str,
    seed: int,
    shard_bytes: int | None,
    progress: Callable[[int, int, str], None] | None,
) -> list[str]:
    """Write the checkpoint's files and the marker into ``tmp``; the files' names (marker aside)."""
    (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    meta = {"format": "mlx"}
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    total = _count(config)
    for i, (name, a) in enumerate(random_tensors(config, seed)):
        if shard_bytes is not None and size and size + a.nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = a
        size += a.nbytes
        if progress is not None:
            progress(i + 1, total, name)
    written = ["config.json"]
    if len(shards) == 1:
        safetensors.save(tmp / "model.safetensors", shards[0], meta)
        written.append("model.safetensors")
    else:
        weight_map, total_size = {}, 0
        for i, shard in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            safetensors.save(tmp / fname, shard, meta)
            written.append(fname)
            for name, a in shard.items():
                weight_map[name] = fname
                total_size += a.nbytes
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        written.append("model.safetensors.index.json")
    marker = {"written_by": "arrayq make-checkpoint", "preset": preset, "seed": seed, "files": written}
    (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return written


def _count(config: Qwen3Config) -> int:
    per_linear = 3 if config.quantization else 1
    n = per_linear + config.num_hidden_layers * (7 * per_linear + 4 + (3 if config.attention_bias else 0)) + 1
    return n + (0 if config.tie_word_embeddings else per_linear)


__all__ = ["MARKER", "PRESETS", "make_checkpoint", "preset_config", "random_tensors"]
