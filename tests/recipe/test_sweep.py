"""Sweep files: the `sweep:` section and every value it tries are checked before any trial, with located errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from peftrun.cli import main
from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[2]
BASE = {"model": {"name_or_path": "org/model"}, "peft": {"method": "lora"}, "trainer": {"type": "sft"},
        "dataset": {"path": "org/data"}}
SWEEP = """\
extends: base.yaml
seed: 7
sweep:
  sampler: tpe
  trials: 4
  params:
    trainer.learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}
    peft.r: [8, 16, 32]
output: {dir: runs/lr-rank}
"""


def write(tmp_path: Path, text: str = SWEEP) -> Path:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_sweep(path)
    return [str(p) for p in caught.value.problems]


def test_a_valid_sweep_file(in_tmp: Path) -> None:
    sweep = load_sweep(write(in_tmp), ["trainer.max_steps=5"])
    assert sweep.section.sampler == "tpe" and sweep.section.trial_count == 4
    assert sweep.section.metric.name == "eval_loss" and sweep.section.metric.goal == "minimize"
    assert sweep.recipe.seed == 7 and sweep.recipe.trainer.max_steps == 5
    assert sweep.directory == Path("runs/lr-rank")


def test_the_trial_recipe_is_the_file_without_its_sweep_and_loads_from_anywhere(in_tmp: Path) -> None:
    sweep = load_sweep(write(in_tmp))
    elsewhere = in_tmp / "runs" / "trial.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(sweep.trial_recipe_text)
    assert "extends" not in yaml.safe_load(sweep.trial_recipe_text)  # the swept recipe is inlined: the user's own
    recipe = load_recipe(elsewhere)
    assert recipe.model_dump() == sweep.recipe.model_dump()  # same values, name included (the sweep file's stem)


def test_section_errors_are_located_with_suggestions(in_tmp: Path) -> None:
    text = SWEEP.replace("  trials: 4\n", "  trails: 4\n  sampler_x: 1\n").replace(
        "{low: 1.0e-5, high: 1.0e-3, log: true}", "{low: 0.0, high: 1.0e-3, log: true}")
    found = problems(write(in_tmp, text))
    assert found == [
        "sweep.yaml:8:5: sweep.params.trainer.learning_rate: a log scale needs low above 0, got 0.0",
        "sweep.yaml:5:3: sweep.trails: unknown key `trails`; did you mean `trials`?",
        "sweep.yaml:6:3: sweep.sampler_x: unknown key `sampler_x`; did you mean `sampler`?",
    ]
    text = SWEEP.replace("  trials: 4\n", "")
    assert problems(write(in_tmp, text)) == [
        "sweep.yaml:3:1: sweep: `trials` is required with the tpe sampler (how many trials to run)"]


def test_a_swept_key_must_exist_in_the_recipe_schema(in_tmp: Path) -> None:
    found = problems(write(in_tmp, SWEEP.replace("peft.r:", "peft.rr:")))
    assert found == ["sweep.yaml:8:5: sweep.params.peft.rr: with peft.rr=8: peft.rr: unknown key `rr`; "
                     "did you mean `r`?"]


def test_every_value_of_a_space_must_validate(in_tmp: Path) -> None:
    text = SWEEP.replace("[8, 16, 32]", "[8, -1, many]").replace("high: 1.0e-3", "high: 2").replace(
        "    peft.r:", "    peft.lora_dropout: {low: 0.0, high: 1.5}\n    peft.r:")
    found = problems(write(in_tmp, text))
    assert found == [
        "sweep.yaml:8:5: sweep.params.peft.lora_dropout: with peft.lora_dropout=1.5: peft.lora_dropout: "
        "Input should be less than 1; got 1.5",
        "sweep.yaml:9:5: sweep.params.peft.r: with peft.r=-1: peft.r: Input should be greater than or equal to 1; got -1",
        "sweep.yaml:9:5: sweep.params.peft.r: with peft.r='many': peft.r: Input should be a valid integer; "
        "got 'many'",
    ]


def test_values_are_resolved_too(in_tmp: Path) -> None:
    """A value the schema accepts but the resolver refuses (prompt tuning cannot pack) is found before a trial."""
    text = SWEEP.replace("    peft.r: [8, 16, 32]\n", "    trainer.packing: [false, true]\n").replace(
        "peft: ", "x: ")
    path = write(in_tmp, text)
    (in_tmp / "base.yaml").write_text(yaml.safe_dump({**BASE, "peft": {"method": "prompt_tuning"}}))
    (found,) = problems(path)
    assert found.startswith("sweep.yaml:8:5: sweep.params.trainer.packing: with trainer.packing=True: ")
    assert "packing" in found.split(": ", 3)[3]


def test_recipe_errors_point_into_the_sweep_file(in_tmp: Path) -> None:
    found = problems(write(in_tmp, SWEEP.replace("seed: 7", "seed: seven")))
    assert found == ["sweep.yaml:2:1: seed: Input should be a valid integer, unable to parse string as an integer; got 'seven'"]


def test_the_sweep_owns_the_run_directories_and_needs_a_grid_it_can_list(in_tmp: Path) -> None:
    text = SWEEP.replace("sampler: tpe", "sampler: grid").replace("    peft.r:", "    output.dir: [a, b]\n    peft.r:")
    assert problems(write(in_tmp, text)) == [
        "sweep.yaml:3:1: sweep: the grid sampler needs a list of values or a range with `step` for: trainer.learning_rate"]
    text = text.replace("log: true}", "step: 1.0e-4}").replace("log: true", "")
    assert problems(write(in_tmp, text)) == [
        "sweep.yaml:8:5: sweep.params.output.dir: `output.dir` cannot be swept: each trial runs in its own "
        "directory under the sweep's output.dir"]


def test_a_grid_with_steps_counts_its_trials(in_tmp: Path) -> None:
    text = SWEEP.replace("sampler: tpe", "sampler: grid").replace("  trials: 4\n", "").replace(
        "{low: 1.0e-5, high: 1.0e-3, log: true}", "{low: 1.0e-4, high: 3.0e-4, step: 1.0e-4}")
    sweep = load_sweep(write(in_tmp, text))
    assert sweep.section.params["trainer.learning_rate"].grid() == [1e-4, 2e-4, 3e-4]
    assert sweep.section.trial_count == 9


def test_a_plain_recipe_is_not_a_sweep_and_a_sweep_is_not_a_recipe(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(in_tmp)
    assert problems(in_tmp / "base.yaml")[0].endswith("sweep: a sweep file needs a `sweep:` mapping (sampler, trials, "
                                                        "metric, params); a plain recipe runs with `peftrun RECIPE`")
    assert main(["validate", str(path)]) == 2
    assert "`sweep` is not a key here: a file with a `sweep:` section is a sweep: run it with `peftrun sweep FILE`" \
        in capsys.readouterr().err


def test_sweep_check_stays_light(in_tmp: Path) -> None:
    write(in_tmp)
    program = ("import json, sys\nfrom peftrun.cli import main\ncode = main(['sweep', 'sweep.yaml', '--check'])\n"
               "print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules} & "
               "{'torch', 'transformers', 'peft', 'trl', 'datasets', 'accelerate', 'optuna'})]))")
    done = subprocess.run([sys.executable, "-c", program], cwd=in_tmp, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "sweep.yaml: valid; tpe sampler, 4 trials, minimize eval_loss, into runs/lr-rank"
    assert json.loads(lines[-1]) == [0, []]


def test_pruning_needs_evaluations_and_checkpoints_during_training(in_tmp: Path) -> None:
    text = SWEEP.replace("  trials: 4\n", "  trials: 4\n  prune: true\n").replace("seed: 7", "seed: 7\ntrainer: {save_strategy: 'no'}")
    assert problems(write(in_tmp, text)) == [
        "sweep.yaml:7:3: sweep.prune: pruning needs evaluations during training: set trainer.eval_strategy (steps or "
        "epoch) and an eval set (dataset.eval)",
        "sweep.yaml:7:3: sweep.prune: pruning reads the metric from each checkpoint: trainer.save_strategy cannot be `no`"]


def test_exact_match_cannot_prune(in_tmp: Path) -> None:
    text = SWEEP.replace("  trials: 4\n", "  trials: 4\n  prune: true\n  metric: {name: exact_match, goal: maximize}\n")
    assert problems(write(in_tmp, text))[0] == (
        "sweep.yaml:6:3: sweep.prune: exact_match is measured by `peftrun eval` after training, so pruning cannot "
        "use it: set prune: false, or optimize eval_loss")
