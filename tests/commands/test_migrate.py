"""`peftrun migrate`: every registered old name renamed in place, byte for byte; the rest reported; --check for CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.migrations import CHANGES
from tests.recipe_files import write  # noqa: F401 - fixture

OLD = """\
# yaml-language-server: $schema=../schemas/recipe.schema.json
# A recipe written for older TRL and transformers.
extends: peftrun:sft-lora
model:
  name_or_path: org/model
  torch_dtype: bfloat16          # the weights' dtype
trainer:
  # sequence length, as TRL 0.19 named it
  max_seq_length: 512
  "evaluation_strategy": 'steps'
  eval_steps: 10
  warmup_ratio: 0.03   # 3% of the steps
  gradient_checkpointing: true
  gradient_checkpointing_kwargs: {use_reentrant: false}
dataset: {path: org/data, eval: {fraction: 0.1}}
"""
NEW = """\
# yaml-language-server: $schema=../schemas/recipe.schema.json
# A recipe written for older TRL and transformers.
extends: peftrun:sft-lora
model:
  name_or_path: org/model
  dtype: bfloat16          # the weights' dtype
trainer:
  # sequence length, as TRL 0.19 named it
  max_length: 512
  "eval_strategy": 'steps'
  eval_steps: 10
  warmup_steps: 0.03   # 3% of the steps
  activation_checkpointing: true
  activation_checkpointing_kwargs: {use_reentrant: false}
dataset: {path: org/data, eval: {fraction: 0.1}}
"""


def test_every_registered_rename_is_covered() -> None:
    renamed = {c.key for c in CHANGES if c.new}
    assert renamed == {"torch_dtype", "max_seq_length", "evaluation_strategy", "warmup_ratio",
                       "gradient_checkpointing", "gradient_checkpointing_kwargs"}
    assert all(key in OLD for key in renamed)


def test_migrate_renames_in_place_byte_for_byte(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    path = write("r.yaml", OLD)
    assert main(["validate", "r.yaml"]) == 2  # the old names are refused, each with its fix
    assert "`max_seq_length` is not a key here: TRL 0.20 renamed it: use trainer.max_length" in capsys.readouterr().err
    assert main(["migrate", "r.yaml"]) == 0
    assert path.read_bytes() == NEW.encode()
    assert capsys.readouterr().out.splitlines() == [
        "r.yaml: migrated",
        "  renamed r.yaml:6:3: model.torch_dtype -> model.dtype (transformers 4.56)",
        "  renamed r.yaml:9:3: trainer.max_seq_length -> trainer.max_length (TRL 0.20)",
        "  renamed r.yaml:10:3: trainer.evaluation_strategy -> trainer.eval_strategy (transformers 4.46)",
        "  renamed r.yaml:12:3: trainer.warmup_ratio -> trainer.warmup_steps (transformers 5.2)",
        "  renamed r.yaml:13:3: trainer.gradient_checkpointing -> trainer.activation_checkpointing (transformers 5)",
        "  renamed r.yaml:14:3: trainer.gradient_checkpointing_kwargs -> trainer.activation_checkpointing_kwargs "
        "(transformers 5)",
    ]
    recipe = load_recipe(path)
    assert (recipe.trainer.max_length, recipe.trainer.warmup_steps, recipe.model.dtype) == (512, 0.03, "bfloat16")
    assert main(["migrate", "r.yaml"]) == 0 and path.read_bytes() == NEW.encode()  # nothing left to do


def test_flow_mappings_and_crlf_line_ends(write) -> None:  # noqa: F811
    path = write("r.yaml", "")
    path.write_bytes(b"model: {name_or_path: m}\r\ntrainer: {type: sft, max_seq_length: 64, evaluation_strategy: 'no'}\r\n")
    assert main(["migrate", "r.yaml"]) == 0
    assert path.read_bytes() == b"model: {name_or_path: m}\r\ntrainer: {type: sft, max_length: 64, eval_strategy: 'no'}\r\n"


def test_values_that_cannot_be_migrated_are_reported_not_guessed(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    text = ("trainer:\n  type: dpo\n  max_prompt_length: 256\n  warmup_ratio: 5\n"
            "  max_seq_length: 512\n  max_length: 1024\n  gradient_checkpointing: true\n")
    path = write("r.yaml", text)
    assert main(["migrate", "r.yaml"]) == 1
    assert path.read_text() == text.replace("gradient_checkpointing", "activation_checkpointing")
    assert capsys.readouterr().err.splitlines() == [
        "  not migrated: r.yaml:3:3: trainer.max_prompt_length: TRL 1.0 removed it: prompts are no longer truncated on "
        "their own; shorten them in the data or rely on max_length",
        "  not migrated: r.yaml:4:3: trainer.warmup_ratio: 5 is not a ratio in [0, 1): set trainer.warmup_steps by hand "
        "(transformers 5.2; a value below 1 is a ratio of the total steps)",
        "  not migrated: r.yaml:5:3: trainer.max_seq_length: both `max_seq_length` and `max_length` are set: keep one "
        "by hand (TRL 0.20 renamed it: use trainer.max_length; `peftrun migrate` rewrites it)",
    ]


def test_check_in_ci(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes/ok.yaml").write_text("trainer: {type: sft, max_length: 64}\n")
    old = tmp_path / "recipes/old.yaml"
    old.write_text("trainer: {type: sft, max_seq_length: 64}\n")
    command = [sys.executable, "-m", "peftrun", "migrate", "--check", "recipes"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert (done.returncode, done.stdout) == (1, (
        "recipes/old.yaml: needs migration\n"
        "  would rename recipes/old.yaml:1:22: trainer.max_seq_length -> trainer.max_length (TRL 0.20)\n"
        "1 file to migrate\n"))
    assert old.read_text() == "trainer: {type: sft, max_seq_length: 64}\n"
    subprocess.run(command[:-2] + ["recipes"], cwd=tmp_path, env=env, check=True, capture_output=True)
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert (done.returncode, done.stdout) == (0, "every recipe is current\n")


def test_the_docs_list_every_registered_change() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "recipes-in-git.md").read_text()
    for change in CHANGES:
        assert f"| `{change.old}` |" in doc and f"| {change.by} |" in doc
