"""peftrun.recipe.validation: strict keys, types and values, every problem at once, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.schema import OWNED_ELSEWHERE, PEFT_METHODS, TRAINER_TYPES
from peftrun.recipe.validation import checked_plan
from tests.recipe_files import MINIMAL, write  # noqa: F401 (write is a fixture)


def report(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert exc.value.exit_code == 2
    return [str(p) for p in exc.value.problems]


def test_minimal_recipe_validates(write) -> None:
    recipe = load_recipe(write("r.yaml", MINIMAL))
    assert (recipe.model.name_or_path, recipe.trainer.type, recipe.dataset.path) == ("org/model", "sft", "org/data")
    assert recipe.peft is None and recipe.quantization is None
    assert recipe.launch.strategy == "ddp"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("quantisation: {bits: 4}", "r.yaml:4:1: quantisation: unknown key `quantisation`; did you mean `quantization`?"),
        ("sed: 3", "r.yaml:4:1: sed: unknown key `sed`; did you mean `seed`?"),
        ("output: {dri: x}", "r.yaml:4:10: output.dri: unknown key `dri`; did you mean `dir`?"),
        (
            "launch: {num_process: 2}",
            "r.yaml:4:10: launch.num_process: unknown key `num_process`; "
            "did you mean `num_processes`?",
        ),
        (
            "launch: {strategy: deepspeed, zero_stag: 3}",
            "r.yaml:4:31: launch.zero_stag: unknown key `zero_stag`; did you mean `zero_stage`?",
        ),
        (
            "launch: {strategy: fsdp, offload_param: true}",
            "r.yaml:4:26: launch.offload_param: unknown key `offload_param`; did you mean `offload_params`?",
        ),
        (
            "quantization: {bits: 4, quant_typ: nf4}",
            "r.yaml:4:25: quantization.quant_typ: unknown key `quant_typ`; did you mean `quant_type`?",
        ),
        ("peft: {method: lora, lora_alpah: 8}", "r.yaml:4:22: peft.lora_alpah: unknown key `lora_alpah`; did you mean `lora_alpha`?"),
        (
            "peft: {method: prompt_tuning, num_virtual_token: 8}",
            "r.yaml:4:31: peft.num_virtual_token: unknown key `num_virtual_token`; did you mean `num_virtual_tokens`?",
        ),
        ("zzz: 1", "r.yaml:4:1: zzz: unknown key `zzz`"),
    ],
)
def test_unknown_keys_at_every_depth(write, line: str, expected: str) -> None:
    assert report(write("r.yaml", MINIMAL + line + "\n")) == [expected]


def test_unknown_keys_in_nested_sections(write) -> None:
    path = write(
        "r.yaml",
        """
        model: {name_or_path: org/model, dtyp: bfloat16}
        trainer: {type: dpo, betta: 0.2}
        dataset:
          path: org/data
          eval: {fractoin: 0.1}
        """,
    )
    assert report(path) == [
        "r.yaml:1:34: model.dtyp: unknown key `dtyp`; did you mean `dtype`?",
        "r.yaml:2:22: trainer.betta: unknown key `betta`; did you mean `beta`?",
        "r.yaml:5:10: dataset.eval.fractoin: unknown key `fractoin`; did you mean `fraction`?",
    ]


def test_every_problem_is_reported_at_once(write) -> None:
    path = write(
        "r.yaml",
        """
        model:
          name_or_path: org/model
          dtype: bf16
        peft:
          method: lora
          r: many
          lora_alpah: 16
        trainer:
          type: sft
          learning_rat: 1.0e-4
          num_train_epochs: lots
        dataset:
          path: org/data
        launch:
          strategy: fdsp
        """,
    )
    assert report(path) == [
        "r.yaml:3:3: model.dtype: Input should be 'auto', 'bfloat16', 'float16' or 'float32'; got 'bf16'; did you mean `bfloat16`?",
        "r.yaml:6:3: peft.r: Input should be a valid integer; got 'many'",
        "r.yaml:7:3: peft.lora_alpah: unknown key `lora_alpah`; did you mean `lora_alpha`?",
        "r.yaml:11:3: trainer.num_train_epochs: Input should be a valid number, unable to parse string as a number; got 'lots'",
        "r.yaml:10:3: trainer.learning_rat: unknown key `learning_rat`; did you mean `learning_rate`?",
        "r.yaml:15:3: launch.strategy: unknown value 'fdsp'; did you mean `fsdp`? (one of: ddp, fsdp, deepspeed)",
    ]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("seed: forty", "r.yaml:4:1: seed: Input should be a valid integer, unable to parse string as an integer; got 'forty'"),
        ("seed: -1", "r.yaml:4:1: seed: Input should be greater than or equal to 0; got -1"),  # numpy refuses it at run time
        ("peft: {method: lora, r: 0}", "r.yaml:4:22: peft.r: Input should be greater than or equal to 1; got 0"),
        ("peft: {method: lora, lora_dropout: 1.5}", "r.yaml:4:22: peft.lora_dropout: Input should be less than 1; got 1.5"),
        ("peft: {method: lora, bias: some}", "r.yaml:4:22: peft.bias: Input should be 'none', 'all' or 'lora_only'; got 'some'"),
        (
            "peft: {method: lora, target_modules: 5}",
            "r.yaml:4:22: peft.target_modules: Input should be a valid list, or 'all-linear', 'attention' or 'qv'; got 5",
        ),
        (
            "peft: {method: lora, target_modules: [q_proj, '']}",
            "r.yaml:4:47: peft.target_modules.1: String should have at least 1 character; got ''",
        ),
        (
            "peft: {method: lora, init_lora_weights: magic}",
            "r.yaml:4:22: peft.init_lora_weights: must be true, false, or one of gaussian, olora, pissa, "
            "pissa_niter_N, orthogonal, loftq, eva, corda",
        ),
        ("peft: {method: lora, init_lora_weights: loftq}", "r.yaml:4:1: peft: init_lora_weights: loftq needs loftq_config (loftq_bits, loftq_iter)"),
        ("peft: {method: lora, eva_config: {rho: 1.0}}", "r.yaml:4:1: peft: eva_config is used only with init_lora_weights: eva"),
        (
            "peft: {method: lora, init_lora_weights: eva, eva_config: {rank: 2}}",
            "r.yaml:4:59: peft.eva_config.rank: unknown key `rank`",
        ),
        ("peft: {method: lora, rank_pattern: {q: x}}", "r.yaml:4:37: peft.rank_pattern.q: Input should be a valid integer, unable to parse string as an integer; got 'x'"),
        ("peft: {method: prompt_tuning, prompt_tuning_init: TEXT}", "r.yaml:4:1: peft: prompt_tuning_init: TEXT needs prompt_tuning_init_text"),
        ("quantization: {bits: 2}", "r.yaml:4:16: quantization.bits: Input should be 4 or 8; got 2"),
        ("quantization: {bits: 4, quant_type: int4}", "r.yaml:4:25: quantization.quant_type: Input should be 'nf4' or 'fp4'; got 'int4'"),
        ("output: {save: everything}", "r.yaml:4:10: output.save: Input should be 'adapter', 'merged' or 'both'; got 'everything'"),
        ("output: {push_to_hub: true}", "r.yaml:4:1: output: push_to_hub: true needs hub_model_id"),
        (
            "launch: {num_processes: many}",
            "r.yaml:4:10: launch.num_processes: Input should be a valid integer, unable to parse string as an integer, or 'auto'; got 'many'",
        ),
        ("launch: {strategy: deepspeed, zero_stage: 4}", "r.yaml:4:31: launch.zero_stage: Input should be 1, 2 or 3; got 4"),
    ],
)
def test_wrong_types_and_values_name_the_expected_one(write, section: str, expected: str) -> None:
    assert report(write("r.yaml", MINIMAL + section + "\n")) == [expected]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("{path: 5}", "r.yaml:3:11: dataset.path: Input should be a valid string, or a valid list; got 5"),
        ("{path: d, max_samples: 0}", "r.yaml:3:20: dataset.max_samples: Input should be greater than or equal to 1; got 0"),
        ("{path: d, eval: {fraction: 0.1, split: test}}", "r.yaml:3:20: dataset.eval: give exactly one of fraction, split, path, sources (got fraction, split)"),
        ("{path: d, eval: {}}", "r.yaml:3:20: dataset.eval: give exactly one of fraction, split, path, sources (got none)"),
        ("{path: d, eval: {fraction: 1.5}}", "r.yaml:3:27: dataset.eval.fraction: Input should be less than 1; got 1.5"),
        ("{path: d, eval: {path: [1]}}", "r.yaml:3:34: dataset.eval.path.0: Input should be a valid string; got 1"),
        ("{path: d, columns: [prompt]}", "r.yaml:3:20: dataset.columns: must be a mapping of keys, got ['prompt']"),
        ("x", "r.yaml:3:1: dataset: must be a mapping of keys, got 'x'"),
    ],
)
def test_dataset_values(write, section: str, expected: str) -> None:
    path = write("r.yaml", MINIMAL.replace("{path: org/data}", section))
    assert report(path) == [expected]


def test_a_boolean_must_be_a_boolean(write) -> None:
    path = write("r.yaml", MINIMAL.replace("{name_or_path: org/model}", "{name_or_path: org/model, trust_remote_code: sure}"))
    assert report(path) == [
        "r.yaml:1:34: model.trust_remote_code: Input should be a valid boolean, unable to interpret input; got 'sure'"
    ]


def test_trainer_fields_are_strictly_typed(write) -> None:
    path = write(
        "r.yaml",
        MINIMAL.replace("{type: sft}", '{type: sft, gradient_accumulation_steps: "8", packing: "yes", report_to: [1]}'),
    )
    assert report(path) == [
        "r.yaml:2:22: trainer.gradient_accumulation_steps: Input should be a valid integer; got '8'",
        "r.yaml:2:84: trainer.report_to.0: Input should be a valid string; got 1",
        "r.yaml:2:56: trainer.packing: Input should be a valid boolean; got 'yes'",
    ]


def test_trainer_accepts_trl_fields_by_their_own_names(write) -> None:
    recipe = load_recipe(
        write(
            "r.yaml",
            MINIMAL.replace(
                "{type: sft}",
                "{type: sft, max_length: 512, packing: true, lr_scheduler_type: cosine, warmup_steps: 0.1, report_to: [tensorboard]}",
            ),
        )
    )
    trainer = recipe.trainer
    assert (trainer.max_length, trainer.packing, trainer.lr_scheduler_type) == (512, True, "cosine")
    assert trainer.report_to == ["tensorboard"]


METHODS = ", ".join(PEFT_METHODS)
TYPES = ", ".join(TRAINER_TYPES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("peft: {method: dora}", f"r.yaml:4:8: peft.method: unknown value 'dora'; did you mean `delora` or `lora` or `adalora`? (one of: {METHODS})"),
        ("peft: {method: prefix}", f"r.yaml:4:8: peft.method: unknown value 'prefix'; did you mean `prefix_tuning`? (one of: {METHODS})"),
        (
            "launch: {strategy: fdsp}",
            "r.yaml:4:10: launch.strategy: unknown value 'fdsp'; did you mean `fsdp`? (one of: ddp, fsdp, deepspeed)",
        ),
        ("launch: {strategy: zero}", "r.yaml:4:10: launch.strategy: unknown value 'zero' (one of: ddp, fsdp, deepspeed)"),
    ],
)
def test_bad_discriminator_values(write, text: str, expected: str) -> None:
    assert report(write("r.yaml", MINIMAL + text + "\n")) == [expected]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("ppo", f"unknown value 'ppo'; did you mean `dpo` or `cpo`? (one of: {TYPES})"),
        ("rewards", f"unknown value 'rewards'; did you mean `reward`? (one of: {TYPES})"),
        ("ktoo", f"unknown value 'ktoo'; did you mean `kto`? (one of: {TYPES})"),
    ],
)
def test_bad_trainer_type(write, kind: str, expected: str) -> None:
    path = write("r.yaml", MINIMAL.replace("{type: sft}", f"{{type: {kind}}}"))
    assert report(path) == [f"r.yaml:2:11: trainer.type: {expected}"]


def test_missing_discriminator_and_required_sections(write) -> None:
    path = write("r.yaml", "model: {name_or_path: org/model}\npeft: {r: 8}\ntrainer: {max_steps: 3}\n")
    assert report(path) == [
        "r.yaml:2:1: peft: missing `method`, which selects the kind of section",
        "r.yaml:3:1: trainer: missing `type`, which selects the kind of section",
        "dataset: required key is missing",
    ]


def test_missing_required_key_points_at_its_section(write) -> None:
    path = write("r.yaml", "model: {revision: main}\ntrainer: {type: sft}\ndataset: {split: train}\n")
    assert report(path) == [
        "r.yaml:1:1: model.name_or_path: required key is missing",
        "r.yaml:3:1: dataset: give either `path` (one source) or `sources` (a list), not both or neither",
    ]


@pytest.mark.parametrize(
    ("kind", "key", "owners"),
    [
        ("sft", "beta: 0.1", "dpo, grpo, kto, rloo and 3 more trainers"),
        ("sft", "num_generations: 4", "grpo and rloo trainers"),
        ("dpo", "packing: true", "sft trainer"),
        ("reward", "loss_type: sigmoid", "sft, dpo, grpo, kto and cpo trainers"),
        ("grpo", "center_rewards_coefficient: 0.01", "reward trainer"),
    ],
)
def test_field_of_another_trainer_names_its_owners(write, kind: str, key: str, owners: str) -> None:
    extra = ", reward_funcs: [peftrun.train.rewards:think_format]" if kind == "grpo" else ""
    path = write("r.yaml", MINIMAL.replace("{type: sft}", f"{{type: {kind}{extra}, {key}}}"))
    name = key.split(":")[0]
    column = len(f"trainer: {{type: {kind}{extra}, ") + 1
    assert report(path) == [f"r.yaml:2:{column}: trainer.{name}: `{name}` is a field of the {owners}, not of this one"]


@pytest.mark.parametrize(
    ("method", "key", "message"),
    [
        ("lora", "oft_block_size: 8", "`oft_block_size` is a field of the oft method, not of this one"),
        ("ia3", "lora_alpha: 8", "`lora_alpha` is a field of the adalora, lora and supertuning methods, not of this one"),
        ("prompt_tuning", "r: 8", "`r` is a field of the adalora, adamss, deft, delora and 22 more methods, not of this one"),
    ],
)
def test_field_of_another_method_names_its_methods(write, method: str, key: str, message: str) -> None:
    path = write("r.yaml", MINIMAL + f"peft: {{method: {method}, {key}}}\n")
    column = len(f"peft: {{method: {method}, ") + 1
    assert report(path) == [f"r.yaml:4:{column}: peft.{key.split(':')[0]}: {message}"]


@pytest.mark.parametrize("key", sorted(OWNED_ELSEWHERE))
def test_fields_owned_elsewhere_point_to_their_place(write, key: str) -> None:
    path = write("r.yaml", MINIMAL.replace("{type: sft}", f"{{type: sft, {key}: null}}"))
    assert report(path) == [f"r.yaml:2:22: trainer.{key}: `{key}` is not a key here: {OWNED_ELSEWHERE[key]}"]


def test_output_dir_under_trainer_says_use_output_dir(write) -> None:
    path = write("r.yaml", MINIMAL.replace("{type: sft}", "{type: sft, output_dir: out}"))
    assert report(path) == ["r.yaml:2:22: trainer.output_dir: `output_dir` is not a key here: use output.dir"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("model: {name_or_path: m, load_in_4bit: true}", "model.load_in_4bit: `load_in_4bit` is not a key here: use quantization.bits: 4"),
        ("model: {name_or_path: m, torch_dtype: bfloat16}", "model.torch_dtype: `torch_dtype` is not a key here: transformers 4.56 renamed it: use model.dtype; "
         "`peftrun migrate` rewrites it"),
        ("peft: {method: lora, lora_r: 8}", "peft.lora_r: `lora_r` is not a key here: use peft.r"),
        ("use_peft: true", "use_peft: `use_peft` is not a key here: add a `peft:` section (method: lora)"),
    ],
)
def test_keys_from_trl_scripts_get_a_hint(write, line: str, expected: str) -> None:
    text = MINIMAL.replace("model: {name_or_path: org/model}\n", "") if line.startswith("model") else MINIMAL
    problems = report(write("r.yaml", text + line + "\n"))
    assert len(problems) == 1 and problems[0].split(": ", 1)[1] == expected


def test_max_seq_length_says_trl_renamed_it(write) -> None:
    path = write("r.yaml", MINIMAL.replace("{type: sft}", "{type: sft, max_seq_length: 512}"))
    assert report(path) == [
        "r.yaml:2:22: trainer.max_seq_length: `max_seq_length` is not a key here: TRL 0.20 renamed it: use "
        "trainer.max_length; `peftrun migrate` rewrites it"
    ]


def test_grpo_needs_reward_funcs(write) -> None:
    assert report(write("r.yaml", MINIMAL.replace("{type: sft}", "{type: grpo}"))) == [
        "r.yaml:2:1: trainer.reward_funcs: required key is missing"
    ]


@pytest.mark.parametrize("value", ["peftrun.train.rewards:think_format", "my_pkg.scores:length", "think_format"])
def test_reward_funcs_are_references(write, value: str) -> None:
    path = write("r.yaml", MINIMAL.replace("{type: sft}", f"{{type: grpo, reward_funcs: [{value}]}}"))
    assert load_recipe(path).trainer.reward_funcs == [value]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", "r.yaml:2:23: trainer.reward_funcs: List should have at least 1 item after validation, not 0; got []"),
        ("think_format", "r.yaml:2:23: trainer.reward_funcs: Input should be a valid list; got 'think_format'"),
        (
            "['os.system; rm -rf']",
            "r.yaml:2:38: trainer.reward_funcs.0: String should match pattern "
            "'^[A-Za-z_][\\w.]*(:[A-Za-z_]\\w*)?$'; got 'os.system; rm -rf'",
        ),
        ("[pkg:1bad]", "r.yaml:2:38: trainer.reward_funcs.0: String should match pattern '^[A-Za-z_][\\w.]*(:[A-Za-z_]\\w*)?$'; got 'pkg:1bad'"),
    ],
)
def test_bad_reward_funcs(write, value: str, expected: str) -> None:
    path = write("r.yaml", MINIMAL.replace("{type: sft}", f"{{type: grpo, reward_funcs: {value}}}"))
    assert report(path) == [expected]


def test_missing_local_files_and_refused_combinations_are_reported_together(write, tmp_path: Path) -> None:
    path = write(
        "r.yaml",
        """
        model: {name_or_path: ./models/tiny, chat_template: t.jinja}
        trainer: {type: sft}
        dataset:
          path: data/train.jsonl
          eval: {path: [data/eval.jsonl]}
          columns: {chosen: x}
        quantization: {bits: 8, quant_type: nf4}
        """,
    )
    with pytest.raises(RecipeError) as exc:
        checked_plan(load_recipe(path), CPU)
    assert [str(p) for p in exc.value.problems] == [
        f"r.yaml:4:3: dataset.path: no such file or directory: data/train.jsonl (relative paths start at {tmp_path})",
        f"r.yaml:5:10: dataset.eval.path: no such file or directory: data/eval.jsonl (relative paths start at {tmp_path})",
        f"r.yaml:1:38: model.chat_template: no such file or directory: t.jinja (relative paths start at {tmp_path})",
        f"r.yaml:1:9: model.name_or_path: no such file or directory: ./models/tiny (relative paths start at {tmp_path})",
        "r.yaml:7:1: quantization: a quantized base cannot be fine-tuned in full: add a `peft:` section (QLoRA)",
        "r.yaml:7:25: quantization.quant_type: `quant_type` applies to 4-bit only; remove it or use bits: 4",
        "r.yaml:6:13: dataset.columns.chosen: `chosen` is not a column the sft trainer reads (it reads: completion, "
        "conversations, messages, prompt, text, tools)" + columns_hint("sft", "chosen"),
    ]


COLUMNS_HINT = ("; a key of columns is the trainer's name and its value your field (columns: {{{column}: {name}}} "
                "reads your `{name}` as {column}); for records of a named shape, set `format:` and map onto its "
                "fields{alpaca}")
ALPACA = " (format: alpaca reads instruction, input, output: columns: {{output: {name}}})"


def columns_hint(trainer: str, name: str) -> str:
    """The hint after a column the trainer does not read (its example reads the user's name)."""
    column = "completion" if trainer in ("sft", "kto") else "chosen"
    alpaca = ALPACA.format(name=name) if trainer == "sft" else ""
    return COLUMNS_HINT.format(column=column, name=name, alpaca=alpaca)


def test_existing_local_data_file_validates(write) -> None:
    """Files are checked by checked_plan (load_recipe reads none): the same recipe without the file is refused."""
    path = write("r.yaml", MINIMAL.replace("org/data", "data/train.jsonl"))
    with pytest.raises(RecipeError, match="dataset.path: no such file or directory: data/train.jsonl"):
        checked_plan(load_recipe(path), CPU)
    write("data/train.jsonl", '{"text": "hi"}\n')
    assert checked_plan(load_recipe(path), CPU).recipe.dataset.path == "data/train.jsonl"


def test_hub_ids_are_not_checked(write) -> None:
    """`org/data` exists nowhere on disk: as a hub id it is left to the hub."""
    assert checked_plan(load_recipe(write("r.yaml", MINIMAL)), CPU).recipe.dataset.path == "org/data"


@pytest.mark.parametrize(("line", "unknown"), [("sed: 3", True), ("peft: {method: lora, num_virtual_tokens: 4}", True),
                                               ("seed: x", False)])
def test_a_problem_says_whether_its_key_exists(write, line: str, unknown: bool) -> None:
    """Tools that act on a problem (the importer's writer) read its kind, not its wording."""
    with pytest.raises(RecipeError) as exc:
        load_recipe(write("r.yaml", MINIMAL + line + "\n"))
    assert [p.unknown_key for p in exc.value.problems] == [unknown]


def test_error_report_is_the_cli_text(write) -> None:
    with pytest.raises(RecipeError) as exc:
        load_recipe(write("r.yaml", MINIMAL + "sed: 1\nzzz: 2\n"))
    assert exc.value.report() == (
        "r.yaml: 2 problems\n"
        "  r.yaml:4:1: sed: unknown key `sed`; did you mean `seed`?\n"
        "  r.yaml:5:1: zzz: unknown key `zzz`"
    )


@pytest.mark.parametrize(("version", "fix"), [("2", "upgrade peftrun"), ("0", "fix the number")])
def test_a_schema_version_this_peftrun_does_not_read(write, version: str, fix: str) -> None:
    path = write("r.yaml", f"schema_version: {version}\n" + MINIMAL)
    assert report(path) == [f"r.yaml:1:1: schema_version: this peftrun reads recipe format 1, not {version}: {fix}"]
