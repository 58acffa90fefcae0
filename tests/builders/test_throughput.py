"""trainer.throughput on real TRL trainers and a tiny random Llama: the batching `auto` chooses, and proof that
it changes nothing but the speed. For every batching `auto` can choose for SFT (padding-free, on both masked
attention implementations), prompt-completion and conversational data with assistant-only loss: every
example's loss, the batch loss, the gradient of one step and the eval loss equal the padded baseline's to 1e-5
in float32. (DPO: auto keeps TRL's padded batches, tests/recipe/test_throughput_rule.py.)"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from peftrun.builders import build_training_args
from peftrun.builders.throughput import Batching, apply_throughput, keeps_examples_apart
from peftrun.builders.trainer import build_trainer
from peftrun.data import load_training_data
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.train.modeling import load_model, load_tokenizer
from tests import tiny

TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


def long_tailed_rows(n: int = 16) -> list[dict[str, str]]:
    rng = random.Random(0)
    return [{"prompt": f"Say {i}" + "?" * rng.choice([1, 2, 30]), "completion": " ok" * rng.choice([1, 3, 40])}
            for i in range(n)]


def chat_rows(n: int = 16) -> list[dict[str, Any]]:
    rng = random.Random(1)
    return [{"messages": [{"role": "user", "content": f"Hi {i}" + "!" * rng.choice([1, 2, 5])},
                          {"role": "assistant", "content": "yes " * rng.choice([1, 1, 1, 1, 2, 2, 90])},
                          {"role": "user", "content": "again"},
                          {"role": "assistant", "content": "no " * rng.choice([1, 1, 3])}]} for i in range(n)]


def trainer_for(folder: Path, model_dir: Path, rows: list[dict[str, Any]], attention: str = "sdpa",
                throughput: str = "auto", **trainer: Any) -> Any:
    """The TRL trainer peftrun builds for a LoRA SFT recipe on `rows` (float32, no dropout), with its batching
    applied; the batching is in `trainer.peftrun_batching`."""
    data = tiny.write_jsonl(folder / "data.jsonl", rows)
    model: dict[str, Any] = {"name_or_path": str(model_dir), "attn_implementation": attention}
    if "messages" in rows[0]:
        model["chat_template"] = "chatml"
        trainer = {"assistant_only_loss": True, **trainer}
    plan = resolve(load_recipe({
        "name": "t", "model": model, "peft": {"method": "lora", "r": 4, "lora_dropout": 0.0},
        "trainer": {"type": "sft", "per_device_train_batch_size": 8, "report_to": "none", "throughput": throughput,
                    "activation_checkpointing": False, **trainer},
        "dataset": {"path": str(data)}, "output": {"dir": str(folder / "run")}}))
    tokenizer = load_tokenizer(plan)
    built = build_trainer(plan, build_training_args(plan), load_model(plan, tokenizer), tokenizer,
                          load_training_data(plan))
    built.peftrun_batching = apply_throughput(plan, built)
    torch.manual_seed(0)  # LoRA's B starts at zero: random adapters make every gradient non-trivial
    for param in built.model.parameters():
        if param.requires_grad:
            param.data.normal_(0.0, 0.2)
    return built


def batch(trainer: Any, padding_free: bool, count: int = 8) -> dict[str, Any]:
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in trainer.train_dataset.select(range(count))]
    return dataclasses.replace(trainer.data_collator, padding_free=padding_free)(rows)


def per_example_losses(model: Any, inputs: dict[str, Any]) -> torch.Tensor:
    """Each example's mean token loss: rows of a padded batch, position-id segments of a padding-free row."""
    logits = model(**{k: v for k, v in inputs.items() if k != "labels"}).logits[:, :-1]
    labels = inputs["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none", ignore_index=-100)
    if "position_ids" in inputs:
        segment = ((inputs["position_ids"] == 0).cumsum(-1) - 1)[:, 1:]
    else:
        segment = torch.arange(labels.shape[0])[:, None].expand_as(labels)
    valid = labels != -100
    count = int(segment.max()) + 1
    sums = torch.zeros(count).index_add(0, segment[valid], losses[valid])
    tokens = torch.zeros(count).index_add(0, segment[valid], torch.ones_like(losses[valid]))
    return sums / tokens


def step(trainer: Any, padding_free: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(per-example losses, batch loss, gradient) of one training step on the first 8 examples."""
    model, inputs = trainer.model, batch(trainer, padding_free)
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, inputs)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        return per_example_losses(model, inputs), loss.detach(), grads


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("rows", [long_tailed_rows, chat_rows], ids=["prompt-completion", "assistant-only"])
def test_padding_free_equals_padded(tmp_path: Path, tiny_model_dir: Path, rows: Any, attention: str) -> None:
    trainer = trainer_for(tmp_path, tiny_model_dir, rows(), attention)
    assert trainer.peftrun_batching.name == "padding_free"
    assert trainer.data_collator.padding_free
    padded_losses, padded_loss, padded_grads = step(trainer, padding_free=False)
    flat_losses, flat_loss, flat_grads = step(trainer, padding_free=True)
    assert batch(trainer, padding_free=False)["attention_mask"].float().mean() < 0.7  # real padding to remove
    assert padded_losses.shape == (8,)
    torch.testing.assert_close(flat_losses, padded_losses, **TOLERANCE)
    torch.testing.assert_close(flat_loss, padded_loss, **TOLERANCE)
    assert any(g.abs().max() > 1e-3 for g in padded_grads.values())
    for name, grad in padded_grads.items():
        torch.testing.assert_close(flat_grads[name], grad, **TOLERANCE, msg=name)


def test_eval_loss_is_unchanged(tmp_path: Path, tiny_model_dir: Path) -> None:
    trainer = trainer_for(tmp_path, tiny_model_dir, long_tailed_rows(13), per_device_eval_batch_size=4)
    assert trainer.data_collator.padding_free  # 4 batches, the last one short
    flat = trainer.evaluate(eval_dataset=trainer.train_dataset)["eval_loss"]
    trainer.data_collator = dataclasses.replace(trainer.data_collator, padding_free=False)
    padded = trainer.evaluate(eval_dataset=trainer.train_dataset)["eval_loss"]
    assert flat == pytest.approx(padded, abs=1e-5)


def test_off_keeps_trls_padded_batches(tmp_path: Path, tiny_model_dir: Path) -> None:
    trainer = trainer_for(tmp_path, tiny_model_dir, long_tailed_rows(), throughput="off")
    assert trainer.peftrun_batching.name == "padded" and not trainer.data_collator.padding_free
    assert "trainer.throughput off" in trainer.peftrun_batching.reason
    assert 0.3 < trainer.peftrun_batching.padding_fraction < 0.9


def test_auto_pads_when_flattening_costs_more(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Equal long examples: nothing to remove, and a flattened row's attention over 8 x 100 tokens costs more."""
    rows = [{"prompt": "Q" * 50, "completion": " " + "a" * 50} for _ in range(16)]
    trainer = trainer_for(tmp_path, tiny_model_dir, rows)
    assert trainer.peftrun_batching == Batching("padded", trainer.peftrun_batching.reason, 0.0)
    assert "padded batches, padding-free" in trainer.peftrun_batching.reason
    assert not trainer.data_collator.padding_free


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_probe_sees_examples_kept_apart(tiny_model_dir: Path, attention: str) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation=attention)
    assert keeps_examples_apart(model)


def test_the_probe_sees_examples_that_attend_across(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transformers without packed-sequence detection (before masking_utils.find_packed_sequence_indices) lets
    a flattened row attend across examples: the probe says so, and a run would keep padded batches."""
    from transformers import AutoModelForCausalLM, masking_utils

    monkeypatch.setattr(masking_utils, "find_packed_sequence_indices", lambda position_ids: None)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa")
    assert not keeps_examples_apart(model)


def test_trls_dpo_trainer_turns_padding_free_off(tmp_path: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    """Why the rule keeps DPO padded: the installed TRL's DPOTrainer ignores padding_free=True."""
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=str(tmp_path), padding_free=True, use_cpu=True, bf16=False, report_to="none")
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), args=args,
                         train_dataset=load_dataset("json", data_files=str(data_dir / "pref.jsonl"), split="train"),
                         processing_class=AutoTokenizer.from_pretrained(str(tiny_model_dir)),
                         peft_config=LoraConfig(r=4, task_type="CAUSAL_LM"))
    assert trainer.padding_free is False


@pytest.mark.parametrize(("strategy", "padding_free"), [("bfd", True), ("wrapped", False)])
def test_packing_stays_trls(tmp_path: Path, tiny_model_dir: Path, strategy: str, padding_free: bool) -> None:
    """Packing is the recipe's choice (it changes which examples share a row): TRL's, named, never added to."""
    trainer = trainer_for(tmp_path, tiny_model_dir, long_tailed_rows(), packing=True, packing_strategy=strategy,
                          max_length=64)
    assert trainer.peftrun_batching.name == "packed"
    assert trainer.data_collator.padding_free is padding_free
