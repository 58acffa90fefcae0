"""A data error never prints the contents of the file it read (a file read as CSV shows its first line as
column names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.cli import main
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture


def test_a_csv_error_never_prints_the_first_line(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    Path("creds.csv").write_text("https://user:ghp_t0ken@github.com\nhttps://other:t0ken2@host\n")
    path = write("r.yaml", MINIMAL.replace("org/data", "creds.csv"))
    assert main(["data", str(path)]) == 3
    err = capsys.readouterr().err
    assert "t0ken" not in err and "1 column name(s) that are not plain names (not shown)" in err
