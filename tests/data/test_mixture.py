"""A missing field of a named format: the message says which field of the data looks like it and how to map it."""

from __future__ import annotations

import pytest
from datasets import Dataset

from peftrun.data.mixture import convert
from peftrun.errors import DataError


@pytest.mark.parametrize(("rows", "hint"), [
    ({"instruction": ["a"], "input": [""], "response": ["b"]},
     "; if `response` holds output, rename it in the source: `columns: {output: response}`"),
    ({"instrucion": ["a"], "answer": ["b"]},
     "; if `instrucion` holds instruction and `answer` holds output, rename them in the source: "
     "`columns: {instruction: instrucion, output: answer}`"),
    ({"instruction": ["a"], "x": ["b"]}, ""),
])
def test_a_missing_alpaca_field_gets_a_mapping(rows: dict, hint: str) -> None:
    with pytest.raises(DataError) as error:
        convert(Dataset.from_dict(rows), "alpaca", "dataset (d.jsonl)", cache=False)
    missing = [f for f in ("instruction", "output") if f not in rows]
    assert str(error.value) == (f"dataset (d.jsonl): format alpaca needs the field(s) {', '.join(missing)}, but the "
                                f"data has {list(rows)}{hint}")


def test_the_suggested_columns_mapping_reads_the_data(tmp_path) -> None:  # noqa: ANN001
    """`columns:` renames a source's fields before its format converts them, so the suggestion works."""
    import yaml

    from peftrun.data import load_training_data
    from peftrun.recipe.hardware import CPU
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.resolver import resolve
    from tests import tiny

    data = tiny.write_jsonl(tmp_path / "d.jsonl", [{"instruction": "Say hi", "input": "", "response": "hi"}])
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"model": {"name_or_path": "x/y"}, "trainer": {"type": "sft"},
                                    "dataset": {"path": str(data), "format": "alpaca", "columns": {"output": "response"}}}))
    loaded = load_training_data(resolve(load_recipe(path), CPU))
    assert loaded.train[0]["completion"] == [{"role": "assistant", "content": "hi"}]
