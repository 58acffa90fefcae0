"""The recipe schema: one pydantic model per section; no I/O, no torch."""

from peftrun.schema.dataset import STANDARD_COLUMNS, DatasetSection, EvalSection
from peftrun.schema.launch import DDPLaunch, DeepSpeedLaunch, FSDPLaunch
from peftrun.schema.model import ModelSection
from peftrun.schema.output import OutputSection
from peftrun.schema.peft import TARGET_PRESETS, LoraSection, PromptTuningSection
from peftrun.schema.quantization import QuantizationSection
from peftrun.schema.recipe import Recipe
from peftrun.schema.trainer import OWNED_ELSEWHERE, TRAINER_TYPES, trl_table

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
