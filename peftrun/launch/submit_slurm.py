"""A Slurm batch script for a job (`peftrun submit RECIPE --to slurm`), and its submission with sbatch.

What the script does, in order (each step's Slurm semantics are cited in docs/cluster.md):

- `#SBATCH` directives: one task per node (`srun` starts one `peftrun run` there, which starts the node's
  `accelerate launch`), GPUs per node, `--signal=B:USR1@S` (the batch shell alone hears USR1 S seconds before
  the time limit), `--requeue`, `--open-mode=append` (a requeued attempt adds to the same log).
- writes the resolved recipe it carries (a quoted here-document: no shell expansion inside) to a file,
- exports the rendezvous: the first host of the allocation (`scontrol show hostnames`) and a port from the job id;
  each task's rank is its `SLURM_PROCID` (with one task per node, the node's index),
- starts the tasks in the background and waits, so that the USR1 trap runs while they train: it forwards USR1
  to every process of the step (`scancel --signal=USR1`), the training processes save a checkpoint and stop,
  and the script requeues the job (`scontrol requeue`); a requeued attempt (SLURM_RESTART_COUNT > 0) whose run
  directory holds the run's recipe continues with `--resume`.

The launchers (peftrun's launching process, accelerate) ignore USR1 (`trap "" USR1` before `exec`: an ignored
signal stays ignored across exec), so only the training processes, which catch it, act on it.

An array job (one recipe per array task, for sweeps) is a small addition: more here-documents, `--array`, and
the recipe and port chosen by SLURM_ARRAY_TASK_ID; `directives`, `recipe_block` and `run_block` are its parts.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from peftrun import __version__
from peftrun.errors import LaunchError
from peftrun.launch.cluster import MAIN_ADDR, MAIN_PORT, Job, RankVariables, fixed_port
from peftrun.launch.runmode import RunMode
from peftrun.recipe.launch_command import launch_argv

RANKS = RankVariables(node_rank="SLURM_PROCID")
STOP_SIGNAL = "USR1"
JOB_ID = "${SLURM_JOB_ID}"  # an array job's task would add _${SLURM_ARRAY_TASK_ID}
END = "PEFTRUN_RECIPE_END"
NCCL_ENV = (  # (variable, value, why); a value the submitting shell exports wins
    ("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", "a lost peer fails the job instead of hanging it until the time limit"),
    ("NCCL_DEBUG", "WARN", "NCCL prints its errors (INFO to debug the network)"),
)


def directives(job: Job) -> list[str]:
    """The #SBATCH lines."""
    lines = [
        f"--job-name=peftrun-{job.name}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        *([f"--gpus-per-node={job.gpus_per_node}"] if job.gpus_per_node else []),
        *([f"--partition={job.partition}"] if job.partition else []),
        *([f"--time={job.time}"] if job.time else []),
        f"--signal=B:{STOP_SIGNAL}@{job.stop_before_s}",
        "--requeue",
        "--open-mode=append",
        f"--chdir={job.workdir}",
        f"--output={job.JOBS}/%x-%j.out",
    ]
    return [f"#SBATCH {line}" for line in lines]


def recipe_block(job: Job) -> list[str]:
    """Write the carried recipe (the heredoc delimiter is quoted: the text is written as is)."""
    if END in job.recipe_text:
        raise LaunchError(f"the recipe contains {END}, which ends the script's copy of it; rename that value")
    return [
        f"RECIPE={shlex.quote(job.recipe_file)}",
        f'RECIPE="${{RECIPE%.yaml}}-{JOB_ID}.yaml"  # one per job: two jobs of this recipe stay apart',
        f"mkdir -p {shlex.quote(job.JOBS)}",
        f"cat > \"$RECIPE.tmp\" <<'{END}'",
        job.recipe_text.rstrip("\n"),
        END,
        'mv "$RECIPE.tmp" "$RECIPE"',
    ]


def _reviewed_command(job: Job) -> str:
    """The accelerate command each node's peftrun starts, with Slurm's values by name (for the reader)."""
    argv = launch_argv(job.plan, ["run", "$RECIPE"], python=job.python)
    shown = {"--machine_rank": f"${RANKS.node_rank}", "--main_process_ip": f"${MAIN_ADDR}"}
    if not fixed_port(job.plan):
        shown["--main_process_port"] = f"${MAIN_PORT}"
    out = [shown.get(argv[i - 1], arg) if i else arg for i, arg in enumerate(argv)]
    return " ".join(a if a.startswith("$") else shlex.quote(a) for a in out)


def run_block(job: Job) -> list[str]:
    """Rendezvous, the tasks, the stop signal and the requeue."""
    run_dir = Path(job.plan.output_dir)
    recipe_name = "recipe.resolved.yaml"
    first = " ".join(job.mode.flags)
    task = ["bash", "-c", f'trap "" {STOP_SIGNAL}; exec "$@"', "peftrun-node", job.python, "-m", "peftrun", "run"]
    port = "" if fixed_port(job.plan) else f"export {MAIN_PORT}=$((20000 + SLURM_JOB_ID % 20000))"
    return [
        f'export {MAIN_ADDR}="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        *([port] if port else []),
        "",
        "# first attempt as submitted; a requeued one continues from the run directory's last checkpoint",
        f"MODE=({first})",
        f'if [ "${{SLURM_RESTART_COUNT:-0}}" -gt 0 ] && [ -f {shlex.quote(str(run_dir / recipe_name))} ]; then',
        f"    MODE=({RunMode.RESUME.flags[0]})",
        "fi",
        "",
        "stop_requested=0",
        "on_stop() {",
        "    stop_requested=1",
        f'    echo "peftrun job: {STOP_SIGNAL} before the time limit: saving a checkpoint, then requeueing" >&2',
        f'    scancel --signal={STOP_SIGNAL} "$SLURM_JOB_ID"',
        "}",
        f"trap on_stop {STOP_SIGNAL}",
        "",
        f"# each node runs: {_reviewed_command(job)}",
        f'srun --kill-on-bad-exit=1 {shlex.join(task)} "$RECIPE" "${{MODE[@]}}" &',
        "tasks=$!",
        "while true; do  # the trap interrupts wait: wait again until the tasks end",
        '    wait "$tasks"; status=$?',
        '    kill -0 "$tasks" 2>/dev/null || break',
        "done",
        'if [ "$status" -ne 0 ] && [ "$stop_requested" = 1 ]; then',
        '    scontrol requeue "$SLURM_JOB_ID"',
        "fi",
        'exit "$status"',
    ]


def sbatch_script(job: Job) -> str:
    """The whole batch script."""
    header = [
        "#!/bin/bash",
        f"# peftrun {__version__}: `peftrun submit --to slurm` wrote this job for recipe {job.name}",
        f"# it runs {job.describe()}, the recipe as `peftrun explain` resolved it (below);"
        + (f" planned for {job.gpus_per_node} x {job.gpu} per node" if job.gpu else " on CPUs"),
        "# submit with: sbatch THIS_FILE",
        *directives(job),
        "",
        "set -uo pipefail",
        *(f'export {name}="${{{name}:-{value}}}"  # {why}' for name, value, why in NCCL_ENV),
        "",
    ]
    return "\n".join([*header, *recipe_block(job), "", *run_block(job)]) + "\n"


def sbatch(script: Path, *extra: str, test_only: bool = False) -> str:
    """Submit (or, with test_only, ask Slurm whether it would accept) the script; the job id, or Slurm's answer."""
    argv = ["sbatch", *(["--test-only"] if test_only else ["--parsable"]), *extra, str(script)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise LaunchError("sbatch is not installed here: run `sbatch FILE` on the cluster's login node") from None
    except subprocess.TimeoutExpired:
        raise LaunchError("sbatch did not answer within 60 s: is slurmctld reachable?") from None
    if done.returncode != 0:
        raise LaunchError(f"sbatch refused {script}: {done.stderr.strip() or done.stdout.strip()}")
    if test_only:
        return done.stderr.strip()
    found = re.match(r"^(\d+)", done.stdout.strip())
    if not found:
        raise LaunchError(f"sbatch printed no job id: {done.stdout.strip()!r}")
    return found.group(1)
