"""Much more calibration text for benchmarks/quantization_quality.py (``--calibration
large``), written for arrayq's quantization measurement (not taken from any data set).

``LARGE_CALIBRATION``: the texts of ``quality_calibration_large_a.py`` to ``_f.py``, in that
order: everyday and specialist topics, from two words to a paragraph, questions, greetings,
short exclamations, signs, and near paraphrases (two wordings of one statement on adjacent
lines). They come after ``quality_sentences.CALIBRATION + quality_calibration.MORE_CALIBRATION``
and are all trained on: the held-out texts stay every fifth of those 682
(docs/quantization-quality.md). None of them is a measured text, a held-out text or a
rewording of one (tests/test_calibration_texts.py checks the words;
``quality_heldout.py --overlap`` the float32 embedding cosines, all below 0.9).
"""

from quality_calibration_large_a import TEXTS as _A
from quality_calibration_large_b import TEXTS as _B
from quality_calibration_large_c import TEXTS as _C
from quality_calibration_large_d import TEXTS as _D
from quality_calibration_large_e import TEXTS as _E
from quality_calibration_large_f import TEXTS as _F


def parse(block: str) -> list[str]:
    """The texts of ``block``: one a line, surrounding spaces removed; an indented line
    continues the text above it (a paragraph longer than a source line); blank lines and
    lines starting with "# " (topic headings) are skipped. Raises ValueError for an
    indented line with no text above it."""
    texts: list[str] = []
    for line in block.splitlines():
        if not line.strip() or line.startswith("# "):
            continue
        if line.startswith(" "):
            if not texts:
                raise ValueError(f"an indented line continues the text above it, and there is none: {line!r}")
            texts[-1] += " " + line.strip()
        else:
            texts.append(line.strip())
    return texts


LARGE_CALIBRATION = [text for block in (_A, _B, _C, _D, _E, _F) for text in parse(block)]
