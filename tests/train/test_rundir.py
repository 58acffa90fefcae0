"""The run directory: never overwritten or deleted by accident, resumed only with the same recipe,
and a resolved recipe that re-runs the same training."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.train import rundir
from peftrun.errors import RunDirError
from peftrun.launch.runmode import RunMode
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.recipe.schema import trl_table
from peftrun.recipe.shipped import shipped_recipes
from tests.recipe_files import MINIMAL, write  # noqa: F401 (write is a fixture)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = list(shipped_recipes().values())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_resolved_recipe_reproduces_the_plan(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHINE_RANK", "0")
    with_eval = [] if "eval:" in path.read_text() else ["dataset.eval.fraction=0.1"]  # exercise the eval rule
    plan = resolve(load_recipe(path, with_eval), CPU)
    saved = tmp_path / "recipe.resolved.yaml"
    saved.write_text(rundir.resolved_recipe_text(plan))
    again = resolve(load_recipe(saved), CPU)
    assert {k: again.training_args[k] for k in plan.training_args} == dict(plan.training_args)
    trl_defaults = {row["name"]: row.get("default") for row in trl_table()["fields"][plan.trainer_type]}
    written_out = {k: v for k, v in again.training_args.items() if k not in plan.training_args}
    assert written_out == {k: trl_defaults[k] for k in written_out}, "the rest is TRL's defaults, made explicit"
    assert again.recipe.model_dump(exclude={"name"}) == plan.recipe.model_dump(exclude={"name"})


def test_secrets_from_the_environment_are_not_written(write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_REVISION", "hf_secret_value")
    path = write("r.yaml", MINIMAL.replace("{name_or_path: org/model}",
                                           "{name_or_path: org/model, revision: '${oc.env:SECRET_REVISION}'}"))
    plan = resolve(load_recipe(path), CPU)
    assert plan.recipe.model.revision == "hf_secret_value"
    text = rundir.resolved_recipe_text(plan)
    assert "hf_secret_value" not in text and "revision: ${oc.env:SECRET_REVISION}" in text


def checkpoint(run: Path, step: int) -> Path:
    """A checkpoint as one process leaves it: weights, then the trainer state naming its step, last."""
    path = run / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    (path / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    return path


def plan_text(write, extra: str = "") -> str:
    return rundir.resolved_recipe_text(resolve(load_recipe(write("r.yaml", MINIMAL + extra)), CPU))


def test_an_occupied_directory_is_refused_and_kept(write, tmp_path: Path) -> None:
    run = tmp_path / "runs/r"
    checkpoint(run, 2)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"holds an unfinished run \(last checkpoint: checkpoint-2\): resume it with "
                                          r"`peftrun r.yaml --resume`, or start over with --overwrite"):
        rundir.check(run, "r.yaml", plan_text(write), RunMode.FRESH)
    assert (run / "notes.txt").read_text() == "mine"


def test_overwrite_deletes_only_run_directories(write, tmp_path: Path) -> None:
    text = plan_text(write)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_text("x")
    with pytest.raises(RunDirError, match=r"photos is not a peftrun run directory .* --overwrite deletes only runs"):
        rundir.check(other, "r.yaml", text, RunMode.OVERWRITE)
    with pytest.raises(RunDirError, match=r"--overwrite would delete \., which holds the working directory"):
        rundir.check(Path("."), "r.yaml", text, RunMode.OVERWRITE)
    assert (other / "cat.jpg").exists()
    run = tmp_path / "runs/r"
    (run / "checkpoint-2").mkdir(parents=True)
    assert rundir.check(run, "r.yaml", text, RunMode.OVERWRITE) is None
    rundir.claim(run, text, RunMode.OVERWRITE)
    assert sorted(p.name for p in run.iterdir()) == ["recipe.resolved.yaml"]


def test_a_failed_start_does_not_block_the_next_run(write, tmp_path: Path) -> None:
    run = tmp_path / "runs/r"
    rundir.claim(run, plan_text(write), RunMode.FRESH)  # then the run failed before training
    assert rundir.check(run, "r.yaml", plan_text(write), RunMode.FRESH) is None


def test_resume_needs_the_same_recipe_but_may_go_on_longer(write, tmp_path: Path) -> None:
    run = tmp_path / "runs/r"
    rundir.claim(run, plan_text(write), RunMode.FRESH)
    checkpoint(run, 4)
    longer = plan_text(write).replace("type: sft\n", "type: sft\n  max_steps: 100\n")
    assert rundir.check(run, "r.yaml", longer, RunMode.RESUME) == run / "checkpoint-4"
    other = plan_text(write, "seed: 7\n")
    with pytest.raises(RunDirError, match=r"--resume with a different recipe .* \(seed: 42 -> 7\)"):
        rundir.check(run, "r.yaml", other, RunMode.RESUME)


def test_the_resolved_recipe_records_each_base_and_still_loads(write) -> None:
    write("common.yaml", "trainer: {logging_steps: 3}\n")
    path = write("r.yaml", "extends: [peftrun:sft-lora, common.yaml]\nschema_version: 1\n")
    plan = resolve(load_recipe(path), CPU)
    text = rundir.resolved_recipe_text(plan)
    digests = {b["base"]: b["sha256"] for b in plan.recipe.bases}
    assert list(digests) == ["peftrun:defaults", "peftrun:sft-lora", "common.yaml"]
    assert [line for line in text.splitlines() if line.startswith("# base: ")] == [
        f"# base: {name} sha256 {digest}" for name, digest in digests.items()
    ]
    assert "\nschema_version: 1\n" in text
    resolved = write("recipe.resolved.yaml", text)
    again = resolve(load_recipe(resolved), CPU)
    assert (again.recipe.peft, again.recipe.model) == (plan.recipe.peft, plan.recipe.model)


def test_claiming_to_resume_keeps_the_checkpoint_it_resumes_from(write, tmp_path: Path) -> None:
    """One mode, not two booleans: a resume can never also clear the directory it continues."""
    run = tmp_path / "runs/r"
    rundir.claim(run, plan_text(write), RunMode.FRESH)
    checkpoint(run, 4)
    text = plan_text(write)
    assert rundir.check(run, "r.yaml", text, RunMode.RESUME) == run / "checkpoint-4"
    rundir.claim(run, text, RunMode.RESUME)
    assert (run / "checkpoint-4").is_dir()
