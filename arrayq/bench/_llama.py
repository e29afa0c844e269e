"""llama.cpp side by side: its ``llama-bench`` on the same GGUF file and thread count as
arrayq's generation benchmark (``python benchmarks/bench_generate.py --model FILE.gguf
--llama-bench PATH``).

llama-bench runs ``-p N -n M -t T -r R -o json``: one prompt-processing test of N tokens
(pp N, llama.cpp's prefill) and one generation test of M tokens (tg M, its decode), R
repetitions each; its JSON rows give the mean tokens per second (``avg_ts``) and each
repetition's (``samples_ts``), of which the best is kept here, as for arrayq's engines.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

#: keys of a llama-bench JSON row that name the build and the CPU, shown as they are
_DESCRIBE = ("build_commit", "cpu_info", "backends")


def llama_bench(
    binary: str, model: str, n_prompt: int, n_decode: int, threads: int, repeat: int, timeout: float = 3600
) -> dict[str, Any]:
    """Run llama-bench and return {"engine", "prefill_tps", "decode_tps", "threads",
    "describe"}. Raises RuntimeError with llama-bench's own message when it fails or prints
    no pp/tg rows."""
    cmd = [binary, "-m", model, "-p", str(n_prompt), "-n", str(n_decode), "-t", str(threads)]
    cmd += ["-r", str(repeat), "-o", "json"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as exc:
        raise RuntimeError(f"cannot run llama-bench {binary!r}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"llama-bench exited with {done.returncode}: " + " | ".join(tail))
    try:
        rows = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"llama-bench printed no JSON ({exc}); is {binary!r} llama.cpp's llama-bench?") from exc

    def best(n_p: int, n_g: int) -> float:
        for row in rows:
            if row.get("n_prompt") == n_p and row.get("n_gen") == n_g:
                return float(max(row.get("samples_ts") or [row["avg_ts"]]))
        raise RuntimeError(f"llama-bench printed no row with n_prompt={n_p}, n_gen={n_g}")

    first = rows[0] if rows else {}
    return {
        "engine": "llama.cpp " + str(first.get("build_commit", "")),
        "prefill_tps": best(n_prompt, 0),
        "decode_tps": best(0, n_decode),
        "threads": threads,
        "describe": ", ".join(f"{k} {first[k]}" for k in _DESCRIBE if first.get(k) not in (None, "")),
    }


def side_by_side(rows: list[dict[str, Any]], llama: dict[str, Any], n_prompt: int, n_decode: int, simd: str) -> str:
    """The arrayq rows and llama.cpp's as one table, with each engine's ratio to llama.cpp."""
    head = f"{'engine':<20}{'threads':>8}{f'prefill pp{n_prompt}':>16}{'vs llama.cpp':>14}"
    head += f"{f'decode tg{n_decode}':>14}{'vs llama.cpp':>14}"
    lines = [head, "-" * len(head)]
    for r in [*rows, llama]:
        lines.append(
            f"{r['engine']:<20}{llama['threads']:>8}{r['prefill_tps']:>16.2f}"
            f"{r['prefill_tps'] / llama['prefill_tps']:>13.2f}x{r['decode_tps']:>14.2f}"
            f"{r['decode_tps'] / llama['decode_tps']:>13.2f}x"
        )
    lines.append(f"arrayq: {simd}")
    lines.append(f"llama.cpp: {llama['describe'] or 'no build details in its output'} (SIMD: as built)")
    return "\n".join(lines)
