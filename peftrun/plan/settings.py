"""The training settings memory depends on, read from a resolved plan without building TRL's config
(which refuses bf16 on a machine without the GPU being planned for)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftrun.recipe.launch_rules import is_sharded
from peftrun.recipe.defaults import PADDING_FREE_CHEAPER
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import throughput_rule
from peftrun.recipe.schema import trl_table
from peftrun.recipe.trainer_types import TRAINERS

# Batchings that flatten a batch into one row; the plan takes the worst case of what `auto` may settle on
FLATTENING = ("padding_free", "packed", PADDING_FREE_CHEAPER)
PROMPT_TOKENS = 512  # TRL 1.16 caps no GRPO / RLOO prompt; the plan assumes this prompt length


@dataclass(frozen=True)
class Settings:
    trainer: str
    batch: int  # per device
    rows: int  # sequences in one forward pass (DPO and reward: chosen + rejected)
    length: int  # tokens per row
    checkpointing: bool
    optim: str
    full_logits: bool  # the loss needs the (rows, length, vocab) logits; else TRL's fused, chunked LM head
    processes: int
    strategy: str  # ddp | fsdp | zero1 | zero2 | zero3
    offload_optimizer: bool
    offload_params: bool
    generation_rows: int = 0  # GRPO: sequences generated at once (their KV cache)
    flattened: bool = False  # trainer.throughput may flatten the rows into one (padding-free batches): the same
    # tokens, but eager attention's scores grow with the square of the row
    per_node: int = 1  # processes on one machine (hybrid sharding, CPU RAM per node)
    reentrant: bool = False  # activation checkpointing with use_reentrant=True
    offload_activations: bool = False  # TRL's activation_offloading: saved activations to the CPU
    compile: bool = False  # torch_compile
    bnb_saves_input: bool = False  # bitsandbytes before its fused 4-bit kernels kept each 4-bit layer's input
    # the trainable weights' dtype where another training loop keeps them (litgpt's bf16-true and torchtune keep
    # LoRA weights in the model's dtype; PEFT, as peftrun runs it, upcasts them to float32: autocast_adapter_dtype)
    adapter_dtype: str | None = None
    # another training loop's own loss path (peftrun.plan.activations.LOOP_LOSSES): "litgpt" | "torchtune"
    loop_loss: str | None = None
    # another loop's 4-bit conversion takes the output layer too (Lightning's BitsandbytesPrecision, litgpt)
    quantize_head: bool = False
    accumulation: int = 1  # micro-batches per optimizer step: the gradients outlive a micro-batch when above 1
    length_from_data: bool = False  # `length` is the data's longest example (commands/plan.py), not max_length

    @property
    def sharded(self) -> bool:
        return self.strategy in ("fsdp", "zero3")


def setting(plan: Plan, name: str) -> Any:
    """A TRL config value: the recipe's (or a rule's), else TRL's default for the trainer type."""
    if name in plan.training_args:
        return plan.training_args[name]
    rows = {row["name"]: row.get("default") for row in trl_table()["fields"][plan.trainer_type]}
    return rows.get(name)


def _strategy(plan: Plan) -> str:
    launch = plan.recipe.launch
    if launch.strategy == "deepspeed":
        return f"zero{launch.zero_stage}"
    return "fsdp" if is_sharded(launch) else "ddp"


def read_settings(plan: Plan) -> Settings:
    kind = plan.trainer_type
    batch = int(setting(plan, "per_device_train_batch_size") or 8)
    checkpointing = setting(plan, "activation_checkpointing")
    if checkpointing is None:
        checkpointing = setting(plan, "gradient_checkpointing")
    launch = plan.recipe.launch
    processes = (launch.num_processes if isinstance(launch.num_processes, int) else max(plan.hardware.device_count, 1))
    if TRAINERS[kind].generates:
        length = PROMPT_TOKENS + int(setting(plan, "max_completion_length") or 256)
        steps = setting(plan, "steps_per_generation") or setting(plan, "gradient_accumulation_steps") or 1
        generation = int(setting(plan, "generation_batch_size") or batch * processes * int(steps)) // processes
    else:
        length, generation = int(setting(plan, "max_length") or 1024), 0
    full_logits = bool(setting(plan, "label_smoothing_factor"))  # label smoothing needs the full logits (TRL)
    kwargs = setting(plan, "activation_checkpointing_kwargs") or setting(plan, "gradient_checkpointing_kwargs") or {}
    return Settings(
        trainer=kind, batch=batch, rows=batch * 2 if TRAINERS[kind].paired else batch, length=length,
        flattened=throughput_rule(plan.recipe, plan.hardware)[0] in FLATTENING,
        checkpointing=bool(checkpointing), optim=str(setting(plan, "optim") or "adamw_torch_fused"),
        full_logits=full_logits, processes=processes * max(launch.num_machines, plan.hardware.nodes), strategy=_strategy(plan),
        offload_optimizer=bool(getattr(launch, "offload_optimizer", False)),
        offload_params=bool(getattr(launch, "offload_params", False)), generation_rows=generation,
        per_node=processes, reentrant=bool(kwargs.get("use_reentrant", False)) if isinstance(kwargs, dict) else False,
        offload_activations=bool(setting(plan, "activation_offloading")), compile=bool(setting(plan, "torch_compile")),
        accumulation=int(setting(plan, "gradient_accumulation_steps") or 1),
    )
