"""docs/trust.md is the capability table generated from the schema, and every field is classified."""

from __future__ import annotations

from pathlib import Path

from peftrun.recipe import trust

DOC = Path(__file__).resolve().parents[2] / "docs" / "trust.md"


def test_the_docs_table_is_generated_from_the_schema() -> None:
    text = DOC.read_text()
    start = text.index("<!-- generated: peftrun.recipe.trust.docs_table() -->\n") + len(
        "<!-- generated: peftrun.recipe.trust.docs_table() -->\n")
    assert text[start:text.index("<!-- end generated -->")] == trust.docs_table()


def test_every_field_that_looks_capability_bearing_is_classified() -> None:
    names = {path.split(".")[-1] for path in trust.schema_fields()}
    unclassified = sorted(n for n in names if trust.SUSPECT.search(n) and n not in trust.BY_NAME and n not in trust.HARMLESS)
    assert unclassified == [], f"classify these in recipe/trust.py (BY_NAME or HARMLESS): {unclassified}"
    assert set(trust.HARMLESS) <= names, "HARMLESS names fields the schema no longer has"


def test_trl_and_peft_code_switches_are_in_the_table() -> None:
    rows = {path: cap.kind for path, cap, _ in trust.table()}
    assert rows["trainer.trust_remote_code"] == rows["model.trust_remote_code"] == "execute"
    assert rows["trainer.reward_funcs"] == "execute" and rows["peft.tokenizer_kwargs"] == "execute"
    assert rows["dataset.data_files"] == "read" and rows["output.push_to_hub"] == "publish"
    assert rows["output.private"] == "publish" and rows["output.dir"] == "write"
