"""The mutation check (tools/mutation_check.py): every planted bug still applies to the
source as it is (a refactor that moves the text must move the mutation too), and the
check itself tells a killed mutation from a surviving one."""

import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "tools" / "mutation_check.py")
mutation_check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutation_check  # dataclasses look their module up there
_spec.loader.exec_module(mutation_check)


@pytest.mark.parametrize("mutation", mutation_check.MUTATIONS, ids=lambda m: m.name)
def test_mutation_applies_once(mutation):
    assert mutation_check.applies(mutation), f"{mutation.path} no longer holds {mutation.old!r} exactly once"
    assert mutation.old != mutation.new and mutation.tests


def test_mutations_have_unique_names():
    names = [m.name for m in mutation_check.MUTATIONS]
    assert len(names) == len(set(names))


def test_failed_reads_the_tests_out_of_pytest_s_summary():
    """The tests that killed a mutation, as the end of ``pytest -q``'s output names them (they
    must then pass unmutated); a collection error names its file."""
    out = (
        "..F\n=========================== short test summary info ============================\n"
        "FAILED tests/test_nn.py::test_norms[float16-LayerNorm] - AssertionError: assert 0.5 < 0.01\n"
        "ERROR tests/test_rowops.py - ImportError: cannot import name 'x'\n"
        "!!!!!!!!!!!!!!!!!!!!!!!!!! stopping after 1 failures !!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        "1 failed, 2 passed in 0.50s\n"
    )
    assert mutation_check._failed(out) == ["tests/test_nn.py::test_norms[float16-LayerNorm]", "tests/test_rowops.py"]
    assert mutation_check._failed("3 passed in 0.10s\n") == []


def test_the_suite_kills_every_mutation():
    """Plant each known bug in a copy of the checkout and run the tests named for it (about
    3 minutes on 2 cores): a mutation that survives means the suite went blind where it used
    to see."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mutation_check.py")], capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{len(mutation_check.MUTATIONS)} of {len(mutation_check.MUTATIONS)} mutations killed" in proc.stdout
