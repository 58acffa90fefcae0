"""Checks of a job before it is submitted: what no node of it could run, each located.

The run directory and the Hugging Face cache must be on a filesystem every node sees (a job of more than one
node), the run directory's lock must work there, the requested GPU must compute in the recipe's precision, and
the plan's memory per GPU must fit it. The checks of one machine (peftrun.launch.preflight) run too, for the
job's node (the target hardware).
"""

from __future__ import annotations

import os
from pathlib import Path

from peftrun.errors import Problem, RecipeError
from peftrun.launch.preflight import preflight
from peftrun.launch.shared_fs import Mount, lock_problem, not_shared, read_mounts
from peftrun.recipe.plan import Plan

HF_CACHE = "HF_HOME"


def hf_cache() -> Path:
    """Where the libraries put models and datasets (huggingface_hub's rule: HF_HOME, else XDG_CACHE_HOME)."""
    home = os.environ.get(HF_CACHE) or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expanduser(home))


def storage_problems(plan: Plan, nodes: int, mounts: list[Mount], allow_local: bool) -> list[Problem]:
    """Run directory and cache shared by the nodes; a lock that works on the run directory."""
    recipe, out = plan.recipe, []
    run_dir = Path(plan.output_dir)
    if nodes > 1 and not allow_local:
        why = not_shared(run_dir, "the run directory", mounts)
        if why:
            out.append(Problem(recipe.where("output.dir"), "output.dir", why + " (or --allow-local-fs if every node "
                               "of the job is this machine)"))
        why = not_shared(hf_cache(), f"the Hugging Face cache ({HF_CACHE})", mounts)
        if why:
            out.append(Problem("environment", HF_CACHE, why + f": set {HF_CACHE} before submitting"))
    why = lock_problem(run_dir, mounts)
    if why:
        out.append(Problem(recipe.where("output.dir"), "output.dir", why))
    return out


def sweep_storage_problems(directory: Path, where: str, workers: int, allow_local: bool,
                           mounts: list[Mount] | None = None) -> list[Problem]:
    """A sweep's directory (journal, claims, trials) and the cache shared by workers on other nodes; its locks.
    `where`: the sweep file, where its output.dir is set."""
    mounts = read_mounts() if mounts is None else mounts
    out = []
    if workers > 1 and not allow_local:
        for source, key, path, what in ((where, "output.dir", directory, "the sweep directory"),
                                        ("environment", HF_CACHE, hf_cache(), f"the Hugging Face cache ({HF_CACHE})")):
            why = not_shared(path, what, mounts)
            if why:
                out.append(Problem(source, key, why + " (or --allow-local-fs if every worker runs on this machine)"))
    why = lock_problem(directory, mounts)
    return out + ([Problem(where, "output.dir", why)] if why else [])


def gpu_problems(plan: Plan) -> list[Problem]:
    """The requested GPU computes in the recipe's precision (bfloat16 needs compute capability 8.0)."""
    hw, recipe = plan.hardware, plan.recipe
    bf16 = recipe.model.dtype == "bfloat16" or bool(plan.training_args.get("bf16"))
    if not hw.cuda or hw.bf16 or not bf16:
        return []
    path = "model.dtype" if recipe.model.dtype == "bfloat16" else "trainer.bf16"
    return [Problem(recipe.where(path), path, f"the recipe computes in bfloat16 but {hw.name} has no bfloat16 "
                    "(compute capability below 8.0): set model.dtype: float16 (and trainer.bf16: false), or "
                    "submit for a GPU with it (--gpu a100, h100, l40s, l4, ...)")]


def memory_problems(plan: Plan) -> list[Problem]:
    """The plan's expected memory per GPU fits the requested GPU (a plan that cannot be built warns only)."""
    from peftrun.plan.estimate import estimate_or_warn

    if not plan.hardware.cuda:
        return []
    found = estimate_or_warn(plan)
    if found is None or found.fits is not False:
        return []
    need, have = found.memory.band["expected"] / 1e9, (found.device_memory or 0) / 1e9
    launch = plan.recipe.launch
    return [Problem(plan.recipe.where("launch.num_processes"), "launch.num_processes",
                    f"{int(launch.num_processes)} processes per node on {launch.num_machines} node(s): the plan "
                    f"needs {need:.1f} GB per GPU and {plan.hardware.name} has {have:.1f} GB. `peftrun plan RECIPE "
                    f"--gpu ... --gpus N` shows what fits (more GPUs with a sharded strategy, a smaller batch, 4-bit)")]


def check_job(plan: Plan, nodes: int, *, storage: bool = True, allow_local: bool = False,
              mounts: list[Mount] | None = None) -> None:
    """Refuse the job (RecipeError, exit 2) with every problem found, before anything is submitted. `storage`:
    the job's nodes mount this machine's filesystems and run this Python (a Slurm cluster's login node), so what
    it lacks they lack; a cloud's new machines install their own (SkyPilot's setup)."""
    problems: list[Problem] = []
    try:
        preflight(plan, installed=storage)
    except RecipeError as exc:
        problems += exc.problems
    if storage:
        problems += storage_problems(plan, nodes, read_mounts() if mounts is None else mounts, allow_local)
    problems += gpu_problems(plan)
    if not problems:
        problems += memory_problems(plan)
    if problems:
        raise RecipeError(problems, source=str(plan.recipe.path or ""))
