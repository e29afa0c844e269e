"""``arrayq bench``: its rows, JSON and chart, and its messages (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from arrayq import bench
from arrayq.cli import main


def test_dispatch_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "rows.json", tmp_path / "bench.png"
    argv = ["bench", "--only", "dispatch", "--quick", "--json", str(out_json)]
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    if has_matplotlib:
        argv += ["--plot", str(out_png)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "dispatch overhead" in printed and "arrayq on numpy" in printed
    rows = json.loads(out_json.read_text())
    assert {r["bench"] for r in rows} == {"dispatch"}
    direct = {r["case"]: r for r in rows if r["name"].endswith("directly")}
    ours = [r for r in rows if r["name"].startswith("arrayq on")]
    assert ours and len(ours) == len(direct)
    for r in ours:
        assert r["median_s"] > 0
        assert r["overhead_us"] == pytest.approx((r["median_s"] - direct[r["case"]]["median_s"]) * 1e6)
    if has_matplotlib:
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_so_before_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("benchmarks ran"))
    assert main(["bench", "--plot", "x.png"]) == 2
    assert "pip install 'arrayq[plot]'" in capsys.readouterr().err


def test_generate_outside_a_checkout_says_how_to_run_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "_generate_script", lambda: None)
    assert bench.generate(quick=True) == []
    assert "benchmarks/bench_generate.py" in capsys.readouterr().err


def test_tables_and_unknown_benchmark() -> None:
    rows: list[dict[str, Any]] = [
        {"bench": "quantized", "case": "decode", "name": "arrayq numpy", "median_s": 0.02, "peak_extra_MiB": 1.0},
        {"bench": "quantized", "case": "decode", "name": "other", "median_s": 0.04},
        {"bench": "dispatch", "case": "add", "name": "numpy directly", "median_s": 1e-6},
        {"bench": "dispatch", "case": "add", "name": "arrayq on numpy", "median_s": 2e-6, "overhead_us": 1.0},
        {
            "bench": "generate",
            "case": "decode, tiny",
            "name": "arrayq numpy",
            "tokens_per_s": 100.0,
            "tokens": 7,
            "peak_rss_MiB": 50.0,
        },
    ]
    text = bench.format_rows(rows)
    assert "2.00x" in text and "+1.00 µs/op" in text and "100.00" in text
    with pytest.raises(ValueError, match="unknown benchmark"):
        bench.run("nope")
