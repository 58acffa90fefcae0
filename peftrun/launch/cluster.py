"""A job for a scheduler: what `peftrun submit` hands to the Slurm and SkyPilot writers.

The job runs the recipe as `explain` resolves it for the target (`--gpu`, `--gpus-per-node`, `--nodes`): its
text is recipe.resolved.yaml's, carried inside the job. Only the values a scheduler knows when the job starts
are left as `${oc.env:...}` expressions (this node's rank, the first node's address, a port); a run keeps
expressions as they are in its own recipe.resolved.yaml, so a requeued job resumes with the same recipe text.
Pure: no I/O, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from peftrun.errors import Problem, RecipeError
from peftrun.launch.runmode import RunMode
from peftrun.recipe.launch_command import given, total_processes
from peftrun.recipe.launch_rules import strategy_name
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import Recipe

MAIN_ADDR = "PEFTRUN_MAIN_ADDR"  # set by the job: the first node's host name
MAIN_PORT = "PEFTRUN_MAIN_PORT"  # set by the job: a port the first node listens on
DEFAULT_PORT = 29500  # accelerate's (torch.distributed's) default
STOP_BEFORE_S = 300  # the checkpoint signal comes this long before the time limit: a step and a save


@dataclass(frozen=True)
class RankVariables:
    """The scheduler's environment variables a node reads its place in the job from."""

    node_rank: str
    processes: str | None = None  # processes per node, when the scheduler says (SkyPilot's GPUs per node)


@dataclass(frozen=True)
class Job:
    """Everything a writer needs; `recipe_text` is what each node runs."""

    plan: Plan
    recipe_text: str
    nodes: int
    gpus_per_node: int  # 0: a CPU job
    workdir: Path  # relative paths of the recipe (data, output.dir) start here on every node
    python: str  # the interpreter with this peftrun (same path on every node)
    mode: RunMode = RunMode.FRESH  # the first attempt's; a requeued or relaunched one resumes
    gpu: str | None = None  # the GPU the plan was resolved for (--gpu), by its table name
    partition: str | None = None
    time: str | None = None
    stop_before_s: int = STOP_BEFORE_S
    versions: dict[str, str | None] = field(default_factory=dict)  # peftrun and the libraries, as a manifest records

    @property
    def name(self) -> str:
        return str(self.plan.recipe.name)

    def describe(self) -> str:
        """What the job runs, in one line."""
        launch = self.plan.recipe.launch
        total = total_processes(self.plan)
        return (f"{total} process{'es' if total != 1 else ''} ({launch.num_processes} per node on {self.nodes} "
                f"node{'s' if self.nodes != 1 else ''}), {strategy_name(launch)}")

    JOBS = ".peftrun/jobs"  # relative to workdir: the jobs' recipes (and Slurm's logs)

    @property
    def recipe_file(self) -> str:
        """Where the job writes its recipe (a scheduler may add its job id to the name)."""
        return f"{self.JOBS}/{self.name}.yaml"


def job_overrides(recipe: Recipe, ranks: RankVariables, nodes: int | None, gpus_per_node: int | None) -> list[str]:
    """key=value overrides that make the recipe a job: machines and processes from the command line, rank and
    rendezvous from the scheduler at run time (a recipe's own main_process_port is kept)."""
    launch = recipe.launch
    machines = nodes or launch.num_machines
    out = [f"launch.num_machines={machines}"]
    if ranks.processes is not None and gpus_per_node:
        out.append(f"launch.num_processes=${{oc.env:{ranks.processes},{gpus_per_node}}}")
    elif gpus_per_node:
        out.append(f"launch.num_processes={gpus_per_node}")
    out += [f"launch.machine_rank=${{oc.env:{ranks.node_rank},0}}", f"launch.main_process_ip=${{oc.env:{MAIN_ADDR},127.0.0.1}}"]
    if "launch.main_process_port" not in recipe.sources:
        out.append(f"launch.main_process_port=${{oc.env:{MAIN_PORT},{DEFAULT_PORT}}}")
    return out


def check_processes(recipe: Recipe, gpu: str | None, gpus_per_node: int | None) -> None:
    """`num_processes: auto` counts the GPUs of the machine it runs on: for a GPU job, say how many a node has."""
    if recipe.launch.num_processes == "auto" and gpu is not None and not gpus_per_node:
        raise RecipeError(Problem(recipe.where("launch.num_processes"), "launch.num_processes",
                                  "num_processes: auto counts the GPUs of the machine it runs on; for a job on "
                                  f"{gpu} GPUs say how many each node has: --gpus-per-node G"))


def fixed_port(plan: Plan) -> bool:
    """The recipe names its own rendezvous port (else the job picks one from its id: job_overrides)."""
    return given(plan, "launch.main_process_port") and MAIN_PORT not in plan.recipe.sources["launch.main_process_port"]
