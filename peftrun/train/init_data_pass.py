"""Data-driven LoRA initializations: EVA and CorDA read activations of the recipe's own training data.

CorDA runs its pass on the base model before TRL wraps it (PEFT's preprocess_corda, then the LoRA layers
start from the decomposition); EVA runs on the wrapped model before the first step (PEFT's
initialize_lora_eva_weights, which may also move ranks between layers). Both see up to
CALIBRATION_EXAMPLES training examples, rendered as the trainer would show them to the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from peftrun.recipe.plan import Plan

CALIBRATION_EXAMPLES = 64
BATCH_SIZE = {"eva": 4, "corda": 1}  # PEFT's CorDA hook reads one example per forward pass
MAX_TOKENS = 512


def _init(plan: Plan) -> str:
    return str(getattr(plan.recipe.peft, "init_lora_weights", ""))


def _as_text(value: Any, tokenizer: Any) -> str:
    """A column value as text: strings as they are, conversations through the chat template."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return str(tokenizer.apply_chat_template(value, tokenize=False))
    return ""


def example_text(row: dict[str, Any], tokenizer: Any) -> str:
    """One training example as the text the model reads: text, a conversation, or a prompt with its answer."""
    for key in ("text", "messages", "conversations"):
        if key in row:
            return _as_text(row[key], tokenizer)
    answer = next((row[k] for k in ("completion", "chosen") if k in row), "")
    if isinstance(row.get("prompt"), list) and isinstance(answer, list):
        return _as_text(row["prompt"] + answer, tokenizer)
    return _as_text(row.get("prompt", ""), tokenizer) + _as_text(answer, tokenizer)


def calibration_batches(data: Any, tokenizer: Any, device: Any, size: int) -> list[dict[str, Any]]:
    """Tokenized batches of `size` first training examples; labels mask the padding (EVA reads only real tokens)."""
    rows = data.train.select(range(min(CALIBRATION_EXAMPLES, len(data.train))))
    texts = [t for t in (example_text(row, tokenizer) for row in rows) if t]
    batches = []
    for start in range(0, len(texts), size):
        batch = tokenizer(texts[start:start + size], padding=True, truncation=True, max_length=MAX_TOKENS,
                          return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        batches.append({"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device),
                        "labels": labels.to(device)})
    return batches


def _forward_all(model: Any, batches: list[dict[str, Any]]) -> Iterator[Any]:
    import torch

    with torch.no_grad():
        for batch in batches:
            yield model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])


def before_wrap(plan: Plan, model: Any, data: Any, tokenizer: Any) -> None:
    """CorDA: collect the covariance of each adapted layer's inputs on the base model (PEFT's preprocess_corda)."""
    if _init(plan) != "corda":
        return
    from peft.tuners.lora.corda import preprocess_corda
    from peft.tuners.tuners_utils import _maybe_include_all_linear_layers

    from peftrun.builders import build_peft_config

    # preprocess_corda matches target_modules literally: expand all-linear as get_peft_model will
    config = _maybe_include_all_linear_layers(build_peft_config(plan), model)
    batches = calibration_batches(data, tokenizer, model.device, BATCH_SIZE["corda"])
    preprocess_corda(model, config, run_model=lambda: list(_forward_all(model, batches)))


def after_wrap(plan: Plan, trainer: Any, data: Any, tokenizer: Any) -> None:
    """EVA: initialize the LoRA weights from the SVD of the adapted layers' inputs (PEFT's
    initialize_lora_eva_weights) before the optimizer is built."""
    if _init(plan) != "eva":
        return
    from peft import initialize_lora_eva_weights

    model = trainer.model
    batches = calibration_batches(data, tokenizer, model.device, BATCH_SIZE["eva"])
    initialize_lora_eva_weights(model, dataloader=batches, show_progress_bar=False)
