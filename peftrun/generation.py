"""Greedy generation with the tokenizer's chat template (shared by `generate` and `eval`)."""

from __future__ import annotations

from typing import Any


def prompt_text(tokenizer: Any, prompt: str | list[dict[str, str]]) -> str:
    """The model input for a prompt: chat-templated when the tokenizer has a template."""
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(m["content"] for m in messages)


def generate(model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy completions (the new text only) for each prompt."""
    import torch

    tokenizer.padding_side = "left"
    outputs: list[str] = []
    model.eval()
    for start in range(0, len(prompts), batch_size):
        texts = [prompt_text(tokenizer, p) for p in prompts[start:start + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            tokens = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        new = tokens[:, batch["input_ids"].shape[1]:]
        outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    return outputs
