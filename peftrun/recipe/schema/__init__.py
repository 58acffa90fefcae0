"""The recipe schema: one pydantic model per section; no I/O, no torch."""

from peftrun.recipe.schema.dataset import STANDARD_COLUMNS, DatasetSection, EvalSection
from peftrun.recipe.schema.launch import DDPLaunch, DeepSpeedLaunch, FSDPLaunch
from peftrun.recipe.schema.model import ModelSection
from peftrun.recipe.schema.output import OutputSection
from peftrun.recipe.schema.peft import TARGET_PRESETS, LoraSection, PromptTuningSection
from peftrun.recipe.schema.quantization import QuantizationSection
from peftrun.recipe.schema.recipe import Recipe
from peftrun.recipe.schema.trainer import OWNED_ELSEWHERE, TRAINER_TYPES, trl_table

__all__ = [
    "OWNED_ELSEWHERE",
    "STANDARD_COLUMNS",
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
    "trl_table",
]
