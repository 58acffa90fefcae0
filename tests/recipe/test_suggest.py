"""Suggestions for small mistakes: the nearest existing file, did-you-mean for enum values, and another
tool's config named as such by `validate` and `run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.recipe.suggest import did_you_mean, nearest_file

FIXTURES = Path(__file__).resolve().parents[1] / "interop" / "fixtures"


def test_nearest_file_keeps_the_way_the_path_was_written(in_tmp: Path) -> None:
    (in_tmp / "data").mkdir()
    (in_tmp / "data" / "train.jsonl").write_text("{}\n")
    (in_tmp / "data" / "eval.jsonl").write_text("{}\n")
    assert nearest_file("data/trian.jsonl") == "data/train.jsonl"
    assert nearest_file(str(in_tmp / "data" / "evl.jsonl")) == str(in_tmp / "data" / "eval.jsonl")
    assert nearest_file("dat/train.jsonl") == "data/train.jsonl"  # the folder mistyped: looked for from the cwd
    assert nearest_file("data/other.parquet") is None


def test_did_you_mean() -> None:
    assert did_you_mean("sharegtp", ["alpaca", "sharegpt", "sharegpt-kto"]) == "; did you mean `sharegpt`?"
    assert did_you_mean("zzz", ["alpaca", "sharegpt"]) == ""


RECIPE = "model: {{name_or_path: x/y{model}}}\n{peft}trainer: {{type: sft}}\ndataset: {{path: {data}}}\n"


@pytest.mark.parametrize(("model", "peft", "data", "expected"), [
    ("", "", "data/trian.jsonl",
     "r.yaml:3:11: dataset.path: no such file or directory: data/trian.jsonl (relative paths start at {cwd}); "
     "did you mean `data/train.jsonl`?"),
    ("", "", "data/train.jsonl, format: sharegtp",
     "r.yaml:3:35: dataset.format: Input should be 'alpaca', 'sharegpt', 'sharegpt-preference', 'sharegpt-kto', "
     "'conversation-pair' or 'unpaired', or a valid dictionary or instance of FormatMapping; got 'sharegtp'; "
     "did you mean `sharegpt`?"),
    (", chat_template: chatmll", "", "data/train.jsonl",
     "r.yaml:1:28: model.chat_template: no shipped template named 'chatmll'; did you mean `chatml`? (shipped: chatml, "
     "llama2, llama3, mistral, gemma, phi3, qwen3, qwen3-no-thinking, zephyr, alpaca); or give a path to a .jinja file"),
    ("", "peft: {method: loar}\n", "data/train.jsonl",
     "r.yaml:2:8: peft.method: unknown value 'loar'; did you mean `lora` or `lokr` or `loha`? (one of: "),
])
def test_validate_suggests(in_tmp: Path, capsys: pytest.CaptureFixture[str], model: str, peft: str, data: str,
                           expected: str) -> None:
    (in_tmp / "data").mkdir()
    (in_tmp / "data" / "train.jsonl").write_text("{}\n")
    (in_tmp / "r.yaml").write_text(RECIPE.format(model=model, peft=peft, data=data))
    assert main(["validate", "r.yaml"]) == 2
    err = capsys.readouterr().err
    assert f"  {expected.format(cwd=in_tmp)}" in err
    assert "hint: this looks like" not in err


@pytest.mark.parametrize(("config", "title", "keys"), [
    ("axolotl/lora-alpaca.yml", "an Axolotl", "adapter, base_model, datasets, lora_r"),
    ("llamafactory/lora-sft.yaml", "a LLaMA-Factory", "cutoff_len, do_train, finetuning_type, lora_rank"),
])
def test_another_tools_config_is_named_by_validate_and_run(capsys: pytest.CaptureFixture[str], config: str,
                                                           title: str, keys: str) -> None:
    path = FIXTURES / config
    hint = f"hint: this looks like {title} config ({keys}): `peftrun import {path} -o recipe.yaml` turns it into a peftrun recipe"
    assert main(["validate", str(path)]) == 2
    assert f"\n  {hint}\n" in capsys.readouterr().err
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path  # as the loader names files
    assert err.startswith(f"error: {shown}: ") and err.endswith(f"\n{hint}\n")
