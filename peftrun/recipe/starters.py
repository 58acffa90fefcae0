"""Starting points for `peftrun init`: the shipped recipes (`shipped_dir("recipes")`) and the bases
shipped in the package (`peftrun:NAME`), each with its one-line description."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from peftrun.errors import PeftrunError
from peftrun.recipe.bases import PACKAGE_DIR, PACKAGE_PREFIX
from peftrun.recipe.migrations import CURRENT_SCHEMA_VERSION
from peftrun.recipe.schema.jsonschema import default_schema_path
from peftrun.recipe.shipped import shipped_dir, shipped_recipes

RECIPES_DIR = shipped_dir("recipes")
MODELINE = "# yaml-language-server: $schema="


def _comments(path: Path) -> list[str]:
    """The leading comment lines of a recipe, without the editor modeline."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith(MODELINE):
            lines.append(line)
    return lines


def starters() -> dict[str, Path]:
    """name -> file: shipped recipes by their path under recipes/ (no suffix), bases as peftrun:NAME."""
    found = shipped_recipes()
    found.update({f"{PACKAGE_PREFIX}{p.stem}": p for p in sorted(PACKAGE_DIR.glob("*.yaml"))})
    return found


def describe(path: Path) -> str:
    comments = _comments(path)
    if not comments:
        return ""
    first = comments[0].lstrip("# ").strip()
    return first if first.endswith(".") or len(comments) == 1 else f"{first} ..."


def find(name: str) -> Path:
    known = starters()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise PeftrunError(f"no shipped recipe or base named {name!r}{hint} (see `peftrun init --list`)")
    return known[name]


def _modeline(output: Path) -> list[str]:
    schema = default_schema_path()
    if not schema.is_file():
        return []
    return [f"{MODELINE}{Path(os.path.relpath(schema, output.resolve().parent)).as_posix()}"]


def recipe_text(name: str, output: Path) -> str:
    """A new recipe file started from `name`: schema header, schema_version, and the recipe's body (a
    shipped recipe, copied; a base, extended with `extends: peftrun:NAME`)."""
    path = find(name)
    how = f"Started with `peftrun init {name}`; `peftrun explain {output.name}` shows every value and its source."
    header = [*_modeline(output)]
    if name.startswith(PACKAGE_PREFIX):
        header += [f"# A recipe on peftrun's shipped base `{name}`: {describe(path)}", f"# {how}"]
        return "\n".join([*header, f"schema_version: {CURRENT_SCHEMA_VERSION}", f"extends: {name}", ""])
    body = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(MODELINE)]
    comments = _comments(path)
    header += [*comments, f"# {how}", f"schema_version: {CURRENT_SCHEMA_VERSION}"]
    return "\n".join([*header, *body[len(comments):], ""])
