"""One quantized all-MiniLM-L6-v2 measured on the held-out calibration texts and on the
measured texts: the rows of docs/quantization-quality.md's tables from the held-out sections on.

    python benchmarks/quality_heldout.py --model DIR [--config 4/64] [--method gptq-dwq]
        [--steps 640] [--calibration more|large] [--save FILE.npz]
    python benchmarks/quality_heldout.py --model DIR --overlap

The held-out texts are every fifth of the first 682 calibration texts
(quality_sentences.CALIBRATION + quality_calibration.MORE_CALIBRATION): 136 texts that neither
GPTQ nor the training sees, with either calibration set (``large`` adds
quality_calibration_large.py's texts, all trained on). ``--method`` is one of the distilled
methods (gptq-dwq, gptq-round: every fifth text held out for early stopping, the rest as the
benchmark's defaults) or rtn (the bar at ``--config 5/64``). Each set's columns are its texts'
mean and minimum cosine to their float32 embeddings and the fraction whose nearest text among
the same set is unchanged; the held-out texts with the lowest cosines follow.

``--overlap`` prints instead, for quality_calibration_large.py's texts, the highest float32
cosine of each to any measured text and to any held-out text (the large set's check: every
one below 0.9), and the closest cases. arrayq's model on NumPy; gradients from JAX.
"""

import argparse
import time

import numpy as np
from quality_calibration import MORE_CALIBRATION
from quality_calibration_large import LARGE_CALIBRATION
from quality_sentences import CALIBRATION, PAIRS, SINGLES

from arrayq.bench._encoders import ArrayqEncoder, DistillSettings, holdout_split
from arrayq.bench._quality import scores

FIRST = CALIBRATION + MORE_CALIBRATION  # the set the held-out texts come from
HELD = holdout_split(FIRST, 5)[1]
MEASURED = [t for pair in PAIRS for t in pair] + SINGLES


def _embed(encoder: ArrayqEncoder, texts: list[str], chunk: int = 256) -> np.ndarray:
    return np.concatenate([encoder.embed(texts[i : i + chunk]) for i in range(0, len(texts), chunk)])


def overlap(encoder: ArrayqEncoder, shown: int = 15) -> None:
    new = _embed(encoder, LARGE_CALIBRATION)
    for name, texts in (("measured", MEASURED), ("held-out", HELD)):
        cos = new.astype(np.float64) @ _embed(encoder, texts).T.astype(np.float64)
        best = cos.max(axis=1)
        counts = ", ".join(f"{int(np.sum(best >= c))} at {c} or more" for c in (0.9, 0.8, 0.7))
        print(f"{len(LARGE_CALIBRATION)} large-set texts against the {len(texts)} {name} texts: "
              f"highest cosine {best.max():.4f}, {counts}")  # fmt: skip
        for i in np.argsort(-best)[:shown]:
            print(f"  {best[i]:.4f}  {LARGE_CALIBRATION[i]!r} ~ {texts[int(np.argmax(cos[i]))]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder with config.json, model.safetensors, tokenizer.json")
    parser.add_argument("--config", default="4/64", help="bits/group_size")
    parser.add_argument("--method", default="gptq-dwq", choices=("gptq-dwq", "gptq-round", "rtn"))
    parser.add_argument("--steps", type=int, default=640, help="Adam steps of the distillation")
    parser.add_argument("--calibration", choices=("more", "large"), default="large")
    parser.add_argument("--save", help="write the quantized held-out and measured embeddings to this .npz")
    parser.add_argument("--overlap", action="store_true", help="only the large set's cosines to the other texts")
    args = parser.parse_args()
    settings = DistillSettings(
        steps=args.steps, holdout=5, holdout_span=len(FIRST), learn_rounding=args.method == "gptq-round"
    )
    encoder = ArrayqEncoder(args.model, "numpy", settings, rounding=settings)
    if args.overlap:
        overlap(encoder)
        return
    bits, group_size = (int(v) for v in args.config.split("/"))
    calibration = FIRST + (LARGE_CALIBRATION if args.calibration == "large" else [])
    sizes = f"{len(calibration)} calibration texts, {len(HELD)} held out"
    print(f"{args.method} {bits}-bit gs{group_size}, {args.calibration}: {sizes}; {settings}", flush=True)
    start = time.perf_counter()
    if args.method == "rtn":
        embed = encoder.quantized(bits, group_size, "rtn")
    else:
        embed = encoder.distilled(bits, group_size, calibration, args.method)
    seconds = time.perf_counter() - start
    pairs = [(2 * i, 2 * i + 1) for i in range(len(PAIRS))]
    held_ref, held_got = encoder.embed(HELD), embed(HELD)
    measured_ref, measured_got = encoder.embed(MEASURED), embed(MEASURED)
    if args.save:  # (the quantized embeddings, before any scoring)
        np.savez(args.save, held=held_got, measured=measured_got)
    held, measured = scores(held_ref, held_got, ()), scores(measured_ref, measured_got, pairs)
    cells = [f"{s['mean_cos']:.5f} / {s['min_cos']:.5f} / {s['nn_agree']:.3f}" for s in (held, measured)]
    print("| variant | held-out mean / min cos / NN | measured mean / min cos / NN | paraphrase@1 | seconds |")
    variant = f"{args.method} {args.steps} steps, {args.calibration}"
    print(f"| {variant} | {cells[0]} | {cells[1]} | {measured['para_at1']:.3f} | {seconds:.0f} |")
    cos = np.sum(held_ref.astype(np.float64) * held_got, axis=1)
    print("lowest held-out:", ", ".join(f"{HELD[i]!r} {cos[i]:.5f}" for i in np.argsort(cos)[:3]))


if __name__ == "__main__":
    main()
