"""`peftrun explain`: every resolved value with its source, as a table, JSON or YAML."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from peftrun.cli import main
from peftrun.recipe.hardware import CPU
from tests.recipe_files import write  # noqa: F401 (write is a fixture)

BASE = """
model: {name_or_path: org/model}
trainer: {type: sft, logging_steps: 5}
dataset: {path: org/data}
"""
CHILD = """
extends: base.yaml
peft: {method: lora, r: 8}
quantization: {bits: 4}
"""


@pytest.fixture(autouse=True)
def _cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("peftrun.recipe.gpus.probe_light", lambda: CPU)


@pytest.fixture
def recipe(write):  # noqa: ANN201
    write("base.yaml", BASE)
    return write("child.yaml", CHILD)


def row(table: str, key: str) -> tuple[str, str]:
    """The value and source columns of one table row."""
    match = re.search(rf"^{re.escape(key)} +(\S+) +(.+)$", table, re.MULTILINE)
    assert match, f"no row {key!r} in:\n{table}"
    return match.group(1), match.group(2)


def test_table_shows_values_and_sources(recipe, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "child.yaml", "trainer.max_steps=3"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("recipe:   child.yaml\nhardware: CPU only")
    assert row(table, "peft.r") == ("8", "child.yaml:2:22")
    assert row(table, "trainer.logging_steps") == ("5.0", "base.yaml:2:22")
    assert row(table, "trainer.max_steps") == ("3", "command line: trainer.max_steps=3")
    assert row(table, "trainer.learning_rate") == ("0.0002", "rule learning-rate: LoRA = 10 x the full fine-tuning sft rate 2e-05")
    assert row(table, "peft.lora_alpha") == ("32", "default: TRL ModelConfig lora_alpha=32")
    assert row(table, "quantization.compute_dtype") == ("float32", "rule compute-dtype: follows the resolved model.dtype -> float32")
    assert row(table, "name") == ("child", "default: the recipe file's stem")
    assert "\npeft.LoraConfig(\n    task_type='CAUSAL_LM',\n    r=8,\n" in table
    assert "\ntransformers.BitsAndBytesConfig(\n    load_in_4bit=True,\n    bnb_4bit_compute_dtype='float32',\n" in table
    assert "\ntrl.SFTConfig(\n" in table and "    max_steps=3,\n" in table


def test_table_shows_warnings(recipe, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "child.yaml", "trainer.learning_rate=1e-5"]) == 0
    assert capsys.readouterr().out.endswith(
        "\nwarning: command line: trainer.learning_rate=1e-5: trainer.learning_rate 1e-05 is at or below the full "
        "fine-tuning rate for sft (2e-05); LoRA usually needs about 10x that (0.0002)\n"
    )


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_structured_formats(recipe, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    assert main(["explain", "child.yaml", "--format", fmt]) == 0
    out = capsys.readouterr().out
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert (data["recipe"], data["warnings"]) == ("child.yaml", [])
    values = {v["key"]: (v["value"], v["source"]) for v in data["values"]}
    assert values["peft.r"] == (8, "child.yaml:2:22")
    assert values["trainer.logging_steps"] == (5.0, "base.yaml:2:22")
    assert values["model.dtype"] == ("float32", "rule dtype-auto: bfloat16 where the GPU supports it, else float32 -> float32")
    assert values["quantization.quant_type"] == ("nf4", "default: nf4 (QLoRA paper)")
    assert values["output.dir"] == ("runs/child", "default: runs/${name}")
    builds = data["builds"]
    assert sorted(builds) == ["peft.LoraConfig", "transformers.BitsAndBytesConfig", "trl.SFTConfig"]
    assert builds["transformers.BitsAndBytesConfig"] == {
        "load_in_4bit": True, "bnb_4bit_compute_dtype": "float32", "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True, "bnb_4bit_quant_storage": None,
    }
    assert builds["trl.SFTConfig"]["learning_rate"] == 2e-4 and builds["trl.SFTConfig"]["use_cpu"] is True


def test_explain_of_an_invalid_recipe_exits_2(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("r.yaml", BASE + "peft: {method: prompt_tuning}\noutput: {save: merged}\n")
    assert main(["explain", "r.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: r.yaml: 1 problem\n"
        "  r.yaml:5:10: output.save: a prompt-tuning adapter cannot be merged into the model (its virtual tokens are inputs, not weights): use save: adapter\n"
    )


@pytest.mark.parametrize("trainer", ["grpo", "rloo"])
def test_reward_functions_are_shown_for_every_trainer_that_reads_them(write, trainer: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write("r.yaml", f"model: {{name_or_path: org/model}}\npeft: {{method: lora}}\n"
                    f"trainer: {{type: {trainer}, reward_funcs: [answer_match]}}\ndataset: {{path: org/data}}\n")
    assert main(["explain", "r.yaml"]) == 0
    assert row(capsys.readouterr().out, "trainer.reward_funcs") == ("['answer_match']", "r.yaml:3:23")


def test_settings_left_to_trl_are_shown_with_trl_defaults(recipe, capsys: pytest.CaptureFixture[str]) -> None:
    """What a run trains with is visible even when TRL decides it: batch size, accumulation, weight decay."""
    assert main(["explain", "child.yaml", "trainer.gradient_accumulation_steps=4"]) == 0
    table = capsys.readouterr().out
    assert row(table, "trainer.per_device_train_batch_size") == ("8", "default: TRL SFTConfig")
    assert row(table, "trainer.weight_decay") == ("0.0", "default: TRL SFTConfig")
    assert row(table, "trainer.gradient_accumulation_steps") == ("4", "command line: trainer.gradient_accumulation_steps=4")
    assert row(table, "trainer.activation_checkpointing") == ("True", "default: TRL SFTConfig")  # its alias's default
    assert table.count("trainer.gradient_accumulation_steps ") == 1
