"""Special tokens: added tokens grow the embeddings, train with PEFT and reload with plain PEFT; a pad token equal
to EOS does not mask the EOS the model must learn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from tests import tiny
from tests.train.test_runner import LORA, recipe


def tool_rows(n: int = 16) -> list[dict[str, Any]]:
    return [{"prompt": f"Call {i % 3}:", "completion": f" <tool>{i % 3}</tool>"} for i in range(n)]


def test_new_tokens_get_a_rule_that_trains_their_rows() -> None:
    data = recipe(Path("m/m"), Path("d.jsonl"), {"type": "sft"}, LORA,
                  model={"name_or_path": "m/m", "special_tokens": {"additional": ["<tool>"], "eos_token": "<|eot|>"}})
    plan = resolve(load_recipe(data))
    assert plan.recipe.peft.trainable_tokens == ["<tool>", "<|eot|>"]
    assert plan.source("peft.trainable_tokens").startswith("rule new-tokens: added / EOS / BOS tokens train")
    with pytest.raises(RecipeError) as error:
        resolve(load_recipe({**data, "peft": {"method": "prompt_tuning"}}))
    assert "model.special_tokens: new tokens need trainable embeddings, which prompt_tuning cannot train" in str(error.value)


def test_added_tokens_train_save_and_reload_with_plain_peft(tiny_model_dir: Path, tmp_path: Path, in_tmp: Path) -> None:
    import peftrun
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = tiny.write_jsonl(tmp_path / "tools.jsonl", tool_rows())
    run_dir = peftrun.run(recipe(tiny_model_dir, data, {"type": "sft", "learning_rate": 0.05}, LORA,
                                 model={"name_or_path": str(tiny_model_dir),
                                        "special_tokens": {"additional": ["<tool>", "</tool>"]}}))
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    new = tokenizer.convert_tokens_to_ids(["<tool>", "</tool>"])
    assert new == [259, 260] and tokenizer.tokenize(" <tool>1")[1] == "<tool>"
    saved = load_file(str(run_dir / "adapter_model.safetensors"))
    prefix = "base_model.model.model.embed_tokens.token_adapter."
    initial, trained = saved[prefix + "base_layer.weight"][new], saved[prefix + "trainable_tokens_delta"]
    assert not torch.allclose(initial, trained), "the new tokens' embeddings trained"
    assert "base_model.model.lm_head.token_adapter.trainable_tokens_delta" in saved, "the untied output rows too"
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    base.resize_token_embeddings(len(tokenizer))
    model = PeftModel.from_pretrained(base, str(run_dir))
    with torch.no_grad():
        rows = model.get_input_embeddings()(torch.tensor(new))
    assert torch.allclose(rows, trained)


def test_pad_equal_to_eos_keeps_the_eos_trained(tiny_model_dir: Path, tmp_path: Path) -> None:
    """TRL 1.16 builds labels from the completion mask and pads labels by position (-100), never by token id,
    so an EOS that is also the pad token still carries loss."""
    import datasets
    from transformers import AutoTokenizer
    from trl import SFTConfig
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from peftrun.data.preview import sft_prepared

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.pad_token = tokenizer.eos_token
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none")
    rows = datasets.Dataset.from_list([{"prompt": "Say 1:", "completion": " 1"}, {"prompt": "Say 22:", "completion": " 22 22"}])
    prepared = sft_prepared(rows, tokenizer, args)
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)([prepared[0], prepared[1]])
    eos = tokenizer.eos_token_id
    first = batch["labels"][0].tolist()
    length = len(prepared[0]["input_ids"])
    assert first[length - 1] == eos, "the EOS ending the short example carries loss"
    assert first[length:] == [-100] * (len(first) - length), "padding after it does not"
    assert batch["input_ids"][0].tolist()[length:] == [eos] * (len(first) - length)
