"""`peftrun submit SWEEP --to slurm --workers N`: an array job of sweep workers, checked like `peftrun sweep
--check` and run on the local Slurm (scripts/setup_slurm.sh), its workers sharing the sweep's trials."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from peftrun.cli import main
from peftrun.launch import submit_slurm
from tests.launch.test_submit_slurm import recipe, slurm, wait_for  # noqa: F401 - slurm is a fixture

SWEEP = """\
extends: base.yaml
sweep:
  sampler: grid
  metric: {name: eval_loss, goal: minimize}
  params:
    peft.r: [2, 4]
output: {dir: runs/sw}
"""


@pytest.fixture
def sweep_file(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> Path:
    base = recipe(tiny_model_dir, data_dir, max_steps=4, eval_strategy="steps", eval_steps=2, save_steps=2)
    base["dataset"]["eval"] = {"fraction": 0.25}
    (in_tmp / "base.yaml").write_text(yaml.safe_dump(base))
    (in_tmp / "sweep.yaml").write_text(SWEEP)
    return in_tmp / "sweep.yaml"


def test_the_array_job_runs_one_sweep_worker_per_task(sweep_file: Path, in_tmp: Path) -> None:
    assert main(["submit", "sweep.yaml", "--to", "slurm", "--workers", "3", "--gpu", "a100", "--partition", "gpu",
                 "--allow-local-fs", "-o", "sw.sbatch"]) == 0
    script = (in_tmp / "sw.sbatch").read_text()
    assert "#SBATCH --array=0-2\n" in script and "#SBATCH --gpus-per-node=1\n" in script
    assert f"#SBATCH --chdir={in_tmp}\n" in script and "#SBATCH --output=.peftrun/jobs/%x-%A_%a.out\n" in script
    assert script.rstrip().endswith(" -m peftrun sweep sweep.yaml --gpu a100")
    assert (in_tmp / ".peftrun" / "jobs").is_dir()  # Slurm opens the tasks' logs there before they start


@pytest.mark.parametrize(("argv", "message"), [
    (["--to", "skypilot"], "--to: a sweep is submitted to Slurm, as an array job of workers"),
    (["--to", "slurm", "--workers", "0"], "--workers: a sweep job takes --workers N (at least 1"),
    (["--to", "slurm", "--nodes", "2"], "--workers: a sweep job takes --workers N (at least 1"),
    (["--to", "slurm", "--resume"], "--resume: a sweep continues by itself (its workers resume interrupted trials)"),
])
def test_what_a_sweep_job_cannot_be_is_refused(sweep_file: Path, argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "sweep.yaml", *argv]) == 2
    assert message in capsys.readouterr().err


def test_workers_on_other_nodes_need_the_sweep_directory_on_a_shared_filesystem(
        sweep_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "sweep.yaml", "--to", "slurm", "--workers", "2"]) == 2
    assert "sweep.yaml:7:10: output.dir: the sweep directory runs/sw is on " in capsys.readouterr().err
    assert main(["submit", "sweep.yaml", "--to", "slurm"]) == 0  # one worker: nothing to share


def test_workers_are_for_sweep_files(sweep_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "base.yaml", "--to", "slurm", "--workers", "2"]) == 2
    assert "--workers is for a sweep file; base.yaml has no `sweep:`" in capsys.readouterr().err


def test_two_workers_on_slurm_share_the_trials_of_one_sweep(slurm: None, sweep_file: Path, in_tmp: Path) -> None:
    from tests.commands.test_sweep import trials
    from peftrun.sweep.study import SweepDir

    assert main(["submit", "sweep.yaml", "--to", "slurm", "--workers", "2", "--allow-local-fs", "-o", "sw.sbatch"]) == 0
    job = submit_slurm.sbatch(in_tmp / "sw.sbatch")
    wait_for(job, timeout=480)
    logs = sorted((in_tmp / ".peftrun" / "jobs").glob(f"peftrun-sweep-sweep-{job}_*.out"))
    assert [p.name for p in logs] == [f"peftrun-sweep-sweep-{job}_0.out", f"peftrun-sweep-sweep-{job}_1.out"]
    where = SweepDir(in_tmp / "runs" / "sw")
    done = trials(where)
    assert sorted(t.params["peft.r"] for t in done) == [2, 4], [p.read_text()[-2000:] for p in logs]
    assert all(t.state.name == "COMPLETE" for t in done) and where.best.is_file()
