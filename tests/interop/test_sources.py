"""What `peftrun import` reads: YAML, a model card's embedded config, a `trl <command>` line (with its --config);
and which tool a config is for."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.errors import RecipeError
from peftrun.interop.sources import detect, parse_command_line, read_source

FIXTURES = Path(__file__).with_name("fixtures")


def test_a_command_line_is_typed_as_trl_parses_it() -> None:
    words = ["--use_peft", "--lora_r", "8", "--learning_rate", "1e-4", "--lora_target_modules", "q_proj", "v_proj",
             "--bf16=false", "--dataset_name", "org/data"]
    assert parse_command_line(words) == {"use_peft": True, "lora_r": 8, "learning_rate": 1e-4,
                                         "lora_target_modules": ["q_proj", "v_proj"], "bf16": False,
                                         "dataset_name": "org/data"}


def test_the_command_line_wins_over_its_config_file() -> None:
    source = read_source(FIXTURES / "trl" / "sft-qlora.sh")
    assert source.trl_command == "sft" and source.form == "command line"
    assert source.config["learning_rate"] == 1e-4  # the line's, over the file's 2.0e-4
    assert source.config["lora_r"] == 32  # the file's
    assert detect(source) == ("trl", ("trl sft",))


def test_a_model_card_gives_its_embedded_config(tmp_path: Path) -> None:
    source = read_source(FIXTURES / "axolotl" / "README.md")
    assert source.form == "model card" and source.config["base_model"] == "org/tiny-llama"
    card = tmp_path / "README.md"
    card.write_text("# A card\n\n```yaml\nlicense: mit\n```\n")
    with pytest.raises(RecipeError, match="no YAML block with a config"):
        read_source(card)


@pytest.mark.parametrize(("name", "tool"), [
    ("axolotl/qlora-chat.yml", "axolotl"), ("llamafactory/lora-sft.yaml", "llamafactory"),
    ("llamafactory/run/training_args.yaml", "llamafactory"), ("trl/grpo.yaml", "trl"),
    ("torchtune/dpo.yaml", "torchtune"),
])
def test_the_tool_is_told_by_its_keys(name: str, tool: str) -> None:
    assert detect(read_source(FIXTURES / name))[0] == tool


@pytest.mark.parametrize(("text", "message"), [
    ("- a list\n", "a config must be a YAML mapping of settings"),
    ("key: [unclosed\n", "not readable as YAML"),
    ("trl vllm-serve --model x\n", "`trl vllm-serve`: not a TRL training command peftrun imports"),
])
def test_unreadable_sources_are_refused(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        read_source(path)


def test_a_run_directory_gives_its_config(tmp_path: Path) -> None:
    assert read_source(FIXTURES / "llamafactory" / "run").path.name == "training_args.yaml"
    assert read_source(FIXTURES / "axolotl").path.name == "README.md"
    with pytest.raises(RecipeError, match="a directory without training_args.yaml or README.md"):
        read_source(tmp_path)


def test_a_yaml_whose_comment_names_trl_is_yaml(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("# run with: trl sft --config c.yaml\nmodel_name_or_path: org/m\nuse_peft: true\n")
    assert read_source(config).form == "YAML config"
    line = tmp_path / "run.sh"
    line.write_text("#!/bin/sh\n# QLoRA\nCUDA_VISIBLE_DEVICES=0 trl dpo --model_name_or_path org/m\n")
    assert read_source(line).trl_command == "dpo"


@pytest.mark.parametrize("line", ["accelerate launch --num_processes 2 trl/scripts/grpo.py --beta 0.1",
                                  "python -m trl.scripts.grpo --beta 0.1"])
def test_trl_scripts_run_directly_are_read_too(line: str, tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text(line + "\n")
    source = read_source(path)
    launch = {"num_processes": 2} if line.startswith("accelerate") else {}
    assert (source.trl_command, source.config) == ("grpo", {**launch, "beta": 0.1})
