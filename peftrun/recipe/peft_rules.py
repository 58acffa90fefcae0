"""Resolution rules for the `peft:` section and the trainer types beyond SFT: what is refused, what is filled.

Called by the resolver; pure (no library imported). Each refusal says why and what to do instead.
"""

from __future__ import annotations

from typing import Any

from peftrun.recipe import defaults
from peftrun.recipe.methods import (
    BAD_PRESETS, DATA_PASS_INITS, INIT_NEEDS_FULL_PRECISION, NO_CHECKPOINTING, init_refusal, merge_refusal, refusal,
)
from peftrun.recipe.notes import Notes
from peftrun.recipe.schema import Recipe, method_info
from peftrun.recipe.trainer_types import TRAINERS
from peftrun.recipe.schema.peft import method_defaults, takes_presets



def label(method: str) -> str:
    """How messages name a method."""
    return {"lora": "LoRA", "prompt_tuning": "prompt-tuning"}.get(method, method)


def peft_rules(recipe: Recipe, notes: Notes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Refuse what the method cannot do anywhere (this machine: launch/preflight.py); returns (values filled into peft, values filled into trainer)."""
    peft = recipe.peft
    if peft is None:
        return {}, {}
    method, prompt_learning = peft.method, bool(method_info(peft.method)["prompt_learning"])
    reason = refusal(method)
    if reason:
        notes.refuse("peft.method", f"{method} cannot be used: {reason}")
    if prompt_learning:
        for key in ("packing", "padding_free"):
            if getattr(recipe.trainer, key, None):
                notes.refuse(f"trainer.{key}", f"{label(method).replace('-', ' ')} cannot be combined with {key} "
                             "(virtual tokens break it)")
    cannot_merge = merge_refusal(method, prompt_learning)
    if cannot_merge and recipe.output.save != "adapter":
        notes.refuse("output.save", f"a {label(method)} adapter cannot be merged into the model ({cannot_merge}): "
                     "use save: adapter")
    if takes_presets(method):
        _layer_selection_checks(peft, notes)
        bad_preset = BAD_PRESETS.get((method, str(peft.target_modules)))
        if bad_preset:
            notes.refuse("peft.target_modules", bad_preset)
    if TRAINERS[recipe.trainer.type].sequence_classification:
        notes.fill("peft.modules_to_save", defaults.RULES["peft.modules_to_save"])
    for key, (_, rule) in method_defaults(method).items():
        if not notes.given(f"peft.{key}"):
            notes.fill(f"peft.{key}", rule)
    _init_rules(recipe, notes)
    return _adalora_steps(recipe, notes), _checkpointing(recipe, notes)


def _init_rules(recipe: Recipe, notes: Notes) -> None:
    """LoftQ / CorDA need the full-precision base; EVA / CorDA's data pass runs in one process."""
    init = str(getattr(recipe.peft, "init_lora_weights", ""))
    missing = init_refusal(init)
    if missing:
        notes.refuse("peft.init_lora_weights", missing)
    if recipe.quantization is not None and init in INIT_NEEDS_FULL_PRECISION:
        notes.refuse("peft.init_lora_weights", INIT_NEEDS_FULL_PRECISION[init])
    processes = recipe.launch.num_processes
    if init in DATA_PASS_INITS and (processes == "auto" or processes * recipe.launch.num_machines > 1):
        notes.refuse("peft.init_lora_weights", f"the {init} initialization's data pass runs in one process: set "
                     "launch.num_processes: 1 (the adapter it initializes then trains on one device)")


def _layer_selection_checks(peft: Any, notes: Notes) -> None:
    targets = peft.target_modules
    for key in ("layers_to_transform", "layers_pattern"):
        if getattr(peft, key, None) is not None and isinstance(targets, str) and targets != "qv":
            notes.refuse(f"peft.{key}", f"`{key}` needs target_modules as a list of names, not the {targets} preset")
    if getattr(peft, "layers_pattern", None) is not None and getattr(peft, "layers_to_transform", None) is None:
        notes.refuse("peft.layers_pattern", "`layers_pattern` is used only with `layers_to_transform`")


def _adalora_steps(recipe: Recipe, notes: Notes) -> dict[str, Any]:
    """AdaLoRA's rank schedule needs the number of training steps (PEFT refuses total_step=None)."""
    peft = recipe.peft
    if peft is None or peft.method != "adalora" or peft.total_step is not None:
        return {}
    steps = getattr(recipe.trainer, "max_steps", -1)
    if steps is None or steps <= 0:
        notes.refuse("peft.total_step", "AdaLoRA schedules its ranks over the run: set peft.total_step to the number "
                     "of optimizer steps, or set trainer.max_steps")
        return {}
    notes.fill("peft.total_step", f"{defaults.RULES['peft.total_step']} -> {steps}")
    return {"total_step": steps}


def _checkpointing(recipe: Recipe, notes: Notes) -> dict[str, Any]:
    """Methods that fail under gradient checkpointing turn TRL's default (on) off; asking for it is refused."""
    method = recipe.peft.method if recipe.peft else ""
    if method not in NO_CHECKPOINTING:
        return {}
    key = "activation_checkpointing"  # transformers 5's name (gradient_checkpointing is retired)
    if notes.given(f"trainer.{key}"):
        if getattr(recipe.trainer, key, None):
            notes.refuse(f"trainer.{key}", f"{NO_CHECKPOINTING[method]}: remove trainer.{key}")
        return {}
    notes.fill(f"trainer.{key}", f"rule no-checkpointing: {NO_CHECKPOINTING[method]}")
    return {key: False}


def trainer_type_rules(recipe: Recipe, notes: Notes) -> None:
    """What the trainer types beyond SFT / DPO / GRPO / reward need."""
    trainer = recipe.trainer
    if trainer.type == "distillation" and not trainer.teacher_model_name_or_path:
        notes.refuse("trainer", "the distillation trainer needs trainer.teacher_model_name_or_path: the teacher "
                     "model, loaded like the student (same quantization, dtype and device rules)")
    if TRAINERS[trainer.type].experimental:
        notes.warnings.append(f"{notes.where('trainer.type')}: trainer.type {trainer.type} is experimental: TRL ships "
                              f"it in {TRAINERS[trainer.type].module}, whose API may change in any TRL release")
