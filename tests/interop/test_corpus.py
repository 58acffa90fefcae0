"""`peftrun import` on real published configs (tests/interop/corpus, SOURCES.tsv): each one imports to a recipe
that resolves as its tool resolves it (tests/interop/corpus/expected, derived from the tool's source and
defaults), or is refused / lists as not carried exactly what differs. None loses a deciding setting silently."""

from __future__ import annotations

import hashlib

import pytest

from tests.interop.corpus_check import CORPUS, expectations, judge

CASES = expectations()
ROWS = [line.split("\t") for line in (CORPUS / "SOURCES.tsv").read_text().splitlines()[1:]]


@pytest.mark.parametrize(("tool", "path", "doc"), CASES, ids=[f"{t}/{p}" for t, p, _ in CASES])
def test_a_published_config_imports_faithfully_or_says_why_not(tool: str, path: str, doc: dict) -> None:
    outcome = judge(tool, path, doc)
    assert outcome.verdict in ("faithful", "refused"), "\n".join(outcome.why)


def test_the_corpus_is_large_and_spread_over_the_tools() -> None:
    tools = {tool for tool, _, _ in CASES}
    assert len(CASES) >= 120 and tools == {"axolotl", "llamafactory", "handbook", "trl", "torchtune"}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}/{r[2]}" for r in ROWS])
def test_each_file_is_byte_identical_with_its_source(row: list[str]) -> None:
    """The file's git blob id equals the one its repository has at the recorded commit."""
    tool, repository, path, commit, blob, license_ = row
    data = (CORPUS / tool / path).read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob
    assert len(commit) == 40 and repository.count("/") == 1 and license_ in ("Apache-2.0", "BSD-3-Clause")
