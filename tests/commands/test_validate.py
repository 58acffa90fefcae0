"""`peftrun validate`: files and directories, exit 0 or 2, every problem printed without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.recipe.hardware import CPU
from peftrun.recipe.shipped import shipped_recipes
from tests.recipe_files import MINIMAL, write  # noqa: F401 (write is a fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve for a CPU-only machine wherever the tests run (float16 is refused there)."""
    monkeypatch.setattr("peftrun.recipe.gpus.probe_light", lambda: CPU)


def test_valid_recipes_exit_0(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("recipes/a.yaml", MINIMAL)
    write("recipes/nested/b.yml", MINIMAL.replace("sft", "dpo"))
    assert main(["validate", "recipes"]) == 0
    out, err = capsys.readouterr()
    assert out == "ok    recipes/a.yaml\nok    recipes/nested/b.yml\n2 of 2 recipes valid\n"
    assert err == ""


def test_invalid_recipe_exits_2_with_located_problems(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("recipes/good.yaml", MINIMAL)
    write("recipes/bad.yaml", MINIMAL.replace("{type: sft}", "{type: sft, lerning_rate: 1}") + "model: {name_or_path: again}\n")
    write("recipes/refused.yaml", MINIMAL + "quantization: {bits: 4}\n")
    assert main(["validate", "recipes"]) == 2
    out, err = capsys.readouterr()
    assert out == "ok    recipes/good.yaml\n1 of 3 recipes valid\n"
    assert err == (
        "FAIL  recipes/bad.yaml: 1 problem\n"
        "  recipes/bad.yaml:4:1: model: duplicate key (first defined at recipes/bad.yaml:1:1)\n"
        "FAIL  recipes/refused.yaml: 1 problem\n"
        "  recipes/refused.yaml:4:1: quantization: a quantized base cannot be fine-tuned in full: add a `peft:` section (QLoRA)\n"
    )
    assert "Traceback" not in err


def test_all_problems_of_a_recipe_are_printed(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("r.yaml", MINIMAL.replace("{type: sft}", "{type: sft, lerning_rate: 1, output_dir: x}") + "peft: {method: lora, alpha: 2}\n")
    assert main(["validate", "r.yaml"]) == 2
    assert capsys.readouterr().err == (
        "FAIL  r.yaml: 3 problems\n"
        "  r.yaml:4:22: peft.alpha: `alpha` is a field of the deft, gralora, loha and lokr methods, not of this one; did you mean `lora_alpha`?\n"
        "  r.yaml:2:22: trainer.lerning_rate: unknown key `lerning_rate`; did you mean `learning_rate`?\n"
        "  r.yaml:2:39: trainer.output_dir: `output_dir` is not a key here: use output.dir\n"
    )


def test_partial_recipes_under_base_are_skipped_in_directories(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("recipes/base/common.yaml", "trainer: {logging_steps: 5}\n")
    write("recipes/child.yaml", "extends: base/common.yaml\n" + MINIMAL)
    assert main(["validate", "recipes"]) == 0
    assert capsys.readouterr().out == "ok    recipes/child.yaml\n1 of 1 recipes valid\n"
    assert main(["validate", "recipes/base/common.yaml"]) == 2  # named explicitly, it is checked


def test_missing_path_is_an_error(write, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nope.yaml"]) == 2
    assert capsys.readouterr().err == "error: 1 problem\n  nope.yaml: no such file or directory\n"


def test_internal_error_is_reported_as_a_bug(write, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(paths: list[Path]) -> list[Path]:
        raise RuntimeError("boom")

    monkeypatch.setattr("peftrun.commands.validate.recipe_files", broken)
    monkeypatch.setenv("PEFTRUN_CACHE", str(Path.cwd() / "cache"))
    assert main(["validate", "."]) == 70
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "internal error in peftrun" in err
    [log] = (Path.cwd() / "cache" / "bug-reports").glob("internal-error-*.log")
    assert f"please report it with the log {log}\nversions: peftrun " in err and ", trl 1." in err
    text = log.read_text()
    assert text.startswith("command: peftrun validate .\nversions: peftrun ") and "RuntimeError: boom" in text


def test_validate_in_a_fresh_process() -> None:
    """The installed entry point, as a user runs it: every shipped recipe validates."""
    result = subprocess.run(
        [sys.executable, "-m", "peftrun", "validate", "recipes"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    shipped = [p.relative_to(ROOT).as_posix() for p in shipped_recipes().values()]
    assert result.stdout.splitlines() == [f"ok    {p}" for p in shipped] + [f"{len(shipped)} of {len(shipped)} recipes valid"]


def test_warnings_of_valid_recipes_are_shown(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("r.yaml", MINIMAL.replace("{type: sft}", "{type: sft, learning_rate: 1.0e-5}").replace(
        "dataset:", "peft: {method: lora}\ndataset:"))
    assert main(["validate", "r.yaml"]) == 0
    out = capsys.readouterr().out
    assert "ok    r.yaml\n      warning: r.yaml:2:" in out
    assert "trainer.learning_rate 1e-05 is at or below the full fine-tuning rate for sft (2e-05)" in out


def test_overrides_apply_to_every_recipe_named(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("recipes/a.yaml", MINIMAL)
    write("recipes/b.yaml", MINIMAL)
    assert main(["validate", "recipes", "trainer.per_device_train_batch_size=0"]) == 2
    out, err = capsys.readouterr()
    assert out == "0 of 2 recipes valid\n"
    assert err.count("  command line: trainer.per_device_train_batch_size=0: trainer.per_device_train_batch_size: "
                     "must be a whole number >= 1; got 0\n") == 2
    assert main(["validate", "recipes/a.yaml", "trainer.num_train_epochs=2"]) == 0


def test_overrides_alone_name_no_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "peft.r=64"]) == 2
    assert "name at least one recipe file or directory" in capsys.readouterr().err
