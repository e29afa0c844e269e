"""How much a quantization method keeps of a sentence encoder's embeddings: for each method
and format, quantize the encoder's Linear weights with :func:`arrayq.quantize`, embed the
same texts, and compare with the float embeddings.

The encoder is pluggable (:class:`Encoder`): ``_encoders.ArrayqEncoder`` is arrayq's own
model (``models.load``) quantized by ``nn.quantize`` and run by the quantized kernels;
``_minilm.NumpyMiniLM`` a plain NumPy BERT run on the dequantized weights (the format's and
the rounding's loss alone).

Columns of a row: ``mean_cos`` / ``min_cos``, the cosine of each text's embedding to its
float embedding (mean and minimum over the texts); ``nn_agree``, the fraction of texts whose
nearest other text is the same as under the float model; ``para_at1``, the fraction of
paraphrase-pair members whose nearest other text is their partner (the float model's own
score is its ``float32`` row); ``seconds``, the time to quantize every weight.

Methods: those of :func:`arrayq.quantize` (``rtn``, ``mse``, ``gptq``: every weight on its own,
gptq calibrated on the float model's inputs), ``gptq-seq``, the encoder's layers quantized
one after the other as :func:`arrayq.nn.quantize_sequential` does (each calibrated on the
inputs it gets from the layers already quantized, fitted to the float model's outputs), and
``gptq-dwq``, gptq's codes with their scales and biases then trained end to end by
:func:`arrayq.nn.distill_quantized` on the calibration texts (``ArrayqEncoder.distilled``),
``gptq-rd``, the same with a relational term (the cosines between a batch's sentence
embeddings) in the objective and a held-out slice of the calibration texts choosing the
step kept, ``eq-dwq``, ``gptq-dwq`` (with the held-out slice) on a model first
equalised by :func:`arrayq.nn.equalize_attention`, and ``gptq-round``, ``gptq-dwq`` (with
the held-out slice) with learned rounding: the integer codes trained too
(``distill_quantized(learn_rounding=True)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

#: (bits, group_size) measured by default: the issue's 4-bit gs64 target and its neighbours.
CONFIGS = ((4, 64), (4, 32), (3, 64), (5, 64))
METHODS = ("rtn", "mse", "gptq", "gptq-seq")
#: The distilled methods (GPTQ's codes, then nn.distill_quantized): measured when asked for,
#: by an encoder with a ``distilled`` method (it needs a backend with gradients).
DISTILLED = ("gptq-dwq", "gptq-rd", "eq-dwq", "gptq-round")


class Encoder(Protocol):
    """What the measurement needs of a model."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The float model's unit-length embeddings (len(texts), dim)."""

    def linear_inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The float model's inputs to each weight it quantizes, on ``texts``' real tokens:
        name -> (tokens, in)."""

    def quantized(
        self, bits: int, group_size: int, method: str, calibration: Mapping[str, np.ndarray] | None
    ) -> Callable[[Sequence[str]], np.ndarray]:
        """An ``embed`` of the model with its weights quantized by ``arrayq.quantize`` with
        ``method`` in affine ``bits``/``group_size`` (gptq: each weight calibrated on
        ``calibration[name]``)."""

    def sequential(self, bits: int, group_size: int, texts: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
        """An ``embed`` of the model with its weights quantized by GPTQ one after the other
        in the order the forward pass uses them, each calibrated on ``texts``' inputs to it
        in the model quantized so far and fitted to the float model's outputs
        (``arrayq.quantize(..., calibration=, float_calibration=)``)."""


def nearest(embeddings: np.ndarray) -> np.ndarray:
    """For each row, the index of the most similar other row (cosine; rows unit length)."""
    sim = embeddings.astype(np.float64) @ embeddings.T.astype(np.float64)
    np.fill_diagonal(sim, -np.inf)
    return np.argmax(sim, axis=1)


def scores(reference: np.ndarray, candidate: np.ndarray, pairs: Sequence[tuple[int, int]]) -> dict[str, float]:
    """mean_cos, min_cos, nn_agree of ``candidate`` against ``reference`` (both (n, d), unit
    rows) and para_at1 of ``candidate`` over ``pairs`` (index pairs of paraphrases)."""
    cos = np.sum(reference.astype(np.float64) * candidate, axis=1)
    hits = nearest(candidate)
    para = [hits[a] == b for a, b in pairs] + [hits[b] == a for a, b in pairs]
    return {
        "mean_cos": float(cos.mean()),
        "min_cos": float(cos.min()),
        "nn_agree": float(np.mean(hits == nearest(reference))),
        "para_at1": float(np.mean(para)) if pairs else float("nan"),
    }


def measure(
    encoder: Encoder,
    texts: Sequence[str],
    calibration_texts: Sequence[str],
    pairs: Sequence[tuple[int, int]] = (),
    configs: Sequence[tuple[int, int]] = CONFIGS,
    methods: Sequence[str] = METHODS,
    progress: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``{"bits", "group_size", "method", "mean_cos", "min_cos", "nn_agree",
    "para_at1", "seconds"}``: one ``float32`` row (bits 32), then one per format and method.
    ``pairs`` index ``texts``; gptq calibrates on ``calibration_texts`` (keep them apart
    from ``texts``, or the measurement rewards fitting the test data)."""
    reference = encoder.embed(texts)
    rows = [{"bits": 32, "group_size": 0, "method": "float32", **scores(reference, reference, pairs), "seconds": 0.0}]
    calibration = encoder.linear_inputs(calibration_texts) if "gptq" in methods else None
    for bits, group_size in configs:
        for method in methods:
            if progress is not None:
                progress(f"{method} {bits}-bit gs{group_size}")
            start = time.perf_counter()
            if method == "gptq-seq":
                embed = encoder.sequential(bits, group_size, calibration_texts)
            elif method in DISTILLED:
                distilled = getattr(encoder, "distilled", None)
                if distilled is None:
                    raise ValueError(f"{type(encoder).__name__} cannot measure {method!r}: it has no distilled()")
                embed = distilled(bits, group_size, calibration_texts, method)
            else:
                embed = encoder.quantized(bits, group_size, method, calibration)
            seconds = time.perf_counter() - start
            row = scores(reference, embed(texts), pairs)
            rows.append({"bits": bits, "group_size": group_size, "method": method, **row, "seconds": seconds})
    return rows


def format_quality_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| format | method | mean cos | min cos | NN agreement | paraphrase@1 | quantize s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = "float32" if r["method"] == "float32" else f"{r['bits']}-bit gs{r['group_size']}"
        lines.append(
            f"| {fmt} | {r['method']} | {r['mean_cos']:.5f} | {r['min_cos']:.5f} | {r['nn_agree']:.3f} | "
            f"{r['para_at1']:.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


#: The columns the issue's bar compares (higher is better in each).
TARGET_COLUMNS = ("mean_cos", "min_cos", "nn_agree")


def against_target(rows: Sequence[Mapping[str, Any]], method: str) -> dict[str, tuple[float, float]] | None:
    """``method`` at 4-bit gs64 against rtn at 5-bit gs64 (the issue's bar: the better method
    at 4 bits should reach what rtn needs 5 bits for): column -> (method's value, rtn's),
    for :data:`TARGET_COLUMNS`; None if either row is missing."""
    find = {(r["bits"], r["group_size"], r["method"]): r for r in rows}
    mine, bar = find.get((4, 64, method)), find.get((5, 64, "rtn"))
    if mine is None or bar is None:
        return None
    return {column: (mine[column], bar[column]) for column in TARGET_COLUMNS}
