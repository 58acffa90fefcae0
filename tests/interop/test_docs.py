"""docs/import-<tool>.md carry each tool's key map as the code has it (generated from the table and compared),
and a walk over every table checks its rows: each either names its peftrun key or says why it is not carried,
and each tool default converts to keys of the recipe's sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.interop.docs import DOCS, TOOLS, key_map, page_section, table_of
from peftrun.interop.keymap import UNSET, Translation
from peftrun.recipe.schema import Recipe

SECTIONS = set(Recipe.model_fields)


@pytest.mark.parametrize("tool", TOOLS)
def test_the_page_shows_the_key_map_the_code_has(tool: str) -> None:
    page = (DOCS / f"import-{tool}.md").read_text()
    assert page_section(page, tool) == key_map(table_of(tool)), "run `python -m peftrun.interop.docs`"


@pytest.mark.parametrize("tool", TOOLS)
def test_every_row_says_where_its_key_goes_or_why_not(tool: str) -> None:
    table = table_of(tool)
    for key in table.keys:
        assert key.target or key.reason, key.source
        if key.target and key.target != "-":
            assert key.target.split(".")[0].split(" ")[0] in SECTIONS, key.source
        if key.default is not UNSET:
            tr = Translation(table.title, {})
            key.apply(key.default, tr, default=True)
            assert {p.split(".")[0] for p in tr.values} <= SECTIONS, key.source
    assert table.cited and all(c.startswith("https://") for c in table.cited)


def test_each_page_cites_where_the_facts_come_from() -> None:
    for tool in TOOLS:
        page = (DOCS / f"import-{tool}.md").read_text()
        assert all(source in page for source in table_of(tool).cited)
    assert (Path(DOCS) / "export-trl.md").is_file()
