"""Shipped chat templates: exact strings, assistant-only loss on exactly the replies and their end-of-turn token,
the template's EOS for the trainer, and the refusals (no template for conversational data, missing tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun.data.preview import example, sft_prepared
from peftrun.data.templates import TEMPLATE_TOKENS, prepare_tokenizer, template_text
from peftrun.errors import RecipeError
from peftrun.recipe import defaults
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from tests import tiny
from tests.train.test_runner import LORA, recipe

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "How are you?"},
                {"role": "assistant", "content": "Fine"}]
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"

# The conversation without its last reply, rendered with the generation prompt.
PROMPTS = {
    "chatml": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello"
              "<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
    "llama2": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] How are you? [/INST]",
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>"
              "user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant"
              "<|end_header_id|>\n\n",
    "mistral": "<s>[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] How are you? [/INST]",
    "gemma": "<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
             "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n",
    "phi3": "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|user|>\nHow are you?"
            "<|end|>\n<|assistant|>\n",
    "qwen3": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello"
             "<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
    "qwen3-no-thinking": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>"
                         "assistant\nHello<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n"
                         "<think>\n\n</think>\n\n",
    "zephyr": "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|user|>\nHow are you?</s>\n"
              "<|assistant|>\n",
    "alpaca": "Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello</s>\n\n### Instruction:\nHow are you?\n\n"
              "### Response:\n",
}
# What carries loss with assistant_only_loss: each reply and its end-of-turn token.
TRAINED = {
    "chatml": "Hello<|im_end|>Fine<|im_end|>",
    "llama2": " Hello </s> Fine </s>",
    "llama3": "Hello<|eot_id|>Fine<|eot_id|>",
    "mistral": "Hello</s>Fine</s>",
    "gemma": "Hello<end_of_turn>Fine<end_of_turn>",
    "phi3": "Hello<|end|>Fine<|end|>",
    "qwen3": "Hello<|im_end|><think>\n\n</think>\n\nFine<|im_end|>",  # the last reply thinks (empty here)
    "qwen3-no-thinking": "Hello<|im_end|>Fine<|im_end|>",
    "zephyr": "Hello</s>Fine</s>",
    "alpaca": "Hello</s>Fine</s>",
}


@pytest.fixture(scope="module")
def family_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny byte-level tokenizer with <s> / </s> and every shipped template's special tokens."""
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("family-tok")
    tiny.build_tokenizer(directory)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    extra = sorted({t for tokens in TEMPLATE_TOKENS.values() for t in tokens})
    tokenizer.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>", "extra_special_tokens": extra})
    return tokenizer


def test_every_shipped_template_is_tested() -> None:
    assert set(PROMPTS) == set(TRAINED) == set(defaults.CHAT_TEMPLATES)


@pytest.mark.parametrize("name", list(PROMPTS))
def test_template_renders_the_documented_format(family_tokenizer: Any, name: str) -> None:
    text = family_tokenizer.apply_chat_template(CONVERSATION[:-1], chat_template=template_text(name), tokenize=False,
                                                add_generation_prompt=True)
    assert text == PROMPTS[name]


@pytest.mark.parametrize("name", list(TRAINED))
def test_assistant_only_loss_trains_the_replies_and_their_end_of_turn(family_tokenizer: Any, name: str,
                                                                       tmp_path: Path) -> None:
    import copy

    import datasets
    from trl import SFTConfig

    tokenizer = copy.deepcopy(family_tokenizer)  # TRL's preparation sets the trainer's EOS on it
    tokenizer.chat_template = template_text(name)
    eos = defaults.CHAT_TEMPLATES[name]
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, assistant_only_loss=True, eos_token=eos,
                     report_to="none")
    prepared = sft_prepared(datasets.Dataset.from_list([{"messages": CONVERSATION}]), tokenizer, args)
    shown = example(tokenizer, prepared[0]["input_ids"], prepared[0]["labels"])
    assert shown["trained_text"] == TRAINED[name]
    assert shown["text"].startswith(PROMPTS[name]), "the prompt renders the same alone and in the conversation"


def test_qwen3_keeps_the_last_reasoning_and_drops_earlier_ones(family_tokenizer: Any) -> None:
    turns = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n2"},
             {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd again\n</think>\n\n4"}]
    text = family_tokenizer.apply_chat_template(turns, chat_template=template_text("qwen3"), tokenize=False)
    assert text == ("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\n2+2?"
                    "<|im_end|>\n<|im_start|>assistant\n<think>\nadd again\n</think>\n\n4<|im_end|>\n")


def test_template_end_of_turn_becomes_the_trainer_eos() -> None:
    data = recipe(Path("m/m"), Path("d.jsonl"), {"type": "sft"}, LORA, model={"name_or_path": "m/m", "chat_template": "llama3"})
    plan = resolve(load_recipe(data))
    assert plan.training_args["eos_token"] == "<|eot_id|>"
    assert plan.source("trainer.eos_token") == (
        "rule template-eos: the chat template ends each assistant turn with this token (llama3: <|eot_id|>)")
    mine = resolve(load_recipe({**data, "trainer": {**data["trainer"], "eos_token": "<|im_end|>"}}))
    assert mine.training_args["eos_token"] == "<|im_end|>"


def test_an_unknown_template_name_is_refused() -> None:
    data = recipe(Path("m/m"), Path("d.jsonl"), {"type": "sft"}, LORA, model={"name_or_path": "m/m", "chat_template": "chatm"})
    with pytest.raises(RecipeError) as error:
        load_recipe(data)
    assert "model.chat_template: no shipped template named 'chatm'; did you mean `chatml`? (shipped: chatml, llama2" in str(error.value)


def test_a_template_whose_tokens_the_tokenizer_lacks_is_refused(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    data = recipe(tiny_model_dir, Path("d.jsonl"), {"type": "sft"}, LORA,
                  model={"name_or_path": str(tiny_model_dir), "chat_template": "gemma"})
    with pytest.raises(RecipeError) as error:
        prepare_tokenizer(AutoTokenizer.from_pretrained(str(tiny_model_dir)), resolve(load_recipe(data)))
    assert str(error.value) == (
        '1 problem\n  python mapping: model.chat_template: the gemma template writes "<start_of_turn>", '
        '"<end_of_turn>", which the tokenizer does not have; add them with model.special_tokens.additional: '
        '["<start_of_turn>", "<end_of_turn>"] (their embeddings then train), or pick a template of the model\'s family')


def test_conversational_data_on_a_model_without_template_is_refused(tmp_path: Path, in_tmp: Path) -> None:
    import peftrun

    base = tmp_path / "base"
    tiny.build_tokenizer(base)
    (base / "chat_template.jinja").unlink()
    tiny.build_model(base)
    data = tiny.write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "Hi"},
                                                                    {"role": "assistant", "content": "Ho"}]}] * 4)
    with pytest.raises(RecipeError) as error:
        peftrun.run(recipe(base, data, {"type": "sft"}, LORA))
    assert str(error.value) == (
        f"1 problem\n  python mapping: model.chat_template: the data is conversational but the tokenizer of {base} has "
        "no chat template (a base model?): set model.chat_template to one of chatml, llama2, llama3, mistral, gemma, "
        "phi3, qwen3, qwen3-no-thinking, zephyr, alpaca (alpaca suits a base model) or to a .jinja file")
