"""trainer.throughput: the rule the resolver names for each trainer type, attention implementation and
device (explain shows it); TRL's own padding-free switch never reaches the TRL config from it."""

from __future__ import annotations

from typing import Any

import pytest

from peftrun.recipe.explain import rows
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve, throughput_rule

GPU = Hardware(cuda=True, bf16=True, device_count=1, name="H100")


def plan(trainer: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
         peft: dict[str, Any] | None = None, hardware: Hardware = CPU) -> Plan:
    return resolve(load_recipe({
        "model": {"name_or_path": "org/model", **(model or {})}, "dataset": {"path": "org/data"},
        "trainer": {"type": "sft", **(trainer or {})}, "peft": peft or {"method": "lora"}}), hardware)


def explained(p: Plan) -> str:
    return next(source for key, _, source in rows(p) if key == "trainer.throughput")


@pytest.mark.parametrize(("trainer", "model", "peft", "hardware", "batching", "rule"), [
    ({}, {}, None, CPU, "padding_free_if_cheaper", "rule throughput-sft-masked: padding-free batches when the data's "
                                                   "lengths make them cheaper than padding (sdpa on CPU"),
    ({}, {"attn_implementation": "eager"}, None, GPU, "padding_free_if_cheaper", "(eager on CUDA masks"),
    ({}, {"attn_implementation": "flash_attention_2"}, None, GPU, "padding_free", "rule throughput-sft-varlen"),
    ({}, {"attn_implementation": "flex_attention"}, None, GPU, "padded", "flex_attention is not known"),
    ({"packing": True}, {}, None, CPU, "packed", "rule throughput-packing: the recipe asks for packing"),
    ({}, {}, {"method": "prompt_tuning"}, CPU, "padded", "virtual tokens need the attention mask"),
    ({"type": "dpo"}, {}, None, GPU, "padded", "TRL 1.16's DPOTrainer turns padding_free off"),
    ({"type": "kto"}, {}, None, CPU, "padded", "TRL's kto trainer has no padding-free collator"),
    ({"throughput": "off"}, {}, None, GPU, "padded", "trainer.throughput off: TRL's defaults"),
])
def test_the_rule_per_trainer_attention_and_device(trainer: dict, model: dict, peft: dict | None, hardware: Hardware,
                                                   batching: str, rule: str) -> None:
    p = plan(trainer, model, peft, hardware)
    chosen, reason = throughput_rule(p.recipe, p.hardware)
    assert chosen == batching and rule in reason
    if p.recipe.trainer.throughput == "auto":
        assert explained(p) == reason  # explain names the rule
    assert "throughput" not in p.training_args and "padding_free" not in p.training_args


def test_off_written_in_the_recipe_is_shown_as_written() -> None:
    assert explained(plan({"throughput": "off"})) != "default"
    assert "rule" not in explained(plan({"throughput": "off"}))


def test_an_unknown_setting_is_refused_with_the_choices() -> None:
    from peftrun.errors import RecipeError

    with pytest.raises(RecipeError) as caught:
        plan({"throughput": "fast"})
    assert "trainer.throughput" in str(caught.value) and "'auto'" in str(caught.value)
