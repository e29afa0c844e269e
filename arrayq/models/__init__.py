"""``arrayq.models``: language models on :mod:`arrayq.nn`, their checkpoints, and token
generation.

* :func:`load` — a Qwen3 model from an mlx-community style checkpoint directory
  (config.json + safetensors, quantized or not, sharded or not) or a GGUF file, onto any
  backend; :class:`Qwen3` runs it.
* :func:`generate` — stream token ids, greedy or sampled (temperature, top-k, top-p,
  seed), with :class:`GenerationStats` timings.
* :func:`make_checkpoint` — write a checkpoint of deterministic random weights in the
  same on-disk format (presets in :data:`PRESETS`).
* :func:`default_dtype` — the activations' dtype a device gets by default (float32 on a
  CPU, bfloat16 on a GPU).
* :class:`CheckpointError` — what a bad checkpoint raises, naming the file and tensor.

Importing this package imports no backend library.
"""

from ._errors import CheckpointError
from ._loader import default_dtype
from .checkpoint import PRESETS, make_checkpoint, preset_config
from .generate import GenerationStats, generate, sample
from .qwen3 import Qwen3, Qwen3Config, Qwen3Layer, load, read_config

__all__ = [
    "CheckpointError",
    "GenerationStats",
    "PRESETS",
    "Qwen3",
    "Qwen3Config",
    "Qwen3Layer",
    "default_dtype",
    "generate",
    "load",
    "make_checkpoint",
    "preset_config",
    "read_config",
    "sample",
]
