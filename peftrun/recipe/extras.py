"""Optional extras: what a recipe needs beyond peftrun's core dependencies, and which extra installs it.

One table, read by the preflight (a run refuses a recipe whose extra is missing, naming the key and the
`pip install` that fixes it), by `methods` (methods and initializations that need a module) and by the
docs. Pure data and `find_spec` look-ups: nothing is imported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Extra:
    """An optional dependency group of the package (pyproject's [project.optional-dependencies])."""

    name: str
    module: str
    what: str

    @property
    def install(self) -> str:
        return f"pip install 'peftrun[{self.name}]'"

    def missing(self) -> bool:
        return importlib.util.find_spec(self.module) is None

    def reason(self) -> str:
        return f"{self.what} needs {self.module}, which is not installed: {self.install}"


EXTRAS: Final[dict[str, Extra]] = {e.name: e for e in (
    Extra("quant", "bitsandbytes", "4-bit and 8-bit quantization (the `quantization` section)"),
    Extra("gguf", "gguf", "loading a GGUF checkpoint (`model.gguf_file`)"),
    Extra("plot", "matplotlib", "the loss plot (loss.png in the run directory)"),
    Extra("loftq", "scipy", "LoftQ initialization (`init_lora_weights: loftq`)"),
    Extra("adamss", "sklearn", "AdaMSS (`method: adamss`, which clusters weight subspaces)"),
)}


def needed_extras(recipe: object) -> list[tuple[str, str]]:
    """(key path, extra name) for each optional extra this recipe needs."""
    needs: list[tuple[str, str]] = []
    if getattr(recipe, "quantization", None) is not None:
        needs.append(("quantization", "quant"))
    if getattr(getattr(recipe, "model", None), "gguf_file", None):
        needs.append(("model.gguf_file", "gguf"))
    return needs


def missing_extras(recipe: object) -> list[tuple[str, str]]:
    """(key path, message) for each optional extra this recipe needs and this environment lacks."""
    return [(path, EXTRAS[name].reason()) for path, name in needed_extras(recipe) if EXTRAS[name].missing()]
