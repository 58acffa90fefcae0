"""Checks of the machine a run starts on, made before anything loads.

The resolver is pure and only refuses what cannot work anywhere, so that
`peftrun validate` on a laptop accepts a recipe written for a GPU node; what
this machine cannot run is refused here, when a run (or --dry-run) starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.extras import missing_extras
from peftrun.recipe.launch_command import given
from peftrun.recipe.launch_rules import strategy_name
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.plan import Plan


def read_accelerate_config(path: Path) -> dict[str, Any]:
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
    import yaml

    try:
        config = read_accelerate_config(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # json.JSONDecodeError is a ValueError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [("launch.accelerate_config", f"cannot read {path}: {first}")]
    if not isinstance(config.get("deepspeed_config") or {}, dict):
        return [("launch.accelerate_config", f"{path}: deepspeed_config must be a mapping (accelerate's format)")]
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
    counts_here = given(plan, "launch.num_processes") and not given(plan, "launch.num_machines")
    if machines is not None and int(machines) != launch.num_machines and counts_here:
        problems.append(("launch.num_machines", f"{path} says num_machines {machines}: set launch.num_machines: "
                         f"{machines} too (launch.num_processes counts processes per machine)"))
    return problems


def machine_problems(plan: Plan) -> list[tuple[str, str]]:
    """(key path, message) for each launch setting this machine cannot run."""
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
    if launch.accelerate_config is not None:
        problems += _config_problems(plan)
    return problems



def probe_torch() -> Hardware:
    """Hardware as torch sees it (for runs, where torch is loaded anyway)."""
    import torch

    if not torch.cuda.is_available():
        return CPU
    return Hardware(
        cuda=True,
        bf16=torch.cuda.is_bf16_supported(),
        device_count=torch.cuda.device_count(),
        name=torch.cuda.get_device_name(0),
        memory_bytes=torch.cuda.get_device_properties(0).total_memory,
    )


def precision_problems(plan: Plan) -> list[tuple[str, str]]:
    """float16 needs CUDA (TRL's fp16 mixed precision refuses the CPU)."""
    if plan.hardware.cuda:
        return []
    if plan.recipe.model.dtype == "float16":
        return [("model.dtype", "float16 training needs a CUDA GPU; use float32 or bfloat16 on the CPU")]
    if plan.training_args.get("fp16"):
        return [("trainer.fp16", "fp16 mixed precision needs a CUDA GPU; use bf16 or neither on the CPU")]
    return []


LOFTQ_ON_CPU = ("LoftQ initializes on a CUDA (or XPU) device only: PEFT 0.21's loftq_init moves every weight to "
                "'cuda' (peft/utils/loftq_utils.py), which this machine has not; run on a GPU, or choose another "
                "init_lora_weights (pissa, olora, gaussian)")


def peft_problems(plan: Plan) -> list[tuple[str, str]]:
    """DoRA on an 8-bit base and LoftQ initialization need CUDA."""
    peft, quant = plan.recipe.peft, plan.recipe.quantization
    if plan.hardware.cuda or peft is None:
        return []
    problems = []
    if getattr(peft, "init_lora_weights", None) == "loftq":
        problems.append(("peft.init_lora_weights", LOFTQ_ON_CPU))
    if quant is not None and quant.bits == 8 and getattr(peft, "use_dora", False):
        problems.append(("peft.use_dora", "DoRA on an 8-bit base fails on the CPU (bitsandbytes' CPU 8-bit matmul "
                         "loses its scales when DoRA dequantizes the weight): use bits: 4 or plain LoRA, or run on a "
                         "CUDA GPU"))
    return problems


def installed_problems(plan: Plan) -> list[tuple[str, str]]:
    """(key path, message) for each package the recipe needs that this Python environment lacks."""
    from importlib.util import find_spec

    problems = missing_extras(plan.recipe)
    if plan.recipe.launch.strategy == "deepspeed" and find_spec("deepspeed") is None:
        problems.append(("launch.strategy", "DeepSpeed is not installed in this environment: `pip install deepspeed`"))
    return problems


def preflight(plan: Plan, *, installed: bool = True) -> None:
    """Refuse what this machine cannot run (RecipeError, exit status 2), every problem at once. `installed`:
    also what this Python environment lacks (not for a job whose nodes install their own)."""
    problems = precision_problems(plan) + peft_problems(plan) + machine_problems(plan)
    if installed:
        problems = installed_problems(plan) + problems
    if problems:
        raise RecipeError([Problem(plan.recipe.where(path), path, msg) for path, msg in problems],
                          source=str(plan.recipe.path or ""))
