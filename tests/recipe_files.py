"""Recipe files for the recipe-core tests: a `write` fixture working in a fresh directory.

Import the fixture into a test module (`from tests.recipe_files import write`); the
directory becomes the working directory, so error locations read `r.yaml:3:5`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

MINIMAL = """
model: {name_or_path: org/model}
trainer: {type: sft}
dataset: {path: org/data}
"""


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """write("dir/name.yaml", text) -> the path (relative to the working directory, tmp_path)."""
    monkeypatch.chdir(tmp_path)

    def _write(name: str, text: str) -> Path:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write
