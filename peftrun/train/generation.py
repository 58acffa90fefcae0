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


def as_chat(tokenizer: Any, text: str, system: str | None = None) -> str | list[dict[str, str]]:
    """A typed prompt: a user message (after the system prompt, if any) when the tokenizer has a chat
    template, else the raw text."""
    if not tokenizer.chat_template:
        return text
    return [*([{"role": "system", "content": system}] if system else []), {"role": "user", "content": text}]


def system_prompt(dataset: Any, rows: int = 256) -> str | None:
    """The system message every training example starts with (checked on the first `rows`), if there is one."""
    column = next((c for c in ("prompt", "messages") if c in dataset.column_names), None)
    if column is None or len(dataset) == 0:
        return None
    found = set()
    for row in dataset.select(range(min(rows, len(dataset)))):
        turns = row[column]
        if not isinstance(turns, list) or not turns or turns[0].get("role") != "system":
            return None
        found.add(turns[0]["content"])
    return found.pop() if len(found) == 1 else None


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """Stop on the tokenizer's EOS (what TRL appends to completions) and the model's own."""
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    return [tokenizer.eos_token_id, *(i for i in ids if i != tokenizer.eos_token_id)]


def _batch_rows(ids: list[list[int]], batch_size: int, equal_length: bool) -> list[list[int]]:
    """Prompt indices in batches: in order, or (for a shared prefix cache) of equal length, so none is padded."""
    if not equal_length:
        return [list(range(start, min(start + batch_size, len(ids)))) for start in range(0, len(ids), batch_size)]
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(ids):
        by_length.setdefault(len(row), []).append(i)
    return [group[s:s + batch_size] for group in by_length.values() for s in range(0, len(group), batch_size)]


def _generate_batch(model: Any, tokenizer: Any, batch: list[list[int]], criteria: Any, max_new_tokens: int,
                    prefix_cache: Any) -> list[str]:
    import copy

    import torch

    pad = tokenizer.pad_token_id
    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=model.device)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=model.device)
    kwargs: dict[str, Any] = {"stopping_criteria": [criteria] if criteria is not None else None}
    if prefix_cache is not None:
        kwargs["cache"] = copy.deepcopy(prefix_cache)
        kwargs["cache"].batch_repeat_interleave(len(batch))
    with torch.no_grad():
        tokens = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                do_sample=False, pad_token_id=pad, eos_token_id=_stop_ids(model, tokenizer), **kwargs)
    return tokenizer.batch_decode(tokens[:, width:], skip_special_tokens=True)


def generate(model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int, batch_size: int = 8,
             stop_rows: Callable[[list[int], int], Any] | None = None,
             prefix_cache: Callable[[list[list[int]]], Any] | None = None) -> list[str]:
    """Greedy completions (the new text only) for each prompt (text or chat messages).

    `stop_rows(rows, width)`, if given, makes a transformers StoppingCriteria for the prompts `rows` of a
    batch whose prompt part is `width` tokens wide: a row it marks done stops generating.
    `prefix_cache(prompt ids)`, if given, returns the key/value cache of a beginning every prompt shares
    (or None): batches then hold prompts of one length and start from a copy of it.
    """
    ids = [prompt_ids(tokenizer, p) for p in prompts]
    cache = prefix_cache(ids) if prefix_cache is not None else None
    outputs = [""] * len(prompts)
    model.eval()
    for rows in _batch_rows(ids, batch_size, equal_length=cache is not None):
        batch = [ids[i] for i in rows]
        criteria = stop_rows(rows, max(map(len, batch))) if stop_rows is not None else None
        for i, text in zip(rows, _generate_batch(model, tokenizer, batch, criteria, max_new_tokens, cache), strict=True):
            outputs[i] = text
    return outputs
