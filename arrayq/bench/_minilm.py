"""A plain-NumPy BERT sentence encoder (all-MiniLM-L6-v2 and its kind) for the quantization
quality measurement (``_quality``): float32, mean pooling and L2 normalisation as
sentence-transformers computes them, with every Linear weight replaceable and every
Linear's input recordable. It is a measuring instrument independent of arrayq's own model
code (``arrayq.models``): quantized, it runs on the dequantized weights, so it measures the
format's and the rounding's loss without any kernel.

The folder holds ``config.json`` (Hugging Face BERT keys), ``model.safetensors`` and
``tokenizer.json``; reading them needs the ``safetensors`` and ``tokenizers`` packages
(the ``test`` extra).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The Linear layers of one encoder layer, by their checkpoint names (weight ``.weight``,
#: shape (out, in), used as ``x @ weight.T + bias``).
LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised: Abramowitz and Stegun 7.1.26, absolute error under
    1.5e-7, float32's resolution near 1 (the float and quantized forwards use the same)."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def dequantized_weights(
    weights: Mapping[str, np.ndarray],
    bits: int,
    group_size: int,
    method: str,
    calibration: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each weight quantized by ``method`` in affine ``bits``/``group_size`` and dequantized
    again (float32 NumPy); gptq takes each weight's inputs from ``calibration``."""
    out = {}
    for name, w in weights.items():
        x = calibration[name] if method == "gptq" and calibration is not None else None
        out[name] = _round_trip(w, bits, group_size, method=method, calibration=x)
    return out


def _round_trip(w: np.ndarray, bits: int, group_size: int, **how: Any) -> np.ndarray:
    """``w`` quantized by ``arrayq.quantize(..., **how)`` and dequantized (float32 NumPy)."""
    import arrayq as aq

    qw = aq.quantize(np.asarray(w, np.float32), bits=bits, group_size=group_size, **how)
    return np.asarray(aq.dequantize(qw), np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class NumpyMiniLM:
    """A BERT encoder in NumPy float32. ``embed(texts)`` gives (n, hidden) unit vectors;
    ``embed(texts, weights)`` the same with some Linear weights replaced (name -> (out, in)
    array, names as :meth:`linear_weights`; a ``...bias`` name replaces that Linear's
    bias); ``linear_inputs(texts)`` the float model's
    inputs to every Linear on the texts' real (non-padding) tokens."""

    def __init__(self, tensors: Mapping[str, np.ndarray], config: Mapping[str, Any], tokenizer: Any) -> None:
        self.tensors = {k: np.asarray(v, np.float32) for k, v in tensors.items() if k != "embeddings.position_ids"}
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = tokenizer

    @classmethod
    def from_dir(cls, folder: str | Path, max_length: int = 256) -> NumpyMiniLM:
        """Load ``config.json``, ``model.safetensors`` and ``tokenizer.json`` from ``folder``;
        the tokenizer pads to the longest text and truncates at ``max_length`` tokens (256:
        all-MiniLM-L6-v2's ``max_seq_length``)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return cls(load_file(str(folder / "model.safetensors")), config, tokenizer)

    def linear_weights(self) -> dict[str, np.ndarray]:
        """Every Linear weight, name -> (out, in) float32."""
        return {name: self.tensors[name] for name in self._linear_names()}

    def _linear_names(self) -> Iterable[str]:
        return (f"encoder.layer.{i}.{part}.weight" for i in range(self.layers) for part in LINEARS)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input ids, attention mask), both (n, length) int64."""
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], np.int64)
        return ids, np.array([e.attention_mask for e in encoded], np.int64)

    def embed(self, texts: Sequence[str], weights: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Sentence embeddings (n, hidden) float32, unit length."""
        return self._forward(texts, dict(weights or {}), None)

    def quantized(
        self, bits: int, group_size: int, method: str, calibration: Mapping[str, np.ndarray] | None = None
    ) -> Callable[[Sequence[str]], np.ndarray]:
        """:meth:`embed` with every Linear weight quantized by ``method`` and dequantized."""
        weights = dequantized_weights(self.linear_weights(), bits, group_size, method, calibration)
        return lambda texts: self.embed(texts, weights)

    def sequential(self, bits: int, group_size: int, texts: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
        """:meth:`embed` with the Linear weights quantized by GPTQ in forward order, each
        calibrated on its inputs on ``texts`` with the weights before it quantized, and
        fitted to the float model's outputs (a forward pass per weight); each bias then
        shifted by the mean output error, as ``nn.quantize_sequential`` does."""
        targets, weights = self.linear_inputs(texts), dict[str, np.ndarray]()
        for name in self._linear_names():
            record: dict[str, np.ndarray] = {}
            self._forward(texts, weights, record)
            x, xf, w = record[name], targets[name], self.tensors[name]
            weights[name] = _round_trip(w, bits, group_size, method="gptq", calibration=x, float_calibration=xf)
            shift = xf.mean(axis=0, dtype=np.float64) @ w.T.astype(np.float64)
            shift -= x.mean(axis=0, dtype=np.float64) @ weights[name].T.astype(np.float64)
            bias = name.removesuffix("weight") + "bias"
            weights[bias] = (self.tensors[bias] + shift).astype(np.float32)
        return lambda texts: self.embed(texts, weights)

    def linear_inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """For every Linear weight name, the float model's inputs to it on the texts' real
        tokens: (tokens, in) float32 (query, key and value share one array)."""
        record: dict[str, np.ndarray] = {}
        self._forward(texts, {}, record)
        return record

    def _forward(self, texts: Sequence[str], weights: dict[str, np.ndarray], record: dict | None) -> np.ndarray:
        t = self.tensors
        ids, mask = self.tokenize(texts)
        real = mask.astype(bool)
        n, length = ids.shape
        x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:length]
        x = x + t["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], self.eps)
        additive = np.where(real, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]

        def linear(prefix: str, part: str, inputs: np.ndarray) -> np.ndarray:
            name = f"{prefix}.{part}.weight"
            if record is not None:
                record[name] = inputs[real]
            w = weights.get(name, t[name])
            flat = inputs.reshape(-1, inputs.shape[-1])  # one 2-D product (NumPy loops over stacked ones)
            out = flat @ np.asarray(w, np.float32).T + weights.get(f"{prefix}.{part}.bias", t[f"{prefix}.{part}.bias"])
            return out.reshape(inputs.shape[:-1] + (-1,))

        d = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            # (contiguous heads: NumPy's stacked matmul is slow on strided operands)
            q, k, v = (
                np.ascontiguousarray(linear(p, part, x).reshape(n, length, self.heads, d).transpose(0, 2, 1, 3))
                for part in LINEARS[:3]
            )
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(d)) + additive
            probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, -1)
            x = x + linear(p, "attention.output.dense", context)
            x = _layer_norm(
                x, t[f"{p}.attention.output.LayerNorm.weight"], t[f"{p}.attention.output.LayerNorm.bias"], self.eps
            )
            h = linear(p, "intermediate.dense", x)
            h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))
            x = x + linear(p, "output.dense", h.astype(np.float32))
            x = _layer_norm(x, t[f"{p}.output.LayerNorm.weight"], t[f"{p}.output.LayerNorm.bias"], self.eps)
        pooled = (x * real[..., None]).sum(axis=1) / real.sum(axis=1, keepdims=True)
        return (pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)).astype(np.float32)
