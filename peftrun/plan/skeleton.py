"""The model a plan trains, built on the meta device from its config.json (no weights), with its PEFT method."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from peftrun.errors import ModelLoadError
from peftrun.hub import is_local, offline
from peftrun.recipe.plan import Plan
from peftrun.recipe.trainer_types import TRAINERS


@dataclass
class Skeleton:
    """The base model on the meta device, and the PEFT model around it (None for full fine-tuning)."""

    base: Any
    peft: Any

    @property
    def model(self) -> Any:
        return self.peft if self.peft is not None else self.base


def _config_ways(name: str) -> str:
    return (
        f"cannot read the config of {name!r}: the plan needs only its config.json. Give it one of these ways: "
        "model.name_or_path as a local directory with config.json; model.gguf_file naming a GGUF file in that "
        f"directory (its metadata holds the config); or put it in the Hugging Face cache where the hub is "
        f"reachable (`hf download {name} config.json`)"
    )


@lru_cache(maxsize=8)
def _read_config(name: str, gguf_file: str | None, revision: str | None, trust_remote_code: bool, local_only: bool) -> Any:
    """The config as transformers reads it (a GGUF file's metadata takes seconds: read once per process)."""
    from transformers import AutoConfig

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    kwargs.update({k: v for k, v in (("gguf_file", gguf_file), ("revision", revision)) if v})
    if local_only:
        kwargs["local_files_only"] = True
    try:
        return AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if is_local(name) else "not local and not in the cache"
        raise ModelLoadError(f"{_config_ways(name)} ({reason})") from None


def model_config(plan: Plan) -> Any:
    """The transformers config of the plan's model: local directory, GGUF metadata or the hub cache."""
    model = plan.recipe.model
    local_only = not is_local(model.name_or_path) and offline()
    config = copy.deepcopy(_read_config(model.name_or_path, model.gguf_file, model.revision,
                                        model.trust_remote_code, local_only))
    if TRAINERS[plan.trainer_type].sequence_classification:
        config.num_labels = 1
    if config.pad_token_id is None:
        config.pad_token_id = 0  # the sequence classifier finds each row's last token by the pad id
    return config


def skeleton_attention(attn: str | None) -> dict[str, str]:
    """The attention the skeleton is built with: `eager` as asked, any kernel (FlashAttention, a hub kernel)
    as transformers' default. The skeleton never runs a kernel (the meta step puts its stand-in in place),
    and whether the kernel is installed is the run's preflight concern, not the plan's."""
    return {"attn_implementation": "eager"} if attn == "eager" else {}


def build_base(plan: Plan, config: Any | None = None) -> Any:
    """The base model on the meta device, in the plan's dtype, with tied weights tied (as from_pretrained does)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    config = config if config is not None else model_config(plan)
    scalar_head = TRAINERS[plan.trainer_type].sequence_classification
    auto = AutoModelForSequenceClassification if scalar_head else AutoModelForCausalLM
    dtype = getattr(torch, plan.recipe.model.dtype)
    with init_empty_weights():
        model = auto.from_config(config, dtype=dtype, trust_remote_code=plan.recipe.model.trust_remote_code,
                                 **skeleton_attention(plan.recipe.model.attn_implementation))
    model.tie_weights()
    return model


def apply_peft(plan: Plan, base: Any) -> Any:
    """The PEFT model around `base` as the trainer builds it (None for full fine-tuning). PEFT's own errors
    about the recipe's module names become located recipe errors (peftrun.plan.targets)."""
    from accelerate import init_empty_weights
    from peft import get_peft_model

    from peftrun.builders import build_peft_config
    from peftrun.plan.targets import check_targets, peft_refusal

    config = build_peft_config(plan)
    if config is None:
        return None
    if isinstance(getattr(config, "init_lora_weights", None), str):
        # PiSSA, OLoRA, LoftQ, EVA and CorDA start the adapter from the weights or from a pass over the data,
        # which the skeleton has none of; the shapes are those of the plain initialization (EVA with rho > 1
        # moves ranks between layers by the data: its counts are those of the recipe's ranks)
        config.init_lora_weights = True
    check_targets(plan, base)
    try:
        with init_empty_weights():  # adapter weights born on the meta device (none allocated, flags kept)
            model = get_peft_model(base, config)
    except (ValueError, TypeError, KeyError) as exc:
        raise peft_refusal(plan, base, exc) from None
    except (RuntimeError, NotImplementedError) as exc:  # an initialization that needs real weights (data-dependent)
        raise ModelLoadError(f"cannot build the {plan.peft_method} model without its weights (the meta device "
                             f"cannot run its initialization: {str(exc).splitlines()[0]}); no estimate") from None
    _trainer_casts(plan, model)
    return model


def _trainer_casts(plan: Plan, model: Any) -> None:
    """The dtype changes TRL and peftrun make to trainable weights of a quantized model: TRL casts them to
    bfloat16 (except DoRA magnitudes); peftrun puts layers that are not LoRA layers back at the model dtype."""
    import torch

    if plan.recipe.quantization is None:
        return
    model_dtype = getattr(torch, plan.recipe.model.dtype)
    for name, param in model.named_parameters():
        if param.requires_grad and "lora_magnitude_vector" not in name:
            param.data = param.data.to(torch.bfloat16 if "lora_" in name else model_dtype)
