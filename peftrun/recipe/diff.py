"""The difference between two resolved runs: every value that differs, with both sides' sources, and
the changed fields of the library objects each side builds (what `peftrun diff` prints).

A side is a recipe file, or `REV:path`: the recipe as committed at a git revision, read with the
files it extends as of that revision (the YAML files of the revision are exported to a temporary
directory; git runs only for such a side). `git diff` can show this difference for recipe files
through a diff driver (docs/recipes-in-git.md): `load_stand_in` reads the old text git hands over
as if it were the recipe at its path.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe import explain
from peftrun.recipe.bases import Context, Root
from peftrun.recipe.gitcache import git
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve
from peftrun.recipe.schema import Recipe

ABSENT = object()  # a key one side does not have


@dataclass(frozen=True)
class ValueChange:
    key: str
    a: Any
    b: Any
    source_a: str
    source_b: str


@dataclass(frozen=True)
class FieldChange:
    object: str  # e.g. peft.LoraConfig
    field: str
    a: Any
    b: Any


@dataclass(frozen=True)
class Difference:
    label_a: str
    label_b: str
    values: list[ValueChange]
    fields: list[FieldChange]

    @property
    def same(self) -> bool:
        return not self.values and not self.fields


def _git_top(cwd: Path, spec: str) -> Path:
    done = git("rev-parse", "--show-toplevel", cwd=cwd)
    if done.returncode != 0:
        raise RecipeError(Problem(spec, "", f"{cwd} is not inside a git repository, so no revision can be read"))
    return Path(done.stdout.decode().strip())


def _export_yaml(top: Path, commit: str, into: Path) -> None:
    """The YAML files of `commit` (recipes and the bases they extend) under `into`."""
    archive = into / "revision.tar"
    done = git("archive", "--format=tar", f"--output={archive}", commit, "--", ":(glob)**/*.y*ml", cwd=top)
    if done.returncode == 0:
        with tarfile.open(archive) as tar:
            tar.extractall(into / "tree", filter="data")
    archive.unlink(missing_ok=True)


@contextmanager
def revision(spec: str) -> Iterator[tuple[Path, Context]]:
    """`REV:path` -> the recipe file as of REV (in a temporary tree) and the context naming its files."""
    rev, _, rel = spec.partition(":")
    top = _git_top(Path.cwd(), spec)
    done = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=top)
    if done.returncode != 0:
        raise RecipeError(Problem(spec, "", f"no revision {rev!r} in the git repository {top}"))
    commit = done.stdout.decode().strip()
    in_repo = Path(os.path.normpath(Path.cwd() / rel)).relative_to(top)
    with tempfile.TemporaryDirectory(prefix="peftrun-diff-") as tmp:
        _export_yaml(top, commit, Path(tmp))
        tree = (Path(tmp) / "tree").resolve()
        path = tree / in_repo
        if not path.is_file():
            raise RecipeError(Problem(spec, "", f"no file {in_repo.as_posix()} at revision {rev} ({commit[:12]})"))
        yield path, Context(roots=[Root(tree, f"{rev}:", shared=False)])


def is_revision(spec: str) -> bool:
    """`REV:path` rather than a file name (a file that exists wins)."""
    return ":" in spec and not Path(spec).exists()


def load_side(spec: str, overrides: Iterable[str], stack: ExitStack) -> Recipe:
    """The recipe of a file, or of `REV:path` (its temporary tree lives as long as `stack`)."""
    if is_revision(spec):
        path, ctx = stack.enter_context(revision(spec))
        return load_recipe(path, overrides, bases=ctx)
    return load_recipe(spec, overrides)


def load_plan(spec: str, overrides: Iterable[str], hardware: Hardware, stack: ExitStack) -> Plan:
    """The resolved plan of a side (see load_side)."""
    return resolve(load_side(spec, overrides, stack), hardware)


def load_stand_in(path: str, text_file: str, label: str, hardware: Hardware) -> Plan:
    """The plan of the recipe at `path` with its text read from `text_file` (a version git hands over)."""
    where = Path(path).resolve()
    ctx = Context(stand_ins={where: (Path(text_file), label)})
    return resolve(load_recipe(where, bases=ctx), hardware)


def _values(plan: Plan) -> dict[str, tuple[Any, str]]:
    return {key: (value, source) for key, value, source in explain.rows(plan)}


def compare(a: Plan, b: Plan, label_a: str, label_b: str) -> Difference:
    """Every resolved value and built-object field that differs between two plans."""
    rows_a, rows_b = _values(a), _values(b)
    keys = list(rows_a) + [k for k in rows_b if k not in rows_a]
    values = []
    for key in keys:
        value_a, source_a = rows_a.get(key, (ABSENT, ""))
        value_b, source_b = rows_b.get(key, (ABSENT, ""))
        if value_a != value_b or isinstance(value_a, bool) != isinstance(value_b, bool):
            values.append(ValueChange(key, value_a, value_b, source_a, source_b))
    objects_a, objects_b = explain.built_objects(a), explain.built_objects(b)
    fields = []
    for name in list(objects_a) + [n for n in objects_b if n not in objects_a]:
        kwargs_a, kwargs_b = objects_a.get(name, {}), objects_b.get(name, {})
        for field in list(kwargs_a) + [f for f in kwargs_b if f not in kwargs_a]:
            field_a, field_b = kwargs_a.get(field, ABSENT), kwargs_b.get(field, ABSENT)
            if field_a != field_b:
                fields.append(FieldChange(name, field, field_a, field_b))
    return Difference(label_a, label_b, values, fields)


def _show(value: Any) -> str:
    return "(absent)" if value is ABSENT else "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def as_table(diff: Difference) -> str:
    """The difference as text: each value with both sides' sources, then the built objects' fields."""
    lines = [f"--- a: {diff.label_a}", f"+++ b: {diff.label_b}"]
    if diff.same:
        return "\n".join([*lines, "the resolved runs are the same"])
    width = min(max((len(_show(v)) for c in diff.values for v in (c.a, c.b)), default=0), 40)
    for change in diff.values:
        lines += [change.key,
                  f"  - {_show(change.a):<{width}}  {change.source_a or '-'}",
                  f"  + {_show(change.b):<{width}}  {change.source_b or '-'}"]
    current = None
    for change in diff.fields:
        if change.object != current:
            current = change.object
            lines += ["", f"{current}:"]
        lines.append(f"  {change.field}: {_show(change.a)} -> {_show(change.b)}")
    noun = "value differs" if len(diff.values) == 1 else "values differ"
    lines += ["", f"{len(diff.values)} resolved {noun}; {len(diff.fields)} field(s) of the built objects"]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    return None if value is ABSENT else value


def as_data(diff: Difference) -> dict[str, Any]:
    """The difference as plain data (--format json); a side without the key is null."""
    def side(value: Any, source: str) -> dict[str, Any] | None:
        return None if value is ABSENT else {"value": value, "source": source}

    return {
        "a": diff.label_a,
        "b": diff.label_b,
        "same": diff.same,
        "values": [{"key": c.key, "a": side(c.a, c.source_a), "b": side(c.b, c.source_b)} for c in diff.values],
        "objects": [{"object": c.object, "field": c.field, "a": _plain(c.a), "b": _plain(c.b)} for c in diff.fields],
    }
