"""What contributors expect of the repository, as tests (CI runs only pytest): the code is
lint-clean and formatted (ruff), type-checks (mypy), and the docs site builds with no
warning (mkdocs --strict). The settings are in pyproject.toml and mkdocs.yml; the tools
come with the ``dev`` extra (``pip install -e '.[dev]'``). A test whose tool is missing
skips and says which.

Run one by hand as the test does, from the repository root: ``ruff check .``,
``ruff format --check .`` (``ruff format .`` fixes it), ``mypy``, ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def need(module: str, what: str | None = None) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{what or module} is not installed; pip install -e '.[dev]'")


def run(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``args`` run with this interpreter's ``-m``; fails the test with the tool's output."""
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}")
    return proc


def test_ruff_check() -> None:
    need("ruff")
    run("ruff", "check", "--no-cache", ".")


def test_ruff_format() -> None:
    need("ruff")
    run("ruff", "format", "--no-cache", "--check", ".")


def test_mypy() -> None:
    need("mypy")
    # the packages, paths and flags are pyproject.toml's [tool.mypy]
    out = run("mypy").stdout
    assert "Success: no issues found" in out, out


def test_docs_build_strict(tmp_path: Path) -> None:
    need("mkdocs")
    need("mkdocstrings_handlers.python", "mkdocstrings[python]")
    run("mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site"))
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_cli_doc_lists_every_flag() -> None:
    """docs/cli.md names every option of every ``arrayq`` subcommand."""
    import argparse

    from arrayq.cli import build_parser

    doc = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {flag}"
        for name, command in sub.choices.items()
        for action in command._actions
        for flag in action.option_strings
        if flag.startswith("--") and flag != "--help" and flag not in doc
    ]
    assert not missing, f"docs/cli.md does not mention: {missing}"
