"""Import one corpus config and judge the outcome against its expectations (tests/interop/corpus/expected).

faithful  every deciding value resolves as the source tool resolves it, and every key in `refuse` is listed
refused   the import refused naming a key of `refuse`; or wrote a recipe in which every value that differs comes
          from a key listed as not carried (the user is told the truth, exit 9)
lost      a deciding value differs and nobody says so, or a refusal names no key that peftrun really lacks
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from peftrun.errors import RecipeError
from peftrun.interop.importer import import_config
from peftrun.interop.keymap import source_key
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve

CORPUS = Path(__file__).with_name("corpus")
GPU = Hardware(cuda=True, bf16=True, device_count=1, name="H100")  # the machines these configs are written for


@dataclass
class Outcome:
    tool: str
    path: str
    verdict: str  # faithful | refused | lost
    why: list[str] = field(default_factory=list)


def expectations() -> list[tuple[str, str, dict[str, Any]]]:
    """(tool, path, expectation document) for every corpus config."""
    found = []
    for doc_path in sorted((CORPUS / "expected").rglob("*.expect.yaml")):
        doc = yaml.safe_load(doc_path.read_text())
        tool = doc_path.relative_to(CORPUS / "expected").parts[0]
        found.append((tool, doc["source"]["path"], doc))
    return found


@contextlib.contextmanager
def inside(directory: Path) -> Iterator[None]:
    here = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(here)


def resolved_value(plan: Any, path: str) -> Any:
    recipe = plan.recipe
    if path == "dataset.count":
        return len(recipe.dataset.sources) if recipe.dataset.sources else 1 if recipe.dataset.path else 0
    node: Any = recipe
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def same(got: Any, want: Any) -> bool:
    if want is False and got is None:  # a switch the trainer does not have is off
        return True
    if isinstance(want, float) or isinstance(got, float):
        try:
            return abs(float(got) - float(want)) <= 1e-9 * max(1.0, abs(float(want)))
        except (TypeError, ValueError):
            return False
    if isinstance(want, list) and isinstance(got, list):
        return sorted(map(str, got)) == sorted(map(str, want))
    return got == want


def _listed(key: str, not_carried: dict[str, str]) -> bool:
    top = key.split(".")[0]
    return any(k == key or source_key(k) in (key, top) for k in not_carried)


def judge(tool: str, path: str, doc: dict[str, Any]) -> Outcome:
    refuse = doc.get("refuse") or []
    with inside(CORPUS / tool):
        try:
            imported, _ = import_config(Path(path))  # the tool detected, as a user runs it
        except RecipeError as exc:
            text = str(exc)
            named = [k for k in refuse if k in text]
            return Outcome(tool, path, "refused" if named else "lost",
                           [f"refused: {text.splitlines()[-1].strip()}"] + ([] if named else
                                                                             ["the reason names no key peftrun lacks"]))
    plan = resolve(load_recipe(imported.recipe), GPU)
    listed = imported.translation.not_carried
    differs, silent = [], []
    for key, want in doc["expect"].items():
        got = resolved_value(plan, key)
        if not same(got, want["value"]):
            line = f"{key}: {got!r}, {tool} {want['value']!r} ({want['from']}; {want['cite']})"
            (differs if _listed(want["from"], listed) else silent).append(line)
    unlisted = [k for k in refuse if not _listed(k, listed)]
    silent += [f"{k}: peftrun does not run it, and the import does not say so" for k in unlisted]
    if silent:
        return Outcome(tool, path, "lost", silent + differs)
    if differs or refuse:
        return Outcome(tool, path, "refused", differs + [f"listed: {k}" for k in refuse])
    return Outcome(tool, path, "faithful")
