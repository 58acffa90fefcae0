"""End-to-end runs on a tiny random Llama: every trainer, every PEFT method, what a run leaves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import peftrun
from peftrun.errors import DataError, ModelLoadError, RecipeError, RunDirError, TrainingError
from peftrun.recipe.loader import load_recipe

STEPS = {"max_steps": 3, "per_device_train_batch_size": 4, "logging_steps": 1, "save_steps": 3,
         "report_to": "none", "activation_checkpointing": False}


def recipe(model_dir: Path, data: Path, trainer: dict[str, Any], peft: dict[str, Any] | None = None,
           **sections: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "t",
        "model": {"name_or_path": str(model_dir)},
        "trainer": {**STEPS, **trainer},
        "dataset": {"path": str(data)},
        "output": {"dir": "runs/t"},
    }
    if peft is not None:
        out["peft"] = peft
    out.update(sections)
    return out


def adapter_logits(run_dir: Path, model_dir: Path, tokens: list[int] | None = None) -> tuple[Any, Any]:
    """Logits of the base and of the base with the saved adapter, loaded with plain PEFT."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([tokens or [5, 6, 7, 8, 9]])
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(run_dir))
        after = tuned(ids).logits
    return before, after


LORA = {"method": "lora", "r": 4, "lora_alpha": 8}


@pytest.mark.parametrize(
    "peft",
    [
        pytest.param(LORA, id="lora-all-linear"),
        pytest.param({**LORA, "use_dora": True}, id="dora"),
        pytest.param({**LORA, "use_rslora": True, "target_modules": ["q_proj", "v_proj"]}, id="rslora-explicit"),
        pytest.param({**LORA, "target_modules": "attention", "modules_to_save": ["lm_head"]}, id="modules-to-save"),
    ],
)
def test_sft_lora_variants_train_and_reload(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, peft: dict) -> None:
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, peft))
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert not before.allclose(after), "the reloaded adapter must change the model's output"
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["use_dora"] == peft.get("use_dora", False)
    assert config["use_rslora"] == peft.get("use_rslora", False)
    if "modules_to_save" in peft:
        assert config["modules_to_save"] == ["lm_head"]


def test_run_leaves_a_complete_directory(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA, dataset={
        "path": str(data_dir / "sft.jsonl"), "eval": {"fraction": 0.25}})
    (in_tmp / "common.yaml").write_text("seed: 42\n")  # a base: the manifest records it with its hash
    run_dir = peftrun.run({**data, "extends": "common.yaml"})
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md",
                 "recipe.resolved.yaml", "manifest.json", "loss.png"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["versions"]["trl"] and manifest["versions"]["peft"] and manifest["versions"]["torch"]
    assert manifest["training"]["steps"] == 3
    assert manifest["training"]["final_train_loss"] > 0
    assert manifest["training"]["final_eval_loss"] > 0
    assert manifest["data"]["train_rows"] == 24 and manifest["data"]["eval_rows"] == 8
    assert manifest["world_size"] == 1 and manifest["seed"] == 42
    digest = hashlib.sha256(b"seed: 42\n").hexdigest()
    assert manifest["recipe"] == {"path": None, "commit": None, "dirty": None,
                                  "bases": [{"base": "common.yaml", "sha256": digest}]}
    card = (run_dir / "README.md").read_text()
    assert str(tiny_model_dir) in card and "LoRA r=4" in card and "AutoPeftModelForCausalLM.from_pretrained" in card
    resolved = load_recipe(run_dir / "recipe.resolved.yaml")
    assert resolved.trainer.learning_rate == pytest.approx(2e-4)
    assert resolved.trainer.max_steps == 3 and resolved.output.dir == "runs/t"


def test_second_run_is_refused_and_first_is_intact(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA)
    run_dir = peftrun.run(data)
    weights = (run_dir / "adapter_model.safetensors").read_bytes()
    with pytest.raises(RunDirError, match=r"runs/t already holds a finished run: start over with --overwrite"):
        peftrun.run(data)
    assert (run_dir / "adapter_model.safetensors").read_bytes() == weights
    peftrun.run(data, mode="overwrite")
    assert (run_dir / "manifest.json").is_file()


@pytest.mark.parametrize("trainer,data_file", [
    ({"type": "dpo", "max_length": 64}, "pref.jsonl"),
    ({"type": "reward", "max_length": 64}, "pref.jsonl"),
    ({"type": "grpo", "reward_funcs": ["answer_contains", "peftrun.train.rewards:concise"], "num_generations": 2,
      "per_device_train_batch_size": 2, "max_completion_length": 8}, "prompts.jsonl"),
])
def test_each_trainer_type_trains_with_lora(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                            trainer: dict, data_file: str) -> None:
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / data_file, trainer, LORA))
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["task_type"] == ("SEQ_CLS" if trainer["type"] == "reward" else "CAUSAL_LM")
    if trainer["type"] == "reward":
        from safetensors import safe_open

        with safe_open(str(run_dir / "adapter_model.safetensors"), "pt") as f:
            assert any("score" in key for key in f.keys()), "the reward head must be trained and saved"


def test_prompt_tuning_with_text_init(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    peft = {"method": "prompt_tuning", "num_virtual_tokens": 4, "prompt_tuning_init": "TEXT",
            "prompt_tuning_init_text": "Say it twice"}
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, peft))
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 4
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert after.shape[1] == before.shape[1] + 4, "PEFT prepends the 4 virtual tokens"
    assert not before.allclose(after[:, 4:]), "the trained prompt must change the output"


@pytest.mark.parametrize("bits", [4, 8])
def test_quantized_lora_with_evaluation_between_steps(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, bits: int) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA,
                  quantization={"bits": bits}, dataset={"path": str(data_dir / "sft.jsonl"), "eval": {"fraction": 0.25}})
    data["trainer"]["eval_strategy"] = "steps"
    data["trainer"]["eval_steps"] = 1  # evaluation between steps: the 4-bit CPU repack pitfall
    run_dir = peftrun.run(data)
    before, after = adapter_logits(run_dir, tiny_model_dir)
    assert not before.allclose(after)


def test_full_fine_tuning(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "text.jsonl", {"type": "sft"}))
    assert (run_dir / "model.safetensors").is_file() and not (run_dir / "adapter_config.json").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["training"]["trainable_parameters"] == manifest["training"]["total_parameters"]


def test_zero_learning_rate_run_fails(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft", "learning_rate": 0.0}, LORA)
    with pytest.raises(TrainingError, match="the trainable parameters never changed"):
        peftrun.run(data)
    assert not (in_tmp / "runs/t/manifest.json").exists(), "a failed run must not look finished"


def test_wrong_columns_fail_before_the_model_loads(in_tmp: Path, data_dir: Path) -> None:
    empty = in_tmp / "empty-model-dir"  # loading a model from here would fail: the data check comes first
    empty.mkdir()
    data = recipe(empty, data_dir / "sft.jsonl", {"type": "dpo"}, LORA)
    with pytest.raises(DataError) as error:
        peftrun.run(data)
    assert not (in_tmp / "runs").exists(), "a run that failed before training leaves nothing to clean up"
    assert str(error.value) == (
        "dataset.path: the dpo trainer needs preference (chosen, rejected) columns, but the data has "
        "['completion', 'prompt']; map your column names with dataset.columns, e.g. columns: {prompt: question}"
    )


def test_missing_data_file_is_a_recipe_error(in_tmp: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(RecipeError, match=r"dataset.path: no such file or directory: data/none.jsonl"):
        peftrun.run(recipe(tiny_model_dir, Path("data/none.jsonl"), {"type": "sft"}, LORA))


def test_unknown_hub_model_fails_fast_and_clearly(in_tmp: Path, data_dir: Path, unreachable_hub: None) -> None:
    """Fast: with the hub unreachable and HF_HUB_OFFLINE unset, the run decides offline mode itself, so the libraries
    never retry the hub (about 50 s of retries without it); the message says the load was made offline."""
    data = recipe(Path("nobody/no-such-model"), data_dir / "sft.jsonl", {"type": "sft"}, LORA)
    with pytest.raises(ModelLoadError) as error:
        peftrun.run(data)
    assert str(error.value) == (
        "tokenizer 'nobody/no-such-model' is not a local path and is not in the Hugging Face cache, and the hub is "
        "offline (HF_HUB_OFFLINE=1). Download it where the hub is reachable (`hf download nobody/no-such-model` for "
        "a model) and copy the cache, or point the recipe at a local path.")


def test_unknown_hub_dataset_fails_clearly(in_tmp: Path, tiny_model_dir: Path) -> None:
    data = recipe(tiny_model_dir, Path("nobody/no-such-data"), {"type": "sft"}, LORA)
    with pytest.raises(DataError, match=r"dataset.path: dataset 'nobody/no-such-data' is not a local path"):
        peftrun.run(data)


def test_push_to_hub_offline_fails_before_training(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    from peftrun.errors import HubError

    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA,
                  output={"dir": "runs/t", "push_to_hub": True, "hub_model_id": "me/tiny"})
    with pytest.raises(HubError, match=r"output.push_to_hub: the hub is not reachable from here, so me/tiny"):
        peftrun.run(data)
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("peft", [LORA, {"method": "prompt_tuning", "num_virtual_tokens": 4}], ids=["lora", "prompt"])
def test_reward_model_on_a_4bit_base(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, peft: dict) -> None:
    """TRL casts trainable layers of quantized models to bfloat16; the score head must still meet its inputs."""
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "pref.jsonl", {"type": "reward", "max_length": 64}, peft,
                                 quantization={"bits": 4}))
    assert json.loads((run_dir / "manifest.json").read_text())["training"]["steps"] == 3


def test_grpo_with_rewards_that_never_differ_fails_with_the_cause(in_tmp: Path, tiny_model_dir: Path,
                                                                  data_dir: Path) -> None:
    trainer = {"type": "grpo", "reward_funcs": ["answer_match"], "num_generations": 2,
               "per_device_train_batch_size": 2, "max_completion_length": 4}
    with pytest.raises(TrainingError, match=r"rewards that never differ within a group of generations"):
        peftrun.run(recipe(tiny_model_dir, data_dir / "prompts.jsonl", trainer, LORA))


def test_a_model_the_caller_wrapped_with_peft_trains(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                           LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA), model=model)
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["r"] == 2 and config["target_modules"] == ["q_proj"], "the caller's adapter, not the recipe's"


def test_reward_functions_that_cannot_be_found_are_located(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    (in_tmp / "myrewards.py").write_text("def length(completions, **kw):\n    return [float(len(c)) for c in completions]\n")
    path = in_tmp / "g.yaml"
    trainer = {"type": "grpo", "num_generations": 2, "per_device_train_batch_size": 2,
               "reward_funcs": ["myrewards:length", "myrewards:missing", "nomodule:f"]}
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "prompts.jsonl", trainer, LORA)))
    with pytest.raises(RecipeError) as error:
        peftrun.run(path)
    assert [str(p) for p in error.value.problems] == [
        "g.yaml:21:5: trainer.reward_funcs.1: myrewards:missing: module 'myrewards' has no function 'missing'",
        "g.yaml:22:5: trainer.reward_funcs.2: nomodule:f: cannot import module 'nomodule': No module named 'nomodule'",
    ]
