"""Write a Qwen3-0.6B-shaped GGUF file of random weights, every matrix in one block format
(Q4_0 by default, as llama.cpp's ``--pure``), norms in float32, for side-by-side decode and
prefill benchmarks (arrayq and llama.cpp read the same file).

    python benchmarks/make_qwen3_gguf.py OUT.gguf [--type Q4_0|Q8_0] [--layers 28] [--seed 0]

Needs the ``gguf`` package (the test extra). Weights are Gaussian with standard deviation
1/sqrt(fan-in) (embeddings 0.4), so activations stay in range; the text is meaningless and
only the speed matters. Writing the 0.6B-parameter file takes a few minutes.
"""

from __future__ import annotations

import argparse

import numpy as np

QWEN3_06B = dict(vocab=151936, hidden=1024, layers=28, heads=16, kv_heads=8, head_dim=128, inter=3072)


def main(argv: list[str] | None = None) -> int:
    import gguf

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--type", default="Q4_0", choices=["Q4_0", "Q8_0"])
    p.add_argument("--layers", type=int, default=QWEN3_06B["layers"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    c = dict(QWEN3_06B, layers=a.layers)
    qtype = getattr(gguf.GGMLQuantizationType, a.type)
    rng = np.random.default_rng(a.seed)
    w = gguf.GGUFWriter(a.out, "qwen3")
    w.add_name("random qwen3-0.6b-shaped")
    w.add_block_count(c["layers"])
    w.add_context_length(4096)
    w.add_embedding_length(c["hidden"])
    w.add_feed_forward_length(c["inter"])
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_key_length(c["head_dim"])
    w.add_value_length(c["head_dim"])
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(c["vocab"])])
    w.add_token_types([1] * c["vocab"])
    w.add_token_merges(["t 0"])  # llama.cpp refuses a BPE vocabulary without merges; the ids are all it uses
    w.add_eos_token_id(c["vocab"] - 1)

    def matrix(name: str, rows: int, cols: int, std: float) -> None:
        x = (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std)).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)

    def norm(name: str, dim: int) -> None:
        w.add_tensor(name, (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32))

    hid, hd, inter = c["hidden"], c["head_dim"], c["inter"]
    matrix("token_embd.weight", c["vocab"], hid, 0.4)  # tied: also the LM head
    norm("output_norm.weight", hid)
    for i in range(c["layers"]):
        for key, rows, cols in (
            ("attn_q", c["heads"] * hd, hid),
            ("attn_k", c["kv_heads"] * hd, hid),
            ("attn_v", c["kv_heads"] * hd, hid),
            ("attn_output", hid, c["heads"] * hd),
            ("ffn_gate", inter, hid),
            ("ffn_up", inter, hid),
            ("ffn_down", hid, inter),
        ):
            matrix(f"blk.{i}.{key}.weight", rows, cols, cols**-0.5)
        for key, dim in (("attn_q_norm", hd), ("attn_k_norm", hd), ("attn_norm", hid), ("ffn_norm", hid)):
            norm(f"blk.{i}.{key}.weight", dim)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
