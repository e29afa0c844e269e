"""The conformance suite itself: it passes on the shipped backends and the example
third-party backend, catches a broken backend with a readable report, honours declared
gaps, and runs from the CLI and as a pytest plugin."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import arrayq
from arrayq import QuantizationError, cli
from arrayq.conformance import Case, all_cases, run, run_case
from arrayq.conformance.cases import QUANTIZED_OPS
from arrayq.conformance.runner import select
from tests._fake_backends import make_backend_class


def _assert_passes(report):
    assert not report.failed, "\n" + report.table()
    assert report.counts()["pass"] > 500


def test_numpy_reference_passes_the_whole_suite():
    _assert_passes(run("numpy"))


def test_example_third_party_backend_passes():
    pytest.importorskip("arrayq_strict", reason="install examples/arrayq-strict (CI does)")
    report = run("strict")
    _assert_passes(report)
    caps = arrayq.capabilities("strict")
    assert caps["quantized_matmul"] == caps["dequantize"] == caps["mean"] == "fallback"


def test_mlx_passes():
    pytest.importorskip("mlx.core")
    _assert_passes(run("mlx"))


@pytest.fixture
def broken_backend():
    base = make_backend_class("Broken")

    class BrokenDequantize(base):
        def dequantize(self, qw, dtype):
            good = arrayq.dequantize(arrayq.to_backend(qw, "numpy"), dtype=dtype)
            # wrong in one element by a sign flip: no rounding in any dtype can hide it (a
            # scaled result, e.g. good * 1.001, rounds back to good in bfloat16)
            flat = good.reshape(-1).copy()
            flat[flat.size // 2] = -flat[flat.size // 2] if flat[flat.size // 2] else 1
            return self.from_numpy(flat.reshape(good.shape))

    arrayq.register_backend("broken", BrokenDequantize)
    yield
    arrayq.unregister_backend("broken")


def test_broken_backend_is_caught_with_a_readable_report(broken_backend, capsys):
    pattern = "dequantize[affine,gs64"
    selected = select(all_cases(), pattern)
    assert selected and {c.op for c in selected} == {"dequantize"}
    report = run("broken", pattern=pattern)
    # every selected case fails, however many formats and dtypes the suite has
    assert report.counts() == {"pass": 0, "fail": len(selected), "skip": 0}, report.table()
    table = report.table()
    row = next(line for line in table.splitlines() if line.startswith("dequantize"))
    assert "FAIL" in row and "elements differ (exact match required)" in row
    # the message names the first differing element and both values
    first = report.failed[0]
    assert re.search(r"1 of \d+ elements differ .*first at \(\d+, \d+\): got .*, reference ", first.message)
    assert table.splitlines()[-1].startswith(f"broken: 0 passed, {len(selected)} failed")
    # the CLI says the same and exits 1
    assert cli.main(["conformance", "broken", "-k", "dequantize[affine,gs64,b4"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("backend_raises", "verdict"),
    [
        (QuantizationError("K is 128, expected 256"), "pass"),
        (ValueError("K is 128, expected 256"), "raised ValueError"),  # the parent type stands in
        (IndexError("index 3 is out of bounds"), "raised IndexError"),
        (QuantizationError("bad shape"), "the message must match"),
    ],
)
def test_error_cases_require_the_promised_type_and_message(backend_raises, verdict):
    """An error case passes only with the type it names and a message saying expected and
    actual: a backend's own error standing in for a missing check fails it."""
    numpy_backend = arrayq.get_backend("numpy")

    def call(aq, x):
        if aq.backend_of(x) is numpy_backend:  # the backend under test
            raise backend_raises
        raise QuantizationError("K is 128, expected 256")  # the reference

    case = Case(
        "error:fake", "fake", ("float32",), lambda rng: [np.zeros(3, np.float32)], call, "raises",
        raises="QuantizationError", match=r"128.*expected 256",
    )  # fmt: skip
    result = run_case(case, numpy_backend)
    assert (result.status == "pass") == (verdict == "pass") and verdict in (result.message or "pass"), result


def test_every_quantized_error_case_names_its_type_and_message():
    cases = [c for c in all_cases() if c.expect == "raises" and c.op in QUANTIZED_OPS]
    assert len(cases) >= 15
    assert all(c.raises == "QuantizationError" and c.match for c in cases), [c.id for c in cases if not c.match]


#: Contract ops the elementwise cases leave out: the suite has no complex dtype.
COMPLEX_ONLY = {"conj", "real", "imag"}


def test_elementwise_cases_name_the_contract_ops():
    """UNARY and BINARY add each op's dtypes and input range; their names must be the
    contract's (arrayq.backend re-exports the op tables) plus frontend composites."""
    from arrayq.backend import BINARY_OPS, UNARY_OPS
    from arrayq.conformance.cases import BINARY, UNARY

    assert set(UNARY_OPS) - set(UNARY) == COMPLEX_ONLY, "a contract unary op has no conformance case"
    assert set(BINARY_OPS) <= set(BINARY), "a contract binary op has no conformance case"
    extra = (set(UNARY) - set(UNARY_OPS)) | (set(BINARY) - set(BINARY_OPS))
    assert extra and all(callable(getattr(arrayq, name, None)) for name in extra), extra
    assert not extra & (set(UNARY_OPS) | set(BINARY_OPS))


def test_every_reduction_and_quantized_op_has_cases():
    from arrayq.backend import REDUCE_OPS

    ops = {c.op for c in all_cases()}
    assert set(REDUCE_OPS) <= ops
    assert set(QUANTIZED_OPS) <= ops
    assert all(callable(getattr(arrayq, name, None) or getattr(arrayq.linalg, name, None)) for name in QUANTIZED_OPS)


def test_case_ids_are_unique():
    """A case's seed is the hash of its id: two cases with one id would draw the same inputs
    and hide each other in reports."""
    ids = [c.id for c in all_cases()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_declared_gaps_are_skipped_with_their_reason():
    cls = make_backend_class("Gappy")
    cls.declared_gaps = {"bfloat16": "this backend has no bfloat16", "sort": "not written yet"}
    arrayq.register_backend("gappy", cls)
    try:
        report = run("gappy", pattern="sort")
        rows = {r["op"]: r for r in report.by_op()}
        assert rows["sort"]["status"] == "skipped" and "not written yet" in rows["sort"]["note"]
        assert rows["argsort"]["status"] == "pass"
        bf16 = list(run("gappy", pattern="exp[bfloat16").results)
        assert bf16 and all(r.status == "skip" and "no bfloat16" in r.message for r in bf16)
    finally:
        arrayq.unregister_backend("gappy")


def test_cli_writes_json_and_exits_zero(tmp_path):
    out = tmp_path / "report.json"
    assert cli.main(["conformance", "numpy", "-k", "quantize[affine,gs64,b4", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["backend"] == "numpy" and data["counts"]["fail"] == 0 and data["counts"]["pass"] == 6
    assert {row["op"] for row in data["ops"]} == {"quantize", "dequantize"}  # -k matches substrings


def test_pytest_plugin_runs_the_suite():
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "arrayq.conformance",
        "--arrayq-backend",
        "numpy",
        "-k",
        "matmul and float32",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_case_inputs_are_deterministic():
    from arrayq.conformance import all_cases

    case = next(c for c in all_cases() if c.id.startswith("sin[float32"))
    a = case.make(np.random.default_rng(case.seed))
    b = case.make(np.random.default_rng(case.seed))
    np.testing.assert_array_equal(a[0], b[0])
