"""Every fixture imports to a recipe that validates, and the LoraConfig, BitsAndBytesConfig and key trainer values
it resolves to are the ones the source tool would use, its defaults included (read from each tool's source:
see docs/import-*.md). Light: no torch, only the recipe layer's pure kwargs (peftrun.recipe.objects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun import load_recipe, resolve
from peftrun.errors import RecipeError
from peftrun.interop.importer import import_config
from peftrun.recipe.hardware import Hardware
from peftrun.recipe import objects
from peftrun.recipe.migrations import CHANGES
from peftrun.recipe.objects import quantization_kwargs
from tests.interop.contract import carried_or_listed, takes

FIXTURES = Path(__file__).with_name("fixtures")
GPU = Hardware(cuda=True, bf16=True, device_count=1, name="A100")  # the machines these configs were written for
ALL_LINEAR = "all-linear"
ATTN_MLP = ["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def nf4(storage: str | None) -> dict[str, Any]:
    return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": "bfloat16", "bnb_4bit_quant_storage": storage}


LORA_FIELD_DEFAULTS = {"use_rslora": False, "use_dora": False}  # PEFT's, when peftrun leaves a field to PEFT
PREFS = {"dataset.format": {"prompt": "{instruction}", "chosen": "{chosen}", "rejected": "{rejected}", "chat": True}}
# fixture -> expected LoRA kwargs (subset), BitsAndBytesConfig kwargs, trainer values, settings listed as not carried
CASES: dict[str, dict[str, Any]] = {
    "axolotl/lora-alpaca.yml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}, bnb=None,
        trainer={"type": "sft", "learning_rate": 2e-4, "num_train_epochs": 1.0, "per_device_train_batch_size": 1,
                 "gradient_accumulation_steps": 1, "max_length": 512, "lr_scheduler_type": "cosine",
                 "warmup_steps": 0.03, "activation_checkpointing": False, "optim": "adamw_torch_fused",
                 "save_strategy": "epoch", "save_total_limit": 4},
        contract={"dataset.format": "alpaca", "model.chat_template": "alpaca"}),
    "axolotl/qlora-chat.yml": dict(
        lora={"r": 32, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ALL_LINEAR}, bnb=nf4("bfloat16"),
        trainer={"learning_rate": 2e-4, "num_train_epochs": 2, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 4, "max_length": 2048, "lr_scheduler_type": "cosine",
                 "warmup_steps": 0.1, "packing": True, "eval_strategy": "steps", "eval_steps": 0.125,
                 "eval_on_start": True, "save_steps": 0.5, "optim": "paged_adamw_32bit", "assistant_only_loss": True},
        eval={"fraction": 0.05}, model={"chat_template": "chatml", "attn_implementation": "flash_attention_2"},
        contract={"dataset.format": {"messages": "conversations", "role": "from", "content": "value",
                                     "roles": {"human": "user", "gpt": "assistant"}},
                  "model.special_tokens": {"pad_token": "<|pad|>", "additional": ["<tool>"]}}),
    "axolotl/dpo-8bit.yml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["q_proj"], "use_rslora": True},
        bnb={"load_in_8bit": True},
        trainer={"type": "dpo", "beta": 0.2, "learning_rate": 5e-6, "num_train_epochs": 1,
                 "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_length": 1024,
                 "lr_scheduler_type": "linear", "warmup_steps": 10},
        contract={"dataset.format": {"system": "system", "prompt": "{question}", "chosen": "{chosen}",
                                     "rejected": "{rejected}", "chat": True}, "model.chat_template": "chatml"}),
    "axolotl/reward-dora.yml": dict(
        lora={"r": 16, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ALL_LINEAR, "use_dora": True,
              "task_type": "SEQ_CLS"}, bnb=None,
        trainer={"type": "reward", "learning_rate": 1e-4, "num_train_epochs": 2, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 4, "max_length": 1024, "lr_scheduler_type": "cosine",
                 "warmup_steps": 0.03}),
    "axolotl/grpo-deepspeed.yml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ALL_LINEAR}, bnb=None,
        trainer={"type": "grpo", "beta": 0.04, "num_generations": 4, "max_completion_length": 128,
                 "reward_funcs": ["rewards:format_reward"], "learning_rate": 1e-6, "per_device_train_batch_size": 4,
                 "gradient_accumulation_steps": 2, "num_train_epochs": 1, "lr_scheduler_type": "cosine"},
        launch={"strategy": "deepspeed", "zero_stage": 3, "offload_optimizer": True, "offload_params": False}),
    "axolotl/fsdp-unsupported.yml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ALL_LINEAR}, bnb=None,
        trainer={"learning_rate": 3e-4, "num_train_epochs": 3, "per_device_train_batch_size": 1,
                 "gradient_accumulation_steps": 8, "max_length": 512},
        launch={"strategy": "fsdp", "offload_params": True},
        not_carried={"lora_model_dir", "group_by_length", "early_stopping_patience", "my_custom_flag",
                     "lr_scheduler", "fsdp_config.fsdp_state_dict_type"}),
    "axolotl/README.md": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ALL_LINEAR}, bnb=nf4("bfloat16"),
        trainer={"num_train_epochs": 4, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2,
                 "max_length": 1024, "packing": True, "eval_steps": 0.125, "save_steps": 0.125,
                 "learning_rate": 2e-4},
        eval={"fraction": 0.1}, contract={"dataset.format": "alpaca", "model.chat_template": "alpaca"}),
    "llamafactory/lora-sft.yaml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ALL_LINEAR}, bnb=None,
        trainer={"learning_rate": 1e-4, "num_train_epochs": 2.0, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 8, "max_length": 1024, "lr_scheduler_type": "cosine",
                 "warmup_steps": 0.1, "packing": True, "eval_strategy": "steps", "eval_steps": 100,
                 "save_steps": 100, "activation_checkpointing": True},
        eval={"fraction": 0.1}, model={"dtype": "bfloat16", "chat_template": "llama3"},
        contract={"dataset.format": "alpaca"}),
    "llamafactory/qlora-chat.yaml": dict(
        lora={"r": 8, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
              "use_rslora": True}, bnb=nf4("bfloat16"),
        trainer={"learning_rate": 2e-4, "num_train_epochs": 1.0, "per_device_train_batch_size": 1,
                 "gradient_accumulation_steps": 4, "max_length": 2048, "lr_scheduler_type": "linear",
                 "warmup_steps": 0},
        contract={"dataset.sources": [
            {"path": "data/chats_demo.jsonl", "format": {"messages": "messages", "role": "role", "content": "content",
                                                         "roles": {"user": "user", "assistant": "assistant"}}},
            {"path": "org/sharegpt-chats", "format": "sharegpt"}]}),
    "llamafactory/dpo-8bit.yaml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ALL_LINEAR}, bnb={"load_in_8bit": True},
        trainer={"type": "dpo", "beta": 0.2, "loss_type": ["sigmoid"], "learning_rate": 5e-6,
                 "num_train_epochs": 1.0, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 8,
                 "max_length": 1024, "lr_scheduler_type": "cosine", "warmup_steps": 0.1},
        launch={"strategy": "deepspeed", "offload_optimizer": True}, not_carried={"deepspeed"}, contract=PREFS),
    "llamafactory/rm-dora.yaml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ALL_LINEAR, "use_dora": True,
              "task_type": "SEQ_CLS"}, bnb=None,
        trainer={"type": "reward", "learning_rate": 1e-4, "num_train_epochs": 1.0, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 4, "max_length": 1024, "lr_scheduler_type": "linear"},
        model={"dtype": "float16"}, contract=PREFS),
    "llamafactory/pt.yaml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ALL_LINEAR}, bnb=None,
        trainer={"type": "sft", "packing": True, "max_length": 1024, "learning_rate": 1e-4, "num_train_epochs": 1.0},
        dataset={"path": "data/c4_demo.jsonl", "columns": {"text": "content"}}, complete=True),
    "llamafactory/run/training_args.yaml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0, "target_modules": ALL_LINEAR}, bnb=None,
        trainer={"learning_rate": 5e-5, "num_train_epochs": 3.0, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 8, "max_length": 2048, "lr_scheduler_type": "cosine",
                 "warmup_steps": 0, "optim": "adamw_torch", "packing": False},
        not_carried={"mask_history", "dataset: unknown_name"}),
    "trl/sft-lora.yaml": dict(
        lora={"r": 32, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj"]}, bnb=None,
        trainer={"learning_rate": 2e-4, "num_train_epochs": 1, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 8, "max_length": 2048, "packing": True, "eval_strategy": "steps",
                 "eval_steps": 50, "warmup_steps": 0.05, "lr_scheduler_type": "cosine"},
        eval={"split": "test"}, model={"dtype": "bfloat16"}),
    "trl/sft-qlora.sh": dict(
        lora={"r": 32, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj",
                                                                                  "o_proj"]},
        bnb=nf4(None), trainer={"learning_rate": 1e-4, "max_length": 2048, "packing": True}),
    "trl/dpo-8bit.sh": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": None, "use_rslora": True},
        bnb={"load_in_8bit": True},
        trainer={"type": "dpo", "beta": 0.2, "learning_rate": 1e-6, "num_train_epochs": 3.0,
                 "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_length": 1024,
                 "lr_scheduler_type": "linear", "warmup_steps": 0},
        model={"dtype": "float32"}, complete=True),
    "trl/grpo.yaml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
              "use_dora": True}, bnb=None,
        trainer={"type": "grpo", "reward_funcs": ["trl.rewards:think_format_reward", "my_rewards:correct"],
                 "num_generations": 4, "per_device_train_batch_size": 4, "max_completion_length": 256, "beta": 0.0,
                 "learning_rate": 1e-5, "num_train_epochs": 3.0}),
    "trl/reward.sh": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": None, "task_type": "SEQ_CLS"},
        bnb=None, trainer={"type": "reward", "center_rewards_coefficient": 0.01, "num_train_epochs": 1,
                           "learning_rate": 1e-4}),
    "trl/fsdp.sh": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ALL_LINEAR}, bnb=None,
        trainer={"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4, "learning_rate": 2e-4},
        launch={"strategy": "fsdp", "offload_params": True, "num_processes": 4}, complete=True),
    "trl/zero3.yaml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": None}, bnb=nf4("bfloat16"),
        trainer={"learning_rate": 2e-5}, launch={"strategy": "deepspeed", "zero_stage": 3, "num_processes": 8},
        model={"dtype": "bfloat16"}, not_carried={"trainer type"}, complete=False),  # no trainer named: a guess
    "trl/unsupported.yaml": dict(
        lora=None, bnb=None, trainer={"type": "sft", "learning_rate": 2e-5}, eval={"fraction": 0.1},
        not_carried={"dataset_streaming", "datasets[1].columns", "model_init_kwargs", "not_a_trl_field",
                     "reward_model_name_or_path"}),
    "torchtune/lora-alpaca.yaml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ATTN_MLP}, bnb=None,
        trainer={"learning_rate": 3e-4, "num_train_epochs": 1, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 8, "max_length": None, "lr_scheduler_type": "cosine",
                 "warmup_steps": 100, "weight_decay": 0.01, "optim": "adamw_torch_fused", "max_grad_norm": 0.0,
                 "activation_checkpointing": True, "completion_only_loss": False},
        model={"dtype": "bfloat16", "name_or_path": "/tmp/tiny/"}, contract={"dataset.format": "alpaca"}),
    "torchtune/qlora-chat.yaml": dict(
        lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj",
                                                                                  "o_proj"]},
        bnb=nf4(None),
        trainer={"learning_rate": 2e-4, "num_train_epochs": 2, "per_device_train_batch_size": 4,
                 "gradient_accumulation_steps": 4, "max_length": 2048, "lr_scheduler_type": "cosine",
                 "warmup_steps": 10, "packing": True, "max_grad_norm": 1.0, "weight_decay": 0.01,
                 "optim": "adamw_torch"},
        contract={"dataset.format": "sharegpt"}),
    "torchtune/dpo.yaml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ATTN_MLP}, bnb=None,
        trainer={"type": "dpo", "beta": 0.05, "learning_rate": 5e-4, "per_device_train_batch_size": 4,
                 "gradient_accumulation_steps": 8, "max_length": 1024, "num_train_epochs": 1, "max_steps": 1000,
                 "weight_decay": 0.05, "lr_scheduler_type": "cosine", "warmup_steps": 100},
        dataset={"path": "lvwerra/stack-exchange-paired",
                 "columns": {"prompt": "question", "chosen": "response_j", "rejected": "response_k"}}),
    "torchtune/fsdp-dora.yaml": dict(
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
              "use_dora": True}, bnb=None,
        trainer={"lr_scheduler_type": "constant", "learning_rate": 3e-4, "weight_decay": 0.01, "optim": "adamw_torch"},
        dataset={"path": "org/qa-pairs", "columns": {"prompt": "question", "completion": "answer"}},
        launch={"strategy": "fsdp", "offload_params": True}, not_carried={"enable_activation_offloading"}),
}
# fixtures whose objective is on the recipe's contract but may not be in this peftrun yet: (path, value)
ON_CONTRACT = {"axolotl/kto.yml": ("trainer.type", "kto"), "llamafactory/kto.yaml": ("trainer.type", "kto"),
               "trl/kto.sh": ("trainer.type", "kto"), "llamafactory/oft.yaml": ("peft.method", "oft")}


def lora_kwargs(plan: Any) -> dict[str, Any]:
    """The LoraConfig kwargs peftrun builds (peftrun.recipe.objects: one function per method, or one for all)."""
    if hasattr(objects, "peft_kwargs"):
        return objects.peft_kwargs(plan)
    return objects.lora_kwargs(plan.recipe.peft, plan.task_type)


def imported(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Import a fixture, write the recipe, load it back from the file: (the Imported, the plan on a GPU)."""
    monkeypatch.chdir(FIXTURES / Path(name).parent)  # relative data paths in the configs are relative to them
    result, _ = import_config(Path(Path(name).name))
    out = tmp_path / "recipe.yaml"
    out.write_text(result.text)
    resolve(load_recipe(out))  # validates on this machine too
    return result, resolve(load_recipe(out), GPU)


@pytest.mark.parametrize("name", sorted(CASES))
def test_imported_recipe_trains_what_the_source_would(name: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    result, plan = imported(name, tmp_path, monkeypatch)
    if case["lora"] is None:
        assert plan.recipe.peft is None
    else:
        lora = lora_kwargs(plan)
        assert {k: lora.get(k, LORA_FIELD_DEFAULTS.get(k)) for k in case["lora"]} == case["lora"]
        assert lora.get("bias", "none") == "none" and lora["task_type"] == case["lora"].get("task_type", "CAUSAL_LM")
    assert quantization_kwargs(plan) == case["bnb"]
    trainer = plan.recipe.trainer
    assert {k: getattr(trainer, k) for k in case["trainer"]} == case["trainer"]
    for section in ("model", "launch", "dataset"):
        for key, value in case.get(section, {}).items():
            assert getattr(getattr(plan.recipe, section), key) == value, f"{section}.{key}"
    if "eval" in case:
        assert plan.recipe.dataset.eval.model_dump(exclude_none=True) == case["eval"]
    listed = result.translation.not_carried
    assert case.get("not_carried", set()) <= set(listed), listed
    for path, value in case.get("contract", {}).items():
        carried_or_listed(result, path, value)
    assert result.complete == case.get("complete", result.complete)


@pytest.mark.parametrize("name", sorted(ON_CONTRACT))
def test_contract_objectives_are_carried_once_peftrun_runs_them(name: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """KTO (trainer.type: kto) and OFT (peft.method: oft) are on the recipe's contract; until this peftrun takes
    them, the import is refused (nothing written) rather than turned into another objective."""
    path, value = ON_CONTRACT[name]
    if not takes(path, value):
        with pytest.raises(RecipeError, match=f"{path}: peftrun cannot run this .* config"):
            imported(name, tmp_path, monkeypatch)
        return
    _, plan = imported(name, tmp_path, monkeypatch)
    if value == "kto":
        weight = 1.0 if name.startswith("axolotl") else 1.5  # KTOConfig's default, or the fixture's
        assert plan.recipe.trainer.type == "kto" and plan.recipe.trainer.undesirable_weight == weight
    else:
        oft = lora_kwargs(plan)
        assert (plan.recipe.peft.method, oft["oft_block_size"], oft["target_modules"]) == ("oft", 16,
                                                                                          ["q_proj", "v_proj"])


def test_names_the_libraries_retired_are_written_as_their_successors(tmp_path: Path) -> None:
    """An older TRL config (max_seq_length, warmup_ratio, gradient_checkpointing) imports under today's names;
    a removed setting (max_prompt_length) is listed with the migration registry's reason."""
    config = tmp_path / "old.yaml"
    config.write_text("model_name_or_path: org/m\ndataset_name: org/d\nuse_peft: true\nmax_seq_length: 512\n"
                      "warmup_ratio: 0.1\ngradient_checkpointing: false\nmax_prompt_length: 128\n")
    result, _ = import_config(config, "trl")
    trainer = result.plan.recipe.trainer
    assert (trainer.max_length, trainer.warmup_steps, trainer.activation_checkpointing) == (512, 0.1, False)
    removed = next(c for c in CHANGES if c.old == "trainer.max_prompt_length")
    assert result.translation.not_carried["max_prompt_length"] == f"trainer.max_prompt_length: {removed.hint()}"
