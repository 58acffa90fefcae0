"""Greedy generation with the tokenizer's chat template (shared by `generate` and `eval`)."""

from __future__ import annotations

from typing import Any


def prompt_text(tokenizer: Any, prompt: str | list[dict[str, str]], chat: bool = True) -> str:
    """The model input for a prompt. Messages always go through the chat template; a plain string
    does when `chat` is set and the tokenizer has a template (a user's typed prompt), and stays raw
    otherwise (plain-text training data, which TRL trains without a template)."""
    if isinstance(prompt, str) and not (chat and tokenizer.chat_template):
        return prompt
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate(model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int, chat: bool = True,
             batch_size: int = 8) -> list[str]:
    """Greedy completions (the new text only) for each prompt."""
    import torch

    tokenizer.padding_side = "left"
    outputs: list[str] = []
    model.eval()
    for start in range(0, len(prompts), batch_size):
        texts = [prompt_text(tokenizer, p, chat) for p in prompts[start:start + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            tokens = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        new = tokens[:, batch["input_ids"].shape[1]:]
        outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    return outputs
