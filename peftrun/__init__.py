"""peftrun: declarative YAML recipes for parameter-efficient fine-tuning.

The API mirrors the CLI. Names are imported on first use so that `import
peftrun` stays light (no torch, transformers, peft or trl until needed).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_recipe": "peftrun.recipe.loader",
    "resolve": "peftrun.recipe.resolver",
    "build_peft_config": "peftrun.builders",
    "build_quantization_config": "peftrun.builders",
    "build_training_args": "peftrun.builders",
    "run": "peftrun.train.runner",
    "RunMode": "peftrun.launch.runmode",
    "Plan": "peftrun.recipe.plan",
    "Recipe": "peftrun.recipe.schema",
    "Hardware": "peftrun.recipe.hardware",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'peftrun' has no attribute {name!r}")
