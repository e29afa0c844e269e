"""``bench_generate --llama-bench``: llama-bench's JSON read right and the side-by-side table.
A stand-in llama-bench (a Python script) prints rows in llama-bench's ``-o json`` format
(hand-written: the fields ``build_commit``, ``cpu_info``, ``backends``, ``n_threads``,
``n_prompt``, ``n_gen``, ``avg_ts``, ``samples_ts``) and records the command line it got."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from arrayq.bench._llama import llama_bench, side_by_side

ROWS = [
    {"build_commit": "0c1e570", "cpu_info": "AMD EPYC", "backends": "CPU", "n_threads": 2, "n_prompt": 32,
     "n_gen": 0, "avg_ts": 158.0, "samples_ts": [155.0, 164.0, 155.0]},
    {"build_commit": "0c1e570", "cpu_info": "AMD EPYC", "backends": "CPU", "n_threads": 2, "n_prompt": 0,
     "n_gen": 64, "avg_ts": 49.0, "samples_ts": [48.7, 49.5]},
]  # fmt: skip


def _fake(tmp_path: Path, rows: object, code: int = 0) -> str:
    script = tmp_path / "llama-bench"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print({json.dumps(rows)!r})\n"
        f"sys.stderr.write('error: failed to load model\\n')\nsys.exit({code})\n"
    )
    script.chmod(0o755)
    return str(script)


def test_reads_the_best_samples_and_passes_the_same_settings(tmp_path: Path) -> None:
    out = llama_bench(_fake(tmp_path, ROWS), "m.gguf", 32, 64, 2, 3)
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["-m", "m.gguf", "-p", "32", "-n", "64", "-t", "2", "-r", "3", "-o", "json"]
    assert out["prefill_tps"] == 164.0 and out["decode_tps"] == 49.5  # the best repetition
    assert out["engine"] == "llama.cpp 0c1e570" and "cpu_info AMD EPYC" in out["describe"]
    arrayq = {"engine": "arrayq numpy int8", "prefill_tps": 82.0, "decode_tps": 24.75}
    table = side_by_side([arrayq], out, 32, 64, "native kernels, avx2")
    line = next(t for t in table.splitlines() if t.startswith("arrayq numpy int8"))
    assert "0.50x" in line and line.count("0.50x") == 2  # 82/164 and 24.75/49.5
    assert "prefill pp32" in table and "decode tg64" in table and "avx2" in table


def test_failures_say_what_llama_bench_said(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with 1: .*failed to load model"):
        llama_bench(_fake(tmp_path, [], code=1), "m.gguf", 32, 64, 2, 1)
    with pytest.raises(RuntimeError, match="no row with n_prompt=0, n_gen=64"):
        llama_bench(_fake(tmp_path, ROWS[:1]), "m.gguf", 32, 64, 2, 1)
    with pytest.raises(RuntimeError, match="cannot run llama-bench"):
        llama_bench(str(tmp_path / "missing"), "m.gguf", 32, 64, 2, 1)
    bad = tmp_path / "not-llama"
    bad.write_text(f"#!{sys.executable}\nprint('hello')\n")
    bad.chmod(0o755)
    with pytest.raises(RuntimeError, match="printed no JSON"):
        llama_bench(str(bad), "m.gguf", 32, 64, 2, 1)
