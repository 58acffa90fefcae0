"""One test per class of mistake `peftrun import` made on published configs (issue 19), each on a real config of
the corpus (tests/interop/corpus, SOURCES.tsv) where one shows it, else on the smallest config that does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun import load_recipe, resolve
from peftrun.errors import RecipeError
from peftrun.interop.importer import Imported, import_config
from peftrun.recipe.objects import quantization_kwargs
from tests.interop.corpus_check import CORPUS, GPU, inside


def corpus(tool: str, path: str) -> Imported:
    with inside(CORPUS / tool):
        return import_config(Path(path))[0]


def resolved(imported: Imported) -> Any:
    return resolve(load_recipe(imported.recipe), GPU).recipe


def written(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_handbook_dataset_mixture_becomes_sources_and_an_eval_fraction() -> None:
    recipe = resolved(corpus("handbook", "recipes/smollm3/sft/mid.yaml"))
    assert len(recipe.dataset.sources) > 1 and recipe.dataset.sources[0].path == "HuggingFaceTB/smoltalk2"


def test_the_older_dataset_mixer_and_splits_give_the_train_split_and_the_test_split_for_eval() -> None:
    recipe = resolved(corpus("handbook", "recipes/zephyr-7b-beta/dpo/config_qlora.yaml"))
    assert (recipe.dataset.path, recipe.dataset.split) == ("HuggingFaceH4/ultrafeedback_binarized", "train_prefs")
    assert recipe.dataset.eval.split == "test_prefs"


def test_torch_dtype_is_the_model_dtype_and_qlora_computes_in_it() -> None:
    imported = corpus("handbook", "recipes/zephyr-7b-beta/sft/config_qlora.yaml")
    plan = resolve(load_recipe(imported.recipe), GPU)
    assert plan.recipe.model.dtype == "bfloat16"
    assert quantization_kwargs(plan)["bnb_4bit_compute_dtype"] == "bfloat16"


@pytest.mark.parametrize(("path", "kind"), [("recipes/zephyr-141b-A35b/orpo/config_full.yaml", "orpo"),
                                            ("recipes/smollm3/dpo/apo.yaml", "dpo")])
def test_the_objective_comes_from_the_handbook_layout(path: str, kind: str) -> None:
    imported = corpus("handbook", path)
    assert resolved(imported).trainer.type == kind and "trainer type" not in imported.translation.not_carried


def test_apo_keeps_its_loss_type_and_beta() -> None:
    trainer = resolved(corpus("handbook", "recipes/smollm3/dpo/apo.yaml")).trainer
    assert (trainer.loss_type, trainer.beta) == (["apo_zero"], 0.05)


def test_a_trl_config_naming_no_trainer_is_a_guess_and_says_so(tmp_path: Path) -> None:
    imported, _ = import_config(written(tmp_path, "model_name_or_path: org/m\ndataset_name: org/d\n"), "trl")
    assert not imported.complete and "sft guessed" in imported.translation.not_carried["trainer type"]


def test_a_trl_orpo_command_line_is_imported(tmp_path: Path) -> None:
    line = "trl orpo --model_name_or_path org/m --dataset_name org/d --beta 0.2\n"
    assert resolved(import_config(written(tmp_path, line, "run.sh"))[0]).trainer.type == "orpo"


def test_torchtune_knowledge_distillation_is_distillation_with_its_teacher() -> None:
    imported = corpus("torchtune", "recipes/configs/qwen2/1.5_to_0.5B_KD_lora_single_device.yaml")
    trainer = resolved(imported).trainer
    assert (trainer.type, trainer.beta) == ("distillation", 0.0)
    assert trainer.teacher_model_name_or_path == "/tmp/Qwen2-1.5B-Instruct"
    assert "kd_ratio" in imported.translation.not_carried


def test_axolotl_gdpo_is_grpo_normalizing_each_reward() -> None:
    imported = corpus("axolotl", "examples/llama-3/qlora-1b-gdpo.yaml")
    trainer = resolved(imported).trainer
    assert (trainer.type, trainer.multi_objective_aggregation) == ("grpo", "normalize_then_sum")
    assert trainer.reward_funcs == ["rwd:format_reward", "rwd:correctness_reward"]


def test_llamafactory_caps_each_dataset_and_keeps_both() -> None:
    imported = corpus("llamafactory", "examples/train_lora/qwen3_lora_sft.yaml")
    sources = resolved(imported).dataset.sources
    assert [(s.path, s.max_samples) for s in sources] == [("data/identity.json", 1000),
                                                           ("data/alpaca_en_demo.json", 1000)]
    assert "dataset" not in imported.translation.not_carried


@pytest.mark.parametrize(("badam", "dtype"), [("true", "auto"), ("false", "float32")])
def test_badam_without_a_precision_flag_keeps_the_checkpoint_dtype(badam: str, dtype: str, tmp_path: Path) -> None:
    """LLaMA-Factory upcasts a full fine-tuning's parameters to float32, not BAdam's (model/adapter.py:337-349)."""
    config = written(tmp_path, "model_name_or_path: org/m\nstage: sft\nfinetuning_type: full\n"
                               f"use_badam: {badam}\ndataset: d\n")
    assert import_config(config, "llamafactory")[0].recipe.get("model", {}).get("dtype", "auto") == dtype


@pytest.mark.parametrize(("name", "launch"), [
    ("examples/deepspeed/ds_z3_config.json", {"strategy": "deepspeed", "zero_stage": 3}),
    ("examples/deepspeed/ds_z0_config.json", {"strategy": "ddp"}),
    ("examples/deepspeed/ds_z3_offload_config.json", {"zero_stage": 3, "offload_params": True,
                                                      "offload_optimizer": True})])
def test_deepspeed_settings_come_from_the_file(name: str, launch: dict[str, Any], tmp_path: Path) -> None:
    config = written(tmp_path, f"model_name_or_path: org/m\nstage: sft\ndataset: d\ndeepspeed: {name}\n")
    with inside(CORPUS / "llamafactory"):
        got = resolved(import_config(config, "llamafactory")[0]).launch
    assert {key: getattr(got, key) for key in launch} == launch


def test_axolotl_parameter_offload_is_not_optimizer_offload(tmp_path: Path) -> None:
    config = written(tmp_path, "base_model: org/m\ndatasets:\n  - path: d.jsonl\n"
                               "deepspeed: deepspeed_configs/zero3_bf16_cpuoffload_params.json\n")
    with inside(CORPUS / "axolotl"):
        launch = resolved(import_config(config, "axolotl")[0]).launch
    assert (launch.zero_stage, launch.offload_params, launch.offload_optimizer) == (3, True, False)


def test_a_deepspeed_file_that_is_not_here_gives_its_stage_and_lists_the_rest(tmp_path: Path) -> None:
    config = written(tmp_path, "model_name_or_path: org/m\nstage: sft\ndataset: d\ndeepspeed: ds_z3_config.json\n")
    imported = import_config(config, "llamafactory")[0]
    assert resolved(imported).launch.zero_stage == 3 and "not known" in imported.translation.not_carried["deepspeed"]


def test_fsdp_activation_checkpointing_is_carried() -> None:
    imported = corpus("axolotl", "examples/glm47-flash/lora_fsdp.yaml")
    assert resolved(imported).trainer.activation_checkpointing is True
    assert not any("activation_checkpointing" in key for key in imported.translation.not_carried)


def test_dft_loss_and_galore_are_carried() -> None:
    assert resolved(corpus("llamafactory", "examples/extras/dft/qwen2_full_sft.yaml")).trainer.loss_type == "dft"
    trainer = resolved(corpus("llamafactory", "examples/extras/galore/llama3_full_sft.yaml")).trainer
    assert (trainer.optim, trainer.optim_target_modules) == ("galore_adamw_layerwise", "all-linear")
    assert trainer.optim_args == "rank=128,update_proj_gap=200,scale=2.0,proj_type=std"


@pytest.mark.parametrize(("tool", "path", "key"), [
    ("axolotl", "examples/mistral/bigstral/bigstral-ds-zero3.yaml", "unfrozen_parameters"),
    ("axolotl", "examples/llama-2/lisa.yml", "lisa_n_layers"),
    ("llamafactory", "examples/extras/llama_pro/llama3_freeze_sft.yaml", "finetuning_type")])
def test_partial_freezing_is_refused_by_one_rule(tool: str, path: str, key: str) -> None:
    with pytest.raises(RecipeError, match=f"{key} trains only some of the model's parameters"):
        corpus(tool, path)


def test_torchtune_alpaca_gets_the_alpaca_template_and_the_difference_is_listed() -> None:
    imported = corpus("torchtune", "recipes/configs/llama3_2/1B_lora_single_device.yaml")
    assert resolved(imported).model.chat_template == "alpaca"
    assert "### Input:" in imported.translation.not_carried["dataset._component_"]


def test_torchtune_stack_exchange_data_dir_is_listed_and_llama2_gets_its_template() -> None:
    imported = corpus("torchtune", "recipes/configs/llama2/7B_lora_dpo_single_device.yaml")
    assert "data/rl" in imported.translation.not_carried["dataset.data_dir"]
    assert resolved(imported).model.chat_template == "llama2"


def test_torchtune_phi3_targets_the_fused_modules_the_checkpoint_has() -> None:
    imported = corpus("torchtune", "recipes/configs/phi3/mini_lora_single_device.yaml")
    assert sorted(resolved(imported).peft.target_modules) == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
    assert "fuses q_proj, k_proj, v_proj" in imported.translation.not_carried["model.lora_attn_modules"]


def test_a_config_json_beside_the_checkpoint_decides_the_module_names(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{"architectures": ["Phi3ForCausalLM"]}')
    config = written(tmp_path, "model:\n  _component_: torchtune.models.llama3_2.lora_llama3_2_1b\n"
                               "  lora_attn_modules: [q_proj, k_proj, v_proj]\n"
                               "checkpointer:\n  _component_: torchtune.training.FullModelHFCheckpointer\n"
                               "  checkpoint_dir: ckpt\n"
                               "dataset:\n  _component_: torchtune.datasets.alpaca_cleaned_dataset\n")
    imported = import_config(config, "torchtune")[0]
    assert resolved(imported).peft.target_modules == ["qkv_proj"]


def test_axolotl_sharegpt_turns_get_axolotls_default_roles(tmp_path: Path) -> None:
    config = written(tmp_path, "base_model: org/m\nadapter: lora\nlora_r: 8\nlora_alpha: 16\ndatasets:\n"
                               "  - path: d.jsonl\n    type: chat_template\n    field_messages: conversations\n"
                               "    message_property_mappings: {role: from, content: value}\n")
    fmt = resolved(import_config(config, "axolotl")[0]).dataset.format
    assert fmt.roles == {"human": "user", "gpt": "assistant"}


def test_empty_false_and_null_keys_ask_for_nothing() -> None:
    imported = corpus("axolotl", "examples/llama-3/qlora.yml")  # lora_model_dir:, resume_from_checkpoint:
    assert not {"lora_model_dir", "resume_from_checkpoint"} & set(imported.translation.not_carried)
    imported = corpus("torchtune", "recipes/configs/llama2/7B_qlora_single_device.yaml")  # adapter_checkpoint: null
    assert "checkpointer.adapter_checkpoint" in imported.translation.dropped
    assert not any(key.startswith("checkpointer") for key in imported.translation.not_carried)


def test_a_llamafactory_v1_config_is_recognised_and_refused_with_the_reason() -> None:
    with pytest.raises(RecipeError, match="LLaMA-Factory v1 config"):
        corpus("llamafactory", "examples/v1/train_lora/train_lora_sft.yaml")


def test_a_stated_value_equal_to_peftruns_default_is_kept(tmp_path: Path) -> None:
    config = written(tmp_path, "base_model: org/m\nadapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_dropout: 0.05\n"
                               "datasets:\n  - path: d.jsonl\n")
    peft = import_config(config, "axolotl")[0].recipe["peft"]
    assert (peft["r"], peft["lora_alpha"], peft["lora_dropout"]) == (16, 32, 0.05)


def test_a_valid_key_peftrun_does_not_carry_is_told_apart_from_an_unknown_one(tmp_path: Path) -> None:
    config = written(tmp_path, "base_model: org/m\nadapter: lora\nlora_r: 8\nlora_alpha: 16\ndatasets:\n"
                               "  - path: d.jsonl\nloss_watchdog_threshold: 5.0\nnot_an_axolotl_key: 1\n")
    listed = import_config(config, "axolotl")[0].translation.not_carried
    assert "a Axolotl setting (src/axolotl/utils/schemas/config.py" in listed["loss_watchdog_threshold"]
    assert listed["not_an_axolotl_key"].startswith("not a key Axolotl declares at axolotl-ai-cloud/axolotl@")


def test_a_gguf_base_model_is_its_folder_and_file(tmp_path: Path) -> None:
    config = written(tmp_path, "base_model: org/m-GGUF/m.Q8_0.gguf\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n"
                               "datasets:\n  - path: d.jsonl\n")
    model = resolved(import_config(config, "axolotl")[0]).model
    assert (model.name_or_path, model.gguf_file) == ("org/m-GGUF", "m.Q8_0.gguf")


def test_typed_axolotl_test_datasets_are_eval_sources(tmp_path: Path) -> None:
    config = written(tmp_path, "base_model: org/m\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n"
                               "datasets:\n  - path: d.jsonl\n    type: alpaca\n"
                               "test_datasets:\n  - path: e.jsonl\n    type: alpaca\n    split: train\n")
    evaluation = resolved(import_config(config, "axolotl")[0]).dataset.eval
    assert [(s.path, s.format) for s in evaluation.sources] == [("e.jsonl", "alpaca")]
