"""The quality benchmark's calibration texts (benchmarks/quality_calibration*.py): the large
set's parser, its size, and that no calibration text is a measured text or a held-out text
(benchmarks/quality_sentences.py; every fifth of the first 682 calibration texts) or a
rewording of one, by the words: the same words after normalisation, or 60% or more of their
distinct words shared (Jaccard). The float32 embedding check (every large-set text below
cosine 0.9 to every measured and held-out text) needs the model: quality_heldout.py --overlap
(docs/quantization-quality.md)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # the benchmark modules import each other by name
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


SENTENCES = _load("quality_sentences")
MORE = _load("quality_calibration").MORE_CALIBRATION
LARGE_MODULE = _load("quality_calibration_large")
LARGE = LARGE_MODULE.LARGE_CALIBRATION
FIRST = SENTENCES.CALIBRATION + MORE
HELD = [t for i, t in enumerate(FIRST) if i % 5 == 4]
MEASURED = [t for pair in SENTENCES.PAIRS for t in pair] + SENTENCES.SINGLES


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _normal(text: str) -> str:
    return " ".join(_words(text))


def _jaccard(a: str, b: str) -> float:
    x, y = set(_words(a)), set(_words(b))
    return len(x & y) / len(x | y) if x | y else 1.0


def test_parse_reads_one_text_a_line_and_joins_indented_lines():
    block = "# a heading\nFirst text.\n\nA long text that\n  goes on here.\nLast!\n"
    assert LARGE_MODULE.parse(block) == ["First text.", "A long text that goes on here.", "Last!"]
    assert LARGE_MODULE.parse("") == []
    with pytest.raises(ValueError, match="continues the text above it, and there is none"):
        LARGE_MODULE.parse("  indented first")


def test_the_large_set_has_at_least_2000_clean_texts():
    assert len(LARGE) >= 2000
    for text in LARGE:
        assert isinstance(text, str) and text == text.strip() and _words(text), repr(text)
        assert "  " not in text, repr(text)  # (a continuation joined with one space)


def test_no_calibration_text_repeats_after_normalisation():
    seen: dict[str, str] = {}
    for text in FIRST + LARGE:
        key = _normal(text)
        assert key not in seen, f"{text!r} repeats {seen[key]!r}"
        seen[key] = text


@pytest.mark.parametrize("name", ["measured", "held-out"])
def test_no_large_set_text_is_a_measured_or_held_out_text_or_shares_most_words(name):
    others = MEASURED if name == "measured" else HELD
    for text in LARGE:
        for other in others:
            assert _normal(text) != _normal(other), f"{text!r} is the {name} text {other!r}"
            assert _jaccard(text, other) < 0.6, f"{text!r} shares most words with the {name} text {other!r}"


def test_the_word_checks_catch_a_rewording():
    """The checks above can fail: hand-made near copies of a measured text are caught."""
    assert _normal("Honey never spoils!") == _normal("honey  never spoils.")
    assert _jaccard("The museum is closed on Mondays.", "Our museum is closed on Mondays too.") >= 0.6
    assert _jaccard("Good morning!", "Good night!") < 0.6
