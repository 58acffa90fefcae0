"""Data loading: formats, renames, splits, caps, and the check against the trainer before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import peftrun
from peftrun.data import load_training_data
from peftrun.errors import DataError
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve
from tests import tiny
from tests.train.test_runner import LORA, recipe


def plan_for(data: dict) -> Plan:
    return resolve(load_recipe(data))


@pytest.mark.parametrize("trainer,file,expected", [
    ("sft", "sft.jsonl", "prompt-completion"),
    ("sft", "text.jsonl", "language modeling"),
    ("dpo", "pref.jsonl", "preference"),
    ("reward", "pref.jsonl", "preference"),
    ("grpo", "prompts.jsonl", "prompt-only"),
])
def test_formats_are_detected(data_dir: Path, trainer: str, file: str, expected: str) -> None:
    extra = {"reward_funcs": ["answer_match"], "num_generations": 2} if trainer == "grpo" else {}
    plan = plan_for(recipe(Path("m/m"), data_dir / file, {"type": trainer, **extra}, LORA))
    assert load_training_data(plan).format == expected


def test_columns_are_renamed_and_samples_capped(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(10)]
    path = tiny.write_jsonl(tmp_path / "qa.jsonl", rows)
    data = recipe(Path("m/m"), path, {"type": "sft"}, LORA, dataset={
        "path": str(path), "columns": {"prompt": "question", "completion": "answer"}, "max_samples": 4})
    loaded = load_training_data(plan_for(data))
    assert loaded.train.column_names == ["prompt", "completion"]
    assert loaded.train["prompt"] == ["q0", "q1", "q2", "q3"]


def test_a_rename_of_a_missing_column_names_what_exists(tmp_path: Path) -> None:
    path = tiny.write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a"}])
    data = recipe(Path("m/m"), path, {"type": "sft"}, LORA, dataset={"path": str(path), "columns": {"prompt": "query"}})
    with pytest.raises(DataError) as error:
        load_training_data(plan_for(data))
    assert str(error.value) == "dataset.path: dataset.columns names 'query' (for prompt), but the data has ['question', 'answer']"


def test_eval_from_fraction_path_and_split(tmp_path: Path, data_dir: Path) -> None:
    sft = data_dir / "sft.jsonl"
    by_fraction = load_training_data(plan_for(recipe(Path("m/m"), sft, {"type": "sft"}, LORA, dataset={
        "path": str(sft), "eval": {"fraction": 0.25}})))
    assert (len(by_fraction.train), len(by_fraction.eval)) == (24, 8)
    again = load_training_data(plan_for(recipe(Path("m/m"), sft, {"type": "sft"}, LORA, dataset={
        "path": str(sft), "eval": {"fraction": 0.25}})))
    assert again.eval["prompt"] == by_fraction.eval["prompt"], "the split follows the recipe's seed"
    by_path = load_training_data(plan_for(recipe(Path("m/m"), sft, {"type": "sft"}, LORA, dataset={
        "path": str(sft), "eval": {"path": str(sft)}})))
    assert len(by_path.eval) == 32
    folder = tmp_path / "splits"
    tiny.write_jsonl(folder / "train.jsonl", tiny.sft_rows(8))
    tiny.write_jsonl(folder / "test.jsonl", tiny.sft_rows(3))
    by_split = load_training_data(plan_for(recipe(Path("m/m"), folder, {"type": "sft"}, LORA, dataset={
        "path": str(folder), "eval": {"split": "test"}})))
    assert (len(by_split.train), len(by_split.eval)) == (8, 3)


def test_csv_and_parquet_files(tmp_path: Path) -> None:
    import datasets

    table = datasets.Dataset.from_list(tiny.text_rows(5))
    table.to_csv(str(tmp_path / "t.csv"))
    table.to_parquet(str(tmp_path / "t.parquet"))
    for name in ("t.csv", "t.parquet"):
        loaded = load_training_data(plan_for(recipe(Path("m/m"), tmp_path / name, {"type": "sft"}, LORA)))
        assert loaded.train["text"] == table["text"] and loaded.format == "language modeling"


def test_unknown_split_is_a_data_error(tmp_path: Path) -> None:
    tiny.write_jsonl(tmp_path / "train.jsonl", tiny.sft_rows(4))
    data = recipe(Path("m/m"), tmp_path, {"type": "sft"}, LORA, dataset={"path": str(tmp_path), "split": "validation"})
    with pytest.raises(DataError, match=r"dataset.path: cannot load split 'validation'"):
        load_training_data(plan_for(data))


@pytest.mark.parametrize("name,text,where", [
    ("bad.jsonl", '{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": }\n', "bad.jsonl:3:31"),
    ("bad.json", '[\n {"prompt": "a",\n  "completion" "b"}\n]\n', "bad.json:3:16"),
])
def test_a_json_syntax_error_names_file_line_and_column(tmp_path: Path, name: str, text: str, where: str) -> None:
    (tmp_path / name).write_text(text)
    data = recipe(Path("m/m"), tmp_path / name, {"type": "sft"}, LORA)
    with pytest.raises(DataError) as caught:
        load_training_data(plan_for(data))
    assert str(caught.value).startswith(f"dataset.path: {tmp_path / where}: not valid JSON: ")
    assert '"c"' not in str(caught.value), "the file's content is not printed"


def test_tokenized_data_is_cached_between_runs(in_tmp: Path, tiny_model_dir: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    path = tiny.write_jsonl(in_tmp / "fresh.jsonl", [{"text": f"cache test {i}"} for i in range(8)])
    data = recipe(tiny_model_dir, path, {"type": "sft", "max_steps": 1}, LORA)
    peftrun.run(data, verbose=True)  # verbose: datasets' progress bars name each preparation step
    assert "Tokenizing train dataset" in capfd.readouterr().err
    peftrun.run(data, mode="overwrite", verbose=True)
    assert "Tokenizing train dataset" not in capfd.readouterr().err, "the same recipe must not tokenize again"
    data["trainer"]["max_length"] = 64
    peftrun.run(data, mode="overwrite", verbose=True)
    assert "Truncating train dataset" in capfd.readouterr().err, "a length change must prepare the data again"


def test_strings_that_look_like_dates_stay_strings(tmp_path: Path) -> None:
    """pyarrow's JSON reader would turn "2021-03-05" into a timestamp; the model must see the text."""
    rows = [{"prompt": "the 5th of March, 2021", "completion": "2021-03-05"},
            {"prompt": "Jul 2 1998", "completion": "1998-07-02"}]
    for name, text in (("d.jsonl", "".join(json.dumps(r) + "\n" for r in rows)), ("d.json", json.dumps(rows))):
        (tmp_path / name).write_text(text)
        loaded = load_training_data(plan_for(recipe(Path("m/m"), tmp_path / name, {"type": "sft"}, LORA)))
        assert loaded.train["completion"] == ["2021-03-05", "1998-07-02"]
