"""The `launch:` section, discriminated on `strategy`: how many processes and how they share work."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag

from peftrun.recipe.schema.base import Section


class _LaunchBase(Section):
    num_processes: int | Literal["auto"] = Field(1, description="Processes per machine; auto = every visible GPU.")
    mixed_precision: Literal["no", "fp16", "bf16"] | None = Field(
        None, description="accelerate's mixed precision (default: follows the resolved dtype)."
    )
    num_machines: int = Field(1, ge=1, description="Machines taking part (multi-node).")
    machine_rank: int = Field(0, ge=0, description="This machine's rank (multi-node).")
    main_process_ip: str | None = Field(None, description="Address of the rank-0 machine (multi-node).")
    main_process_port: int | None = Field(None, ge=1, le=65535, description="Port of the rank-0 machine.")
    accelerate_config: str | None = Field(None, description="A team's own accelerate config file to launch with.")


class DDPLaunch(_LaunchBase):
    strategy: Literal["ddp"] = Field("ddp", description="Data parallel: a full model copy per process.")


class FSDPLaunch(_LaunchBase):
    strategy: Literal["fsdp"] = Field(description="Fully sharded data parallel.")
    offload_params: bool = Field(False, description="Offload parameters to the CPU.")


class DeepSpeedLaunch(_LaunchBase):
    strategy: Literal["deepspeed"] = Field(description="DeepSpeed ZeRO.")
    zero_stage: Literal[1, 2, 3] = Field(2, description="ZeRO stage.")
    offload_optimizer: bool = Field(False, description="Offload optimizer states to the CPU.")
    offload_params: bool = Field(False, description="Offload parameters to the CPU (ZeRO-3).")


def _strategy(value: Any) -> str:
    """The union's tag: `strategy`, ddp when omitted."""
    if isinstance(value, dict):
        return str(value.get("strategy", "ddp"))
    return str(getattr(value, "strategy", "ddp"))


LaunchSection = Annotated[
    Union[
        Annotated[DDPLaunch, Tag("ddp")],
        Annotated[FSDPLaunch, Tag("fsdp")],
        Annotated[DeepSpeedLaunch, Tag("deepspeed")],
    ],
    Discriminator(_strategy),
]
