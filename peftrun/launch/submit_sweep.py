"""`peftrun submit SWEEP --to slurm --workers N`: a Slurm array job whose every task is a sweep worker.

Each task runs `peftrun sweep SWEEP` in the directory `submit` ran in: the workers share the sweep's Optuna
journal and trial claims on a shared filesystem (docs/sweeps.md, "Many workers, one sweep"), so N tasks run the
sweep's trials N at a time. A task stopped at its time limit (Slurm sends SIGTERM) leaves its trial's checkpoint,
which the next worker resumes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from peftrun import __version__
from peftrun.launch.cluster import Job


@dataclass(frozen=True)
class SweepJob:
    sweep: str  # the sweep file as given (relative paths start at workdir)
    name: str
    overrides: tuple[str, ...]
    workers: int
    workdir: Path
    python: str
    gpu: str | None = None  # the --gpu the workers plan for (one GPU each); None: CPU workers
    partition: str | None = None
    time: str | None = None


def sweep_script(job: SweepJob) -> str:
    """The batch script of the array job."""
    directives = [
        f"--job-name=peftrun-sweep-{job.name}",
        f"--array=0-{job.workers - 1}",
        "--nodes=1",
        "--ntasks=1",
        *(["--gpus-per-node=1"] if job.gpu else []),
        *([f"--partition={job.partition}"] if job.partition else []),
        *([f"--time={job.time}"] if job.time else []),
        f"--chdir={job.workdir}",
        f"--output={Job.JOBS}/%x-%A_%a.out",  # one log per task
    ]
    worker = [job.python, "-m", "peftrun", "sweep", job.sweep, *job.overrides, *(["--gpu", job.gpu] if job.gpu else [])]
    return "\n".join([
        "#!/bin/bash",
        f"# peftrun {__version__}: `peftrun submit --to slurm` wrote this array job for sweep {job.sweep}",
        f"# {job.workers} worker(s), each `peftrun sweep` on {'one GPU' if job.gpu else 'CPUs'}, sharing the sweep's "
        "trials through its directory",
        "# submit with: sbatch THIS_FILE",
        *(f"#SBATCH {line}" for line in directives),
        "",
        "set -uo pipefail",
        "exec " + " ".join(shlex.quote(part) for part in worker),
    ]) + "\n"
