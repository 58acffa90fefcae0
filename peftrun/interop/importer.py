"""`peftrun import`: a config of another tool -> a peftrun recipe, with the report of what was carried."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from peftrun.interop.sources import TOOLS, detect, read_source
from peftrun.interop.writer import Imported, finish

TITLES = {"axolotl": "Axolotl", "llamafactory": "LLaMA-Factory", "trl": "TRL", "torchtune": "torchtune"}


def recipe_name(path: Path) -> str:
    """A run name from the source file; files every run of a tool names alike take their folder's name."""
    generic = path.name.lower() in ("readme.md", "training_args.yaml", "config.yaml", "config.yml")
    stem = path.resolve().parent.name if generic else path.stem
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or "imported"


def import_config(path: Path, tool: str | None = None) -> tuple[Imported, str]:
    """The recipe for the config at `path` and a line saying how its tool was chosen."""
    source = read_source(path)
    path = source.path
    if tool is None:
        tool, evidence = detect(source)
        how = f"detected {TITLES[tool]} ({source.form}) from: {', '.join(evidence[:6])}"
    else:
        how = f"read as {TITLES[tool]} ({source.form}, --from {tool})"
    assert tool in TOOLS
    module = import_module(f"peftrun.interop.{tool}")
    translation = module.translate_source(source)
    return finish(translation, recipe_name(path), f"the {TITLES[tool]} {source.form} {path}"), how
