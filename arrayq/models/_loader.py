"""Loading a checkpoint, written once for every architecture (as mlx-lm's ``utils.py``):
find and read its sources (a folder of ``config.json`` + safetensors, or a GGUF file:
:mod:`._sources`), read and check its config, build every weight, dense or
:class:`~arrayq.quant.QuantizedWeight`, on the chosen backend, and refuse any tensor
the model does not use. Every fault is a :class:`~arrayq.models.CheckpointError` naming the
file and the tensor.

**The seam: one :class:`Architecture` value per model family**, of data and functions:

* ``name``: its ``model_type`` / GGUF ``general.architecture``, the one its config class and
  ``config_from_gguf`` accept (the key under which a registry of architectures finds it);
* ``config_class``: a dataclass with ``from_dict(d, path, names)``, the one validator of
  its config values (written with :class:`ConfigReader`, whose checks and messages every
  architecture shares), and a ``quantization`` field (config.json's MLX quantization
  section, per-module overrides included);
* ``config_from_gguf(f)``: the config its GGUF metadata describes (:func:`gguf_config_values`
  maps the metadata keys through a table; the rest goes through ``config_class.from_dict``);
* ``gguf_names``: a :class:`~._sources.GGUFNames` table, GGUF tensor names → checkpoint names;
* ``build(builder, config)``: the model, its modules made with :class:`WeightBuilder`
  (``linear`` for every matrix, quantized or not as the checkpoint says; ``dense`` for
  vectors such as norm weights; ``tick`` after each module; where ``builder.fuse`` is set,
  matrices that run side by side, such as q/k/v, stacked into one, layer by layer);
* ``count_modules(config)``: how many ``tick`` calls ``build`` makes (the progress total);
* ``why_unexpected(name, config)``: for a tensor ``build`` did not use, why it does not
  belong (the error message), or None to accept it unused;
* optional: ``hf_architectures`` (config.json ``architectures`` entries that name it, for a
  config without ``model_type``), ``checkpoint_name`` (its name map: the name ``build``
  asks for a checkpoint's tensor under, e.g. BERT's without a ``bert.`` prefix),
  ``folder_settings(config, folder)`` (settings in other files of a checkpoint folder,
  e.g. sentence-transformers' pooling) and ``task`` (``"generate"`` or ``"embed"``: the
  command that runs it).

:func:`load` and :func:`read_config` take the architecture; ``arrayq.models.qwen3`` and
``arrayq.models.bert`` are two (their ``ARCHITECTURE``), and
``arrayq.models._architectures`` chooses one from a checkpoint's config.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

import arrayq as aq

from .. import nn
from ..errors import QuantizationError
from ..quant import QuantizedWeight
from ._errors import CheckpointError
from ._files import member, read_json
from ._sources import Format, GGUFNames, GGUFSource, Quantization, RenamedSource, SafetensorsSource, Source
from .gguf import GGUFFile, is_gguf

Progress = Callable[[int, int, str], None]
#: Largest integer a config value may take (sizes, counts, token ids).
MAX_CONFIG_INT = 2**31 - 1


# ---------------------------------------------------------------------- config values


class ConfigReader:
    """The checks of a parsed config (config.json, or GGUF metadata under config.json's key
    names) that every architecture's ``from_dict`` shares. Each failure is a CheckpointError
    naming ``path`` and the key as the file calls it (``names``: config key → file key, for
    GGUF metadata)."""

    def __init__(self, d: Any, path: str | os.PathLike, names: dict[str, str] | None = None):
        if not isinstance(d, dict):
            raise CheckpointError(path, "is not a JSON object")
        self.d, self.path, self.names = d, path, names or {}

    def name(self, key: str) -> str:
        """What the file calls config key ``key``."""
        return self.names.get(key, key)

    def bad(self, key: str, expected: str, value: Any) -> CheckpointError:
        return CheckpointError(self.path, f"{self.name(key)} must be {expected}, got {value!r}")

    def model_type(self, expected: str) -> None:
        """Refuse a ``model_type`` other than ``expected`` (an absent one passes)."""
        model_type = self.d.get("model_type")
        if model_type is not None and model_type != expected:
            raise CheckpointError(
                self.path, f"model_type {model_type!r} is not supported; this loader takes {expected!r}"
            )

    def require(self, *keys: str) -> None:
        for key in keys:
            if key not in self.d:
                raise CheckpointError(self.path, f"has no {self.name(key)!r}")

    def integer(self, key: str, value: Any, low: int = 1, high: int = MAX_CONFIG_INT) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.bad(
                key,
                f"a positive integer (at most {high})" if low == 1 else f"an integer from {low} to {high}",
                value,
            )
        return value

    def number(self, key: str, value: Any, low: float = 0.0) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= low:
            raise self.bad(key, f"a finite number > {low:g} (not NaN)", value)
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.d.get(key, default)
        if not isinstance(value, bool):
            raise self.bad(key, "true or false", value)
        return value

    def token_ids(self, key: str, vocab: int) -> tuple[int, ...]:
        """A token id or a list of them (absent: none), each in [0, vocab)."""
        given = self.d.get(key)
        ids = () if given is None else tuple(given) if isinstance(given, (list, tuple)) else (given,)
        for t in ids:
            if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab:
                raise self.bad(key, f"a token id or a list of token ids in [0, {vocab})", given)
        return ids

    def quantization(self) -> dict | None:
        """config.json's MLX ``"quantization"`` section (checked in full by the loader), or
        None; a Hugging Face ``quantization_config`` of another method is refused."""
        quant = self.d.get("quantization")
        if quant is not None and not isinstance(quant, dict):
            raise self.bad("quantization", "an object", quant)
        qc = self.d.get("quantization_config")
        if quant is None and isinstance(qc, dict) and "quant_method" in qc:
            raise CheckpointError(
                self.path,
                f"quantization_config with quant_method {qc['quant_method']!r} is not supported; "
                "this loader takes MLX's packed formats ('quantization')",
            )
        return quant


def gguf_config_values(f: GGUFFile, architecture: str, keys: dict[str, str]) -> dict[str, Any]:
    """The config values (by config.json key) that GGUF file ``f``'s metadata holds, ``keys``
    mapping config.json key → metadata key. CheckpointError for another architecture."""
    arch = f.metadata.get("general.architecture")
    if arch != architecture:
        raise CheckpointError(f.path, f"general.architecture is {arch!r}; this loader takes {architecture!r}")
    return {key: f.metadata[gguf_key] for key, gguf_key in keys.items() if gguf_key in f.metadata}


# ---------------------------------------------------------------------- the seam


class ModelConfig(Protocol):
    """What the loader needs of an architecture's config class."""

    #: config.json's MLX "quantization" section, or None
    quantization: dict | None

    @classmethod
    def from_dict(cls, d: Any, path: str | os.PathLike = ..., names: dict[str, str] | None = ...) -> Any:
        """The config of parsed config.json ``d`` (or GGUF metadata under config.json's key
        names, ``names`` giving the file's), every value checked: CheckpointError naming
        ``path`` for a bad one."""


C = TypeVar("C", bound=ModelConfig)
M = TypeVar("M")


@dataclasses.dataclass(frozen=True)
class Architecture(Generic[C, M]):
    """One model family, as the loader needs it (see the module docstring)."""

    name: str
    config_class: type[C]
    config_from_gguf: Callable[[GGUFFile], C]
    gguf_names: GGUFNames
    build: Callable[[WeightBuilder, C], M]
    count_modules: Callable[[C], int]
    why_unexpected: Callable[[str, C], str | None]
    hf_architectures: tuple[str, ...] = ()
    checkpoint_name: Callable[[str], str] | None = None
    folder_settings: Callable[[C, Path], C] | None = None
    task: str = "generate"


# ---------------------------------------------------------------------- building

_FLOATS = ("float16", "bfloat16", "float32", "float64")


class WeightBuilder:
    """Makes an architecture's weights from a :class:`~._sources.Source`, on the model's
    backend and in its activations' dtype, checking each tensor's shape and dtype against
    what the architecture asks for and the quantization the config states; remembers which
    tensors it used (:meth:`check_leftovers`) and reports progress (:meth:`tick`)."""

    def __init__(
        self,
        src: Source,
        quant: Quantization,
        backend: str,
        device: Any,
        dtype: str,
        progress: Progress | None,
        total: int,
        fuse: bool = False,
    ):
        self.src, self.quant, self.fuse = src, quant, fuse
        self._held: list[str] | None = None  # names kept on the host (see hold_on_host)
        self.backend, self.device, self.dtype = backend, device, dtype
        self.progress = progress
        self.used: set[str] = set()
        self.done = 0
        self.total = total

    def tick(self, what: str) -> None:
        """Module ``what`` is built: report progress."""
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, what)

    def _put(self, name: str, a: np.ndarray, convert: bool = False) -> Any:
        """Source tensor ``name`` (``a``, as the source gives it) on the model's backend, in
        the activations' dtype if ``convert``. NumPy keeps the memory map; other backends
        get the source's native array if it has one (no NumPy copy at all), else a copy,
        after which the source drops the file's pages from memory."""
        dtype = aq.as_dtype(self.dtype).dtype
        if self.backend == "numpy":
            if self._held is not None:  # to_model drops the pages stacked copies were read from
                self._held.append(name)
            return a.astype(dtype) if convert and a.dtype != dtype else a
        out = self.src.native(name, self.backend)
        if out is None and self._held is not None:  # to_model moves it, after stacking
            self._held.append(name)
            return a.astype(dtype) if convert and a.dtype != dtype else a
        if out is None:
            out = aq.to_backend(np.ascontiguousarray(a), self.backend, self.device)
            self.src.release(name)
        return aq.astype(out, self.dtype) if convert and a.dtype != dtype else out

    def hold_on_host(self) -> None:
        """Until :meth:`to_model`, tensors that would be copied to the backend stay NumPy
        arrays (memory maps), so that stacking them (``fuse``) costs one copy to the
        backend, not a second one there."""
        self._held = []

    def to_model(self, module: Any) -> Any:
        """``module`` (built since :meth:`hold_on_host`) on the model's backend and device,
        evaluated; the held tensors' file pages are dropped (on NumPy, where the model keeps
        memory maps, the pages its stacked copies were read from; the rest are read back as
        used)."""
        held, self._held = self._held or [], None
        for name in held:  # the stacked copies no longer need the pages (the rest reads them back)
            self.src.release(name)
        if self.backend != "numpy":
            module = aq.to_backend(module, self.backend, self.device)
        aq.eval(nn.parameters(module))
        for name in held:
            self.src.release(name)
        return module

    def error(self, name: str, message: str) -> CheckpointError:
        """A CheckpointError about tensor ``name``, naming its file."""
        return CheckpointError(self.src.file_of(name), message, self.src.label(name))

    def _tensor(self, name: str, shape: tuple[int, ...] | None, kinds: tuple[str, ...], what: str) -> np.ndarray:
        if not self.src.has(name):
            hint = f" ({what})" if what else ""
            raise CheckpointError(self.src.missing_file, f"missing tensor{hint}", self.src.label(name))
        a = self.src.get(name)
        self.used.add(name)
        dtype = aq.as_dtype(a.dtype).name
        if dtype not in kinds:
            raise self.error(name, f"has dtype {dtype}, expected {' or '.join(kinds)}")
        if shape is not None and tuple(a.shape) != shape:
            raise self.error(name, f"has shape {tuple(a.shape)}, expected {shape}{' (' + what + ')' if what else ''}")
        return a

    def dense(self, name: str, shape: tuple[int, ...], what: str) -> Any:
        """Float tensor ``name`` of ``shape`` in the activations' dtype (``what``: its shape
        in config terms, for the messages)."""
        a = self._tensor(name, shape, _FLOATS, what)
        return self._put(name, a, convert=True)

    def _quantized(self, module: str, n: int, k: int, fmt: Format, what: str) -> QuantizedWeight:
        gs, bits, mode = fmt
        fmt_text = f"{bits}-bit {mode} quantization with group size {gs}"
        if k % gs:
            raise self.error(
                f"{module}.weight", f"{what} has {k} input features, not a multiple of the group size {gs}"
            )
        packed = self._tensor(f"{module}.weight", (n, k * bits // 32), ("uint32",), f"{what}, {n}x{k} at {fmt_text}")
        scale_kinds = ("float16", "bfloat16", "float32") if mode == "affine" else ("uint8",)
        scales = self._tensor(f"{module}.scales", (n, k // gs), scale_kinds, f"{what} at {fmt_text}")
        biases = None
        if mode == "affine":
            biases = self._tensor(
                f"{module}.biases", (n, k // gs), (aq.as_dtype(scales.dtype).name,), f"{what} at {fmt_text}"
            )
        elif self.src.has(f"{module}.biases"):
            raise self.error(f"{module}.biases", f"mode {mode!r} has no biases")
        try:
            return QuantizedWeight(
                self._put(f"{module}.weight", packed),
                self._put(f"{module}.scales", scales),
                None if biases is None else self._put(f"{module}.biases", biases),
                gs,
                bits,
                mode,
            )
        except QuantizationError as exc:
            raise self.error(f"{module}.weight", str(exc)) from None

    def linear(self, module: str, n: int, k: int, what: str, bias: bool = False, embedding: bool = False) -> Any:
        """Linear / QuantizedLinear (or Embedding / QuantizedEmbedding) ``module`` of
        logical shape (n, k), quantized or not as the tensors and config say."""
        said, fmt = self.src.module_format(module, self.quant)
        has_scales = self.src.has(f"{module}.scales")
        if has_scales and fmt is None:
            why = "config.json marks it as not quantized" if said else "config.json has no 'quantization' section"
            raise self.error(f"{module}.scales", f"is a quantization scale, but {why}; config and weights disagree")
        if fmt is not None and has_scales:
            layer_weight: Any = self._quantized(module, n, k, fmt, what)
            quantized = True
        else:
            if (
                fmt is not None
                and said
                and self.src.has(f"{module}.weight")
                and aq.as_dtype(self.src.get(f"{module}.weight").dtype).name == "uint32"
            ):
                raise self.error(f"{module}.weight", f"is packed (uint32) but {module}.scales is missing")
            layer_weight = self.dense(f"{module}.weight", (n, k), what)
            quantized = False
        b = self.dense(f"{module}.bias", (n,), f"{what} bias") if bias else None
        self.tick(module)
        if embedding:
            return nn.QuantizedEmbedding(layer_weight) if quantized else nn.Embedding(layer_weight)
        return nn.QuantizedLinear(layer_weight, b) if quantized else nn.Linear(layer_weight, b)

    def check_leftovers(self, why_unexpected: Callable[[str], str | None]) -> None:
        """Refuse the first tensor no module used, unless ``why_unexpected`` accepts it (None)."""
        for name in self.src.names():
            if name in self.used:
                continue
            why = why_unexpected(name)
            if why is not None:
                raise self.error(name, f"unexpected tensor: it {why}; config and weights disagree")


# ---------------------------------------------------------------------- loading


def read_config(path: str | os.PathLike, architecture: Architecture[C, M]) -> C:
    """The config of a checkpoint directory's config.json (or of a GGUF file)."""
    path = Path(path)
    if path.is_file() and is_gguf(path):
        return architecture.config_from_gguf(GGUFFile(path))
    cfg = member(path, "config.json")
    config: C = architecture.config_class.from_dict(read_json(cfg, "the model config"), cfg)
    if architecture.folder_settings is not None:
        config = architecture.folder_settings(config, path)
    return config


def default_dtype(device: Any) -> str:
    """The activations' dtype ``arrayq generate`` and the benchmarks load a model in on
    ``device`` (a Device or its name): "float32" on a CPU (exact, and what the CPU kernels
    take), "bfloat16" on a GPU (half the activation traffic; what arrayq's CUDA kernels take)."""
    return "float32" if str(device) == "cpu" else "bfloat16"


def load(
    path: str | os.PathLike,
    architecture: Architecture[C, M],
    *,
    backend: Any = None,
    device: Any = None,
    dtype: Any = "float32",
    progress: Progress | None = None,
    fuse: bool = False,
    shard: Any = None,
) -> M:
    """Load an ``architecture`` model from a checkpoint directory or a ``.gguf`` file onto
    ``backend`` (a name or Backend; default: the current default backend) and ``device``.

    ``dtype``: the activations' dtype (float32 default; dense weights and norms are
    converted to it, quantized weights keep their format). ``progress(done, total, what)``
    is called after each module is built. ``fuse``: handed to ``build`` as ``builder.fuse``.
    ``shard``: an :class:`arrayq.distributed.Group` of several processes, to load only
    this rank's share of each layer (:func:`arrayq.nn.shard`): the model is built on NumPy
    over the memory-mapped files, sliced, and only the slices are copied to ``backend``
    (then fused, with ``fuse``); dense weights in another dtype than ``dtype``, and GGUF
    tensors, are converted whole first. ValueError (from the split) before any weight is
    copied where the model does not divide over the group.
    Raises CheckpointError for anything wrong with the checkpoint, BackendUnavailableError
    for a missing backend, ValueError for a dtype that is not floating, or float64 for a
    checkpoint with quantized layers (the quantized matmuls take float32, float16 or
    bfloat16 activations), before any weight is read."""
    path = Path(path)
    backend_obj = aq.get_backend(backend) if backend is not None else aq.current_backend()
    if device is not None:
        backend_obj.check_device(device)
    dtype_name = aq.as_dtype(dtype).name
    if dtype_name not in _FLOATS:
        raise ValueError(f"dtype must be a float dtype, got {dtype_name}")
    if not path.exists():
        raise CheckpointError(path, "does not exist")
    if path.is_file():
        if not is_gguf(path):
            raise CheckpointError(path, "is a file but not a GGUF file; pass a checkpoint directory or a .gguf file")
        f = GGUFFile(path)
        config = architecture.config_from_gguf(f)
        src: Source = GGUFSource(f, architecture.gguf_names)
        quant = Quantization(None, f.path)
    else:
        config = read_config(path, architecture)
        src = SafetensorsSource(path)
        quant = Quantization(config.quantization, str(path / "config.json"))
    if architecture.checkpoint_name is not None:
        src = RenamedSource(src, architecture.checkpoint_name)
    if dtype_name == "float64":
        quantized = next((name for name in src.names() if name.endswith(".scales")), None)
        if quantized is not None:
            raise ValueError(
                f"dtype float64 cannot run this checkpoint's quantized layers ({quantized[: -len('.scales')]!r} "
                "is one): quantized matmuls take float32, float16 or bfloat16 activations; load it with "
                "dtype='float32'"
            )
    total = architecture.count_modules(config)
    sharded = shard is not None and shard.size > 1
    # sharded: built on NumPy over the memory maps (nothing copied), then split and copied
    builder = WeightBuilder(
        src, quant, "numpy" if sharded else backend_obj.name, device, dtype_name, progress, total, fuse and not sharded
    )
    model = architecture.build(builder, config)
    builder.check_leftovers(lambda name: architecture.why_unexpected(name, config))
    if sharded:  # (evaluated there, layer by layer, before their file pages are dropped)
        prefix = architecture.gguf_names.layers
        return _copy_shard(nn.shard(model, shard), src, prefix, backend_obj.name, device, fuse)
    # every weight computed now, the ones built outside a layer too (embeddings, final norm,
    # head): a lazy backend would otherwise redo their copy from the file inside every step
    # that uses them (on MLX's GPU that made each compiled decode step wait for it)
    aq.eval(nn.parameters(model))
    return model


def _copy_shard(model: Any, src: Source, prefix: str, backend: str, device: Any, fuse: bool) -> Any:
    """A sharded model built on NumPy (views of the memory-mapped files) copied to
    ``backend`` one layer at a time, fused (``fuse``: the model's own ``fused``, applied to
    that layer alone) and evaluated, its file pages then dropped: the process holds its
    share of the weights and, besides, at most one layer's pages and unfused copies."""
    layers = model.layers
    names = list(src.names())
    fusing = fuse and hasattr(model, "fused")
    for i in range(len(layers)):
        layer = nn.to_backend(layers[i], backend, device)
        if fusing:
            layer = dataclasses.replace(model, layers=[layer]).fused().layers[0]
        aq.eval(nn.parameters(layer))
        layers[i] = layer
        for name in (n for n in names if n.startswith(f"{prefix}.{i}.")):
            src.release(name)
    model = nn.to_backend(model, backend, device)  # the rest: embeddings, norms, head (copied layers stay)
    aq.eval(nn.parameters(model))
    for name in names:
        src.release(name)
    return model
