"""The plan's exact memory parts against real tensors: weights as loaded (bitsandbytes 4-bit and 8-bit on this
CPU included), gradients after a backward pass, optimizer states after one step."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from peftrun.builders import build_peft_config, build_quantization_config
from peftrun.plan.estimate import skeleton_for
from peftrun.plan.memory import gradient_bytes, optimizer_bytes, quantization_constants, weight_bytes

LORA = {"method": "lora", "r": 4, "lora_alpha": 8}


def loaded(plan: Any) -> Any:
    """The PEFT model as the runner loads it (quantized when the recipe says so), with TRL's casts."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from peftrun.plan.skeleton import _trainer_casts

    model = AutoModelForCausalLM.from_pretrained(plan.recipe.model.name_or_path, dtype=torch.float32,
                                                 quantization_config=build_quantization_config(plan))
    peft_model = get_peft_model(model, build_peft_config(plan))
    _trainer_casts(plan, peft_model)
    return peft_model


def real_weight_bytes(model: Any) -> int:
    """Every storage of the model's parameters and quantization constants, each counted once."""
    return storage_bytes([*model.parameters(), *quantization_state(model)])


def storage_bytes(tensors: list[Any]) -> int:
    return sum({id(t.untyped_storage()): t.untyped_storage().nbytes() for t in tensors}.values())


def quantization_state(model: Any) -> list[Any]:
    """The tensors bitsandbytes keeps beside the packed weights (quant_state, SCB): not parameters."""
    tensors = []
    for module in model.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None:
            tensors += [state.absmax, state.code]
            if state.nested:
                tensors += [state.offset, state.state2.absmax, state.state2.code]
        if getattr(weight, "SCB", None) is not None:
            tensors.append(weight.SCB)
    return tensors


@pytest.mark.parametrize("quantization", [
    pytest.param(None, id="float32"),
    pytest.param({"bits": 4}, id="nf4-double-quant"),
    pytest.param({"bits": 4, "quant_type": "fp4", "double_quant": False}, id="fp4"),
    pytest.param({"bits": 8}, id="int8"),
])
def test_weight_bytes_equal_the_loaded_model(make_plan: Any, quantization: dict | None) -> None:
    plan = make_plan(LORA, quantization=quantization) if quantization else make_plan(LORA)
    frozen, adapter = weight_bytes(skeleton_for(plan), plan.recipe.quantization)
    assert frozen + adapter == real_weight_bytes(loaded(plan))


@pytest.mark.parametrize("quantization", [{"bits": 4}, {"bits": 4, "double_quant": False}, {"bits": 8}],
                         ids=["nf4-double-quant", "nf4", "int8"])
def test_quantization_constants_equal_the_loaded_quant_state(make_plan: Any, quantization: dict) -> None:
    """What FSDP / ZeRO-3 cannot shard (bitsandbytes keeps it outside the parameters) equals the loaded model's."""
    plan = make_plan(LORA, quantization=quantization)
    constants = quantization_constants(skeleton_for(plan), plan.recipe.quantization)
    assert constants == storage_bytes(quantization_state(loaded(plan))) > 0


def test_gradient_bytes_equal_the_real_gradients(make_plan: Any) -> None:
    plan = make_plan(LORA)
    model = loaded(plan)
    model(input_ids=torch.ones((2, 8), dtype=torch.long), labels=torch.ones((2, 8), dtype=torch.long)).loss.backward()
    real = sum(p.grad.untyped_storage().nbytes() for p in model.parameters() if p.grad is not None)
    assert gradient_bytes(skeleton_for(plan)) == real


def _optimizer(name: str, params: list[Any]) -> Any:
    from transformers.optimization import Adafactor

    if name == "adafactor":
        return Adafactor(params, lr=1e-3, relative_step=False, scale_parameter=False, warmup_init=False)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3)
    if name == "adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=1e-3)
    return torch.optim.AdamW(params, lr=1e-3)


@pytest.mark.parametrize("optim", ["adamw_torch", "sgd", "adafactor", "adamw_8bit"])
def test_optimizer_bytes_equal_the_state_after_one_step(make_plan: Any, optim: str) -> None:
    plan = make_plan(LORA if optim != "adamw_8bit" else {**LORA, "r": 64})  # 8-bit states need tensors of 4096+
    model = loaded(plan)
    params = [p for p in model.parameters() if p.requires_grad]
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer = _optimizer(optim, params)
    optimizer.step()
    states = [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    real = sum({id(t.untyped_storage()): t.untyped_storage().nbytes() for t in states}.values())
    assert optimizer_bytes(skeleton_for(plan), optim)[0] == real


def test_every_linear_quantizes_the_output_layer_as_bitsandbytes_does(make_plan: Any) -> None:
    """Another loop's 4-bit conversion of every linear layer (Lightning's BitsandbytesPrecision, litgpt): the weight
    bytes equal the model that transformers loads with no module kept in 16 bits (`llm_int8_skip_modules=[]`)."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from peftrun.plan.skeleton import _trainer_casts

    plan = make_plan(LORA, quantization={"bits": 4})
    config = build_quantization_config(plan)
    config.llm_int8_skip_modules = []
    model = AutoModelForCausalLM.from_pretrained(plan.recipe.model.name_or_path, dtype=torch.float32,
                                                 quantization_config=config)
    peft_model = get_peft_model(model, build_peft_config(plan))
    _trainer_casts(plan, peft_model)
    assert type(peft_model.get_output_embeddings()).__name__ == "Linear4bit"
    frozen, adapter = weight_bytes(skeleton_for(plan), plan.recipe.quantization, every_linear=True)
    head_in_16_bits = sum(weight_bytes(skeleton_for(plan), plan.recipe.quantization))
    assert frozen + adapter == real_weight_bytes(peft_model) < head_in_16_bits
