"""Builders against TRL: the LoraConfig and BitsAndBytesConfig peftrun builds equal TRL's own
`get_peft_config` / `get_quantization_config` for the same settings; training args are TRL's
config classes. This module imports trl (several seconds); the rest of the suite stays light."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
import trl
from peft import LoraConfig, PromptTuningConfig
from transformers import BitsAndBytesConfig

from peftrun import build_peft_config, build_quantization_config, build_training_args
from peftrun.errors import RecipeError
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.recipe.schema import method_info, trl_table
from peftrun.recipe.shipped import shipped_recipes
from tests.recipe_files import write  # noqa: F401 (write is a fixture)

GPU = Hardware(cuda=True, bf16=True, device_count=1, name="A100")


@pytest.fixture
def plan_of(write):  # noqa: ANN201
    def _plan(text: str, hardware: Hardware = CPU):  # noqa: ANN202
        return resolve(load_recipe(write("r.yaml", text)), hardware)

    return _plan


def recipe(trainer: str = "sft", peft: str = "{method: lora}", extra: str = "", model: str = "") -> str:
    funcs = ", reward_funcs: [peftrun.train.rewards:think_format]" if trainer == "grpo" else ""
    return (
        f"model: {{name_or_path: org/model{model}}}\n"
        f"trainer: {{type: {trainer}{funcs}}}\n"
        "dataset: {path: org/data}\n"
        f"peft: {peft}\n{extra}"
    )


# --- LoRA -----------------------------------------------------------------------------------

LORA_CASES = [
    # (peftrun peft section, TRL ModelConfig keyword arguments)
    ("{method: lora, target_modules: qv}", {}),
    ("{method: lora}", {"lora_target_modules": ["all-linear"]}),
    ("{method: lora, r: 32, lora_alpha: 16, target_modules: qv}", {"lora_r": 32, "lora_alpha": 16}),
    (
        "{method: lora, r: 8, lora_alpha: 8, lora_dropout: 0.0, target_modules: [q_proj, v_proj]}",
        {"lora_r": 8, "lora_alpha": 8, "lora_dropout": 0.0, "lora_target_modules": ["q_proj", "v_proj"]},
    ),
    (
        "{method: lora, r: 64, lora_alpha: 16, use_rslora: true, target_modules: [q_proj, k_proj, v_proj, o_proj]}",
        {"lora_r": 64, "lora_alpha": 16, "use_rslora": True, "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
    ),
    ("{method: lora, use_dora: true, target_modules: all-linear}", {"use_dora": True, "lora_target_modules": ["all-linear"]}),
    (
        "{method: lora, use_dora: true, use_rslora: true, r: 4, lora_dropout: 0.1, target_modules: [gate_proj, up_proj]}",
        {"use_dora": True, "use_rslora": True, "lora_r": 4, "lora_dropout": 0.1, "lora_target_modules": ["gate_proj", "up_proj"]},
    ),
    (
        "{method: lora, modules_to_save: [lm_head, embed_tokens], target_modules: qv}",
        {"lora_modules_to_save": ["lm_head", "embed_tokens"]},
    ),
    ("{method: lora, lora_alpha: 0.5, target_modules: qv}", {"lora_alpha": 0.5}),
]


@pytest.mark.parametrize(("trainer", "task_type"), [("sft", "CAUSAL_LM"), ("dpo", "CAUSAL_LM"), ("grpo", "CAUSAL_LM"), ("reward", "SEQ_CLS")])
@pytest.mark.parametrize(("section", "trl_kwargs"), LORA_CASES)
def test_lora_config_equals_trl(plan_of, section: str, trl_kwargs: dict, trainer: str, task_type: str) -> None:
    ours = build_peft_config(plan_of(recipe(trainer, section)))
    theirs = trl.get_peft_config(trl.ModelConfig(use_peft=True, lora_task_type=task_type, **trl_kwargs))
    assert isinstance(ours, LoraConfig)
    assert ours.task_type == task_type
    assert ours.to_dict() == theirs.to_dict()


def test_lora_defaults_are_trl_defaults_with_all_linear(plan_of) -> None:
    ours = build_peft_config(plan_of(recipe())).to_dict()
    theirs = trl.get_peft_config(trl.ModelConfig(use_peft=True)).to_dict()
    assert ours["target_modules"] == "all-linear" and theirs["target_modules"] is None
    assert {**ours, "target_modules": None} == theirs


def test_different_settings_give_different_configs(plan_of) -> None:
    """The parity checks above can fail: a changed setting shows in the comparison."""
    ours = build_peft_config(plan_of(recipe(peft="{method: lora, r: 8, target_modules: qv}")))
    assert ours.to_dict() != trl.get_peft_config(trl.ModelConfig(use_peft=True)).to_dict()


def test_a_single_target_module_stays_a_list(plan_of) -> None:
    """TRL turns a one-item list into a string, which PEFT reads as a full-name regex that matches
    no module (`gate_proj` != `model.layers.0.mlp.gate_proj`); peftrun keeps the list."""
    ours = build_peft_config(plan_of(recipe(peft="{method: lora, target_modules: [gate_proj]}")))
    theirs = trl.get_peft_config(trl.ModelConfig(use_peft=True, lora_target_modules=["gate_proj"]))
    assert ours.target_modules == {"gate_proj"}
    assert theirs.target_modules == "gate_proj"
    assert {**ours.to_dict(), "target_modules": None} == {**theirs.to_dict(), "target_modules": None}


def test_lora_options_trl_does_not_have(plan_of) -> None:
    section = (
        "{method: lora, bias: lora_only, init_lora_weights: gaussian, target_modules: [q_proj, v_proj], exclude_modules: [lm_head],"
        " layers_to_transform: [0, 1], layers_pattern: layers, rank_pattern: {q_proj: 4}, alpha_pattern: {q_proj: 8}}"
    )
    config = build_peft_config(plan_of(recipe(peft=section)))
    assert (config.bias, config.init_lora_weights, config.layers_to_transform) == ("lora_only", "gaussian", [0, 1])
    assert (config.layers_pattern, config.exclude_modules) == ("layers", {"lm_head"})
    assert (config.rank_pattern, config.alpha_pattern) == ({"q_proj": 4}, {"q_proj": 8})


def test_peft_refusal_becomes_a_recipe_error(plan_of) -> None:
    plan = plan_of(recipe(peft="{method: lora, target_modules: [q_proj], layers_to_transform: [0]}"))
    peft = plan.recipe.peft.model_copy(update={"target_modules": "all-linear"})  # past the resolver's own check
    plan = dataclasses.replace(plan, recipe=plan.recipe.model_copy(update={"peft": peft}))
    with pytest.raises(RecipeError) as exc:
        build_peft_config(plan)
    assert [str(p) for p in exc.value.problems] == [
        "r.yaml:4:1: peft: PEFT's LoraConfig refuses these settings: `layers_to_transform` cannot be used when `target_modules` is a str."
    ]


def test_attention_preset_is_a_regex_over_attention_projections(plan_of) -> None:
    import re

    pattern = build_peft_config(plan_of(recipe(peft="{method: lora, target_modules: attention}"))).target_modules
    assert isinstance(pattern, str)
    assert re.fullmatch(pattern, "model.layers.0.self_attn.q_proj")
    assert re.fullmatch(pattern, "transformer.h.3.attn.c_attn")
    assert not re.fullmatch(pattern, "model.layers.0.mlp.gate_proj")


def test_prompt_tuning_config(plan_of) -> None:
    section = "{method: prompt_tuning, num_virtual_tokens: 8, prompt_tuning_init: TEXT, prompt_tuning_init_text: 'Answer:'}"
    config = build_peft_config(plan_of(recipe(peft=section)))
    assert isinstance(config, PromptTuningConfig)
    assert (config.task_type, config.num_virtual_tokens, config.prompt_tuning_init) == ("CAUSAL_LM", 8, "TEXT")
    assert (config.prompt_tuning_init_text, config.tokenizer_name_or_path) == ("Answer:", "org/model")


def test_prompt_tuning_text_init_with_a_gguf_tokenizer(plan_of) -> None:
    section = "{method: prompt_tuning, prompt_tuning_init: TEXT, prompt_tuning_init_text: 'Hi'}"
    config = build_peft_config(plan_of(recipe("reward", peft=section, model=", gguf_file: m.gguf")))
    assert (config.task_type, config.tokenizer_name_or_path, config.tokenizer_kwargs) == ("SEQ_CLS", "org/model", {"gguf_file": "m.gguf"})


def test_full_fine_tuning_builds_no_peft_or_quantization_config(plan_of) -> None:
    plan = plan_of(recipe().replace("peft: {method: lora}\n", ""))
    assert build_peft_config(plan) is None
    assert build_quantization_config(plan) is None


# --- bitsandbytes -------------------------------------------------------------------------------

FOUR_BIT = list(itertools.product(["nf4", "fp4"], [True, False], ["float32", "bfloat16", "float16"], [None, "bfloat16", "uint8"]))


@pytest.mark.parametrize(("quant_type", "double_quant", "compute_dtype", "storage"), FOUR_BIT)
def test_4bit_config_equals_trl(plan_of, quant_type: str, double_quant: bool, compute_dtype: str, storage: str | None) -> None:
    section = f"{{bits: 4, quant_type: {quant_type}, double_quant: {str(double_quant).lower()}, compute_dtype: {compute_dtype}"
    section += f", quant_storage: {storage}}}" if storage else "}"
    ours = build_quantization_config(plan_of(recipe(extra=f"quantization: {section}\n")))
    theirs = trl.get_quantization_config(
        trl.ModelConfig(
            load_in_4bit=True, dtype=compute_dtype, bnb_4bit_quant_type=quant_type,
            use_bnb_nested_quant=double_quant, bnb_4bit_quant_storage=storage,
        )
    )
    assert isinstance(ours, BitsAndBytesConfig)
    assert ours.to_dict() == theirs.to_dict()


@pytest.mark.parametrize(("model_dtype", "hardware"), [("auto", CPU), ("auto", GPU), ("bfloat16", CPU), ("float16", GPU), ("float32", GPU)])
def test_4bit_defaults_equal_trl_with_the_qlora_settings(plan_of, model_dtype: str, hardware: Hardware) -> None:
    """quantization: {bits: 4} alone: nf4, double quant, compute dtype = the resolved model dtype."""
    plan = plan_of(recipe(extra="quantization: {bits: 4}\n", model=f", dtype: {model_dtype}"), hardware)
    ours = build_quantization_config(plan)
    theirs = trl.get_quantization_config(
        trl.ModelConfig(load_in_4bit=True, dtype=plan.recipe.model.dtype, bnb_4bit_quant_type="nf4", use_bnb_nested_quant=True)
    )
    assert ours.to_dict() == theirs.to_dict()
    assert ours.bnb_4bit_compute_dtype is not None and str(ours.bnb_4bit_compute_dtype).endswith(plan.recipe.model.dtype)


def test_8bit_config_equals_trl(plan_of) -> None:
    ours = build_quantization_config(plan_of(recipe(extra="quantization: {bits: 8}\n")))
    theirs = trl.get_quantization_config(trl.ModelConfig(load_in_8bit=True))
    assert ours.load_in_8bit and not ours.load_in_4bit
    assert ours.to_dict() == theirs.to_dict()


# --- TRL training arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trainer", "cls"), [("sft", trl.SFTConfig), ("dpo", trl.DPOConfig), ("grpo", trl.GRPOConfig), ("reward", trl.RewardConfig)]
)
def test_training_args_are_trl_configs(plan_of, trainer: str, cls: type) -> None:
    plan = plan_of(recipe(trainer, extra="seed: 11\noutput: {dir: out/run}\n"))
    args = build_training_args(plan)
    assert type(args) is cls
    assert args.learning_rate == plan.training_args["learning_rate"] == {"sft": 2e-4, "dpo": 5e-6, "grpo": 1e-5, "reward": 1e-4}[trainer]
    assert (args.use_cpu, args.bf16, args.fp16) == (True, False, False)
    assert (args.output_dir, args.seed) == ("out/run", 11)


def test_recipe_trainer_fields_reach_trl(plan_of) -> None:
    text = recipe().replace("{type: sft}", "{type: sft, max_steps: 7, max_length: 256, packing: true, logging_steps: 2, activation_checkpointing: true}")
    args = build_training_args(plan_of(text))
    assert (args.max_steps, args.max_length, args.packing, args.logging_steps) == (7, 256, True, 2)
    assert args.gradient_checkpointing is True


def test_dpo_fields_reach_trl(plan_of) -> None:
    args = build_training_args(plan_of(recipe("dpo").replace("{type: dpo}", "{type: dpo, beta: 0.3, loss_type: [ipo]}")))
    assert (args.beta, list(args.loss_type)) == (0.3, ["ipo"])
    one = build_training_args(plan_of(recipe("dpo").replace("{type: dpo}", "{type: dpo, loss_type: robust}")))
    assert one.loss_type == ["robust"]  # TRL takes one loss as a string, as the schema does


def test_a_misspelt_dpo_loss_is_refused_before_training_with_the_losses_trl_knows(plan_of) -> None:
    """TRL checks loss_type only when the first loss is computed; the recipe is refused at its line instead."""
    with pytest.raises(RecipeError, match=r"trainer.loss_type: Input should be 'sigmoid', 'hinge', .* got 'sigmod'; "
                                          r"did you mean `sigmoid`\?"):
        plan_of(recipe("dpo").replace("{type: dpo}", "{type: dpo, loss_type: sigmod}"))


def test_trl_refusal_becomes_a_recipe_error(plan_of) -> None:
    text = recipe("grpo").replace(
        "reward_funcs: [peftrun.train.rewards:think_format]",
        "reward_funcs: [peftrun.train.rewards:think_format], per_device_train_batch_size: 2, generation_batch_size: 6, num_generations: 4",
    )
    plan = plan_of(text)  # the resolver leaves an explicit generation_batch_size to TRL
    with pytest.raises(RecipeError) as exc:
        build_training_args(plan)
    assert [str(p) for p in exc.value.problems] == [
        "r.yaml:2:1: trainer: TRL's GRPOConfig refuses these settings: generation_batch_size (6) must be divisible by num_generations (4)."
    ]
    assert exc.value.exit_code == 2


# --- every shipped recipe builds its library objects -------------------------------------------

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SHIPPED = list(shipped_recipes().values())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_shipped_recipe_builds(path: Path) -> None:
    plan = resolve(load_recipe(path), CPU)
    peft_config = build_peft_config(plan)
    assert type(peft_config).__name__ == method_info(str(plan.peft_method))["class"]
    assert peft_config.task_type == plan.task_type
    quant = build_quantization_config(plan)
    assert (quant is None) == (plan.recipe.quantization is None)
    args = build_training_args(plan)
    assert type(args).__name__ == trl_table()["classes"][plan.trainer_type]
    assert (args.learning_rate, args.output_dir, args.use_cpu) == (plan.training_args["learning_rate"], f"runs/{path.stem}", True)
    # the peftrun:defaults base turns checkpointing on; a recipe may turn it off (the quickstart's 135M model fits)
    assert args.gradient_checkpointing is plan.training_args.get("activation_checkpointing", True)
