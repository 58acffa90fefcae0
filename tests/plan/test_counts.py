"""Parameter counts of the meta skeleton equal PEFT's own count on the real (tiny) model, for every method."""

from __future__ import annotations

from typing import Any

import pytest

from peftrun.builders import build_peft_config
from peftrun.errors import ModelLoadError
from peftrun.plan.counts import count, kind_of
from peftrun.plan.estimate import skeleton_for
from tests.train.test_methods import TINY, TRAINABLE

LORA = {"method": "lora", "r": 4, "lora_alpha": 8}
METHODS = [
    pytest.param(LORA, {}, id="lora"),
    pytest.param({**LORA, "use_dora": True}, {}, id="dora"),
    pytest.param({**LORA, "target_modules": ["q_proj", "v_proj"], "modules_to_save": ["lm_head"]}, {}, id="lora-modules-to-save"),
    pytest.param({**LORA, "target_modules": ["q_proj"], "layers_to_transform": [1]}, {}, id="lora-one-layer"),
    pytest.param({"method": "prompt_tuning", "num_virtual_tokens": 7}, {}, id="prompt-tuning"),
    pytest.param(LORA, {"type": "reward"}, id="reward-lora-score-head"),
]


def real_counts(plan: Any) -> tuple[int, int]:
    """PEFT's own count on the real model, loaded as the runner loads it."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if plan.trainer_type == "reward" else AutoModelForCausalLM
    extra = {"num_labels": 1} if plan.trainer_type == "reward" else {}
    model = auto.from_pretrained(plan.recipe.model.name_or_path, dtype=torch.float32, **extra)
    return get_peft_model(model, build_peft_config(plan)).get_nb_trainable_parameters()


# Initializations that read the weights (SHiRA's random mask calls torch.nonzero; FRoD and AdaMSS copy out of
# the weight): no skeleton on the meta device, so `plan` says it cannot estimate (exit 4).
NEEDS_WEIGHTS = ("shira", "frod", "adamss")


@pytest.mark.parametrize("method", TRAINABLE)
def test_every_method_counts_as_peft_does(make_plan: Any, method: str) -> None:
    """Every PEFT method the schema accepts for a causal LM (the tiny settings of tests/train/test_methods.py)."""
    if method in NEEDS_WEIGHTS:
        with pytest.raises(ModelLoadError, match="cannot build the .* model without its weights"):
            skeleton_for(make_plan({"method": method, **TINY.get(method, {})}, {"max_steps": 2}))
        return
    plan = make_plan({"method": method, **TINY.get(method, {})}, {"max_steps": 2})
    counts = count(skeleton_for(plan))
    assert (counts.trainable, counts.total) == real_counts(plan)


@pytest.mark.parametrize(("peft", "trainer"), METHODS)
def test_counts_equal_peft_on_the_real_model(make_plan: Any, peft: dict, trainer: dict) -> None:
    plan = make_plan(peft, trainer)
    counts = count(skeleton_for(plan))
    assert (counts.trainable, counts.total) == real_counts(plan)
    assert sum(row["trainable"] for row in counts.by_kind.values()) == counts.trainable


def test_full_fine_tuning_trains_everything(make_plan: Any, tiny_model_dir: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    counts = count(skeleton_for(make_plan()))
    real = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    assert counts.total == counts.trainable == sum(p.numel() for p in real.parameters())


def test_kinds_name_the_adapted_module() -> None:
    assert kind_of("base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight") == "model.layers.*.self_attn.q_proj"
    assert kind_of("base_model.model.model.layers.0.mlp.up_proj.base_layer.weight") == "model.layers.*.mlp.up_proj"
    assert kind_of("prompt_encoder.default.embedding.weight") == "prompt_encoder"
    assert kind_of("model.norm.weight") == "model.norm"


@pytest.mark.parametrize("init", ["pissa", "olora", "corda", "eva"])
def test_weight_or_data_initializations_count_as_the_plain_one(make_plan: Any, init: str) -> None:
    plain = count(skeleton_for(make_plan({**LORA, "target_modules": ["q_proj", "v_proj"]})))
    other = count(skeleton_for(make_plan({**LORA, "target_modules": ["q_proj", "v_proj"], "init_lora_weights": init})))
    assert (other.trainable, other.total) == (plain.trainable, plain.total)
