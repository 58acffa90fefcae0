"""The recipe schema: one pydantic model per section; no I/O, no torch."""

from peftrun.recipe.schema.dataset import DatasetSection, EvalSection
from peftrun.recipe.schema.launch import DDPLaunch, DeepSpeedLaunch, FSDPLaunch
from peftrun.recipe.schema.model import ModelSection
from peftrun.recipe.schema.output import OutputSection
from peftrun.recipe.schema.peft import PEFT_METHODS, TARGET_PRESETS, LoraSection, PromptTuningSection, method_info
from peftrun.recipe.schema.quantization import QuantizationSection
from peftrun.recipe.schema.recipe import Recipe
from peftrun.recipe.schema.trainer import OWNED_ELSEWHERE, TRAINER_TYPES, trl_table

__all__ = [
    "OWNED_ELSEWHERE",
    "PEFT_METHODS",
    "TARGET_PRESETS",
    "TRAINER_TYPES",
    "DDPLaunch",
    "DatasetSection",
    "DeepSpeedLaunch",
    "EvalSection",
    "FSDPLaunch",
    "LoraSection",
    "ModelSection",
    "OutputSection",
    "PromptTuningSection",
    "QuantizationSection",
    "Recipe",
    "method_info",
    "trl_table",
]
