"""arrayq's own sentence encoder as an :class:`~arrayq.bench._quality.Encoder`: the model
``arrayq.models.load`` builds from a checkpoint folder (the BERT of all-MiniLM-L6-v2), its
Linear layers quantized by ``arrayq.nn.quantize(..., method=...)`` and run by arrayq's
quantized kernels on the chosen backend. So the measurement covers the whole path a user
takes, kernels included."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class _Recording:
    """A Linear that keeps its inputs (as NumPy) at the real tokens ``real`` (B, L) in
    ``sink[path]`` and computes as before (only the real tokens are kept: padding would
    multiply the memory by the longest text's length)."""

    def __init__(self, layer: Any, path: str, sink: dict[str, list[np.ndarray]], real: np.ndarray) -> None:
        self.layer, self.path, self.sink, self.real = layer, path, sink, real

    def __call__(self, x: Any) -> Any:
        import arrayq as aq

        self.sink.setdefault(self.path, []).append(np.asarray(aq.to_numpy(aq.astype(x, "float32")))[self.real])
        return self.layer(x)


#: Texts a forward pass of :meth:`ArrayqEncoder.linear_inputs` takes at most (the 682
#: calibration texts of docs/quantization-quality.md in one, as they always were recorded).
RECORD_CHUNK = 1024


def holdout_split(texts: Sequence[str], every: int, span: int | None = None) -> tuple[list[str], list[str]]:
    """``(trained, held)``: with ``every`` = k > 0, every k-th text among the first ``span``
    (None: all) is held out, and every other text trained on (0: none held out). Texts after
    ``span`` are always trained on, so a calibration set extended at its end keeps the held-out
    texts of the set it extends. Raises ValueError for a negative ``every`` or ``span``."""
    if every < 0 or (span is not None and span < 0):
        raise ValueError(f"holdout_split needs every >= 0 and span >= 0 (or None), got {every!r} and {span!r}")
    end = len(texts) if span is None else span
    held_out = [bool(every) and i < end and i % every == every - 1 for i in range(len(texts))]
    return [t for t, h in zip(texts, held_out) if not h], [t for t, h in zip(texts, held_out) if h]


class ArrayqEncoder:
    """``models.load(folder)`` on ``backend`` with ``models.load_tokenizer(folder)``; weight
    names are the model's layer paths (``layers.0.attention.q_proj``, ...), and every
    ``nn.Linear`` is quantized (the embedding tables stay dense). ``settings``: how
    :meth:`distilled` trains for ``gptq-dwq``, ``relational`` for ``gptq-rd``."""

    def __init__(
        self,
        folder: str | Path,
        backend: str = "numpy",
        settings: DistillSettings | None = None,
        relational: DistillSettings | None = None,
        equalized: DistillSettings | None = None,
        rounding: DistillSettings | None = None,
    ) -> None:
        import arrayq as aq
        from arrayq import models

        self.settings = settings or DistillSettings()  # of distilled(..., "gptq-dwq")
        self.relational = relational or RELATIONAL  # of distilled(..., "gptq-rd")
        self.equalized = equalized or EQUALIZED  # of distilled(..., "eq-dwq")
        self.rounding = rounding or ROUNDING  # of distilled(..., "gptq-round")

        self.backend = aq.get_backend(backend)
        self.model = models.load(folder, backend=self.backend)
        self.tokenizer = models.load_tokenizer(folder)

    def _run(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        import arrayq as aq

        batch = self.tokenizer(list(texts))
        args = (aq.to_backend(a, self.backend) for a in (batch.ids, batch.attention_mask, batch.token_type_ids))
        return np.asarray(aq.to_numpy(aq.astype(model(*args), "float32")), np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(self.model, texts)

    def linear_inputs(self, texts: Sequence[str], model: Any = None) -> dict[str, np.ndarray]:
        """Every Linear's inputs on ``texts``' real tokens in ``model`` (default: the float
        model), in the order of the texts; :data:`RECORD_CHUNK` texts a forward pass."""
        from arrayq import nn
        from arrayq._quantize_model import _rebuilt

        sink: dict[str, list[np.ndarray]] = {}
        for i in range(0, len(texts), RECORD_CHUNK):
            chunk = list(texts[i : i + RECORD_CHUNK])
            real = self.tokenizer(chunk).attention_mask.astype(bool)

            def record(path: str, layer: Any, real: np.ndarray = real) -> Any:
                return _Recording(layer, path, sink, real) if isinstance(layer, nn.Linear) else layer

            self._run(_rebuilt(self.model if model is None else model, "", record), chunk)
        return {path: np.concatenate(xs) for path, xs in sink.items()}

    def sequential(self, bits: int, group_size: int, texts: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
        from arrayq import nn

        mask = self.tokenizer(list(texts)).attention_mask  # the real tokens calibrate, not the padding
        model = nn.quantize_sequential(
            self.model, lambda m: self._run(m, texts), bits=bits, group_size=group_size, mask=mask
        )
        return lambda texts: self._run(model, texts)

    def _quantized_model(
        self,
        bits: int,
        group_size: int,
        method: str,
        calibration: Mapping[str, np.ndarray] | None,
        damping: float | None = None,
        model: Any = None,
    ) -> Any:
        from arrayq import nn

        def predicate(path: str, layer: Any) -> Any:
            if not isinstance(layer, nn.Linear):
                return False
            if method == "gptq" and calibration is not None:
                return {"method": method, "calibration": calibration[path], "damping": damping}
            return {"method": method}

        source = self.model if model is None else model
        return nn.quantize(source, bits=bits, group_size=group_size, predicate=predicate)

    def quantized(
        self, bits: int, group_size: int, method: str, calibration: Mapping[str, np.ndarray] | None = None
    ) -> Callable[[Sequence[str]], np.ndarray]:
        model = self._quantized_model(bits, group_size, method, calibration)
        return lambda texts: self._run(model, texts)

    def _batches(self, texts: Sequence[str], size: int, teacher: Any, grad: Any) -> list[tuple]:
        """``texts`` sorted by length in batches of ``size``, each as
        ``(embedding output, additive mask, keep)`` on the gradient backend ``grad``."""
        import arrayq as aq
        from arrayq import nn

        ordered = sorted(texts, key=lambda t: int(self.tokenizer([t]).attention_mask.sum()))
        batches = []
        for i in range(0, len(ordered), size):
            tokens = self.tokenizer(ordered[i : i + size])
            # padded to a multiple of 8 tokens: fewer shapes, so fewer compilations on JAX
            pad = ((0, 0), (0, -tokens.ids.shape[1] % 8))
            ids, real, types = (np.pad(a, pad) for a in (tokens.ids, tokens.attention_mask, tokens.token_type_ids))
            h = teacher.embeddings(*(aq.to_backend(a, grad) for a in (ids, types)), teacher.dtype)
            mask = nn.padding_mask(aq.to_backend(real, grad), dtype=teacher.dtype)  # (h: no parameter to train)
            batches.append((h, mask, aq.to_backend(real.astype(np.float32)[..., None], grad)))
        return batches

    def distilled(
        self, bits: int, group_size: int, texts: Sequence[str], method: str = "gptq-dwq"
    ) -> Callable[[Sequence[str]], np.ndarray]:
        """``method`` "gptq-dwq" (trained as ``self.settings`` says), "gptq-rd" (as
        ``self.relational`` says), "eq-dwq" (as ``self.equalized`` says) or "gptq-round"
        (as ``self.rounding`` says: learned rounding; the other
        :class:`DistillSettings` options apply to any of them): GPTQ (calibrated on the
        trained texts' float inputs), then
        ``nn.distill_quantized`` on the gradient backend ``settings.backend``: every block's
        token states (:func:`block_states`), with ``settings.embedding`` each text's sentence
        embedding (its cosine) and with ``settings.similarity`` the cosine matrix of the
        batch's sentence embeddings (:func:`objective`), fitted to the float model's on
        ``texts`` in batches of ``settings.batch`` texts of similar length.
        With ``settings.holdout`` = k, every k-th text (in the given order, among the first
        ``settings.holdout_span``: :func:`holdout_split`) is held out: neither GPTQ nor the
        training sees it, and it chooses the step to keep (early stopping). The result runs
        on this encoder's backend."""
        import arrayq as aq
        from arrayq import nn

        if method not in DISTILLED_SETTINGS:
            raise ValueError(f"distilled() measures one of {sorted(DISTILLED_SETTINGS)}, not {method!r}")
        settings = {
            "gptq-dwq": self.settings,
            "gptq-rd": self.relational,
            "eq-dwq": self.equalized,
            "gptq-round": self.rounding,
        }[method]
        trained, held = holdout_split(texts, settings.holdout, settings.holdout_span)
        rng, base = np.random.default_rng(0), list(trained)
        for _ in range(settings.augment):  # further texts: trained texts joined in pairs (new contexts)
            order = rng.permutation(len(base))
            trained += [f"{base[a]} {base[b]}" for a, b in zip(order, np.roll(order, 1))]
        source, calibration = self.model, self.linear_inputs(trained)
        if settings.equalize:  # AWQ-style o_proj scales folded into v_proj, searched per layer; GPTQ re-recorded
            options = {"bits": bits, "group_size": group_size, "method": "gptq", "damping": settings.damping}
            o_inputs = {p: x for p, x in calibration.items() if p.endswith("attention.o_proj")}
            source, alphas = nn.equalize_attention(self.model, o_inputs, alpha=list(settings.equalize), options=options)
            print(f"  equalize_attention alphas: {alphas}", file=sys.stderr, flush=True)
            calibration = self.linear_inputs(trained, source)
        if settings.sequential:
            mask = self.tokenizer(list(trained)).attention_mask
            start = nn.quantize_sequential(
                source, lambda m: self._run(m, trained), bits=bits, group_size=group_size, mask=mask
            )
        else:
            start = self._quantized_model(bits, group_size, "gptq", calibration, settings.damping, source)
        grad = aq.get_backend(settings.backend)
        # (learned rounding reads the float weights from the teacher: the equalised model when
        # equalised, whose outputs are the float model's up to float32 rounding)
        student = nn.to_backend(start, grad)
        teacher = nn.to_backend(source if settings.learn_rounding else self.model, grad)

        def progress(step: int, value: float) -> None:  # the objective, on stderr
            if step % 40 == 0:
                print(f"  distill step {step}: objective {value:.6f}", file=sys.stderr, flush=True)

        forward, loss, weights = objective(settings, len(self.model.layers))
        inputs = self._batches(trained, settings.batch, teacher, grad)
        validation = self._batches(held, settings.batch, teacher, grad) if held else None
        for round_ in range(settings.rounds):
            if round_:  # coordinate descent: the codes re-chosen for the distilled grid, then the grid again
                student = nn.reround_quantized(student, source, calibration, damping=settings.damping)
            student = nn.distill_quantized(
                student,
                teacher,
                inputs,
                forward=forward,
                steps=settings.steps,
                lr=settings.lr,
                loss=loss,
                weights=weights,
                validation=validation,
                check_every=settings.check_every,
                progress=progress,
                learn_rounding=settings.learn_rounding,
            )
        model = student
        model = nn.to_backend(model, self.backend)
        return lambda texts: self._run(model, texts)


@dataclasses.dataclass(frozen=True)
class DistillSettings:
    """How :meth:`ArrayqEncoder.distilled` trains: Adam ``steps`` at learning rate ``lr``,
    ``batch`` calibration texts a step, on the gradient backend ``backend``; ``similarity``:
    the weight of the relational term (the batch's sentence-embedding cosine matrix)
    against the block states' terms together (0: none); ``embedding``: the weight, in the
    same units, of one minus each text's sentence-embedding cosine to the float model's (what
    the quality table measures; 0: none); ``holdout``: every
    ``holdout``-th calibration text held out to choose the step kept, checked every
    ``check_every`` steps (0: none, the last step is kept if it improved the objective),
    counting only among the first ``holdout_span`` texts (None: all; the texts after them
    are trained on: :func:`holdout_split`);
    ``damping``: GPTQ's, for the codes trained from (None: ``arrayq.quantize``'s default);
    ``equalize``: alpha candidates of ``nn.equalize_attention`` applied before GPTQ (searched
    per layer on the trained texts' o_proj inputs with that GPTQ; empty: none);
    ``sequential``: the codes from ``nn.quantize_sequential`` instead of GPTQ layer by layer;
    ``augment``: that many rounds of further trained texts, each a permutation of the trained
    texts joined in pairs (GPTQ's calibration and the training; the held-out texts stay
    apart); ``rounds``: distillations, each after the first preceded by
    ``nn.reround_quantized`` (coordinate descent; the last round is kept);
    ``learn_rounding``: train the codes too (``nn.distill_quantized(learn_rounding=True)``)."""

    steps: int = 160
    lr: float = 1e-5
    batch: int = 16
    backend: str = "jax"
    similarity: float = 0.0
    embedding: float = 0.0
    holdout: int = 0
    check_every: int = 20
    damping: float | None = None
    equalize: tuple[float, ...] = ()
    sequential: bool = False
    augment: int = 0
    rounds: int = 1
    learn_rounding: bool = False
    holdout_span: int | None = None

    def __post_init__(self) -> None:
        """Raises ValueError for a sentence term's weight that is negative or not finite, and
        for a negative ``holdout`` or ``holdout_span``."""
        for name in ("similarity", "embedding"):
            weight = getattr(self, name)
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"DistillSettings.{name} must be a finite number, 0 or more, got {weight!r}")
        if self.holdout < 0 or (self.holdout_span is not None and self.holdout_span < 0):
            raise ValueError(
                f"DistillSettings.holdout and holdout_span must be 0 or more, got {self.holdout!r} and "
                f"{self.holdout_span!r} (holdout 0: nothing held out; holdout_span None: count among all texts)"
            )


#: gptq-rd's settings: GPTQ (default damping), then 320 steps on block states and the
#: relational term (weighted alike), every fifth calibration text held out to choose the step
#: kept. On held-out texts block states alone did better (docs/quantization-quality.md).
RELATIONAL = DistillSettings(steps=320, similarity=10.0, holdout=5)
#: eq-dwq's settings: gptq-dwq's kept ones (320 steps, every fifth text held out) after
#: ``nn.equalize_attention`` with alpha searched per layer over these candidates (0: none).
EQUALIZED = DistillSettings(steps=320, holdout=5, equalize=(0.0, 0.25, 0.5, 0.75, 1.0))
#: gptq-round's settings: gptq-dwq's kept ones (640 steps, every fifth text held out) with
#: learned rounding (the codes trained too, from GPTQ's): its run with the highest held-out
#: mean cosine; its held-out minimum is below gptq-dwq's (docs/quantization-quality.md).
ROUNDING = DistillSettings(steps=640, holdout=5, learn_rounding=True)
#: distilled()'s methods (which settings attribute each uses: settings, relational, equalized, rounding)
DISTILLED_SETTINGS = ("gptq-dwq", "gptq-rd", "eq-dwq", "gptq-round")


def block_states(model: Any, h: Any, mask: Any, keep: Any) -> list:
    """A BERT's outputs for distillation, from its embedding output ``h`` (B, L, hidden),
    additive ``mask`` and ``keep`` (B, L, 1; 1 for tokens, 0 for padding): each block's
    token states with the padding zeroed. (Adding the pooled sentence embedding as a further
    output fitted the calibration texts closer and the measured ones less well:
    docs/quantization-quality.md.)"""
    import arrayq as aq

    states = []
    for layer in model.layers:
        h = layer(h, mask)
        states.append(aq.multiply(h, keep))
    return states


def sentence_outputs(model: Any, h: Any, mask: Any, keep: Any) -> list:
    """:func:`block_states` and, last, the batch's mean-pooled sentence embeddings (B,
    hidden) over the real tokens (for ``loss="similarity"``, which compares their cosines)."""
    import arrayq as aq

    states = block_states(model, h, mask, keep)
    pooled = aq.divide(aq.sum(states[-1], axis=1), aq.maximum(aq.sum(keep, axis=1), 1.0))
    return [*states, pooled]


def objective(settings: DistillSettings, blocks: int) -> tuple[Callable[..., Any], list[str], list[float]]:
    """``(forward, loss, weights)`` for ``nn.distill_quantized`` as ``settings`` asks, for a
    BERT of ``blocks`` blocks: each block's token states ("mse", weight 1 each), then the
    mean-pooled sentence embeddings (B, hidden) once per sentence term: "cosine" (each text's
    cosine to the float model's; pooling's L2 normalisation does not change it) weighted
    ``settings.embedding * blocks``, and "similarity" weighted ``settings.similarity * blocks``
    (each 0: left out)."""
    both = (("cosine", settings.embedding), ("similarity", settings.similarity))
    terms = [(name, weight) for name, weight in both if weight]
    if not terms:
        return block_states, ["mse"] * blocks, [1.0] * blocks

    def forward(model: Any, h: Any, mask: Any, keep: Any) -> list:
        *states, pooled = sentence_outputs(model, h, mask, keep)
        return [*states] + [pooled] * len(terms)

    losses = ["mse"] * blocks + [name for name, _ in terms]
    return forward, losses, [1.0] * blocks + [weight * blocks for _, weight in terms]
