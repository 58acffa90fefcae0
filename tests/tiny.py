"""Tiny random models, tokenizers and datasets, built offline for tests."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(directory: Path, bos: bool = False) -> None:
    """A byte-level tokenizer (every text encodes) with ChatML special tokens and template;
    with `bos`, it starts every encoded text with <|endoftext|> as its BOS (as Llama tokenizers do)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(SPECIAL + sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    if bos:
        core.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|endoftext|>" if bos else None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(str(directory))


def build_model(directory: Path, vocab_size: int = 259, layers: int = 2, hidden: int = 32) -> None:
    """A random Llama of a few tens of thousands of parameters."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=None, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(str(directory))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def sft_rows(n: int = 32) -> list[dict]:
    return [{"prompt": f"Say {i % 7} twice:", "completion": f" {i % 7} {i % 7}"} for i in range(n)]


def preference_rows(n: int = 32) -> list[dict]:
    return [{"prompt": f"Count to {i % 5}:", "chosen": " " + " ".join(map(str, range(i % 5 + 1))),
             "rejected": " no"} for i in range(n)]


def prompt_rows(n: int = 16) -> list[dict]:
    return [{"prompt": f"Repeat {i % 4}:", "answer": str(i % 4)} for i in range(n)]


def unpaired_rows(n: int = 32) -> list[dict]:
    """KTO's unpaired preference format: a completion and whether it is desirable."""
    return [{"prompt": f"Count to {i % 5}:", "completion": " " + " ".join(map(str, range(i % 5 + 1))) if i % 2 else " no",
             "label": bool(i % 2)} for i in range(n)]


def text_rows(n: int = 32) -> list[dict]:
    return [{"text": f"The number {i % 9} follows {i % 9 - 1}."} for i in range(n)]
