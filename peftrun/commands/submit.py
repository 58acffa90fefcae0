"""`peftrun submit RECIPE --to slurm|skypilot [key=value ...] [--nodes N] [--gpus-per-node G] [--gpu NAME]
[--partition P] [--time T] [-o FILE] [--now]`: write the job for a scheduler (and submit it with --now).

The job carries the recipe as `peftrun explain RECIPE ... --gpu NAME --gpus G` resolves it; it is refused
before anything is written when no node could run it (docs/cluster.md). A sweep file (`sweep:`) becomes a Slurm
array job of `--workers N` sweep workers (docs/sweeps.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peftrun.launch import runmode
from peftrun.launch.cluster import STOP_BEFORE_S, RankVariables

HELP = "write a Slurm batch script or a SkyPilot task for a recipe (and submit it with --now)"


@dataclass(frozen=True)
class Scheduler:
    ranks: RankVariables
    render: Callable[..., str]
    submit: Callable[[Path], str]
    suffix: str


def _scheduler(name: str) -> Scheduler:
    if name == "slurm":
        from peftrun.launch import submit_slurm as slurm

        return Scheduler(slurm.RANKS, slurm.sbatch_script, slurm.sbatch, "sbatch")
    from peftrun.launch import submit_skypilot as sky

    return Scheduler(sky.RANKS, sky.task_yaml, sky.sky_launch, "sky.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    parser.add_argument("--to", required=True, choices=("slurm", "skypilot"), help="the scheduler")
    parser.add_argument("--nodes", type=int, metavar="N", help="machines (default: the recipe's launch.num_machines)")
    parser.add_argument("--gpus-per-node", type=int, metavar="G", help="GPUs per machine, one process each "
                        "(default: the recipe's launch.num_processes)")
    parser.add_argument("--gpu", metavar="NAME|SIZE", help="the GPU the job asks for and the recipe is planned for "
                        "(a100-80gb, h100, l40s, ...); without it, a CPU job")
    parser.add_argument("--partition", metavar="P", help="Slurm partition")
    parser.add_argument("--time", metavar="T", help="time limit (Slurm's format: minutes, HH:MM:SS, D-HH:MM:SS)")
    parser.add_argument("--stop-before", type=int, default=STOP_BEFORE_S, metavar="S", help="seconds before the time "
                        f"limit when the run saves a checkpoint and the job requeues itself (default {STOP_BEFORE_S})")
    parser.add_argument("-o", "--output", metavar="FILE", help="where to write the job (default: NAME.sbatch or "
                        "NAME.sky.yaml here)")
    parser.add_argument("--now", action="store_true", help="submit it (sbatch / sky launch) and print the job id")
    parser.add_argument("--allow-local-fs", action="store_true", help="accept a run directory on a disk of this "
                        "machine for a job of several nodes (every node of the job is this machine)")
    runmode.add_arguments(parser, overwrite_help="the job replaces an existing run directory",
                          resume_help="the job continues the run directory's last checkpoint")
    parser.add_argument("--workers", type=int, metavar="N", help="a sweep file: an array job of N workers sharing its "
                        "trials (default 1); each is `peftrun sweep` on one GPU (--gpu) or on CPUs")


def _is_sweep(path: str) -> bool:
    from peftrun.recipe.loader import read_yaml
    from peftrun.recipe.sweep import SECTION

    return Path(path).is_file() and isinstance(read_yaml(Path(path))[0].get(SECTION), dict)


def main(args: argparse.Namespace) -> int:
    from peftrun.errors import Problem, RecipeError
    from peftrun.hub import ensure_offline_mode
    from peftrun.launch.cluster import Job, check_processes, job_overrides
    from peftrun.launch.cluster_preflight import check_job
    from peftrun.recipe.gpus import target_hardware
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.validation import checked_plan
    from peftrun.train import rundir

    if args.nodes is not None and args.nodes < 1:
        raise RecipeError(Problem("--nodes", "", f"--nodes must be at least 1, not {args.nodes}"))
    if _is_sweep(args.recipe):
        return _submit_sweep(args)
    if args.workers is not None:
        raise RecipeError(Problem("--workers", "", f"--workers is for a sweep file; {args.recipe} has no `sweep:`"))
    scheduler = _scheduler(args.to)
    given = load_recipe(args.recipe, args.overrides)
    check_processes(given, args.gpu, args.gpus_per_node)
    overrides = [*args.overrides, *job_overrides(given, scheduler.ranks, args.nodes, args.gpus_per_node)]
    gpus = args.gpus_per_node or (int(given.launch.num_processes) if args.gpu else None)
    plan = checked_plan(load_recipe(args.recipe, overrides), target_hardware(args.gpu, gpus))
    ensure_offline_mode()
    nodes = plan.recipe.launch.num_machines
    check_job(plan, nodes, storage=args.to == "slurm", allow_local=args.allow_local_fs)
    text = rundir.resolved_recipe_text(plan)
    rundir.check(Path(plan.output_dir), args.recipe, text, args.mode)
    job = Job(plan, text, nodes, gpus or 0, Path.cwd(), sys.executable, args.mode,
              plan.hardware.name if args.gpu else None, args.partition, args.time, args.stop_before,
              rundir.library_versions())
    what = f"{nodes} node(s), the recipe as resolved for {f'{gpus} x {plan.hardware.name}' if args.gpu else 'CPUs'} per node"
    return _write(args, scheduler, Path(args.output or f"{job.name}.{scheduler.suffix}"), scheduler.render(job), what)


def _write(args: argparse.Namespace, scheduler: Scheduler, out: Path, text: str, what: str) -> int:
    """Write the job file (and the folder of the jobs' recipes and Slurm's logs); submit it with --now."""
    from peftrun.launch.cluster import Job

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    Path(Job.JOBS).mkdir(parents=True, exist_ok=True)
    print(f"wrote {out}: {what}", file=sys.stderr)
    if args.now:
        print(scheduler.submit(out))
    else:
        print(f"submit it with: {'sbatch' if args.to == 'slurm' else 'sky launch'} {out}", file=sys.stderr)
    return 0


def _submit_sweep(args: argparse.Namespace) -> int:
    """A sweep file: a Slurm array job of workers (the sweep and every value it tries checked first)."""
    from peftrun.errors import Problem, RecipeError
    from peftrun.launch.cluster_preflight import sweep_storage_problems
    from peftrun.launch.submit_sweep import SweepJob, sweep_script
    from peftrun.recipe.gpus import target_hardware
    from peftrun.recipe.sweep import load_sweep

    workers = 1 if args.workers is None else args.workers
    if args.to != "slurm":
        raise RecipeError(Problem("--to", "", "a sweep is submitted to Slurm, as an array job of workers; on "
                                  "SkyPilot, run `peftrun sweep SWEEP` in a task of your own"))
    if workers < 1 or args.nodes is not None or args.gpus_per_node is not None:
        raise RecipeError(Problem("--workers", "", "a sweep job takes --workers N (at least 1; each worker one node "
                                  "with one GPU or its CPUs), not --nodes or --gpus-per-node"))
    if args.mode is not runmode.RunMode.FRESH:
        raise RecipeError(Problem(args.mode.flags[0], "", "a sweep continues by itself (its workers resume "
                                  "interrupted trials); --overwrite and --resume are for a recipe's run directory"))
    sweep = load_sweep(args.recipe, args.overrides, target_hardware(args.gpu, 1 if args.gpu else None))
    problems = sweep_storage_problems(sweep.directory, sweep.recipe.where("output.dir"), workers, args.allow_local_fs)
    if problems:
        raise RecipeError(problems, source=args.recipe)
    name = Path(args.recipe).stem
    job = SweepJob(args.recipe, name, tuple(args.overrides), workers, Path.cwd(), sys.executable, args.gpu,
                   args.partition, args.time)
    what = f"{workers} worker(s) of sweep {args.recipe}, each on {f'one {args.gpu}' if args.gpu else 'CPUs'}"
    return _write(args, _scheduler("slurm"), Path(args.output or f"{name}.sbatch"), sweep_script(job), what)
