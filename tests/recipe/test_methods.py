"""PEFT methods and trainer types in resolution: each method's learning-rate rule with its source, peftrun's
defaults over PEFT's, what a method cannot do refused with the reason, and the new trainer types' needs."""

from __future__ import annotations

import importlib.util

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe import defaults
from peftrun.recipe.explain import built_objects
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.methods import REFUSED
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve
from peftrun.recipe.schema import PEFT_METHODS
from tests.recipe.test_validation import columns_hint
from tests.recipe_files import write  # noqa: F401 (write is a fixture)

BASE = "model: {name_or_path: org/model}\ndataset: {path: org/data}\n"


@pytest.fixture
def plan_of(write):  # noqa: ANN201
    def _plan(trainer: str = "{type: sft}", peft: str = "{method: lora}", extra: str = "") -> Plan:
        return resolve(load_recipe(write("r.yaml", f"{BASE}trainer: {trainer}\npeft: {peft}\n{extra}")), CPU)

    return _plan


@pytest.fixture
def refusals(write):  # noqa: ANN201
    def _refusals(trainer: str = "{type: sft}", peft: str = "{method: lora}", extra: str = "") -> list[str]:
        with pytest.raises(RecipeError) as exc:
            resolve(load_recipe(write("r.yaml", f"{BASE}trainer: {trainer}\npeft: {peft}\n{extra}")), CPU)
        return [str(p) for p in exc.value.problems]

    return _refusals


@pytest.mark.parametrize(
    ("trainer", "method", "rate", "rule"),
    [
        ("{type: sft}", "ia3", 1e-2, "rule learning-rate: ia3 = 500 x the full fine-tuning sft rate 2e-05 (PEFT "
         "method-comparison suite: best ia3 run at 0.005, full fine-tuning at 1e-05)"),
        ("{type: dpo}", "vera", 5e-5, "rule learning-rate: vera = 100 x the full fine-tuning dpo rate 5e-07 (PEFT "
         "method-comparison suite: best vera run at 0.001, full fine-tuning at 1e-05)"),
        ("{type: kto}", "lora", 1e-5, "rule learning-rate: LoRA = 10 x the full fine-tuning kto rate 1e-06"),
        ("{type: sft}", "supertuning", 2e-4, "rule learning-rate: supertuning = 10 x the full fine-tuning sft rate "
         "2e-05 (the LoRA rule (PEFT's method-comparison suite publishes no run for this method))"),
        ("{type: grpo, reward_funcs: [concise]}", "prompt_tuning", 2e-2,
         "rule learning-rate: prompt tuning 2e-2 (useful range 1e-2 to 3e-2)"),
    ],
)
def test_learning_rate_rule_per_method_names_its_source(plan_of, trainer: str, method: str, rate: float, rule: str) -> None:
    plan = plan_of(trainer, f"{{method: {method}}}")
    assert plan.training_args["learning_rate"] == pytest.approx(rate)
    assert plan.source("trainer.learning_rate") == rule


def test_every_method_that_runs_has_a_rate_rule() -> None:
    for method in PEFT_METHODS:
        kind, value, source = defaults.method_rate(method)
        assert kind in ("x", "abs") and value > 0 and source, method


def test_a_low_rate_for_a_method_warns_with_its_multiplier(plan_of) -> None:
    plan = plan_of("{type: sft, learning_rate: 1.0e-5}", "{method: vera}")
    assert plan.warnings == ("r.yaml:3:22: trainer.learning_rate 1e-05 is at or below the full fine-tuning rate for "
                             "sft (2e-05); vera usually needs about 100x that (0.002)",)


def test_method_fields_reach_the_peft_config_with_peftrun_defaults(plan_of) -> None:
    plan = plan_of(peft="{method: oft, oft_block_size: 8, r: 0}")
    assert built_objects(plan)["peft.OFTConfig"] == {"task_type": "CAUSAL_LM", "r": 0, "oft_block_size": 8,
                                                     "target_modules": "all-linear"}
    assert plan.source("peft.target_modules") == "default: all-linear (peftrun; trains better than PEFT's q/v default)"
    assert plan.source("peft.oft_block_size") == "r.yaml:4:21"


@pytest.mark.parametrize(
    ("peft", "expected"),
    [
        ("{method: prefix_tuning}", {"task_type": "CAUSAL_LM", "num_virtual_tokens": 20}),
        ("{method: ln_tuning}", {"task_type": "CAUSAL_LM"}),  # norms: PEFT picks them, no linear preset
        ("{method: ia3}", {"task_type": "CAUSAL_LM", "target_modules": None}),  # PEFT's per-architecture IA3 layers
        ("{method: vera, target_modules: attention}", {"task_type": "CAUSAL_LM", "target_modules": r".*(self_attn|attention|attn)\.(q_proj|k_proj|v_proj|o_proj|qkv_proj|query|key|value|dense|c_attn|c_proj|out_proj|Wqkv)"}),
    ],
)
def test_defaults_per_kind_of_method(plan_of, peft: str, expected: dict) -> None:
    plan = plan_of(peft=peft)
    assert next(v for k, v in built_objects(plan).items() if k.startswith("peft.")) == expected


@pytest.mark.parametrize("method", sorted(REFUSED))
def test_methods_that_cannot_wrap_a_causal_lm_are_refused_with_the_reason(refusals, method: str) -> None:
    assert refusals(peft=f"{{method: {method}}}") == [f"r.yaml:4:8: peft.method: {method} cannot be used: {REFUSED[method]}"]


@pytest.mark.ci_env
def test_adamss_plans_where_its_extra_is_installed(plan_of) -> None:
    assert importlib.util.find_spec("sklearn") is not None, "the test extra installs peftrun[adamss]"
    assert plan_of(peft="{method: adamss}").peft_method == "adamss"


def test_adamss_without_its_extra_names_the_extra(refusals, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    assert refusals(peft="{method: adamss}") == [
        "r.yaml:4:8: peft.method: adamss cannot be used: AdaMSS (`method: adamss`, which clusters weight "
        "subspaces) needs sklearn, which is not installed: pip install 'peftrun[adamss]'"
    ]


def test_prefix_tuning_turns_gradient_checkpointing_off(plan_of, refusals) -> None:
    plan = plan_of(peft="{method: prefix_tuning}")
    assert plan.training_args["activation_checkpointing"] is False
    assert plan.source("trainer.activation_checkpointing").startswith("rule no-checkpointing: prefix tuning fails")
    assert refusals("{type: sft, activation_checkpointing: true}", "{method: prefix_tuning}") == [
        "r.yaml:3:22: trainer.activation_checkpointing: prefix tuning fails under gradient checkpointing (attention "
        "mask length mismatch): remove trainer.activation_checkpointing"
    ]


def test_adalora_total_step_follows_max_steps(plan_of, refusals) -> None:
    plan = plan_of("{type: sft, max_steps: 40}", "{method: adalora}")
    assert built_objects(plan)["peft.AdaLoraConfig"]["total_step"] == 40
    assert plan.source("peft.total_step") == "rule adalora-steps: AdaLoRA's rank schedule spans trainer.max_steps -> 40"
    assert refusals(peft="{method: adalora}") == [
        "r.yaml:4:1: peft.total_step: AdaLoRA schedules its ranks over the run: set peft.total_step to the number of "
        "optimizer steps, or set trainer.max_steps"
    ]


def test_presets_a_method_cannot_use_and_merges_it_cannot_do(refusals) -> None:
    assert refusals(peft="{method: ia3, target_modules: all-linear}")[0].startswith(
        "r.yaml:4:21: peft.target_modules: PEFT 0.21.2 saves an all-linear IA3 adapter that it cannot reload")
    assert refusals(peft="{method: lily}", extra="output: {save: merged}") == [
        "r.yaml:5:10: output.save: a lily adapter cannot be merged into the model (PEFT 0.21.2 implements no merge "
        "for Lily): use save: adapter"
    ]
    assert refusals(peft="{method: p_tuning}", extra="output: {save: both}")[0].endswith(
        "a p_tuning adapter cannot be merged into the model (its virtual tokens are inputs, not weights): use save: adapter")


def test_distillation_needs_a_teacher(refusals, plan_of) -> None:
    assert refusals("{type: distillation}") == [
        "r.yaml:3:1: trainer: the distillation trainer needs trainer.teacher_model_name_or_path: the teacher model, "
        "loaded like the student (same quantization, dtype and device rules)"
    ]
    plan = plan_of("{type: distillation, teacher_model_name_or_path: org/teacher}")
    assert plan.training_args["teacher_model_name_or_path"] == "org/teacher"
    assert built_objects(plan)["trl.DistillationConfig"]["learning_rate"] == 1e-5


def test_trainer_types_check_their_columns(write) -> None:
    text = "model: {name_or_path: org/model}\ntrainer: {type: kto}\ndataset: {path: org/data, columns: {chosen: good}}\n"
    with pytest.raises(RecipeError) as exc:
        resolve(load_recipe(write("r.yaml", text)), CPU)
    assert [str(p) for p in exc.value.problems] == [
        "r.yaml:3:37: dataset.columns.chosen: `chosen` is not a column the kto trainer reads (it reads: completion, "
        "label, prompt)" + columns_hint("kto", "chosen")
    ]


def test_experimental_trainers_are_marked(plan_of) -> None:
    plan = plan_of("{type: orpo}")
    assert "trl.experimental.orpo.ORPOConfig" in built_objects(plan)
    assert plan.warnings == ("r.yaml:3:11: trainer.type orpo is experimental: TRL ships it in trl.experimental.orpo, "
                             "whose API may change in any TRL release",)


def test_docs_list_every_method_and_trainer() -> None:
    from pathlib import Path

    from peftrun.recipe.schema import TRAINER_TYPES

    text = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()
    assert all(f"| `{method}`" in text for method in PEFT_METHODS)
    assert all(f"| `{kind}`" in text for kind in TRAINER_TYPES)
