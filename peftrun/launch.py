"""Beyond one process: `peftrun RECIPE` re-launches itself under accelerate's launcher.

    peftrun recipe.yaml launch.num_processes=2
runs
    python -m accelerate.commands.launch --multi_gpu --num_processes 2 ... -m peftrun run recipe.yaml launch.num_processes=2

and every launched process loads the same recipe, resolves it to the same plan and
runs the ordinary single-process path (runner.train); torch.distributed, started
by the trainer, makes them one run. A launched process never launches again.

The pure half (the launcher's argv from a plan, and its description for
`explain`) imports nothing heavy. The other half runs the launcher and checks
that it really started the processes asked for; what each launched process does
lives in peftrun/ranks.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from peftrun.errors import LaunchError
from peftrun.plan import Plan
from peftrun.ranks import EXPECTED_WORLD_SIZE, check_worker, is_worker, quiet_this_rank, rank
from peftrun.resolver_launch import strategy_name, uses_launcher

LAUNCHER_MODULE = "accelerate.commands.launch"


# --- pure: plan -> launcher argv --------------------------------------------------------------

def total_processes(plan: Plan) -> int:
    """Processes on all machines: launch.num_processes is per machine (accelerate's --num_processes is the total)."""
    launch = plan.recipe.launch
    return int(launch.num_processes) * launch.num_machines


def needs_launch(plan: Plan, env: Mapping[str, str] | None = None) -> bool:
    """The plan asks for accelerate's launcher and this process is not already one of its workers."""
    return uses_launcher(plan.recipe.launch) and not is_worker(env)


def _given(plan: Plan, path: str) -> bool:
    return path in plan.recipe.sources


def _flag(value: bool) -> str:
    return "true" if value else "false"


def launcher_flags(plan: Plan) -> list[str]:
    """accelerate launch's options for the plan: every value explicit, so a machine's default accelerate
    config cannot change what the recipe says (with `accelerate_config`, the file fills what the recipe leaves out)."""
    launch = plan.recipe.launch
    flags: list[str] = []
    config = launch.accelerate_config
    if config is not None:
        flags += ["--config_file", config]
        if _given(plan, "launch.num_processes"):
            flags += ["--num_processes", str(total_processes(plan))]
        if _given(plan, "launch.num_machines"):
            flags += ["--num_machines", str(launch.num_machines)]
    else:
        flags += _strategy_flags(plan)
        flags += ["--num_processes", str(total_processes(plan)), "--num_machines", str(launch.num_machines)]
        flags += ["--dynamo_backend", "no"]
    flags += ["--mixed_precision", str(launch.mixed_precision)]
    if launch.num_machines > 1 or _given(plan, "launch.machine_rank"):
        flags += ["--machine_rank", str(launch.machine_rank)]
    if launch.main_process_ip:
        flags += ["--main_process_ip", launch.main_process_ip]
    if launch.main_process_port is not None:
        flags += ["--main_process_port", str(launch.main_process_port)]
    return flags


def _strategy_flags(plan: Plan) -> list[str]:
    launch = plan.recipe.launch
    if launch.strategy == "fsdp":
        # PEFT's FSDP (Q)LoRA setup: FSDP1, original parameters flattened (use_orig_params false, so the
        # trainer wraps LoRA layers apart from the frozen base), weights read once on rank 0 and broadcast,
        # sharded checkpoints while training; the final adapter is gathered whole (save_on_every_rank).
        return [
            "--use_fsdp", "--fsdp_version", "1",
            "--fsdp_sharding_strategy", "FULL_SHARD",
            "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
            "--fsdp_backward_prefetch", "BACKWARD_PRE",
            "--fsdp_state_dict_type", "SHARDED_STATE_DICT",
            "--fsdp_use_orig_params", "false",
            "--fsdp_cpu_ram_efficient_loading", "true",
            "--fsdp_sync_module_states", "true",
            "--fsdp_offload_params", _flag(launch.offload_params),
        ]
    if launch.strategy == "deepspeed":
        flags = [
            "--use_deepspeed", "--zero_stage", str(launch.zero_stage),
            "--offload_optimizer_device", "cpu" if launch.offload_optimizer else "none",
            "--offload_param_device", "cpu" if launch.offload_params else "none",
        ]
        if launch.zero_stage == 3:
            # save a whole 16-bit adapter at the end (else the trainer leaves a DeepSpeed checkpoint only)
            flags += ["--zero3_init_flag", "true", "--zero3_save_16bit_model", "true"]
        if launch.num_machines > 1:  # one launcher per machine, like DDP and FSDP (not pdsh over ssh)
            flags += ["--deepspeed_multinode_launcher", "standard"]
        return flags
    return ["--multi_gpu"] if total_processes(plan) > 1 else []


def launch_argv(plan: Plan, script_args: Sequence[str], python: str | None = None) -> list[str]:
    """The launcher command that runs `peftrun *script_args` in every process."""
    python = python or sys.executable
    return [python, "-m", LAUNCHER_MODULE, *launcher_flags(plan), "-m", "peftrun", *script_args]


def script_args_for(plan: Plan) -> list[str]:
    """`run RECIPE OVERRIDE...` as the user gave them (overrides recovered from the source map)."""
    overrides = dict.fromkeys(
        source.removeprefix("command line: ")
        for source in plan.recipe.sources.values()
        if source.startswith("command line: ")
    )
    return ["run", str(plan.recipe.path or "RECIPE"), *overrides]


def describe(plan: Plan) -> str:
    """One line: how many processes, which strategy, on how many machines."""
    launch = plan.recipe.launch
    if not uses_launcher(launch):
        return "one process (no launcher)"
    if launch.accelerate_config is not None and not _given(plan, "launch.num_processes"):
        count = f"processes as {launch.accelerate_config} says"
    else:
        total = total_processes(plan)
        count = f"{total} process{'es' if total != 1 else ''}"
    where = f" on {launch.num_machines} machines (this is machine {launch.machine_rank})" if launch.num_machines > 1 else ""
    text = f"{count}, {strategy_name(launch)}{where}"
    if launch.accelerate_config is not None:
        text += f", settings from {launch.accelerate_config}"
    return text


def command(plan: Plan, script_args: Sequence[str] | None = None) -> str | None:
    """The exact launcher command line (None for a one-process run)."""
    if not uses_launcher(plan.recipe.launch):
        return None
    return shlex.join(launch_argv(plan, script_args_for(plan) if script_args is None else script_args))


def explain_lines(plan: Plan) -> list[str]:
    """What `explain` and `--dry-run` print about the launch."""
    cmd = command(plan)
    lines = ["", f"launch: {describe(plan)}"]
    if cmd is not None:
        lines.append(f"    {cmd}")
    return lines


def explain_data(plan: Plan) -> dict[str, Any]:
    cmd = command(plan)
    return {"description": describe(plan), "argv": shlex.split(cmd) if cmd else None, "command": cmd}


# --- checks before launching (the machine the run starts on) -------------------------------------------

def _read_accelerate_config(path: Path) -> dict[str, Any]:
    import yaml

    if path.suffix == ".json":
        return json.loads(path.read_text())
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def _config_problems(plan: Plan) -> list[tuple[str, str]]:
    """An accelerate config file that exists, parses, and agrees with the recipe's strategy."""
    launch = plan.recipe.launch
    path = Path(str(launch.accelerate_config))
    if not path.is_file():
        return [("launch.accelerate_config", f"accelerate config file {path} not found (relative paths start from "
                 f"the working directory, {Path.cwd()})")]
    try:
        config = _read_accelerate_config(path)
    except (OSError, ValueError) as exc:  # yaml.YAMLError and json.JSONDecodeError are ValueErrors
        return [("launch.accelerate_config", f"cannot read {path}: {str(exc).splitlines()[0]}")]
    problems = []
    kind = str(config.get("distributed_type", "NO")).upper()
    wanted = {"ddp": ("MULTI_GPU", "MULTI_CPU", "NO"), "fsdp": ("FSDP",), "deepspeed": ("DEEPSPEED",)}[launch.strategy]
    if kind not in wanted:
        problems.append(("launch.strategy", f"strategy {launch.strategy} disagrees with {path} (distributed_type "
                         f"{kind}); set launch.strategy to match it, peftrun places weights by the strategy"))
    stage = (config.get("deepspeed_config") or {}).get("zero_stage")
    if launch.strategy == "deepspeed" and stage is not None and int(stage) != launch.zero_stage:
        problems.append(("launch.zero_stage", f"zero_stage {launch.zero_stage} disagrees with {path} "
                         f"(zero_stage {stage}); set launch.zero_stage: {stage}"))
    machines = config.get("num_machines")
    counts_here = _given(plan, "launch.num_processes") and not _given(plan, "launch.num_machines")
    if machines is not None and int(machines) != launch.num_machines and counts_here:
        problems.append(("launch.num_machines", f"{path} says num_machines {machines}: set launch.num_machines: "
                         f"{machines} too (launch.num_processes counts processes per machine)"))
    return problems


def machine_problems(plan: Plan) -> list[tuple[str, str]]:
    """(key path, message) for each launch setting this machine cannot run."""
    from importlib.util import find_spec

    launch, hw = plan.recipe.launch, plan.hardware
    problems: list[tuple[str, str]] = []
    if launch.strategy in ("fsdp", "deepspeed") and not hw.cuda:
        problems.append(("launch.strategy", f"{strategy_name(launch)} needs CUDA GPUs and this machine has none "
                         "(accelerate: 'no available devices found'); strategy ddp runs several processes on "
                         "the CPU with the gloo backend"))
    if hw.cuda and int(launch.num_processes) > hw.device_count:
        problems.append(("launch.num_processes", f"{launch.num_processes} processes per machine but this machine "
                         f"has {hw.device_count} visible GPU{'s' if hw.device_count != 1 else ''} ({hw.name}): one "
                         f"process per GPU, so at most {hw.device_count} (or auto)"))
    if launch.strategy == "deepspeed" and find_spec("deepspeed") is None:
        problems.append(("launch.strategy", "DeepSpeed is not installed in this environment: `pip install deepspeed`"))
    if launch.accelerate_config is not None:
        problems += _config_problems(plan)
    return problems


def expected_world_size(plan: Plan) -> int | None:
    """Processes the launcher must start (None: an accelerate config file decides and does not say)."""
    launch = plan.recipe.launch
    if launch.accelerate_config is None or _given(plan, "launch.num_processes"):
        return total_processes(plan)
    try:
        found = _read_accelerate_config(Path(launch.accelerate_config)).get("num_processes")
    except (OSError, ValueError):
        return None
    return int(found) if isinstance(found, int) and found > 0 else None


# --- the launching process ---------------------------------------------------------------------------

def from_cli(plan: Plan, recipe: str, overrides: Sequence[str], *, overwrite: bool, resume: bool,
             dry_run: bool) -> tuple[Plan, int | None]:
    """The runner's hook: (plan for this process, exit code when the run happened under the launcher).

    Every launched process runs `peftrun run RECIPE OVERRIDES [--overwrite | --resume]`, this same command.

    Launching process: checks the machine and the run directory, runs the launcher, returns its exit code.
    Launched process: checks what the launcher started and quiets ranks other than 0; returns (plan, None).
    """
    if is_worker() or EXPECTED_WORLD_SIZE in os.environ:
        check_worker(plan)
        quiet_this_rank()
        if rank() != 0:
            from dataclasses import replace

            plan = replace(plan, warnings=())  # rank 0 prints them
        return plan, None
    if not uses_launcher(plan.recipe.launch):
        return plan, None
    if dry_run:
        return plan, None
    script_args = ["run", recipe, *overrides, *(["--overwrite"] if overwrite else []), *(["--resume"] if resume else [])]
    return plan, run_launcher(plan, script_args, overwrite=overwrite, resume=resume)  # rank 0 prints the warnings


def run_launcher(plan: Plan, script_args: Sequence[str], *, overwrite: bool, resume: bool) -> int:
    """Run the launcher, wait for it, and propagate its exit code; 0 only when the run really had its processes."""
    from peftrun import rundir

    launch = plan.recipe.launch
    run_dir = Path(plan.output_dir)
    if launch.machine_rank == 0:  # refuse an occupied directory before starting anything
        rundir.check(run_dir, str(plan.recipe.path or "RECIPE"), rundir.resolved_recipe_text(plan),
                     overwrite=overwrite, resume=resume)
    expected = expected_world_size(plan)
    argv = launch_argv(plan, script_args)
    env = dict(os.environ)
    env[EXPECTED_WORLD_SIZE] = str(expected) if expected else "unknown"  # also marks them as launched by peftrun
    _warn_default_accelerate_config(plan)
    print(f"peftrun: launching {describe(plan)}\n  {shlex.join(argv)}", file=sys.stderr, flush=True)
    started = time.time()
    code = _wait(subprocess.Popen(argv, env=env))
    if code != 0:
        print(f"error: the launched run failed (launcher exit status {code}); the failing process's error is above",
              file=sys.stderr)
        return code
    if launch.machine_rank == 0:
        check_manifest(run_dir, expected, started)
    return 0


def _wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for the launcher; Ctrl-C reaches the workers too (they save a checkpoint), so keep waiting for them."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            print("\npeftrun: waiting for the launched processes to stop", file=sys.stderr)


def check_manifest(run_dir: Path, expected: int | None, started: float) -> None:
    """After the launcher exits 0: the run's manifest is new and records the world size asked for."""
    from peftrun.rundir import MANIFEST

    path = run_dir / MANIFEST
    if not path.is_file() or path.stat().st_mtime < started - 1:
        raise LaunchError(f"the launcher exited 0 but {run_dir} holds no new {MANIFEST}: no process finished the run")
    found = json.loads(path.read_text()).get("world_size")
    if expected is not None and found != expected:
        raise LaunchError(
            f"asked for {expected} processes but the run reports world size {found}: the launcher did not start "
            "them (`accelerate launch --cpu` runs one process whatever --num_processes says)"
        )


def _warn_default_accelerate_config(plan: Plan) -> None:
    """accelerate fills options peftrun leaves unset from the machine's default config: say so."""
    if plan.recipe.launch.accelerate_config is not None:
        return
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    default = Path(os.path.expanduser(home)) / "accelerate" / "default_config.yaml"
    if default.is_file():
        print(f"warning: accelerate's default config {default} fills the launch options peftrun does not set; "
              "name it in launch.accelerate_config to make that part of the recipe", file=sys.stderr)
