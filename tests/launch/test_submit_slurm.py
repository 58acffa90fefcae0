"""`peftrun submit --to slurm`: the batch script, its checks, and jobs on a real Slurm (scripts/setup_slurm.sh).

The Slurm here is one machine: a job of "two nodes" runs as two tasks on it (sbatch's command line asks for
--nodes=1 --ntasks=2, overriding the script's --nodes=2 --ntasks-per-node=1), each with its own machine rank
(SLURM_PROCID), the rendezvous at the first host of the allocation, the run directory on one disk.
"""

from __future__ import annotations

import json
import os
from importlib.util import find_spec
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from peftrun.cli import main
from peftrun.launch import submit_slurm
from peftrun.launch.cluster import MAIN_PORT

ROOT = Path(__file__).resolve().parents[2]
MULTI_GPU = sorted((ROOT / "recipes" / "multi-gpu").glob("*.yaml"))
ONE_HOST = ("--nodes=1", "--ntasks=2", "--ntasks-per-node=2")  # two "nodes" as two tasks of this machine


@pytest.fixture(scope="session")
def slurm() -> None:
    """Start (installing if needed) the local Slurm; fail with its reason, skip only outside CI without root."""
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("the local Slurm needs root to install and start (scripts/setup_slurm.sh); CI runs it as root")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "setup_slurm.sh")], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"the local Slurm did not start: {done.stderr.strip() or done.stdout.strip()}", pytrace=False)


def recipe(tiny_model_dir: Path, data_dir: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "model": {"name_or_path": str(tiny_model_dir)},
        "peft": {"method": "lora", "r": 4, "lora_alpha": 8},
        "trainer": {"type": "sft", "max_steps": 6, "per_device_train_batch_size": 2, "logging_steps": 1,
                    "save_steps": 2, "report_to": "none", **trainer},
        "dataset": {"path": str(data_dir / "sft.jsonl")},
    }


def submit(*argv: str) -> Path:
    out = Path("job.sbatch")
    assert main(["submit", *argv, "--to", "slurm", "-o", str(out)]) == 0
    return out


def wait_for(job: str, states: tuple[str, ...] = (), timeout: float = 240) -> str:
    """Wait until the job is in one of `states` (or gone, with no states given); its state."""
    end = time.time() + timeout
    while time.time() < end:
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()
        if (state in states) if states else not state:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job} still {state!r} after {timeout} s")


def log_of(job: str) -> str:
    return next(Path(".peftrun/jobs").glob(f"*-{job}.out")).read_text(errors="replace")  # two tasks interleave bytes


def adapter(run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter_model.safetensors"))


# --- the script ---------------------------------------------------------------------------------------------

def test_the_script_carries_the_resolved_recipe_and_the_rendezvous(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                                  write_recipe) -> None:
    path = write_recipe(recipe(tiny_model_dir, data_dir))
    script = submit(str(path), "trainer.max_steps=3", "--nodes", "2", "--time", "30", "--allow-local-fs").read_text()
    assert subprocess.run(["bash", "-n", "-c", script]).returncode == 0
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --time=30", "#SBATCH --requeue",
                 "#SBATCH --signal=B:USR1@300", "#SBATCH --open-mode=append", f"#SBATCH --chdir={in_tmp}",
                 f"export {MAIN_PORT}=$((20000 + SLURM_JOB_ID % 20000))", "trap on_stop USR1"):
        assert line in script.splitlines()
    carried = script.split("<<'PEFTRUN_RECIPE_END'\n")[1].split("\nPEFTRUN_RECIPE_END\n")[0]
    assert "  max_steps: 3\n" in carried and "  num_machines: 2\n" in carried
    assert "  machine_rank: ${oc.env:SLURM_PROCID,0}\n" in carried  # each task's rank, read when it starts
    assert "# each node runs: " in script and "--machine_rank $SLURM_PROCID --main_process_ip $PEFTRUN_MAIN_ADDR" in script
    assert "#SBATCH --gpus-per-node" not in script  # a CPU job


def test_a_recipe_port_is_kept_and_gpus_are_requested(in_tmp: Path) -> None:
    script = submit(str(ROOT / "recipes/multi-gpu/two-node.yaml"), "--gpu", "h100", "--allow-local-fs").read_text()
    assert "#SBATCH --gpus-per-node=8" in script and "#SBATCH --nodes=2" in script
    assert "  main_process_port: 29500\n" in script and f"export {MAIN_PORT}" not in script
    assert "planned for 8 x NVIDIA H100 80GB per node" in script


@pytest.mark.parametrize("path", MULTI_GPU, ids=lambda p: p.stem)
def test_sbatch_accepts_the_script_of_every_multi_gpu_recipe(path: Path, slurm: None, in_tmp: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(path), "--to", "slurm", "--gpu", "h100", "--gpus-per-node", "8", "--partition", "gpu",
            "--time", "04:00:00", "--allow-local-fs", "-o", "job.sbatch"]
    code = main(["submit", *argv])
    if code != 0 and "deepspeed" in path.read_text() and find_spec("deepspeed") is None:
        assert code == 2 and "DeepSpeed is not installed in this environment" in capsys.readouterr().err
        return
    assert code == 0
    answer = submit_slurm.sbatch(Path("job.sbatch"), test_only=True)
    assert answer.startswith("sbatch: Job ") and " in partition gpu" in answer  # Slurm would schedule it


# --- jobs on the local Slurm ---------------------------------------------------------------------------------

def test_a_two_node_job_trains_one_run(slurm: None, in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                       write_recipe) -> None:
    path = write_recipe(recipe(tiny_model_dir, data_dir))
    job = submit_slurm.sbatch(submit(str(path), "--nodes", "2", "--allow-local-fs"), *ONE_HOST)
    wait_for(job)
    log = log_of(job)
    manifest = json.loads((in_tmp / "runs" / "t" / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["training"]["steps"] == 6, log[-3000:]
    assert manifest["launch"]["num_machines"] == 2
    assert "--machine_rank 0 --main_process_ip" in log and "--machine_rank 1 --main_process_ip" in log
    assert log.count("done: t in") == 1  # one run, finished by rank 0 of machine 0


def test_now_submits_and_prints_the_job_id(slurm: None, in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                          write_recipe, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recipe(recipe(tiny_model_dir, data_dir, max_steps=2))
    assert main(["submit", str(path), "--to", "slurm", "--now"]) == 0
    job = capsys.readouterr().out.strip()
    assert job.isdigit()
    wait_for(job)
    manifest = json.loads((in_tmp / "runs" / "t" / "manifest.json").read_text())
    assert manifest["world_size"] == 1 and manifest["training"]["steps"] == 2, log_of(job)[-3000:]
    assert (in_tmp / "t.sbatch").is_file()  # the file that was submitted stays for review


def test_the_checkpoint_signal_requeues_the_job_and_it_resumes_to_the_same_weights(
        slurm: None, in_tmp: Path, tiny_model_dir: Path, data_dir: Path, write_recipe) -> None:
    steps = {"max_steps": 200, "save_steps": 20, "logging_steps": 50}
    for name in ("straight", "stopped"):
        write_recipe({**recipe(tiny_model_dir, data_dir, **steps), "name": name}, f"{name}.yaml")
    straight = submit_slurm.sbatch(submit(str(in_tmp / "straight.yaml"), "--nodes", "2", "--allow-local-fs"), *ONE_HOST)
    wait_for(straight)
    stopped = submit_slurm.sbatch(submit(str(in_tmp / "stopped.yaml"), "--nodes", "2", "--allow-local-fs"), *ONE_HOST)
    first = in_tmp / "runs" / "stopped" / "checkpoint-20" / "trainer_state.json"
    end = time.time() + 120
    while not first.is_file() and time.time() < end:
        time.sleep(0.2)
    # what Slurm does --stop-before seconds before the time limit (#SBATCH --signal=B:USR1@...): USR1 to the batch shell
    subprocess.run(["scancel", "--batch", "--signal=USR1", stopped], check=True)
    wait_for(stopped, ("PENDING",), timeout=120)  # requeued, held for cred_expire (setup_slurm.sh) before it runs again
    assert not (in_tmp / "runs" / "stopped" / "manifest.json").exists()
    wait_for(stopped)
    shown = subprocess.run(["scontrol", "show", "job", stopped], capture_output=True, text=True).stdout
    assert "Restarts=1" in shown and "JobState=COMPLETED" in shown, shown  # one requeue, then it finished
    log = log_of(stopped)
    assert "USR1 before the time limit: saving a checkpoint, then requeueing" in log
    assert "error: stopped at step" in log and "resuming from checkpoint-" in log, log[-3000:]
    manifest = json.loads((in_tmp / "runs" / "stopped" / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["training"]["steps"] == 200
    a, b = adapter(in_tmp / "runs" / "straight"), adapter(in_tmp / "runs" / "stopped")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


# --- refused before anything is written -----------------------------------------------------------------------

def test_submit_without_sbatch_says_where_to_run_it(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peftrun.errors import LaunchError

    monkeypatch.setenv("PATH", str(in_tmp))
    with pytest.raises(LaunchError, match="sbatch is not installed here"):
        submit_slurm.sbatch(in_tmp / "job.sbatch")


def test_python_is_this_interpreter(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, write_recipe) -> None:
    script = submit(str(write_recipe(recipe(tiny_model_dir, data_dir)))).read_text()
    assert f"peftrun-node {sys.executable} -m peftrun run \"$RECIPE\"" in script
    assert "RECIPE=.peftrun/jobs/t.yaml\nRECIPE=\"${RECIPE%.yaml}-${SLURM_JOB_ID}.yaml\"" in script


def test_the_carried_recipe_builds_the_same_library_objects(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                            write_recipe) -> None:
    """The job runs what explain showed: its recipe (every field written out, nulls included) resolves to the
    same PEFT config and training arguments as the recipe it came from."""
    from peftrun.builders import build_peft_config, build_training_args
    from peftrun.recipe.hardware import CPU
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.validation import checked_plan

    path = write_recipe(recipe(tiny_model_dir, data_dir))
    script = submit(str(path)).read_text()
    carried = in_tmp / "carried.yaml"
    carried.write_text(script.split("<<'PEFTRUN_RECIPE_END'\n")[1].split("\nPEFTRUN_RECIPE_END\n")[0])
    before, after = (checked_plan(load_recipe(p), CPU) for p in (path, carried))
    assert build_peft_config(after) == build_peft_config(before)
    assert build_training_args(after).to_dict() == build_training_args(before).to_dict()
