"""``arrayq.models``: models on :mod:`arrayq.nn`, their checkpoints, token generation and
sentence embeddings.

* :func:`load` — the model of a checkpoint directory (config.json + safetensors, quantized
  or not, sharded or not) or a GGUF file, onto any backend, its architecture chosen from the
  checkpoint (config.json's ``model_type`` / ``architectures``, GGUF's
  ``general.architecture``) among those registered: :class:`Qwen3` (a language model) and
  :class:`Bert` (an encoder: sentence embeddings). :func:`read_config` reads the config
  only; :func:`register_architecture` adds an :class:`Architecture`.
* :func:`load_tokenizer` — a checkpoint's tokenizer.json (optional ``tokenizers`` package),
  padding and truncating batches of texts as sentence-transformers does.
* :func:`generate` — stream token ids, greedy or sampled (temperature, top-k, top-p,
  seed), with :class:`GenerationStats` timings.
* :func:`make_checkpoint` — write a Qwen3 checkpoint of deterministic random weights in the
  same on-disk format (presets in :data:`PRESETS`).
* :func:`default_dtype` — the activations' dtype a device gets by default (float32 on a
  CPU, bfloat16 on a GPU).
* :class:`CheckpointError` — what a bad checkpoint raises, naming the file and tensor.

Importing this package imports no backend library.
"""

from ._architectures import architecture_of, architectures, load, read_config, register_architecture
from ._errors import CheckpointError
from ._loader import Architecture, default_dtype
from .bert import Bert, BertConfig
from .checkpoint import PRESETS, make_checkpoint, preset_config
from .generate import GenerationStats, generate, sample
from .qwen3 import Qwen3, Qwen3Config, Qwen3Layer
from .tokenizer import SentenceTokenizer, load_tokenizer

__all__ = [
    "Architecture",
    "Bert",
    "BertConfig",
    "CheckpointError",
    "GenerationStats",
    "PRESETS",
    "Qwen3",
    "Qwen3Config",
    "Qwen3Layer",
    "SentenceTokenizer",
    "architecture_of",
    "architectures",
    "default_dtype",
    "generate",
    "load",
    "load_tokenizer",
    "make_checkpoint",
    "preset_config",
    "read_config",
    "register_architecture",
    "sample",
]
