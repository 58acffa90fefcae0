"""A sweep file: a recipe (usually `extends: recipe.yaml`) with a `sweep:` section saying which of its values to
search. Loading one checks everything before a trial starts, with the sweep file's own line and column:

- the `sweep:` section against its schema (recipe/schema/sweep.py);
- the recipe part like any recipe (the loader reads the file with its `sweep:` lines blanked);
- every listed value and both ends of every range, applied to the recipe as an override and resolved: a key
  that is not in the recipe's schema, or a value it refuses, is an error located at that parameter.

It also gives the plain recipe every trial runs (`trial_recipe_text`): the file without `sweep:`, its relative
`extends` made absolute, so that it works from the sweep's directory.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from peftrun.errors import Problem, RecipeError
from peftrun.recipe import defaults
from peftrun.recipe.bases import GIT_PREFIX, PACKAGE_PREFIX, Context
from peftrun.recipe.hardware import Hardware, probe_light
from peftrun.recipe.loader import Sources, load_recipe, read_yaml
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import Recipe
from peftrun.recipe.schema.sweep import Range, Space, SweepSection
from peftrun.recipe.validation import checked_plan

SECTION = "sweep"
EVAL_COMMAND_METRICS = ("exact_match",)  # measured by `peftrun eval RUN_DIR` after a trial, not during training
OWNED_BY_THE_SWEEP = {"output.dir": "each trial runs in its own directory under the sweep's output.dir"}


@dataclass(frozen=True)
class SweepFile:
    """A validated sweep file: its section, its recipe part (with the command line's overrides) and the text
    of the plain recipe its trials run."""

    path: Path
    section: SweepSection
    recipe: Recipe
    overrides: tuple[str, ...]
    trial_recipe_text: str

    @property
    def directory(self) -> Path:
        """The sweep directory: the recipe's output.dir, by default runs/NAME (trials go below it)."""
        return Path(self.recipe.output.dir or defaults.OUTPUT_DIR.format(name=self.recipe.name))

    def definition(self) -> dict[str, Any]:
        """What makes two starts the same sweep (a restart must not change it)."""
        return {"sweep": self.section.model_dump(mode="json"), "recipe": self.trial_recipe_text,
                "overrides": list(self.overrides)}


def override(key: str, value: Any) -> str:
    """`key=value` as the loader reads it back to the same value (OmegaConf dotlist)."""
    return f"{key}={json.dumps(value)}"


def space_values(space: Space) -> list[Any]:
    """The values of a space that are checked before a trial runs: every listed one, both ends of a range."""
    return list(space) if isinstance(space, list) else space.extremes()


def load_sweep(path: str | Path, overrides: Iterable[str] = (), hardware: Hardware | None = None) -> SweepFile:
    """Load and check a sweep file (see the module docstring); a RecipeError holds every problem at once."""
    path = Path(path)
    overrides = tuple(overrides)
    data, sources = read_yaml(path)
    label = next(iter(sources.values()), "").rsplit(":", 2)[0] or str(path)
    if not isinstance(data.get(SECTION), Mapping):
        raise RecipeError(Problem(sources.get((SECTION,), label), SECTION, "a sweep file needs a `sweep:` mapping "
                                  "(sampler, trials, metric, params); a plain recipe runs with `peftrun RECIPE`"),
                          source=label)
    section, problems = _section(data[SECTION], sources)
    hardware = hardware or probe_light()
    with _stand_in(path, data, sources, label) as ctx:
        try:
            recipe = load_recipe(path, overrides, bases=ctx())
            plan = checked_plan(recipe, hardware)
        except RecipeError as error:
            raise RecipeError(problems + error.problems, source=label) from None
        if section is not None:
            problems += _prune_problems(section, plan, sources)
            problems += _check_params(path, section, overrides, sources, hardware, ctx)
    if problems:
        raise RecipeError(problems, source=label)
    assert section is not None
    return SweepFile(path, section, recipe, overrides, trial_recipe_text(path, data))


def _section(raw: Mapping[str, Any], sources: Sources) -> tuple[SweepSection | None, list[Problem]]:
    try:
        return SweepSection.model_validate(raw), []
    except ValidationError as exc:
        return None, _located(exc, raw, sources)


def _located(exc: ValidationError, raw: Mapping[str, Any], sources: Sources) -> list[Problem]:
    """pydantic's errors on the section as located problems; a parameter's space reports the arm its value
    chose (a mapping: a range; a list: values)."""
    problems: list[Problem] = []
    for error in exc.errors():
        loc, node, shown = list(error["loc"]), raw, [SECTION]
        if len(loc) > 2 and loc[0] == "params":
            value = raw["params"][loc[1]]
            arm = "range" if "Range" in str(loc[2]) else "list"
            if not isinstance(value, (dict, list)):
                error = {**error, "type": "space", "msg": "must be a list of values or a range {low, high, log, step}"}
                loc = loc[:2]
            elif arm != ("range" if isinstance(value, dict) else "list"):
                continue
            else:
                loc = loc[:2] + loc[3:]
        for part in loc:  # the keys and indexes of the data (not the labels pydantic gives a union's arms)
            if isinstance(node, Mapping) and part in node or isinstance(node, list) and isinstance(part, int):
                node = node[part]
                shown.append(str(part))
        if error["type"] == "missing":  # the one key not in the data
            shown.append(str(loc[-1]))
        path = tuple(shown)
        where = next((sources[path[:i]] for i in range(len(path), 0, -1) if path[:i] in sources), "")
        problem = Problem(where, ".".join(shown), _message(error))
        if problem not in problems:
            problems.append(problem)
    return problems


def _message(error: Mapping[str, Any]) -> str:
    kind, key = error["type"], str(error["loc"][-1]) if error["loc"] else ""
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, _field_names(), n=1)
        return f"unknown key `{key}`" + (f"; did you mean `{close[0]}`?" if close else "")
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message if kind in ("value_error", "space") else f"{message}; got {error['input']!r}"


def _field_names() -> list[str]:
    from peftrun.recipe.schema.sweep import Metric

    return sorted({*SweepSection.model_fields, *Range.model_fields, *Metric.model_fields})


@contextmanager
def _stand_in(path: Path, data: Mapping[str, Any], sources: Sources, label: str) -> Iterator[Any]:
    """A Context factory whose loads read `path` with its `sweep:` lines blanked (the others keep their
    line numbers, so errors point into the sweep file)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first, last = _section_lines(sources, len(lines))
    blanked = [("\n" if first <= i <= last else line) for i, line in enumerate(lines)]
    with tempfile.TemporaryDirectory(prefix="peftrun-sweep-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_text("".join(blanked), encoding="utf-8")
        yield lambda: Context(stand_ins={path.resolve(): (copy, label)}, own_files=swept_files(path, data))


def _line(where: str) -> int:
    return int(where.rsplit(":", 2)[1]) - 1


def _section_lines(sources: Sources, count: int) -> tuple[int, int]:
    """The first and last line (0-based) of the top-level `sweep:` entry."""
    start = _line(sources[(SECTION,)])
    later = [_line(s) for p, s in sources.items() if len(p) == 1 and _line(s) > start]
    return start, (min(later) - 1 if later else count - 1)


def _prune_problems(section: SweepSection, plan: Plan, sources: Sources) -> list[Problem]:
    """Pruning reads the metric each checkpoint logged during training: both must happen."""
    if not section.prune:
        return []
    where, args, problems = sources.get((SECTION, "prune"), ""), plan.training_args, []
    if section.metric.name in EVAL_COMMAND_METRICS:
        return [Problem(where, f"{SECTION}.prune", f"{section.metric.name} is measured by `peftrun eval` after "
                        "training, so pruning cannot use it: set prune: false, or optimize eval_loss")]
    if args.get("eval_strategy") in (None, "no"):
        problems.append(Problem(where, f"{SECTION}.prune", "pruning needs evaluations during training: set "
                                "trainer.eval_strategy (steps or epoch) and an eval set (dataset.eval)"))
    if args.get("save_strategy") == "no":
        problems.append(Problem(where, f"{SECTION}.prune", "pruning reads the metric from each checkpoint: "
                                "trainer.save_strategy cannot be `no`"))
    return problems


def _check_params(path: Path, section: SweepSection, overrides: tuple[str, ...], sources: Sources,
                  hardware: Hardware, ctx: Any) -> list[Problem]:
    """Every value of every space, applied to the recipe and resolved; problems located at the parameter."""
    problems: list[Problem] = []
    for key, space in section.params.items():
        where, at = sources.get((SECTION, "params", key), ""), f"{SECTION}.params.{key}"
        if key in OWNED_BY_THE_SWEEP:
            problems.append(Problem(where, at, f"`{key}` cannot be swept: {OWNED_BY_THE_SWEEP[key]}"))
            continue
        seen: set[tuple[str, str]] = set()  # a problem every value has (an unknown key) is named once
        for value in space_values(space):
            try:
                checked_plan(load_recipe(path, [*overrides, override(key, value)], bases=ctx()), hardware)
            except RecipeError as error:
                for problem in error.problems:
                    if (problem.path, problem.message) in seen:
                        continue
                    seen.add((problem.path, problem.message))
                    elsewhere = "" if problem.where.startswith("command line") else f" ({problem.where})"
                    problems.append(Problem(where, at, f"with {key}={value!r}: {problem.path}: {problem.message}{elsewhere}"))
    return problems


def _entries(bases: Any) -> list[str]:
    return [] if bases is None else [bases] if isinstance(bases, str) else list(bases)


def _local(entry: str) -> bool:
    return not entry.startswith((PACKAGE_PREFIX, GIT_PREFIX))


def swept_files(path: Path, data: Mapping[str, Any]) -> frozenset[Path]:
    """The local recipes a sweep file extends: the user's own, as the sweep file is (their values may run code)."""
    return frozenset((path.parent / entry).resolve() for entry in _entries(data.get("extends")) if _local(entry))


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` deep-merged onto `base` (mappings merge, anything else is replaced), as `extends` merges."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
    return out


def trial_recipe_text(path: Path, data: Mapping[str, Any]) -> str:
    """The plain recipe every trial runs: the swept recipe (a local file the sweep extends) and the sweep file
    without `sweep:`, inlined into one file, as both are the user's own; the bases they extend stay bases
    (shipped and git ones as named, relative ones made absolute), so what they set stays foreign."""
    recipe = {key: value for key, value in data.items() if key != SECTION}
    inlined: dict[str, Any] = {}
    kept: list[str] = []
    for entry in _entries(recipe.pop("extends", None)):
        if not _local(entry):
            kept.append(entry)
            continue
        swept = (path.parent / entry).resolve()
        swept_data, _ = read_yaml(swept)
        kept += [str((swept.parent / b).resolve()) if _local(b) else b
                 for b in _entries(swept_data.pop("extends", None))]
        inlined = _merged(inlined, swept_data)
    recipe = {**({"extends": kept} if kept else {}), **_merged(inlined, recipe)}
    recipe.setdefault("name", path.stem)
    header = f"# The recipe every trial of {path.name} runs (written by `peftrun sweep`; each trial adds its values)\n"
    return header + yaml.safe_dump(recipe, sort_keys=False)
