"""Pure resolution: Recipe (+ Hardware) -> Plan, every value with its provenance.

Every default that depends on other values (learning rate, dtypes, precision
flags, task type, output directory) is filled here by a rule named in
peftrun.recipe.defaults.RULES; cross-section combinations that cannot work are refused
here, all at once, before anything loads.
"""

from __future__ import annotations

from typing import Any

from peftrun.errors import RecipeError
from peftrun.recipe import defaults
from peftrun.recipe.defaults import SHIPPED_REWARDS
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.launch_rules import resolve_launch
from peftrun.recipe.notes import Notes
from peftrun.recipe.plan import Plan
from peftrun.recipe.peft_rules import label, peft_rules, trainer_type_rules
from peftrun.recipe.schema import QuantizationSection, Recipe, method_info
from peftrun.recipe.trainer_types import TRAINERS

TRAINER_OWNED = ("type", "reward_funcs", "throughput")  # trainer-section keys that are not TRL config fields


def _model_dtype(recipe: Recipe, hw: Hardware, notes: Notes) -> str:
    dtype = recipe.model.dtype
    if dtype == "auto":
        dtype = "bfloat16" if hw.bf16 else "float32"
        notes.fill("model.dtype", f"{defaults.RULES['model.dtype']} -> {dtype}")
    return dtype


def _quantization(recipe: Recipe, dtype: str, notes: Notes) -> QuantizationSection | None:
    quant = recipe.quantization
    if quant is None:
        return None
    if recipe.peft is None:
        notes.refuse("quantization", "a quantized base cannot be fine-tuned in full: add a `peft:` section (QLoRA)")
    if quant.bits == 8:
        for key in ("quant_type", "compute_dtype", "double_quant", "quant_storage"):
            if getattr(quant, key) is not None:
                notes.refuse(f"quantization.{key}", f"`{key}` applies to 4-bit only; remove it or use bits: 4")
        return quant
    update: dict[str, Any] = {}
    if quant.quant_type is None:
        update["quant_type"] = defaults.QUANT_TYPE_4BIT
        notes.fill("quantization.quant_type", defaults.RULES["quantization.quant_type"])
    if quant.double_quant is None:
        update["double_quant"] = defaults.DOUBLE_QUANT_4BIT
        notes.fill("quantization.double_quant", defaults.RULES["quantization.double_quant"])
    if quant.compute_dtype in (None, "auto"):
        update["compute_dtype"] = dtype
        notes.fill("quantization.compute_dtype", f"{defaults.RULES['quantization.compute_dtype']} -> {dtype}")
    return quant.model_copy(update=update)


def _task_type(recipe: Recipe, notes: Notes) -> str | None:
    if recipe.peft is None:
        return None
    wanted = "SEQ_CLS" if TRAINERS[recipe.trainer.type].sequence_classification else "CAUSAL_LM"
    given = recipe.peft.task_type
    if given is not None and given != wanted:
        notes.refuse("peft.task_type", f"the {recipe.trainer.type} trainer needs task_type {wanted}, not {given}")
    if given is None:
        notes.fill("peft.task_type", f"{defaults.RULES['peft.task_type']} -> {wanted}")
    return wanted


def _static_defaults(recipe: Recipe, notes: Notes) -> None:
    """Name the rule behind each schema default that has one in defaults.RULES (peft: recipe/peft_rules.py)."""
    if not notes.given("seed"):
        notes.fill("seed", defaults.RULES["seed"])
    if not notes.given("dataset.checks.allow"):
        notes.fill("dataset.checks.allow", defaults.RULES["dataset.checks.allow"])


def _learning_rate(recipe: Recipe, notes: Notes) -> float:
    kind, method = str(recipe.trainer.type), recipe.peft.method if recipe.peft else None
    rate, rule = defaults.learning_rate_rule(kind, method)
    if not notes.given("trainer.learning_rate") or recipe.trainer.learning_rate == "auto":
        notes.fill("trainer.learning_rate", rule)
        return rate
    given = float(recipe.trainer.learning_rate)
    baseline = TRAINERS[kind].full_ft_learning_rate
    scale, multiplier, _ = defaults.method_rate(method) if method else ("abs", 1.0, "")
    if scale == "x" and multiplier > 1 and given <= baseline:
        notes.warnings.append(
            f"{notes.where('trainer.learning_rate')}: trainer.learning_rate {given:g} is at or below the full "
            f"fine-tuning rate for {kind} ({baseline:g}); {label(str(method))} usually needs about {multiplier:g}x "
            f"that ({rate:g})"
        )
    return given


def _precision(recipe: Recipe, dtype: str, hw: Hardware, notes: Notes) -> dict[str, Any]:
    """TRL's bf16 / fp16 / use_cpu flags matching the model dtype and the hardware."""
    wanted = {"bf16": dtype == "bfloat16", "fp16": dtype == "float16"}
    if not hw.cuda:
        wanted["use_cpu"] = True
    flags = {}
    for key, value in wanted.items():
        if not notes.given(f"trainer.{key}"):
            flags[key] = value
            notes.fill(f"trainer.{key}", defaults.RULES[f"trainer.{key}"])
    if getattr(recipe.trainer, "bf16", None) and getattr(recipe.trainer, "fp16", None):
        notes.refuse("trainer.fp16", "bf16 and fp16 are both true; transformers allows one mixed precision at a time: "
                     "keep the one matching model.dtype, or leave both out (the precision rule sets them)")
    return flags


def _data_checks(recipe: Recipe, notes: Notes) -> None:
    kind = str(recipe.trainer.type)
    allowed = TRAINERS[kind].columns
    for prefix, source in recipe.dataset.all_sources():
        for name in source.columns:
            if allowed and name not in allowed and source.format is None:  # a format reads the renamed fields
                notes.refuse(
                    f"{prefix}.columns.{name}",
                    f"`{name}` is not a column the {kind} trainer reads (it reads: {', '.join(sorted(allowed))}); "
                    + _columns_hint(kind, name, allowed),
                )
    eval_strategy = getattr(recipe.trainer, "eval_strategy", "no")
    if recipe.dataset.eval is None and notes.given("trainer.eval_strategy") and eval_strategy != "no":
        notes.refuse("trainer.eval_strategy", f"eval_strategy {eval_strategy} needs evaluation data: add dataset.eval")


def _columns_hint(kind: str, name: str, allowed: frozenset[str]) -> str:
    """How `dataset.columns` reads, with the user's own name in the example."""
    column = "completion" if "completion" in allowed else sorted(allowed)[0]
    named = " (format: alpaca reads instruction, input, output: columns: {output: %s})" % name if kind == "sft" else ""
    return (f"a key of columns is the trainer's name and its value your field (columns: {{{column}: {name}}} reads "
            f"your `{name}` as {column}); for records of a named shape, set `format:` and map onto its fields{named}")


def _grpo_checks(recipe: Recipe, notes: Notes) -> None:
    trainer = recipe.trainer
    if not TRAINERS[trainer.type].rewards:
        return
    for i, name in enumerate(trainer.reward_funcs):
        if ":" not in name and name not in SHIPPED_REWARDS:
            path = f"trainer.reward_funcs.{i}"
            notes.refuse(path, f"no shipped reward named {notes.shown(path, name)} (shipped: "
                         f"{', '.join(SHIPPED_REWARDS)}); name your own as module:function")
    _generation_batch_check(recipe, notes)


def _generation_batch_check(recipe: Recipe, notes: Notes) -> None:
    trainer, launch = recipe.trainer, recipe.launch
    if trainer.generation_batch_size or trainer.steps_per_generation or not trainer.num_generations:
        return
    if launch.num_processes == "auto":  # known only at launch
        return
    processes = launch.num_processes * launch.num_machines
    batch = trainer.per_device_train_batch_size * trainer.gradient_accumulation_steps * processes
    factors = "per_device_train_batch_size x gradient_accumulation_steps"
    factors += " x launch.num_processes" if launch.num_processes > 1 else ""
    factors += " x launch.num_machines" if launch.num_machines > 1 else ""
    if batch % trainer.num_generations:
        notes.refuse(
            "trainer.num_generations",
            f"the generation batch ({factors} = {batch}) must be divisible by num_generations ({trainer.num_generations})",
        )


def _template_eos(recipe: Recipe, notes: Notes) -> dict[str, Any]:
    """A shipped chat template's end-of-turn token as the trainer's EOS (for the TRL configs that take one)."""
    token = defaults.CHAT_TEMPLATES.get(recipe.model.chat_template or "")
    if token is None or "eos_token" not in type(recipe.trainer).model_fields or notes.given("trainer.eos_token"):
        return {}
    notes.fill("trainer.eos_token", f"{defaults.RULES['trainer.eos_token']} ({recipe.model.chat_template}: {token})")
    return {"eos_token": token}


def _new_tokens(recipe: Recipe, notes: Notes) -> dict[str, Any]:
    """The rule that trains the embedding and output rows of the recipe's new special tokens (LoRA)."""
    peft, tokens = recipe.peft, recipe.model.special_tokens.trained() if recipe.model.special_tokens else []
    if peft is None or not tokens:
        return {}
    if any(m in (getattr(peft, "modules_to_save", None) or []) for m in ("embed_tokens", "lm_head")):
        return {}
    if peft.method != "lora":
        notes.refuse("model.special_tokens", f"new tokens need trainable embeddings, which {peft.method} cannot "
                     "train: use LoRA (its trainable_tokens), peft.modules_to_save: [embed_tokens, lm_head] where the "
                     "method has it, or full fine-tuning")
        return {}
    if peft.trainable_tokens is not None:
        return {}
    notes.fill("peft.trainable_tokens", defaults.RULES["peft.trainable_tokens"])
    return {"trainable_tokens": tokens}


def _throughput(recipe: Recipe, hw: Hardware, notes: Notes) -> None:
    """Name the batching rule trainer.throughput resolves to (the builders apply it: builders/throughput.py)."""
    if recipe.trainer.throughput == "auto":
        notes.fill("trainer.throughput", throughput_rule(recipe, hw)[1])


def throughput_rule(recipe: Recipe, hw: Hardware) -> tuple[str, str]:
    """(batching, rule) of a recipe's trainer.throughput on `hw` (defaults.throughput_rule)."""
    peft = recipe.peft
    return defaults.throughput_rule(
        str(recipe.trainer.type), recipe.trainer.throughput, recipe.model.attn_implementation,
        bool(getattr(recipe.trainer, "packing", False)),
        bool(peft and method_info(peft.method)["prompt_learning"]), hw.cuda)


def _trainer_rules(recipe: Recipe, rate: float, flags: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """Trainer values filled by rules; they go into the resolved trainer section (and so into
    recipe.resolved.yaml), not only into the TRL config."""
    filled: dict[str, Any] = {"learning_rate": rate, **flags, **_template_eos(recipe, notes)}
    if recipe.dataset.eval is not None and "eval_strategy" not in recipe.trainer.model_fields_set:
        filled["eval_strategy"] = "epoch"
        notes.fill("trainer.eval_strategy", defaults.RULES["trainer.eval_strategy"])
    return filled


def training_args(recipe: Recipe) -> dict[str, Any]:
    """Keyword arguments for the TRL config of a resolved recipe: every trainer value written or filled
    by a rule, plus what peftrun owns elsewhere (output_dir, seed)."""
    trainer = recipe.trainer
    args = {k: getattr(trainer, k) for k in sorted(trainer.model_fields_set) if k not in TRAINER_OWNED}
    args.update(output_dir=recipe.output.dir, seed=recipe.seed)
    return args


def resolve(recipe: Recipe, hardware: Hardware = CPU) -> Plan:
    """The Plan for `recipe` on `hardware`, or a RecipeError listing every combination that cannot work."""
    notes = Notes(recipe)
    dtype = _model_dtype(recipe, hardware, notes)
    recipe = resolve_launch(recipe, hardware, notes, dtype)  # the `launch:` section: peftrun/recipe/launch_rules.py
    quant = _quantization(recipe, dtype, notes)
    task_type = _task_type(recipe, notes)
    peft_filled, trainer_filled = peft_rules(recipe, notes)
    trainer_type_rules(recipe, notes)
    _data_checks(recipe, notes)
    _grpo_checks(recipe, notes)
    _static_defaults(recipe, notes)
    rate = _learning_rate(recipe, notes)
    tokens_filled = _new_tokens(recipe, notes)
    flags = _precision(recipe, dtype, hardware, notes)
    _throughput(recipe, hardware, notes)
    output_dir = recipe.output.dir or defaults.OUTPUT_DIR.format(name=recipe.name)
    if recipe.output.dir is None:
        notes.fill("output.dir", defaults.RULES["output.dir"])
    if notes.problems:
        raise RecipeError(notes.problems, source=str(recipe.path or ""))
    resolved = recipe.model_copy(
        update={
            "model": recipe.model.model_copy(update={"dtype": dtype}),
            "quantization": quant,
            "peft": recipe.peft.model_copy(update={"task_type": task_type, **peft_filled, **tokens_filled})
            if recipe.peft else None,
            "trainer": recipe.trainer.model_copy(update={**_trainer_rules(recipe, rate, flags, notes), **trainer_filled}),
            "output": recipe.output.model_copy(update={"dir": output_dir}),
        }
    )
    for key in ("output_dir", "seed"):
        notes.fill(f"trainer.{key}", defaults.RULES[f"trainer.{key}"])
    provenance = {**recipe.sources, **notes.provenance}
    return Plan(resolved, hardware, provenance, training_args(resolved), task_type, tuple(notes.warnings))
