"""Plan -> peft / transformers / trl objects. The first code that imports those libraries."""

from peftrun.builders.peft import build_peft_config
from peftrun.builders.quantization import build_quantization_config
from peftrun.builders.training_args import build_training_args, trainer_config_class

__all__ = ["build_peft_config", "build_quantization_config", "build_training_args", "trainer_config_class"]
