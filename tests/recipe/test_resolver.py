"""peftrun.resolve (peftrun/recipe/resolver.py): rule-based defaults with provenance, and combinations refused before anything loads."""

from __future__ import annotations

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve
from tests.recipe.test_validation import columns_hint
from tests.recipe_files import write  # noqa: F401 (write is a fixture)

GPU = Hardware(cuda=True, bf16=True, device_count=1, name="A100")
OLD_GPU = Hardware(cuda=True, bf16=False, device_count=1, name="V100")

PEFT = {
    "lora": "peft: {method: lora}\n",
    "prompt_tuning": "peft: {method: prompt_tuning}\n",
    "full": "",
}
TRAINER = {
    "sft": "{type: sft}",
    "dpo": "{type: dpo}",
    "grpo": "{type: grpo, reward_funcs: [peftrun.train.rewards:think_format]}",
    "reward": "{type: reward}",
}


def recipe_text(trainer: str = "sft", peft: str = "lora", extra: str = "") -> str:
    return f"model: {{name_or_path: org/model}}\ntrainer: {TRAINER[trainer]}\ndataset: {{path: org/data}}\n{PEFT[peft]}{extra}"


@pytest.fixture
def plan_of(write):  # noqa: ANN201
    def _plan(text: str, hardware: Hardware = CPU, overrides: tuple[str, ...] = ()) -> Plan:
        return resolve(load_recipe(write("r.yaml", text), overrides), hardware)

    return _plan


@pytest.fixture
def refusals(write):  # noqa: ANN201
    def _refusals(text: str, hardware: Hardware = CPU) -> list[str]:
        recipe = load_recipe(write("r.yaml", text))
        with pytest.raises(RecipeError) as exc:
            resolve(recipe, hardware)
        assert exc.value.exit_code == 2
        assert exc.value.source == "r.yaml"
        return [str(p) for p in exc.value.problems]

    return _refusals


# --- the learning-rate rule ------------------------------------------------------------------

LEARNING_RATES = {
    ("sft", "lora"): (2e-4, "rule learning-rate: LoRA = 10 x the full fine-tuning sft rate 2e-05"),
    ("dpo", "lora"): (5e-6, "rule learning-rate: LoRA = 10 x the full fine-tuning dpo rate 5e-07"),
    ("grpo", "lora"): (1e-5, "rule learning-rate: LoRA = 10 x the full fine-tuning grpo rate 1e-06"),
    ("reward", "lora"): (1e-4, "rule learning-rate: LoRA = 10 x the full fine-tuning reward rate 1e-05"),
    ("sft", "full"): (2e-5, "rule learning-rate: full fine-tuning sft baseline 2e-05 (TRL's PEFT guidance)"),
    ("dpo", "full"): (5e-7, "rule learning-rate: full fine-tuning dpo baseline 5e-07 (TRL's PEFT guidance)"),
    ("grpo", "full"): (1e-6, "rule learning-rate: full fine-tuning grpo baseline 1e-06 (TRL's PEFT guidance)"),
    ("reward", "full"): (1e-5, "rule learning-rate: full fine-tuning reward baseline 1e-05 (TRL's PEFT guidance)"),
    **{
        (kind, "prompt_tuning"): (2e-2, "rule learning-rate: prompt tuning 2e-2 (useful range 1e-2 to 3e-2)")
        for kind in TRAINER
    },
}


@pytest.mark.parametrize(("trainer", "peft"), sorted(LEARNING_RATES))
def test_learning_rate_rule(plan_of, trainer: str, peft: str) -> None:
    rate, rule = LEARNING_RATES[(trainer, peft)]
    plan = plan_of(recipe_text(trainer, peft))
    assert plan.training_args["learning_rate"] == rate  # exact: 10 x 2e-5 is 2e-4, not 0.00020000000000000001
    assert plan.recipe.trainer.learning_rate == rate
    assert plan.source("trainer.learning_rate") == rule
    assert plan.warnings == ()


def test_explicit_learning_rate_wins(plan_of) -> None:
    plan = plan_of(recipe_text("sft", "lora").replace("{type: sft}", "{type: sft, learning_rate: 3.0e-4}"))
    assert plan.training_args["learning_rate"] == 3e-4
    assert plan.source("trainer.learning_rate") == "r.yaml:2:22"


def test_learning_rate_from_the_command_line_wins(plan_of) -> None:
    plan = plan_of(recipe_text("dpo", "lora"), overrides=("trainer.learning_rate=1e-5",))
    assert plan.training_args["learning_rate"] == 1e-5
    assert plan.source("trainer.learning_rate") == "command line: trainer.learning_rate=1e-5"


def test_learning_rate_auto_applies_the_rule(plan_of) -> None:
    plan = plan_of(recipe_text("dpo", "lora").replace("{type: dpo}", "{type: dpo, learning_rate: auto}"))
    assert plan.training_args["learning_rate"] == 5e-6
    assert plan.source("trainer.learning_rate") == "rule learning-rate: LoRA = 10 x the full fine-tuning dpo rate 5e-07"


@pytest.mark.parametrize(("rate", "warned"), [("2.0e-5", True), ("1.0e-5", True), ("2.1e-5", False), ("2.0e-4", False)])
def test_warning_when_lora_rate_is_at_or_below_the_baseline(plan_of, rate: str, warned: bool) -> None:
    plan = plan_of(recipe_text("sft", "lora").replace("{type: sft}", f"{{type: sft, learning_rate: {rate}}}"))
    expected = (
        f"r.yaml:2:22: trainer.learning_rate {float(rate):g} is at or below the full fine-tuning rate for sft (2e-05); "
        "LoRA usually needs about 10x that (0.0002)"
    )
    assert plan.warnings == ((expected,) if warned else ())


@pytest.mark.parametrize("peft", ["full", "prompt_tuning"])
def test_no_low_rate_warning_without_lora(plan_of, peft: str) -> None:
    plan = plan_of(recipe_text("sft", peft).replace("{type: sft}", "{type: sft, learning_rate: 1.0e-6}"))
    assert plan.warnings == ()


# --- dtype and precision --------------------------------------------------------------------


def test_dtype_auto_on_cpu_is_float32(plan_of) -> None:
    plan = plan_of(recipe_text())
    assert plan.recipe.model.dtype == "float32"
    assert plan.source("model.dtype") == "rule dtype-auto: bfloat16 where the GPU supports it, else float32 -> float32"
    assert {k: plan.training_args[k] for k in ("bf16", "fp16", "use_cpu")} == {"bf16": False, "fp16": False, "use_cpu": True}
    assert plan.source("trainer.use_cpu") == "rule precision: no CUDA device, so TRL runs on the CPU"


def test_dtype_auto_on_a_bf16_gpu_is_bfloat16(plan_of) -> None:
    plan = plan_of(recipe_text(), GPU)
    assert plan.recipe.model.dtype == "bfloat16"
    assert plan.source("model.dtype") == "rule dtype-auto: bfloat16 where the GPU supports it, else float32 -> bfloat16"
    assert (plan.training_args["bf16"], plan.training_args["fp16"]) == (True, False)
    assert "use_cpu" not in plan.training_args
    assert plan.source("trainer.bf16") == "rule precision: matches model.dtype and the hardware"


def test_dtype_auto_on_a_gpu_without_bf16_is_float32(plan_of) -> None:
    plan = plan_of(recipe_text(), OLD_GPU)
    assert plan.recipe.model.dtype == "float32"
    assert (plan.training_args["bf16"], plan.training_args["fp16"]) == (False, False)


def test_float16_on_a_gpu_sets_fp16(plan_of) -> None:
    plan = plan_of(recipe_text().replace("{name_or_path: org/model}", "{name_or_path: org/model, dtype: float16}"), OLD_GPU)
    assert plan.recipe.model.dtype == "float16"
    assert plan.source("model.dtype") == "r.yaml:1:34"
    assert (plan.training_args["bf16"], plan.training_args["fp16"]) == (False, True)


def test_bfloat16_on_cpu_uses_cpu_autocast(plan_of) -> None:
    plan = plan_of(recipe_text().replace("{name_or_path: org/model}", "{name_or_path: org/model, dtype: bfloat16}"))
    assert {k: plan.training_args[k] for k in ("bf16", "fp16", "use_cpu")} == {"bf16": True, "fp16": False, "use_cpu": True}


def test_explicit_precision_flags_are_kept(plan_of) -> None:
    plan = plan_of(recipe_text("sft").replace("{type: sft}", "{type: sft, bf16: false}"), GPU)
    assert plan.training_args["bf16"] is False
    assert plan.source("trainer.bf16") == "r.yaml:2:22"


# --- quantization ---------------------------------------------------------------------------


@pytest.mark.parametrize(("hardware", "dtype"), [(CPU, "float32"), (GPU, "bfloat16")])
def test_4bit_defaults_follow_the_model_dtype(plan_of, hardware: Hardware, dtype: str) -> None:
    plan = plan_of(recipe_text(extra="quantization: {bits: 4}\n"), hardware)
    quant = plan.recipe.quantization
    assert (quant.quant_type, quant.double_quant, quant.compute_dtype) == ("nf4", True, dtype)
    assert plan.source("quantization.quant_type") == "default: nf4 (QLoRA paper)"
    assert plan.source("quantization.double_quant") == "default: double quantization on (QLoRA paper)"
    assert plan.source("quantization.compute_dtype") == f"rule compute-dtype: follows the resolved model.dtype -> {dtype}"
    assert plan.source("quantization.bits") == "r.yaml:5:16"


def test_4bit_compute_dtype_auto_follows_an_explicit_model_dtype(plan_of) -> None:
    text = recipe_text(extra="quantization: {bits: 4, compute_dtype: auto}\n")
    plan = plan_of(text.replace("{name_or_path: org/model}", "{name_or_path: org/model, dtype: bfloat16}"))
    assert plan.recipe.quantization.compute_dtype == "bfloat16"


def test_explicit_4bit_settings_are_kept(plan_of) -> None:
    plan = plan_of(recipe_text(extra="quantization: {bits: 4, quant_type: fp4, double_quant: false, compute_dtype: float16}\n"))
    quant = plan.recipe.quantization
    assert (quant.quant_type, quant.double_quant, quant.compute_dtype) == ("fp4", False, "float16")
    assert plan.source("quantization.compute_dtype") == "r.yaml:5:63"


def test_8bit_has_no_4bit_defaults(plan_of) -> None:
    plan = plan_of(recipe_text(extra="quantization: {bits: 8}\n"))
    quant = plan.recipe.quantization
    assert (quant.bits, quant.quant_type, quant.double_quant, quant.compute_dtype) == (8, None, None, None)


# --- task type --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trainer", "peft", "task_type"),
    [("sft", "lora", "CAUSAL_LM"), ("dpo", "lora", "CAUSAL_LM"), ("grpo", "lora", "CAUSAL_LM"),
     ("reward", "lora", "SEQ_CLS"), ("reward", "prompt_tuning", "SEQ_CLS"), ("sft", "full", None)],
)
def test_task_type_is_inferred(plan_of, trainer: str, peft: str, task_type: str | None) -> None:
    plan = plan_of(recipe_text(trainer, peft))
    assert plan.task_type == task_type
    if task_type:
        assert plan.recipe.peft.task_type == task_type
        assert plan.source("peft.task_type") == f"rule task-type: CAUSAL_LM, SEQ_CLS for the reward trainer -> {task_type}"


def test_reward_trainer_trains_the_score_head(plan_of) -> None:
    plan = plan_of(recipe_text("reward", "lora"))
    assert plan.source("peft.modules_to_save") == "rule reward-head: the reward trainer trains and saves the `score` head"


def test_matching_task_type_is_accepted(plan_of) -> None:
    plan = plan_of(recipe_text("reward", "lora").replace("{method: lora}", "{method: lora, task_type: SEQ_CLS}"))
    assert plan.task_type == "SEQ_CLS"
    assert plan.source("peft.task_type") == "r.yaml:4:22"


@pytest.mark.parametrize(
    ("trainer", "given", "needed"), [("reward", "CAUSAL_LM", "SEQ_CLS"), ("sft", "SEQ_CLS", "CAUSAL_LM"), ("dpo", "SEQ_CLS", "CAUSAL_LM")]
)
def test_mismatching_task_type_is_refused(refusals, trainer: str, given: str, needed: str) -> None:
    text = recipe_text(trainer, "lora").replace("{method: lora}", f"{{method: lora, task_type: {given}}}")
    assert refusals(text) == [f"r.yaml:4:22: peft.task_type: the {trainer} trainer needs task_type {needed}, not {given}"]


# --- refusals ----------------------------------------------------------------------------------


def test_quantization_without_peft_is_refused(refusals) -> None:
    assert refusals(recipe_text("sft", "full", "quantization: {bits: 4}\n")) == [
        "r.yaml:4:1: quantization: a quantized base cannot be fine-tuned in full: add a `peft:` section (QLoRA)"
    ]


@pytest.mark.parametrize(
    ("option", "column"), [("quant_type: nf4", 25), ("compute_dtype: bfloat16", 25), ("double_quant: true", 25), ("quant_storage: uint8", 25)]
)
def test_8bit_with_4bit_options_is_refused(refusals, option: str, column: int) -> None:
    key = option.split(":")[0]
    assert refusals(recipe_text(extra=f"quantization: {{bits: 8, {option}}}\n")) == [
        f"r.yaml:5:{column}: quantization.{key}: `{key}` applies to 4-bit only; remove it or use bits: 4"
    ]


@pytest.mark.parametrize("key", ["packing", "padding_free"])
def test_prompt_tuning_with_packing_or_padding_free_is_refused(refusals, key: str) -> None:
    text = recipe_text("sft", "prompt_tuning").replace("{type: sft}", f"{{type: sft, {key}: true}}")
    assert refusals(text) == [
        f"r.yaml:2:22: trainer.{key}: prompt tuning cannot be combined with {key} (virtual tokens break it)"
    ]


def test_prompt_tuning_without_packing_is_accepted(plan_of) -> None:
    plan = plan_of(recipe_text("sft", "prompt_tuning").replace("{type: sft}", "{type: sft, packing: false}"))
    assert plan.source("trainer.throughput") == "rule throughput-padded: padded batches (virtual tokens need the attention mask)"


@pytest.mark.parametrize("save", ["merged", "both"])
def test_saving_a_merged_prompt_tuning_model_is_refused(refusals, save: str) -> None:
    assert refusals(recipe_text("sft", "prompt_tuning", f"output: {{save: {save}}}\n")) == [
        "r.yaml:5:10: output.save: a prompt-tuning adapter cannot be merged into the model (its virtual tokens are inputs, not weights): use save: adapter"
    ]


def test_saving_a_merged_lora_model_is_accepted(plan_of) -> None:
    assert plan_of(recipe_text("sft", "lora", "output: {save: merged}\n")).warnings == ()  # neither refused nor warned


def test_float16_resolves_anywhere_the_machine_check_is_at_run_time(plan_of) -> None:
    """A recipe for a GPU validates on a laptop; peftrun.launch.preflight refuses it when a CPU run starts."""
    from peftrun.launch.preflight import preflight

    plan = plan_of(recipe_text().replace("{name_or_path: org/model}", "{name_or_path: org/model, dtype: float16}"))
    assert plan.training_args["fp16"] is True
    with pytest.raises(RecipeError) as exc:
        preflight(plan)
    assert [str(p) for p in exc.value.problems] == [
        "r.yaml:1:34: model.dtype: float16 training needs a CUDA GPU; use float32 or bfloat16 on the CPU"
    ]
    preflight(plan_of(recipe_text().replace("{name_or_path: org/model}", "{name_or_path: org/model, dtype: float16}"),
                      Hardware(cuda=True, bf16=True, device_count=1)))


@pytest.mark.parametrize(
    ("trainer", "column", "reads"),
    [
        ("sft", "chosen", "completion, conversations, messages, prompt, text, tools"),
        ("dpo", "messages", "chosen, prompt, rejected"),
        ("reward", "text", "chosen, prompt, rejected"),
    ],
)
def test_columns_that_do_not_fit_the_trainer_are_refused(refusals, trainer: str, column: str, reads: str) -> None:
    text = recipe_text(trainer, "lora").replace("{path: org/data}", f"{{path: org/data, columns: {{{column}: x}}}}")
    assert refusals(text) == [
        f"r.yaml:3:37: dataset.columns.{column}: `{column}` is not a column the {trainer} trainer reads (it reads: {reads})"
        + columns_hint(trainer, column)
    ]


@pytest.mark.parametrize(("trainer", "column"), [("sft", "messages"), ("dpo", "chosen"), ("reward", "rejected"), ("grpo", "answer")])
def test_columns_that_fit_are_accepted(plan_of, trainer: str, column: str) -> None:
    plan = plan_of(recipe_text(trainer, "lora").replace("{path: org/data}", f"{{path: org/data, columns: {{{column}: x}}}}"))
    assert plan.warnings == ()  # neither refused nor warned


@pytest.mark.parametrize("strategy", ["steps", "epoch"])
def test_eval_strategy_without_eval_data_is_refused(refusals, strategy: str) -> None:
    text = recipe_text().replace("{type: sft}", f"{{type: sft, eval_strategy: {strategy}}}")
    assert refusals(text) == [f"r.yaml:2:22: trainer.eval_strategy: eval_strategy {strategy} needs evaluation data: add dataset.eval"]


def test_eval_data_turns_evaluation_on(plan_of) -> None:
    plan = plan_of(recipe_text().replace("{path: org/data}", "{path: org/data, eval: {fraction: 0.1}}"))
    assert plan.training_args["eval_strategy"] == "epoch"
    assert plan.source("trainer.eval_strategy") == "rule eval: dataset.eval is set, so evaluate at the end of every epoch"


def test_explicit_eval_strategy_with_eval_data_is_kept(plan_of) -> None:
    text = recipe_text().replace("{path: org/data}", "{path: org/data, eval: {split: test}}")
    plan = plan_of(text.replace("{type: sft}", "{type: sft, eval_strategy: steps, eval_steps: 5}"))
    assert (plan.training_args["eval_strategy"], plan.training_args["eval_steps"]) == ("steps", 5)


def test_eval_strategy_no_without_eval_data_is_accepted(plan_of) -> None:
    plan = plan_of(recipe_text().replace("{type: sft}", "{type: sft, eval_strategy: 'no'}"))
    assert plan.training_args["eval_strategy"] == "no"


GRPO = "{type: grpo, reward_funcs: [peftrun.train.rewards:think_format], "


@pytest.mark.parametrize(
    ("settings", "launch", "where", "message"),
    [
        (
            "per_device_train_batch_size: 4, gradient_accumulation_steps: 4, num_generations: 3",
            "",
            "r.yaml:2:139",
            "the generation batch (per_device_train_batch_size x gradient_accumulation_steps = 16) "
            "must be divisible by num_generations (3)",
        ),
        (
            "per_device_train_batch_size: 2, gradient_accumulation_steps: 1",
            "launch: {num_processes: 3}\n",
            "r.yaml:2:1",  # num_generations not written: the trainer section
            "the generation batch (per_device_train_batch_size x gradient_accumulation_steps x launch.num_processes = 6) "
            "must be divisible by num_generations (8)",
        ),
    ],
)
def test_grpo_generation_batch_must_hold_whole_groups(refusals, settings: str, launch: str, where: str, message: str) -> None:
    text = recipe_text("grpo", "lora", launch).replace(TRAINER["grpo"], GRPO + settings + "}")
    assert refusals(text) == [f"{where}: trainer.num_generations: {message}"]


@pytest.mark.parametrize(
    ("settings", "launch", "hardware"),
    [
        ("per_device_train_batch_size: 2, gradient_accumulation_steps: 4, num_generations: 8", "", CPU),
        ("per_device_train_batch_size: 2, gradient_accumulation_steps: 1, num_generations: 8", "launch: {num_processes: 4}\n", CPU),
        (
            "per_device_train_batch_size: 2, gradient_accumulation_steps: 1, num_generations: 8",
            "launch: {num_processes: auto}\n",
            Hardware(cuda=True, bf16=True, device_count=4, name="A100"),
        ),
        ("per_device_train_batch_size: 3, generation_batch_size: 12, num_generations: 4", "", CPU),
        ("per_device_train_batch_size: 3, num_generations: null", "", CPU),
    ],
)
def test_grpo_generation_batches_that_fit(plan_of, settings: str, launch: str, hardware: Hardware) -> None:
    plan = plan_of(recipe_text("grpo", "lora", launch).replace(TRAINER["grpo"], GRPO + settings + "}"), hardware)
    assert plan.trainer_type == "grpo"


def test_grpo_auto_processes_on_cpu_is_one_process(refusals) -> None:
    settings = "per_device_train_batch_size: 2, gradient_accumulation_steps: 1, num_generations: 8"
    text = recipe_text("grpo", "lora", "launch: {num_processes: auto}\n").replace(TRAINER["grpo"], GRPO + settings + "}")
    assert refusals(text) == [
        "r.yaml:2:139: trainer.num_generations: the generation batch (per_device_train_batch_size x "
        "gradient_accumulation_steps = 2) must be divisible by num_generations (8)"
    ]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "{method: lora, layers_to_transform: [0, 1]}",
            "r.yaml:4:22: peft.layers_to_transform: `layers_to_transform` needs target_modules as a list of names, "
            "not the all-linear preset",
        ),
        (
            "{method: lora, target_modules: attention, layers_to_transform: 0, layers_pattern: layers}",
            "r.yaml:4:49: peft.layers_to_transform: `layers_to_transform` needs target_modules as a list of names, "
            "not the attention preset\n"
            "r.yaml:4:73: peft.layers_pattern: `layers_pattern` needs target_modules as a list of names, not the attention preset",
        ),
        (
            "{method: lora, target_modules: [q_proj], layers_pattern: layers}",
            "r.yaml:4:48: peft.layers_pattern: `layers_pattern` is used only with `layers_to_transform`",
        ),
    ],
)
def test_layer_selection_that_peft_refuses(refusals, section: str, expected: str) -> None:
    assert refusals(recipe_text().replace("{method: lora}", section)) == expected.split("\n")


@pytest.mark.parametrize(
    "section",
    ["{method: lora, target_modules: [q_proj], layers_to_transform: [0], layers_pattern: layers}", "{method: lora, target_modules: qv, layers_to_transform: 1}"],
)
def test_layer_selection_with_module_names(plan_of, section: str) -> None:
    assert plan_of(recipe_text().replace("{method: lora}", section)).recipe.peft.layers_to_transform in ([0], 1)


def test_every_refusal_is_reported_at_once(refusals) -> None:
    text = """\
model: {name_or_path: org/model, dtype: float16}
quantization: {bits: 8, double_quant: true}
peft: {method: prompt_tuning, task_type: CAUSAL_LM}
trainer: {type: reward, eval_strategy: epoch}
dataset: {path: org/data, columns: {text: body}}
output: {save: both}
"""
    assert refusals(text) == [
        "r.yaml:2:25: quantization.double_quant: `double_quant` applies to 4-bit only; remove it or use bits: 4",
        "r.yaml:3:31: peft.task_type: the reward trainer needs task_type SEQ_CLS, not CAUSAL_LM",
        "r.yaml:6:10: output.save: a prompt-tuning adapter cannot be merged into the model (its virtual tokens are inputs, not weights): use save: adapter",
        "r.yaml:5:37: dataset.columns.text: `text` is not a column the reward trainer reads (it reads: chosen, prompt, rejected)"
        + columns_hint("reward", "text"),
        "r.yaml:4:25: trainer.eval_strategy: eval_strategy epoch needs evaluation data: add dataset.eval",
    ]


# --- provenance and the plan ----------------------------------------------------------------------


def test_provenance_of_every_kind_of_value(write) -> None:
    write("base.yaml", "model: {name_or_path: org/model}\ntrainer: {type: sft, logging_steps: 5}\ndataset: {path: org/data}\n")
    path = write("child.yaml", "extends: base.yaml\npeft: {method: lora, r: 8}\n")
    plan = resolve(load_recipe(path, ["trainer.max_steps=3"]))
    assert plan.source("trainer.logging_steps") == "base.yaml:2:22"
    assert plan.source("peft.r") == "child.yaml:2:22"
    assert plan.source("trainer.max_steps") == "command line: trainer.max_steps=3"
    assert plan.source("name") == "default: the recipe file's stem"
    assert plan.source("seed") == "default: 42"
    assert plan.source("peft.lora_alpha") == "default: TRL ModelConfig lora_alpha=32"
    assert plan.source("peft.lora_dropout") == "default: TRL ModelConfig lora_dropout=0.05"
    assert plan.source("peft.bias") == "default: TRL get_peft_config bias='none'"
    assert plan.source("peft.target_modules") == "default: all-linear (peftrun; trains better than PEFT's q/v default)"
    assert plan.source("output.dir") == "default: runs/${name}"
    assert plan.source("trainer.output_dir") == "from output.dir"
    assert plan.source("trainer.seed") == "from seed"
    assert plan.source("model.revision") == "default"


def test_training_args_hold_what_the_user_wrote_and_what_peftrun_decides(plan_of) -> None:
    plan = plan_of(recipe_text().replace("{type: sft}", "{type: sft, max_steps: 3, packing: true}") + "seed: 7\n")
    assert dict(plan.training_args) == {
        "max_steps": 3,
        "packing": True,
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "learning_rate": 2e-4,
        "output_dir": "runs/r",
        "seed": 7,
    }
    assert plan.output_dir == "runs/r"
    assert plan.recipe.output.dir == "runs/r"


def test_output_dir_reaches_the_training_args_but_hub_pushes_stay_with_peftrun(plan_of) -> None:
    plan = plan_of(recipe_text(extra="output: {dir: out/x, push_to_hub: true, hub_model_id: me/x}\n"))
    assert plan.training_args["output_dir"] == "out/x"
    assert "push_to_hub" not in plan.training_args, "the trainer would push every checkpoint and its own card"
    assert plan.source("output.dir") == "r.yaml:5:10"


def test_rule_filled_trainer_values_are_in_the_resolved_trainer(plan_of) -> None:
    plan = plan_of(recipe_text(extra="dataset: {path: org/data, eval: {fraction: 0.1}}\n").replace(
        "dataset: {path: org/data}\n", ""))
    assert plan.recipe.trainer.eval_strategy == plan.training_args["eval_strategy"] == "epoch"
    assert plan.recipe.trainer.learning_rate == plan.training_args["learning_rate"] == 2e-4
    assert plan.source("trainer.eval_strategy") == "rule eval: dataset.eval is set, so evaluate at the end of every epoch"


def test_grpo_reward_funcs_stay_out_of_the_training_args(plan_of) -> None:
    plan = plan_of(recipe_text("grpo", "lora"))
    assert "reward_funcs" not in plan.training_args and "type" not in plan.training_args
    assert plan.recipe.trainer.reward_funcs == ["peftrun.train.rewards:think_format"]


def test_a_plan_has_nothing_left_on_auto(plan_of) -> None:
    plan = plan_of(recipe_text(extra="quantization: {bits: 4, compute_dtype: auto}\n").replace("{type: sft}", "{type: sft, learning_rate: auto}"))
    recipe = plan.recipe
    assert (recipe.model.dtype, recipe.quantization.compute_dtype, recipe.trainer.learning_rate) == ("float32", "float32", 2e-4)


def test_dora_on_an_8bit_base_resolves_on_the_cpu(plan_of) -> None:
    """A laptop validates a recipe meant for a GPU node: the CPU refusal is the run's preflight (tests/launch)."""
    text = recipe_text(extra="quantization: {bits: 8}\n").replace("{method: lora}", "{method: lora, use_dora: true}")
    assert plan_of(text).recipe.peft.use_dora
    assert plan_of(text, GPU).recipe.peft.use_dora


def test_the_api_names_resolve_even_after_the_module_is_imported() -> None:
    import peftrun
    import peftrun.recipe.resolver  # noqa: F401

    recipe = peftrun.load_recipe({"model": {"name_or_path": "a/b"}, "trainer": {"type": "sft"}, "dataset": {"path": "c/d"}})
    assert peftrun.resolve(recipe).training_args["learning_rate"] == 2e-5


def test_unknown_shipped_reward_is_refused(refusals) -> None:
    text = recipe_text("grpo").replace("peftrun.train.rewards:think_format", "think_fromat")
    assert refusals(text) == [
        "r.yaml:2:38: trainer.reward_funcs.0: no shipped reward named 'think_fromat' (shipped: answer_match, "
        "answer_contains, think_format, concise); name your own as module:function"
    ]


def test_two_mixed_precisions_at_once_are_refused(refusals) -> None:
    """transformers' TrainingArguments raises on bf16 and fp16 together: the recipe is refused at its line."""
    text = recipe_text().replace("{type: sft}", "{type: sft, bf16: true, fp16: true}")
    assert refusals(text) == [
        "r.yaml:2:34: trainer.fp16: bf16 and fp16 are both true; transformers allows one mixed precision at a time: "
        "keep the one matching model.dtype, or leave both out (the precision rule sets them)"]
