"""The model card (README.md) a run leaves next to its adapter."""

from __future__ import annotations

from typing import Any

from peftrun.recipe.objects import peft_class, peft_kwargs
from peftrun.recipe.plan import Plan


def _hyperparameters(plan: Plan) -> list[str]:
    lines = [f"- trainer: TRL {plan.trainer_type}", f"- learning rate: {plan.training_args['learning_rate']:g}"]
    peft = plan.recipe.peft
    if peft is not None and peft.method == "lora":
        variant = " + ".join(v for v, on in (("DoRA", peft.use_dora), ("rsLoRA", peft.use_rslora)) if on)
        lines.append(f"- LoRA r={peft.r}, alpha={peft.lora_alpha}, dropout={peft.lora_dropout}, "
                     f"targets={peft.target_modules}" + (f" ({variant})" if variant else ""))
    elif peft is not None and peft.method == "prompt_tuning":
        lines.append(f"- prompt tuning: {peft.num_virtual_tokens} virtual tokens, init {peft.prompt_tuning_init}")
    elif peft is not None:
        settings = ", ".join(f"{k}={v}" for k, v in peft_kwargs(plan).items() if k != "task_type")
        lines.append(f"- {peft.method} ({peft_class(plan)}): {settings or 'PEFT defaults'}")
    quant = plan.recipe.quantization
    if quant is not None:
        lines.append(f"- base quantized to {quant.bits}-bit" + (f" {quant.quant_type}" if quant.bits == 4 else ""))
    for key in ("num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length"):
        if key in plan.training_args:
            lines.append(f"- {key}: {plan.training_args[key]}")
    return lines


def _how_to_load(plan: Plan) -> list[str]:
    reward = plan.trainer_type == "reward"
    head = "SequenceClassification" if reward else "CausalLM"
    extra = ", num_labels=1" if reward else ""
    if plan.recipe.peft is not None:
        code = (f"from peft import AutoPeftModelFor{head}\n\n"
                f"model = AutoPeftModelFor{head}.from_pretrained({plan.output_dir!r}{extra})")
    else:
        code = (f"from transformers import AutoModelFor{head}\n\n"
                f"model = AutoModelFor{head}.from_pretrained({plan.output_dir!r}{extra})")
    lines = ["```python", code, "```"]
    if plan.recipe.model.gguf_file and plan.recipe.peft is not None:
        lines += ["", "The base was dequantized from a GGUF file into peftrun's local cache, which "
                  "`adapter_config.json` names as the base; elsewhere, load the base yourself and use "
                  "`PeftModel.from_pretrained(base, run_dir)`."]
    return lines


def model_card(plan: Plan, summary: dict[str, Any]) -> str:
    recipe = plan.recipe
    base = recipe.model.name_or_path + (f" ({recipe.model.gguf_file})" if recipe.model.gguf_file else "")
    method = recipe.peft.method if recipe.peft else "full fine-tuning"
    metrics = [f"- {k}: {v}" for k, v in summary.items() if v is not None]
    paths = [s.path if isinstance(s.path, str) else ", ".join(s.path) for _, s in recipe.dataset.all_sources()]
    data = "; ".join(paths)
    return "\n".join([
        f"# {recipe.name}",
        "",
        "Fine-tuned with peftrun from the recipe `recipe.resolved.yaml` in this folder.",
        "",
        f"- base model: {base}",
        f"- method: {method}",
        f"- data: {data} (split {recipe.dataset.split})",
        f"- chat template: {recipe.model.chat_template or 'that of the base tokenizer'} (saved with the tokenizer)",
        *_hyperparameters(plan),
        "",
        "## Results",
        "",
        *metrics,
        "",
        "## How to load",
        "",
        *_how_to_load(plan),
        "",
        f"Or: `peftrun generate {plan.output_dir} --prompt \"...\"`.",
        "",
    ])
