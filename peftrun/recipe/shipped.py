"""What peftrun ships: the recipes and schemas (in the package when peftrun is installed from a wheel,
peftrun/_shipped/ mapped in by setup.py; the source tree's recipes/ and schemas/ otherwise) and the bases
that `extends: peftrun:NAME` names (recipe/bases/, package data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PREFIX = "peftrun:"
PACKAGE_DIR = PACKAGE_ROOT / "recipe" / "bases"
SECTION_TAGS = {"peft": "method", "trainer": "type", "launch": "strategy"}  # a section's discriminator


def shipped_dir(name: str) -> Path:
    """`recipes` or `schemas`: the installed copy if there is one, else the source tree's folder."""
    installed = PACKAGE_ROOT / "_shipped" / name
    return installed if installed.is_dir() else PACKAGE_ROOT.parent / name


def shipped_recipes() -> dict[str, Path]:
    """The shipped recipes by name (the path under recipes/ without `.yaml`: `multi-gpu/ddp-lora`), sorted."""
    folder = shipped_dir("recipes")
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*.yaml"))}


def _tags(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = PACKAGE_DIR / f"{name}.yaml"
    if name in seen or not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    extends = data.get("extends")
    parents = [extends] if isinstance(extends, str) else extends or []
    tags: dict[str, Any] = {}
    for parent in parents:
        if isinstance(parent, str) and parent.startswith(PACKAGE_PREFIX):
            tags.update(_tags(parent.removeprefix(PACKAGE_PREFIX), (*seen, name)))
    for section, tag in SECTION_TAGS.items():
        if isinstance(data.get(section), dict) and tag in data[section]:
            tags[section] = data[section][tag]
    return tags


def shipped_base_tags() -> dict[str, dict[str, Any]]:
    """`peftrun:NAME` -> {section: the discriminator value the base (or a shipped base it extends) sets}."""
    return {f"{PACKAGE_PREFIX}{p.stem}": _tags(p.stem) for p in sorted(PACKAGE_DIR.glob("*.yaml"))}
