"""Resolution of the `launch:` section (called from peftrun.recipe.resolver.resolve, same notes, same rules).

Fills `launch.num_processes: auto`, `launch.mixed_precision`, the 4-bit
`quantization.quant_storage` that sharded strategies need, and quiet logs on
ranks other than 0, each with the rule `explain` names. Refuses here what no
machine can run: combinations the libraries cannot do (8-bit weights sharded by
FSDP or ZeRO-3, a merged model from a sharded run, ...), and multi-node
settings that cannot rendezvous.

What depends on the machine the run starts on (a GPU-only strategy on a CPU-only
machine, more processes than GPUs, DeepSpeed not installed, a missing
accelerate config file) is checked when the run starts, by
peftrun.launch.preflight: `peftrun validate recipes/` on a laptop must accept a
recipe written for an 8-GPU node.

Pure: no I/O, no torch.
"""

from __future__ import annotations

from typing import Any

from peftrun.recipe import defaults
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.notes import Notes
from peftrun.recipe.schema import Recipe

STRATEGY_NAMES = {"ddp": "DDP", "fsdp": "FSDP", "deepspeed": "DeepSpeed"}


def strategy_name(launch: Any) -> str:
    """DDP, FSDP, or DeepSpeed ZeRO-N."""
    if launch.strategy == "deepspeed":
        return f"DeepSpeed ZeRO-{launch.zero_stage}"
    return STRATEGY_NAMES[launch.strategy]


def is_sharded(launch: Any) -> bool:
    """FSDP and ZeRO-3 split the model's weights across processes (ZeRO-1/2 split only optimizer states)."""
    return launch.strategy == "fsdp" or (launch.strategy == "deepspeed" and launch.zero_stage == 3)


def uses_launcher(launch: Any) -> bool:
    """A run that starts under accelerate's launcher (more than one process, or a strategy that needs it)."""
    processes = launch.num_processes if isinstance(launch.num_processes, int) else 2
    return processes * launch.num_machines > 1 or launch.strategy != "ddp" or launch.accelerate_config is not None


def _num_processes(recipe: Recipe, hardware: Hardware, notes: Notes) -> int:
    value = recipe.launch.num_processes
    if value == "auto":
        count = hardware.device_count if hardware.cuda else 1
        how = f"{count} GPU{'s' if count != 1 else ''} visible" if hardware.cuda else "no GPU visible"
        notes.fill("launch.num_processes", f"{defaults.RULES['launch.num_processes']} -> {count} ({how})")
        return max(count, 1)
    if value < 1:
        shown = notes.shown("launch.num_processes", value)
        notes.refuse("launch.num_processes", f"num_processes must be at least 1 (or auto), not {shown}")
    return value


def _mixed_precision(recipe: Recipe, dtype: str, notes: Notes) -> str:
    """The launcher's precision must agree with TRL's bf16 / fp16 flags (they win inside the processes)."""
    trainer = recipe.trainer
    bf16 = getattr(trainer, "bf16", None) if notes.given("trainer.bf16") else None
    fp16 = getattr(trainer, "fp16", None) if notes.given("trainer.fp16") else None
    bf16 = dtype == "bfloat16" if bf16 is None else bool(bf16)
    fp16 = dtype == "float16" if fp16 is None else bool(fp16)
    wanted = "fp16" if fp16 else "bf16" if bf16 else "no"
    given = recipe.launch.mixed_precision
    if given is None:
        notes.fill("launch.mixed_precision", f"{defaults.RULES['launch.mixed_precision']} -> {wanted}")
        return wanted
    if given != wanted:
        notes.refuse(
            "launch.mixed_precision",
            f"mixed_precision {given} disagrees with the trainer's precision ({wanted}: model.dtype {dtype}, "
            f"trainer.bf16 {bf16}, trainer.fp16 {fp16}); TRL's config decides the precision inside the processes, "
            "so remove launch.mixed_precision or change model.dtype / trainer.bf16 / trainer.fp16",
        )
    return given


def _quantization(recipe: Recipe, dtype: str, notes: Notes) -> Any:
    """Sharded strategies: 4-bit weights stored in a float dtype (FSDP shards floats only), never 8-bit."""
    quant, launch = recipe.quantization, recipe.launch
    if quant is None or not is_sharded(launch):
        return quant
    name = strategy_name(launch)
    where = "launch.zero_stage" if launch.strategy == "deepspeed" else "launch.strategy"
    if quant.bits == 8:
        notes.refuse(
            where,
            f"8-bit weights cannot be sharded by {name}: bitsandbytes stores them as int8, which {name} cannot "
            "split (FSDP: 'Must flatten tensors with uniform dtype'). Use quantization.bits: 4 (QLoRA), or "
            "strategy ddp" + (" or zero_stage 2" if launch.strategy == "deepspeed" else ""),
        )
        return quant
    compute = quant.compute_dtype if quant.compute_dtype not in (None, "auto") else dtype
    storage = quant.quant_storage
    if storage is None:
        storage = compute
        notes.fill("quantization.quant_storage", f"{defaults.RULES['quantization.quant_storage']} -> {storage}")
    if storage == "uint8":
        notes.refuse(
            "quantization.quant_storage",
            f"{name} shards floating-point tensors only: 4-bit weights stored as uint8 stay whole on every GPU; "
            f"remove quant_storage (it then follows the compute dtype, {compute})",
        )
    elif storage != dtype:
        notes.refuse(
            "quantization.quant_storage",
            f"{name} shards the 4-bit weights (stored as {storage}) together with the model's other weights "
            f"({dtype}); they need one dtype (PEFT's FSDP/ZeRO-3 QLoRA setup loads the model in the storage dtype): "
            f"set model.dtype: {storage}, or quantization.compute_dtype / quant_storage to {dtype}",
        )
    return quant.model_copy(update={"quant_storage": storage})


def _sharded_outputs(recipe: Recipe, notes: Notes) -> None:
    launch, output = recipe.launch, recipe.output
    if not is_sharded(launch):
        return
    name = strategy_name(launch)
    if output.save in ("merged", "both") and recipe.peft is not None:
        notes.refuse(
            "output.save",
            f"a merged model cannot be built inside a {name} run (PEFT: merging a sharded model is not supported; "
            "under ZeRO-3 every model load is a collective step that rank 0 cannot take alone): save the adapter, "
            "then merge in one process: `peftrun merge RUN_DIR -o DIR`",
        )
    if output.push_to_hub:
        notes.refuse(
            "output.push_to_hub",
            f"peftrun pushes from rank 0 alone, but under {name} the trainer's push gathers the adapter on every "
            "rank first: push the finished run directory afterwards (`hf upload HUB_ID RUN_DIR`)",
        )


def _strategy_checks(recipe: Recipe, notes: Notes) -> None:
    launch = recipe.launch
    if launch.strategy == "deepspeed" and launch.offload_params and launch.zero_stage != 3:
        notes.refuse("launch.offload_params", f"DeepSpeed offloads parameters with ZeRO-3 only, not ZeRO-{launch.zero_stage}")
    if launch.accelerate_config is not None:
        owned = [k for k in ("offload_params", "offload_optimizer") if notes.given(f"launch.{k}")]
        for key in owned:
            notes.refuse(
                f"launch.{key}",
                f"with accelerate_config the file decides `{key}`: set it there (or drop accelerate_config)",
            )


def _machines(recipe: Recipe, notes: Notes) -> None:
    launch = recipe.launch
    if launch.machine_rank >= launch.num_machines:
        notes.refuse(
            "launch.machine_rank",
            f"machine_rank {notes.shown('launch.machine_rank', launch.machine_rank)} is out of range for num_machines "
            f"{notes.shown('launch.num_machines', launch.num_machines)} (0 to num_machines - 1)",
        )
    if launch.num_machines > 1 and not launch.main_process_ip and launch.accelerate_config is None:
        notes.refuse(
            "launch.main_process_ip",
            f"{launch.num_machines} machines need the address of the rank-0 machine to meet: set "
            "launch.main_process_ip (and main_process_port if 29500 is taken), and launch.machine_rank on each machine",
        )


def _replica_logs(recipe: Recipe, processes: int, notes: Notes) -> Any:
    trainer = recipe.trainer
    launch = recipe.launch
    if processes * launch.num_machines <= 1 and launch.accelerate_config is None:
        return trainer
    if notes.given("trainer.log_level_replica") or not hasattr(trainer, "log_level_replica"):
        return trainer
    notes.fill("trainer.log_level_replica", defaults.RULES["trainer.log_level_replica"])
    return trainer.model_copy(update={"log_level_replica": "error"})


def resolve_launch(recipe: Recipe, hardware: Hardware, notes: Notes, dtype: str) -> Recipe:
    """The recipe with its launch settings resolved (and the 4-bit storage sharding needs); refusals go to `notes`.

    `dtype` is the resolved model dtype. The result carries the same source map as `recipe`.
    """
    processes = _num_processes(recipe, hardware, notes)
    precision = _mixed_precision(recipe, dtype, notes)
    quant = _quantization(recipe, dtype, notes)
    _sharded_outputs(recipe, notes)
    _strategy_checks(recipe, notes)
    _machines(recipe, notes)
    trainer = _replica_logs(recipe, processes, notes)
    launch = recipe.launch.model_copy(update={"num_processes": processes, "mixed_precision": precision})
    return recipe.model_copy(update={"launch": launch, "quantization": quant, "trainer": trainer})
