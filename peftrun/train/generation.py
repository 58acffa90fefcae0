"""Greedy generation, tokenized as TRL tokenizes prompts (shared by `generate` and `eval`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def prompt_ids(tokenizer: Any, prompt: str | list[dict[str, str]]) -> list[int]:
    """Token ids of a prompt as TRL's SFT trainer builds them: chat messages through the chat template
    with the generation prompt; plain text through the tokenizer (special tokens such as BOS included)."""
    if isinstance(prompt, list):
        return list(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                                  return_dict=True)["input_ids"])
    return list(tokenizer(text=prompt)["input_ids"])


def as_chat(tokenizer: Any, text: str) -> str | list[dict[str, str]]:
    """A typed prompt: a user message when the tokenizer has a chat template, else the raw text."""
    return [{"role": "user", "content": text}] if tokenizer.chat_template else text


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """Stop on the tokenizer's EOS (what TRL appends to completions) and the model's own."""
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    return [tokenizer.eos_token_id, *(i for i in ids if i != tokenizer.eos_token_id)]


def generate(model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int, batch_size: int = 8,
             stop_rows: Callable[[range, int], Any] | None = None) -> list[str]:
    """Greedy completions (the new text only) for each prompt (text or chat messages).

    `stop_rows(rows, width)`, if given, makes a transformers StoppingCriteria for the prompts `rows` of a
    batch whose prompt part is `width` tokens wide: a row it marks done stops generating.
    """
    import torch

    pad = tokenizer.pad_token_id
    outputs: list[str] = []
    model.eval()
    for start in range(0, len(prompts), batch_size):
        batch = [prompt_ids(tokenizer, p) for p in prompts[start:start + batch_size]]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=model.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=model.device)
        rows = range(start, start + len(batch))
        criteria = [stop_rows(rows, width)] if stop_rows is not None else None
        with torch.no_grad():
            tokens = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                    do_sample=False, pad_token_id=pad, eos_token_id=_stop_ids(model, tokenizer),
                                    stopping_criteria=criteria)
        outputs += tokenizer.batch_decode(tokens[:, width:], skip_special_tokens=True)
    return outputs
