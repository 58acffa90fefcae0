"""Mappings to recipe names on the contract (DESIGN.md, "Growing the recipe") that this peftrun may not take yet:
carried when the schema takes them, otherwise listed as not carried, never written invalid."""

from __future__ import annotations

import copy
from typing import Any

from peftrun import load_recipe
from peftrun.errors import RecipeError
from peftrun.interop.keymap import Translation
from peftrun.interop.writer import Imported

MINIMAL = {"name": "probe", "model": {"name_or_path": "org/m"}, "trainer": {"type": "sft"},
           "dataset": {"path": "org/d"}}


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    if path == "dataset.sources":
        del data["dataset"]["path"]
    return data


def takes(path: str, value: Any) -> bool:
    """Whether this peftrun's recipe schema takes `value` at `path`."""
    try:
        load_recipe(_set(MINIMAL, path, value))
    except RecipeError as exc:
        return not any(p.path == path or p.path.startswith(path + ".") or path.startswith(p.path + ".")
                       for p in exc.problems if p.path)
    return True


def written(result: Imported, path: str) -> Any:
    return Translation("recipe", result.recipe).get(path, KeyError)


def carried_or_listed(result: Imported, path: str, value: Any) -> None:
    """Carried as `value` where this peftrun takes it; otherwise absent and listed, with the path, as not carried."""
    if takes(path, value):
        assert written(result, path) == value, path
    else:
        assert written(result, path) is KeyError, path
        assert any(path in reason for reason in result.translation.not_carried.values()), path
