"""The launcher command a plan asks for: accelerate launch's argv and its description (pure, no I/O).

`explain` and `--dry-run` print it; peftrun.launch.launcher runs it.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import Any

from peftrun.recipe.launch_rules import strategy_name, uses_launcher
from peftrun.recipe.plan import Plan

LAUNCHER_MODULE = "accelerate.commands.launch"


def total_processes(plan: Plan) -> int:
    """Processes on all machines: launch.num_processes is per machine (accelerate's --num_processes is the total)."""
    launch = plan.recipe.launch
    return int(launch.num_processes) * launch.num_machines


def given(plan: Plan, path: str) -> bool:
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
        if given(plan, "launch.num_processes"):
            flags += ["--num_processes", str(total_processes(plan))]
        if given(plan, "launch.num_machines"):
            flags += ["--num_machines", str(launch.num_machines)]
    else:
        flags += _strategy_flags(plan)
        flags += ["--num_processes", str(total_processes(plan)), "--num_machines", str(launch.num_machines)]
        flags += ["--dynamo_backend", "no"]
    flags += ["--mixed_precision", str(launch.mixed_precision)]
    if launch.num_machines > 1 or given(plan, "launch.machine_rank"):
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
    if launch.accelerate_config is not None and not given(plan, "launch.num_processes"):
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
