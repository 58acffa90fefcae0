"""The trainer types beyond SFT / DPO / GRPO / reward on a tiny Llama: KTO, RLOO, distillation (a tiny
teacher with the student's tokenizer) and the experimental ORPO / CPO, each with LoRA; KTO and distillation
on a 4-bit base; their data and teacher checks before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import peftrun
from peftrun.errors import DataError, RecipeError
from tests import tiny
from tests.train.test_runner import LORA, adapter_logits, recipe

KTO = {"type": "kto", "max_length": 64}
RLOO = {"type": "rloo", "reward_funcs": ["answer_contains", "tests.train.test_trainers:distinct_characters"], "num_generations": 2,
        "per_device_train_batch_size": 2, "max_completion_length": 8}
GENERATE = {"per_device_train_batch_size": 2, "max_completion_length": 8}


def distinct_characters(completions: list[str], **kwargs: object) -> list[float]:
    """A reward that differs between sampled completions (so RLOO's leave-one-out advantages are not zero)."""
    return [float(len(set(c))) for c in completions]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wider random Llama with the student's tokenizer."""
    directory = tmp_path_factory.mktemp("teacher")
    tiny.build_tokenizer(directory)
    tiny.build_model(directory, hidden=64)
    return directory


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.write_jsonl(tmp_path_factory.mktemp("kto") / "kto.jsonl", tiny.unpaired_rows())


def _distillation(teacher: Path) -> dict:
    return {"type": "distillation", "teacher_model_name_or_path": str(teacher), **GENERATE}


@pytest.mark.parametrize("quantization", [None, {"bits": 4}], ids=["lora", "qlora"])
def test_kto_trains_with_lora(in_tmp: Path, tiny_model_dir: Path, unpaired: Path, quantization: dict | None) -> None:
    extra = {"quantization": quantization} if quantization else {}
    run_dir = peftrun.run(recipe(tiny_model_dir, unpaired, KTO, LORA, **extra))
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert not before.allclose(after)
    resolved = (run_dir / "recipe.resolved.yaml").read_text()
    assert "learning_rate: 1.0e-05" in resolved  # 10 x TRL's KTOConfig default 1e-6


def test_rloo_trains_with_lora(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "prompts.jsonl", RLOO, LORA))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["training"]["steps"] == 3
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert not before.allclose(after)


@pytest.mark.parametrize("quantization", [None, {"bits": 4}], ids=["lora", "qlora"])
def test_distillation_trains_the_student(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, teacher_dir: Path,
                                         quantization: dict | None) -> None:
    extra = {"quantization": quantization} if quantization else {}
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "prompts.jsonl", _distillation(teacher_dir), LORA, **extra))
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir), "LoRA sits on the student, not the teacher"
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert not before.allclose(after)


@pytest.mark.parametrize("kind", ["orpo", "cpo"])
def test_experimental_preference_trainers(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, kind: str) -> None:
    plan = peftrun.resolve(peftrun.load_recipe(recipe(tiny_model_dir, data_dir / "pref.jsonl", {"type": kind}, LORA)))
    assert any(f"trainer.type {kind} is experimental: TRL ships it in trl.experimental.{kind}" in w for w in plan.warnings)
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "pref.jsonl", {"type": kind, "max_length": 64}, LORA))
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert not before.allclose(after)


def test_kto_data_without_labels_fails_before_the_model_loads(in_tmp: Path, data_dir: Path) -> None:
    empty = in_tmp / "no-model"
    empty.mkdir()
    with pytest.raises(DataError) as error:
        peftrun.run(recipe(empty, data_dir / "sft.jsonl", KTO, LORA))
    assert str(error.value).startswith(
        "dataset.path: the kto trainer needs unpaired preference (completion, label, prompt) columns, but the data "
        "has ['completion', 'prompt']"
    )


def test_teacher_with_another_tokenizer_is_refused(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                   teacher_dir: Path, write_recipe) -> None:
    from transformers import AutoTokenizer

    other = in_tmp / "other-teacher"
    tokenizer = AutoTokenizer.from_pretrained(str(teacher_dir))
    tokenizer.add_tokens(["<tool>", "</tool>"])
    tokenizer.save_pretrained(str(other))  # no weights: the check comes before any model loads
    path = write_recipe(recipe(tiny_model_dir, data_dir / "prompts.jsonl", _distillation(other), LORA))
    with pytest.raises(RecipeError) as error:
        peftrun.run(path)
    assert [str(p) for p in error.value.problems] == [
        "recipe.yaml:12:3: trainer.teacher_model_name_or_path: the teacher's tokenizer differs from the student's "
        "(the teacher's vocabulary has 261 tokens, the student's 259); distillation compares the two models' "
        "next-token distributions over one vocabulary: use a teacher of the student's family"
    ]
    assert not (in_tmp / "runs").exists()
