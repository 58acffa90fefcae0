"""Load the tokenizer and the base model a plan describes (the runner's only model I/O)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from peftrun.builders import build_quantization_config
from peftrun.data.templates import fit_embeddings, prepare_tokenizer
from peftrun.errors import ModelLoadError
from peftrun.hub import is_local, offline, offline_message
from peftrun.recipe.plan import Plan
from peftrun.recipe.launch_rules import is_sharded
from peftrun.recipe.trainer_types import TRAINERS

log = logging.getLogger("peftrun")


def model_source(plan: Plan) -> tuple[str, dict[str, Any]]:
    """Where weights load from: (name_or_path, extra from_pretrained kwargs). GGUF goes through a cache."""
    model = plan.recipe.model
    if model.gguf_file:
        from peftrun.train.gguf_cache import cached_gguf_model_dir

        try:
            return str(cached_gguf_model_dir(model.name_or_path, model.gguf_file, gguf_cache_root())), {}
        except OSError as exc:  # a missing file, or a hub id that is not cached while offline
            if not is_local(model.name_or_path) and offline():
                raise ModelLoadError(offline_message("model", model.name_or_path)) from None
            raise ModelLoadError(f"cannot load {model.gguf_file} from {model.name_or_path}: {exc}") from None
    return model.name_or_path, {"revision": model.revision} if model.revision else {}


def planned_on_source(plan: Plan) -> Plan:
    """The plan with its model section on the directory the weights load from: for a GGUF checkpoint the
    converted cache (built once; the run loads from it anyway), whose config.json the memory plan reads in
    milliseconds instead of the GGUF metadata (seconds). Other models are unchanged."""
    model = plan.recipe.model
    if not model.gguf_file:
        return plan
    return plan.with_sections(model=model.model_copy(update={"name_or_path": model_source(plan)[0], "gguf_file": None}))


def gguf_cache_root() -> Path:
    """Where dequantized GGUF checkpoints are kept: $PEFTRUN_CACHE/gguf (default ~/.cache/peftrun/gguf)."""
    return Path(os.environ.get("PEFTRUN_CACHE", Path.home() / ".cache" / "peftrun")) / "gguf"


def _from_pretrained(loader: Any, what: str, name: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(name, **kwargs)
    except OSError as exc:
        if not is_local(name) and offline():
            raise ModelLoadError(offline_message(what, name)) from None
        raise ModelLoadError(f"cannot load {what} {name!r}: {str(exc).splitlines()[0]}") from None


def load_tokenizer(plan: Plan) -> Any:
    """The tokenizer, with the recipe's special tokens, a pad token and the recipe's chat template."""
    from transformers import AutoTokenizer

    model = plan.recipe.model
    if model.tokenizer:
        name, kwargs = model.tokenizer, {}
    else:
        name, kwargs = model_source(plan)
    tokenizer = _from_pretrained(
        AutoTokenizer, "tokenizer", name, trust_remote_code=model.trust_remote_code, **kwargs
    )
    return prepare_tokenizer(tokenizer, plan)  # the recipe's special tokens and chat template


def device_map(plan: Plan, local_rank: int) -> dict[str, int] | None:
    """Quantized weights load on this process's device (one copy per process under DDP);
    sharded strategies (FSDP, ZeRO-3) load without a device map so the model can be split."""
    if plan.recipe.quantization is None or not plan.hardware.cuda or is_sharded(plan.recipe.launch):
        return None
    return {"": local_rank}


def load_model(plan: Plan, tokenizer: Any, local_rank: int = 0) -> Any:
    """The base model: causal LM, or a one-label sequence classifier for the reward trainer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    model_section = plan.recipe.model
    name, kwargs = model_source(plan)
    kwargs.update(
        dtype=getattr(torch, model_section.dtype),
        trust_remote_code=model_section.trust_remote_code,
        quantization_config=build_quantization_config(plan),
        device_map=device_map(plan, local_rank),
    )
    if model_section.attn_implementation:
        kwargs["attn_implementation"] = model_section.attn_implementation
    if TRAINERS[plan.trainer_type].sequence_classification:
        model = _from_pretrained(AutoModelForSequenceClassification, "model", name, num_labels=1, **kwargs)
    else:
        model = _from_pretrained(AutoModelForCausalLM, "model", name, **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    fit_embeddings(model, tokenizer)
    if plan.recipe.quantization is not None:
        keep_4bit_trainable_on_cpu(model)
    return model


def keep_4bit_trainable_on_cpu(model: Any) -> None:
    """Stop bitsandbytes repacking 4-bit weights for AVX512-BF16 inference on the CPU: after that
    repack (triggered by any eval-mode forward, e.g. an evaluation) backward passes give zero gradients."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def keep_full_layers_at_model_dtype(model: Any, dtype: str) -> None:
    """Undo TRL's bfloat16 cast for trainable layers that are not LoRA layers (the reward `score` head,
    modules_to_save, prompt embeddings). TRL casts every trainable parameter of a quantized model to
    bfloat16; LoRA layers cast their inputs, but these layers then meet activations of the model dtype
    (float32 on a CPU) and fail."""
    import torch

    target = getattr(torch, dtype)
    for name, param in model.named_parameters():
        if param.requires_grad and "lora_" not in name and param.dtype != target:
            param.data = param.data.to(target)


def expose_output_bias(model: Any) -> None:
    """TRL 1.16's fused LM head reads `lm_head.weight` and `lm_head.bias`; PEFT's TrainableTokensWrapper gives the
    weight (with the trained rows merged in) but not the bias: give it the wrapped layer's own."""
    from peft.utils.other import TrainableTokensWrapper

    for module in model.modules():
        if isinstance(module, TrainableTokensWrapper) and "bias" not in module.__dict__:
            module.bias = getattr(module.original_module, "bias", None)
