"""The estimate for every trainer type and launch strategy: it builds, its parts add up, the trainer's own
memory (DPO's two rows per example, GRPO's generations) is in it."""

from __future__ import annotations

from typing import Any

import pytest

from peftrun.plan.estimate import estimate
from peftrun.recipe.gpus import target_hardware

LORA = {"method": "lora", "r": 4}


@pytest.mark.parametrize(("trainer", "launch"), [
    pytest.param({"type": "sft"}, None, id="sft"),
    pytest.param({"type": "dpo"}, None, id="dpo"),
    pytest.param({"type": "reward"}, None, id="reward"),
    pytest.param({"type": "grpo", "reward_funcs": ["answer_match"], "num_generations": 2}, None, id="grpo"),
    pytest.param({"type": "sft"}, {"strategy": "fsdp", "num_processes": 2}, id="fsdp"),
])
def test_every_trainer_estimates(make_plan: Any, trainer: dict, launch: dict | None) -> None:
    sections = {"launch": launch} if launch else {}
    plan = make_plan(LORA, {**trainer, "per_device_train_batch_size": 2}, target_hardware("l4", 2 if launch else None), **sections)
    result = estimate(plan)
    memory = result.memory
    parts = memory.weights + memory.adapter + memory.gradients + memory.optimizer + memory.activations + memory.overhead
    assert parts == memory.band["expected"] and result.fits is True
    assert result.settings.rows == (4 if trainer["type"] in ("dpo", "reward") else 2)
    if trainer["type"] == "grpo":
        assert any("GRPO" in note for note in memory.notes)


def test_dpo_step_is_larger_than_sft(make_plan: Any) -> None:
    def activations(kind: str) -> int:
        plan = make_plan(LORA, {"type": kind, "per_device_train_batch_size": 2, "max_length": 128}, target_hardware("l4", None))
        return estimate(plan).memory.activations

    assert activations("dpo") > activations("sft")
