"""Every ```python example in README.md and docs/ runs as written."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
EXAMPLES = [
    (f"{path.name}#{i}", code)
    for path in FILES
    for i, code in enumerate(BLOCK.findall(path.read_text()))
    if "# not run" not in code
]


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("name,code", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_runs(name, code):
    exec(compile(code, name, "exec"), {"__name__": "__doc_example__"})
