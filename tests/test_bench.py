"""``arrayq bench``: its rows, JSON and chart, and its messages (no timing is asserted)."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq import bench
from arrayq.bench import _generate, _quantized
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
    # each arrayq row against its case's backend op where there is one, else the library directly
    base = {r["case"]: r for r in rows if r["name"].endswith("directly")}
    base |= {r["case"]: r for r in rows if r["name"].endswith("backend op")}
    ours = [r for r in rows if r["name"].startswith("arrayq on")]
    assert ours and len(ours) == len(base)
    for r in ours:
        assert r["median_s"] > 0
        assert r["overhead_us"] == pytest.approx((r["median_s"] - base[r["case"]]["median_s"]) * 1e6)
    # the frontend rows: quantized_matmul at the qwen3-0.6b decode shape on numpy, with the
    # frontend measured alone (its backend op stubbed, and put back after)
    qmm = [r for r in ours if r["case"].startswith("quantized_matmul 1x1024 · 3072x1024 4-bit, numpy")]
    assert len(qmm) == 1 and "frontend_us" in qmm[0]
    assert "quantized_matmul" not in vars(aq.get_backend("numpy"))
    assert "frontend alone" in printed
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


def test_generate_rows_come_from_the_engines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``arrayq bench``'s generation rows: prefill and decode of each engine, of the tiny
    preset with --quick (the engines themselves run in the wheel test of test_packaging)."""
    monkeypatch.setenv("ARRAYQ_CACHE", str(tmp_path))
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "config.json").write_text("{}")  # the checkpoint is there: none is written
    calls = []

    def engines(model: Path, names: list[str], **kw: Any) -> list[dict[str, Any]]:
        calls.append((model, names, kw))
        row = {"prompt_tokens": 16, "decode_tokens": 7, "prefill_tps": 50.0, "decode_tps": 20.0}
        return [{**row, "engine": f"arrayq {name}", "peak_rss": 2**26} for name in names]

    monkeypatch.setattr(_generate, "run_engines", engines)
    rows = bench.generate(quick=True)
    assert calls == [(tmp_path / "tiny", ["numpy", "mlx"], {"prompt_tokens": 16, "decode_tokens": 8, "repeat": 1})]
    assert [(r["case"], r["name"], r["tokens"], r["tokens_per_s"]) for r in rows] == [
        ("prefill, tiny", "arrayq numpy", 16, 50.0),
        ("decode, tiny", "arrayq numpy", 7, 20.0),
        ("prefill, tiny", "arrayq mlx", 16, 50.0),
        ("decode, tiny", "arrayq mlx", 7, 20.0),
    ]
    assert all(r["bench"] == "generate" and r["peak_rss_MiB"] == 64 for r in rows)
    assert "token generation" in bench.format_rows(rows)


def test_pure_numpy_row_runs_with_the_native_kernels_off() -> None:
    """The pure-NumPy row is measured in a child started with ARRAYQ_NATIVE=off (which
    refuses to measure if the native kernels are on there); the weight's bfloat16 scales
    and x reach it intact."""
    import ml_dtypes

    import arrayq as aq

    rng = np.random.default_rng(1)
    qw = aq.quantize(rng.standard_normal((64, 128), dtype=np.float32).astype(ml_dtypes.bfloat16), group_size=64)
    assert qw.scales.dtype == ml_dtypes.bfloat16
    x = rng.standard_normal((3, 128), dtype=np.float32)
    times = _quantized.pure_numpy_times(qw, [("prefill x(3,128)", x, 2)])
    assert set(times) == {"prefill x(3,128)"} and times["prefill x(3,128)"] > 0


def test_benchmarks_use_only_public_names() -> None:
    """No backend-private module, no unbound ``Backend`` method, no file found next to the
    package (``arrayq bench`` runs from an installed wheel, without the source tree)."""
    for path in sorted(Path(bench.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module + "." + a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = []
            for name in names:
                top, *rest = name.split(".")
                assert top not in ("arrayq_numpy", "arrayq_mlx") or not any(p.startswith("_") for p in rest), (
                    f"{path.name}:{node.lineno} imports {name}"
                )
                assert name != "arrayq.backend.Backend", f"{path.name}:{node.lineno} imports {name}"
            if isinstance(node, ast.Name):
                assert node.id != "__file__", f"{path.name}:{node.lineno} reads __file__"


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


def test_generate_engines_run_on_the_device_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--device`` reaches every arrayq engine's process and its model: the parent passes it on
    (the child's command line, captured here), and a child loads the model on that device, with
    the activations' default dtype of that device (float32 on the CPU: the only device here; the
    GPU mapping of each backend is tested with the backend). A device the backend lacks fails in
    the child with the backend's message."""
    import subprocess

    from arrayq import models
    from arrayq.bench import _worker

    commands = []

    def child(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps({"engine": "arrayq numpy"}) + "\n", stderr="")

    monkeypatch.setattr(_generate.subprocess, "run", child)
    _generate.run_engines(tmp_path, ["numpy", "numpy-eager"], device="gpu", dtype="bfloat16")
    assert [c[c.index("--device") + 1] for c in commands] == ["gpu", "gpu"]
    assert [c[c.index("--dtype") + 1] for c in commands] == ["bfloat16", "bfloat16"]
    monkeypatch.undo()

    tiny = models.make_checkpoint(tmp_path / "tiny", "tiny")
    argv = [str(tiny), "--prompt-tokens", "4", "--decode-tokens", "3", "--repeat", "1"]
    assert _worker.main(["numpy", "--model", *argv, "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (row["device"], row["dtype"], row["decode_tokens"]) == ("cpu", "float32", 2)
    with pytest.raises(ValueError, match="has no device 'tpu'"):
        _worker.main(["numpy", "--model", *argv, "--device", "tpu"])
