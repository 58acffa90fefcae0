"""The shipped recipes: every one validates, resolves and explains, and shows what it says it shows."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from peftrun.recipe import explain
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve
from peftrun.recipe.shipped import shipped_recipes

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
# every recipe file (the bases they share are in the package: peftrun/recipe/bases, `extends: peftrun:NAME`)
SHIPPED = list(shipped_recipes().values())
GPU = Hardware(cuda=True, bf16=True, device_count=1, name="H100")


def plan(name: str, hardware: Hardware = CPU) -> Plan:
    return resolve(load_recipe(RECIPES / name), hardware)


def test_the_guide_cases_are_shipped() -> None:
    assert {p.name for p in RECIPES.glob("*.yaml")} >= {
        "dora.yaml", "dpo-lora.yaml", "grpo-lora.yaml", "lora-8bit.yaml", "prompt-tuning.yaml",
        "qlora-llama.yaml", "reward-lora.yaml", "rslora.yaml", "sft-lora-qwen2.yaml",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(RECIPES).as_posix())
@pytest.mark.parametrize("hardware", [CPU, GPU], ids=["cpu", "gpu"])
def test_shipped_recipe_validates_resolves_and_explains(path: Path, hardware: Hardware) -> None:
    resolved = resolve(load_recipe(path), hardware)
    assert resolved.warnings == ()
    assert resolved.recipe.name == path.stem
    values = explain.as_data(resolved)["values"]
    table = explain.as_table(resolved)
    assert all(re.search(rf"^{re.escape(v['key'])} ", table, re.MULTILINE) for v in values)
    sources = {v["key"]: v["source"] for v in values}
    located = r"^(recipes/[\w/-]+\.yaml|peftrun:[\w-]+):\d+:\d+$"  # the recipe or a base shipped in the package
    assert re.search(located, sources["trainer.type"])
    assert re.search(located, sources["model.name_or_path"])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_shipped_recipe_header(path: Path) -> None:
    first, second = path.read_text().splitlines()[:2]
    modeline = "# yaml-language-server: $schema="
    assert first.startswith(modeline)
    assert (path.parent / first.removeprefix(modeline)).resolve() == ROOT / "schemas" / "recipe.schema.json"
    assert second.startswith("# ") and len(second) > 20  # says what the recipe shows


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_shipped_recipes_share_a_base(path: Path) -> None:
    sources = load_recipe(path).sources
    assert sources["seed"] == "peftrun:defaults:3:1"
    assert any(source.startswith("peftrun:") for key, source in sources.items() if key.startswith("trainer."))
    assert [b["base"] for b in load_recipe(path).bases][0] == "peftrun:defaults"


def test_sft_lora_qwen2_is_the_guide_example() -> None:
    p = plan("sft-lora-qwen2.yaml")
    peft = p.recipe.peft
    assert (p.recipe.model.name_or_path, p.recipe.dataset.path) == ("Qwen/Qwen2-0.5B", "trl-lib/Capybara")
    assert (peft.method, peft.r, peft.lora_alpha, p.task_type) == ("lora", 32, 16, "CAUSAL_LM")
    assert p.training_args["learning_rate"] == 2e-4


def test_qlora_llama() -> None:
    p = plan("qlora-llama.yaml", GPU)
    quant = p.recipe.quantization
    assert p.recipe.model.name_or_path == "meta-llama/Llama-2-7b-hf"
    assert (quant.bits, quant.quant_type, quant.double_quant, quant.compute_dtype) == (4, "nf4", True, "bfloat16")
    assert (p.peft_method, p.trainer_type, p.training_args["bf16"]) == ("lora", "sft", True)


@pytest.mark.parametrize(("name", "key", "value"), [("dora.yaml", "use_dora", True), ("rslora.yaml", "use_rslora", True)])
def test_lora_variants(name: str, key: str, value: bool) -> None:
    peft = plan(name).recipe.peft
    assert getattr(peft, key) is value
    other = {"use_dora", "use_rslora"} - {key}
    assert getattr(peft, other.pop()) is False


def test_lora_8bit() -> None:
    quant = plan("lora-8bit.yaml").recipe.quantization
    assert (quant.bits, quant.quant_type, quant.compute_dtype) == (8, None, None)


def test_prompt_tuning() -> None:
    p = plan("prompt-tuning.yaml")
    peft = p.recipe.peft
    assert (peft.method, peft.prompt_tuning_init) == ("prompt_tuning", "TEXT")
    assert peft.prompt_tuning_init_text
    assert p.training_args["learning_rate"] == 2e-2
    assert not p.training_args.get("packing") and p.recipe.output.save == "adapter"


@pytest.mark.parametrize(
    ("name", "trainer", "task_type", "rate"),
    [("dpo-lora.yaml", "dpo", "CAUSAL_LM", 5e-6), ("grpo-lora.yaml", "grpo", "CAUSAL_LM", 1e-5), ("reward-lora.yaml", "reward", "SEQ_CLS", 1e-4)],
)
def test_preference_and_rl_recipes(name: str, trainer: str, task_type: str, rate: float) -> None:
    p = plan(name)
    assert (p.trainer_type, p.task_type, p.training_args["learning_rate"]) == (trainer, task_type, rate)


def test_grpo_names_a_shipped_reward() -> None:
    trainer = plan("grpo-lora.yaml").recipe.trainer
    assert trainer.reward_funcs == ["peftrun.train.rewards:think_format"]
    module, function = trainer.reward_funcs[0].split(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert (trainer.per_device_train_batch_size * trainer.gradient_accumulation_steps) % trainer.num_generations == 0


def test_new_trainer_types_and_methods() -> None:
    kto, distill, ia3 = plan("kto-lora.yaml"), plan("distillation-lora.yaml"), plan("ia3.yaml")
    assert (kto.trainer_type, kto.training_args["learning_rate"]) == ("kto", 1e-5)
    assert distill.training_args["teacher_model_name_or_path"] == "Qwen/Qwen2-1.5B-Instruct"
    assert (ia3.peft_method, ia3.training_args["learning_rate"]) == ("ia3", 1e-2)
    assert explain.built_objects(ia3)["peft.IA3Config"] == {"task_type": "CAUSAL_LM", "target_modules": None}
