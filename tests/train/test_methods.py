"""Every PEFT method that can wrap a causal LM trains with SFT on a tiny Llama: a few real steps, the
never-changed check passing, the adapter reloaded with plain PEFT changing the output, and merged where
the method can merge (the merged model gives the adapter's output)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import peftrun
from peftrun.errors import RecipeError, RunDirError
from peftrun.launch.preflight import LOFTQ_ON_CPU
from peftrun.recipe.methods import REFUSED, init_refusal, merge_refusal, refusal
from peftrun.recipe.schema import PEFT_METHODS, method_info
from peftrun.train.merge import merge_run
from tests.train.test_runner import adapter_logits, recipe


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# Settings that fit the tiny model (hidden size 32, 2 layers); every other value is PEFT's or peftrun's default.
TINY: dict[str, dict[str, Any]] = {
    "lora": {"r": 4},
    "oft": {"oft_block_size": 8},
    "boft": {"boft_block_size": 4},
    "fourierft": {"n_frequency": 16},
    "vblora": {"vector_length": 8, "num_vectors": 16},
    "miss": {"r": 8},
    "road": {"group_size": 8},
    "shira": {"r": 4},
    "c3a": {"block_size": 8},
    "waveft": {"n_frequency": 64},
    "psoft": {"r": 8},
    "trainable_tokens": {"token_indices": list(range(3, 259))},  # every byte token
    "adaption_prompt": {"adapter_len": 4, "adapter_layers": 1},
    "prompt_tuning": {"num_virtual_tokens": 4},
    "prefix_tuning": {"num_virtual_tokens": 4},
    "p_tuning": {"num_virtual_tokens": 4},
    "cartridge": {"num_virtual_tokens": 4},
}
TRAINABLE = [m for m in PEFT_METHODS if refusal(m) is None]
STEPS = {"type": "sft", "max_steps": 2, "save_steps": 2}


def _probe(model_dir: Path) -> list[int]:
    """Token ids of a training prompt (trainable tokens change only the embeddings of tokens the data holds)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))("Say 3 twice:")["input_ids"]


def _logits_of(model_dir: Path, tokens: list[int]) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(str(model_dir))(torch.tensor([tokens])).logits


@pytest.mark.parametrize("method", TRAINABLE)
def test_method_trains_reloads_and_merges(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, method: str) -> None:
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", STEPS, {"method": method, **TINY.get(method, {})}))
    assert json.loads((run_dir / "adapter_config.json").read_text())["peft_type"] == method.upper()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["training"]["steps"] == 2 and 0 < manifest["training"]["trainable_parameters"]
    assert f"- method: {method}" in (run_dir / "README.md").read_text()
    tokens = _probe(tiny_model_dir)
    before, after = adapter_logits(run_dir, tiny_model_dir, tokens)
    shift = after.shape[1] - before.shape[1]  # prompt tuning and p-tuning prepend their virtual tokens
    assert not before.allclose(after[:, shift:]), "the reloaded adapter must change the model's output"
    reason = merge_refusal(method, method_info(method)["prompt_learning"])
    if reason:
        with pytest.raises(RunDirError, match="cannot be merged into the model weights"):
            merge_run(run_dir, in_tmp / "merged")
    else:
        merged = merge_run(run_dir, in_tmp / "merged")
        assert _logits_of(merged, tokens).allclose(after, atol=1e-4), "the merged model must give the adapter's output"


@pytest.mark.parametrize("method", sorted(REFUSED))
def test_methods_that_cannot_wrap_a_causal_lm_are_refused(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                          method: str) -> None:
    with pytest.raises(RecipeError) as error:
        peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", STEPS, {"method": method}))
    assert [p.path for p in error.value.problems] == ["peft.method"]
    assert f"{method} cannot be used: {REFUSED[method]}" in str(error.value)
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize(
    "init",
    [
        pytest.param({"init_lora_weights": "loftq", "loftq_config": {"loftq_bits": 4, "loftq_iter": 1}}, id="loftq"),
        pytest.param({"init_lora_weights": "eva", "eva_config": {"rho": 1.0}}, id="eva"),
        pytest.param({"init_lora_weights": "corda"}, id="corda"),
        pytest.param({"init_lora_weights": "pissa_niter_2"}, id="pissa"),
        pytest.param({"init_lora_weights": "olora"}, id="olora"),
    ],
)
def test_lora_initializations_train_and_reload(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, init: dict) -> None:
    """LoftQ needs its sub-config (and scipy); EVA and CorDA run a data pass over the recipe's own data first."""
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", STEPS, {"method": "lora", "r": 4, **init})
    assert init_refusal(init["init_lora_weights"]) is None, "the test extra installs every initialization's extra"
    if init["init_lora_weights"] == "loftq" and not torch_cuda():  # PEFT's LoftQ runs on CUDA only
        with pytest.raises(RecipeError, match=re.escape(LOFTQ_ON_CPU)):
            peftrun.run(data)
        assert not (in_tmp / "runs").exists()
        return
    run_dir = peftrun.run(data)
    config = json.loads((run_dir / "adapter_config.json").read_text())
    converted = init["init_lora_weights"].startswith(("pissa", "olora", "corda"))  # they change the base weights
    assert (config["init_lora_weights"], config["r"]) == ((True, 8) if converted else (init["init_lora_weights"], 4))
    assert not (run_dir / "initial-adapter").exists()
    tokens = _probe(tiny_model_dir)
    before, after = adapter_logits(run_dir, tiny_model_dir, tokens)
    assert not before.allclose(after)
    merged = merge_run(run_dir, in_tmp / "merged")  # the plain-LoRA adapter merges into the original base
    assert _logits_of(merged, tokens).allclose(after, atol=1e-4)


@pytest.mark.parametrize("method", ["ia3", "prefix_tuning"])
def test_a_crashed_run_of_another_method_resumes_to_the_same_weights(in_tmp: Path, tiny_model_dir: Path,
                                                                     data_dir: Path, method: str) -> None:
    from tests.train.test_resume import RESUMABLE, adapter_tensors, assert_same_weights, crash, model_with_hook
    from tests.train.test_resume import resume_counting_steps

    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, {"method": method, **TINY.get(method, {})})
    reference = adapter_tensors(peftrun.run({**data, "output": {"dir": "runs/reference"}}))
    with pytest.raises(RuntimeError, match="simulated crash"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 5, crash))  # during step 5
    run_dir, steps = resume_counting_steps(data, tiny_model_dir)
    assert steps == 2, "the resumed run must continue from checkpoint-4"
    assert_same_weights(run_dir, reference)
