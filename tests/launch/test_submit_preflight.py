"""What `peftrun submit` refuses before anything is written or submitted: storage the nodes do not share, a lock
that cannot work, a GPU without the recipe's precision, a plan that does not fit, `auto` processes for a GPU job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun.cli import main
from peftrun.errors import RecipeError
from peftrun.launch.cluster_preflight import check_job
from peftrun.launch.shared_fs import lock_problem, mount_of, not_shared, read_mounts
from peftrun.recipe.gpus import target_hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan

# the shape of /proc/mounts on a cluster's login node (an escaped space in one mount point)
MOUNTS = read_mounts("""\
overlay / overlay rw,relatime,lowerdir=/a,upperdir=/b 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
nas:/export/home /home nfs4 rw,relatime,vers=4.2 0 0
/dev/nvme0n1 /scratch/local xfs rw 0 0
10.0.0.5@tcp:/lustre /lustre lustre rw,localflock 0 0
10.0.0.5@tcp:/proj /proj lustre rw,flock 0 0
fs1 /gpfs/my\\040data gpfs rw 0 0
""")


def test_the_filesystem_of_a_path_is_its_longest_mount_point() -> None:
    assert mount_of(Path("/home/ann/runs/x"), MOUNTS).fstype == "nfs4"
    assert mount_of(Path("/scratch/local/runs"), MOUNTS).fstype == "xfs"
    assert mount_of(Path("/scratch/other"), MOUNTS).fstype == "overlay"
    assert mount_of(Path("/gpfs/my data/runs"), MOUNTS).fstype == "gpfs"
    assert mount_of(Path("/homework"), MOUNTS).point == "/"  # a prefix of a name is not its parent


def test_local_filesystems_are_named_with_the_path() -> None:
    assert not_shared(Path("/home/ann/runs"), "the run directory", MOUNTS) is None
    assert not_shared(Path("/gpfs/my data/r"), "the run directory", MOUNTS) is None
    message = not_shared(Path("/scratch/local/runs/x"), "the run directory", MOUNTS)
    assert message is not None and message.startswith(
        "the run directory /scratch/local/runs/x is on xfs (/scratch/local), a filesystem of this machine only")
    assert "tmpfs (/tmp)" in not_shared(Path("/tmp/x"), "the run directory", MOUNTS)


def test_lustre_locks_need_the_flock_mount_option(tmp_path: Path) -> None:
    assert "Lustre at /lustre locks one node only (localflock): mount it with -o flock" in lock_problem(
        Path("/lustre/runs/x"), MOUNTS)
    assert lock_problem(tmp_path / "runs" / "x", read_mounts()) is None  # a real flock here works


def plan_for(data: dict[str, Any], gpu: str | None = None, gpus: int | None = None, overrides: tuple[str, ...] = ()):
    return checked_plan(load_recipe(data, list(overrides)), target_hardware(gpu, gpus))


def recipe(tiny_model_dir: Path, data_dir: Path, **sections: Any) -> dict[str, Any]:
    return {"name": "t", "model": {"name_or_path": str(tiny_model_dir)}, "peft": {"method": "lora"},
            "trainer": {"type": "sft", "max_steps": 2}, "dataset": {"path": str(data_dir / "sft.jsonl")},
            "output": {"dir": "/scratch/local/runs/t"}, **sections}


def problems(plan: Any, nodes: int, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(RecipeError) as caught:
        check_job(plan, nodes, mounts=MOUNTS, **kwargs)
    return {p.path: p.message for p in caught.value.problems}


def test_a_job_of_several_nodes_needs_shared_storage(tiny_model_dir: Path, data_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", "/tmp/hf")
    plan = plan_for(recipe(tiny_model_dir, data_dir))
    found = problems(plan, 2)
    assert found["output.dir"].startswith("the run directory /scratch/local/runs/t is on xfs (/scratch/local)")
    assert "the Hugging Face cache (HF_HOME) /tmp/hf is on tmpfs (/tmp)" in found["HF_HOME"]
    check_job(plan, 1, mounts=MOUNTS)  # one node: its own disk is fine
    check_job(plan, 2, mounts=MOUNTS, allow_local=True)
    check_job(plan, 2, mounts=MOUNTS, storage=False)  # SkyPilot: the cloud's machines, not this one's mounts


def test_a_gpu_without_bfloat16_is_refused_for_a_bf16_recipe(tiny_model_dir: Path, data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir, output={"dir": "/home/x/runs/t"})
    data["model"]["dtype"] = "bfloat16"
    found = problems(plan_for(data, "v100", 4), 1)
    assert found["model.dtype"].startswith("the recipe computes in bfloat16 but NVIDIA V100 32GB has no bfloat16")


def test_a_plan_that_does_not_fit_the_gpu_is_refused(tiny_model_dir: Path, data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir, output={"dir": "/home/x/runs/t"})
    found = problems(plan_for(data, "0.01GB", 2), 1)
    message = found["launch.num_processes"]
    assert message.startswith("1 processes per node on 1 node(s): the plan needs ") and "GB per GPU" in message
    check_job(plan_for(data, "h100", 2), 1, mounts=MOUNTS)  # the tiny model fits an H100


def test_auto_processes_need_gpus_per_node_and_nothing_is_written(in_tmp: Path, tiny_model_dir: Path,
                                                                  data_dir: Path, write_recipe,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recipe(recipe(tiny_model_dir, data_dir, launch={"num_processes": "auto"}, output={"dir": "runs/t"}))
    assert main(["submit", str(path), "--to", "slurm", "--gpu", "a100"]) == 2
    err = capsys.readouterr().err
    assert "recipe.yaml:14:3: launch.num_processes: num_processes: auto counts the GPUs of the machine it runs" in err
    assert "--gpus-per-node G" in err
    (in_tmp / "runs" / "t").mkdir(parents=True)
    (in_tmp / "runs" / "t" / "notes.txt").write_text("mine")
    assert main(["submit", str(path), "--to", "slurm"]) == 5  # an occupied run directory, as `peftrun run` says
    assert "runs/t is not empty" in capsys.readouterr().err
    assert not list(in_tmp.glob("*.sbatch")) and not (in_tmp / ".peftrun").exists()
