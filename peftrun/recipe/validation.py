"""Validate plain recipe data against the schema and turn pydantic's errors into located problems."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.migrations import CURRENT_SCHEMA_VERSION, key_hints
from peftrun.recipe.plan import Plan
from peftrun.recipe import redact
from peftrun.recipe.resolver import resolve
from peftrun.recipe.schema import OWNED_ELSEWHERE, Recipe
from peftrun.recipe.schema.recipe import nearest_source
from peftrun.recipe.suggest import did_you_mean, path_hint

# Keys users bring from TRL scripts or other tools, with where they belong in a recipe.
KEY_HINTS: dict[str, str] = {
    "load_in_4bit": "use quantization.bits: 4",
    "load_in_8bit": "use quantization.bits: 8",
    "bnb_4bit_quant_type": "use quantization.quant_type",
    "bnb_4bit_compute_dtype": "use quantization.compute_dtype",
    "bnb_4bit_use_double_quant": "use quantization.double_quant",
    "use_bnb_nested_quant": "use quantization.double_quant",
    "bnb_4bit_quant_storage": "use quantization.quant_storage",
    "lora_r": "use peft.r",
    "lora_target_modules": "use peft.target_modules",
    "use_peft": "add a `peft:` section (method: lora)",
    "model_name_or_path": "use model.name_or_path",
    "dataset_name": "use dataset.path",
    "sweep": "a file with a `sweep:` section is a sweep: run it with `peftrun sweep FILE`",
    **OWNED_ELSEWHERE,
    **key_hints(),  # keys renamed or removed by peftrun or the libraries (recipe/migrations.py)
}
DISCRIMINATORS = {"peft": "method", "trainer": "type", "launch": "strategy"}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, Union, Annotated, list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _plain_union(annotation: Any) -> bool:
    """True for a union of several non-model types (pydantic labels each arm in error locations)."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    return len([arg for arg in typing.get_args(annotation) if arg is not type(None)]) > 1


def _walk(loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None, str | None]:
    """Follow an error location through the schema: the shown key path, the innermost model,
    and the path of the plain union (e.g. `float | "auto"`) the error comes from, if any."""
    shown: list[str] = []
    model: type[BaseModel] | None = Recipe
    candidates: list[type[BaseModel]] = []
    union: str | None = None
    label_next = False
    for part in loc:
        if candidates:  # a discriminated union: the location holds the tag
            tagged = [m for m in candidates if _tag_of(m) == part]
            if tagged:
                model, candidates = tagged[0], []
                continue
            candidates = []
        if label_next:  # a plain union: the location holds the arm's label (`str`, `list[str]`...)
            label_next, union = False, ".".join(shown)
            continue
        if isinstance(part, int):
            shown.append(str(part))
            continue
        shown.append(str(part))
        field = model.model_fields.get(str(part)) if model else None
        found = _models_in(field.annotation) if field else []
        model = found[0] if len(found) == 1 else None
        candidates = found if len(found) > 1 else []
        label_next = field is not None and len(found) <= 1 and _plain_union(field.annotation)  # e.g. name | mapping
    return shown, model, union


def _tag_of(model: type[BaseModel]) -> str | None:
    for name in ("method", "type", "strategy"):
        field = model.model_fields.get(name)
        if field is not None:
            args = typing.get_args(field.annotation)
            return str(args[0]) if args else None
    return None


def _message(error: Mapping[str, Any], model: type[BaseModel] | None, key: str, path: str,
             env: Mapping[str, str]) -> str:
    """The text of one pydantic error; a value read from the environment is named, never shown."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        hint = KEY_HINTS.get(key)
        if hint:
            return f"`{key}` is not a key here: {hint}"
        names = sorted(model.model_fields) if model else []
        owners, noun = _other_sections_with(key, model)
        if owners:
            shown = owners if len(owners) <= 5 else [*owners[:4], f"{len(owners) - 4} more"]
            kinds = " and ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
            here = f"`{key}` is a field of the {kinds} {noun}{'s' if len(owners) > 1 else ''}, not of this one"
            return here + did_you_mean(key, [n for n in names if n not in DISCRIMINATORS.values()])
        return f"unknown key `{key}`{did_you_mean(key, names)}"
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        tag = str(ctx.get("tag"))
        suggestion = "" if redact.expression_behind(path, env) else did_you_mean(tag, tags)
        return f"unknown value {redact.shown(tag, path, env)}{suggestion} (one of: {', '.join(tags)})"
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "")).strip("'")
        return f"missing `{field}`, which selects the kind of section"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error" and key == "schema_version":
        newer = isinstance(error["input"], int) and error["input"] > CURRENT_SCHEMA_VERSION
        fix = "upgrade peftrun" if newer else "fix the number"
        given = redact.shown(error["input"], path, env)
        return f"this peftrun reads recipe format {CURRENT_SCHEMA_VERSION}, not {given}: {fix}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping of keys, got {redact.shown(error['input'], path, env)}"
    if kind == "value_error":
        return message
    return f"{message}; got {redact.shown(error['input'], path, env)}{_choice_hint([error], path, env)}"


def _other_sections_with(key: str, model: type[BaseModel] | None) -> tuple[list[str], str]:
    """(trainer types or PEFT methods whose config has `key`, "trainer" or "method") when `model` is a
    trainer or peft section lacking it."""
    for section, tag, noun in (("trainer", "type", "trainer"), ("peft", "method", "method")):
        if model is not None and tag in model.model_fields:
            arms = _models_in(Recipe.model_fields[section].annotation)
            return [str(_tag_of(m)) for m in arms if key in m.model_fields], noun
    return [], ""


def problems_from(exc: ValidationError, sources: Mapping[str, str], env: Mapping[str, str]) -> list[Problem]:
    """One located problem per pydantic error, unknown keys with suggestions; `env`: Recipe.env_expressions."""
    problems: list[Problem | str] = []  # a str holds the place of a union's merged problems
    arms: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        is_extra = error["type"] == "extra_forbidden"
        shown, model, union = _walk(loc[:-1] if is_extra else loc)
        key = str(loc[-1]) if loc else ""
        path = ".".join([*shown, key] if is_extra else shown)
        if error["type"] == "union_tag_invalid" and path in DISCRIMINATORS:
            path = f"{path}.{DISCRIMINATORS[path]}"
        if union is not None and not is_extra:
            if union not in arms:
                problems.append(union)
            arms.setdefault(union, []).append((path, error))
            continue
        problems.append(Problem(nearest_source(path, sources), path, _message(error, model, key, path, env), is_extra))
    return [p for item in problems
            for p in ([item] if isinstance(item, Problem) else _union_problems(arms[item], sources, env))]


def _union_problems(errors: list[tuple[str, Mapping[str, Any]]], sources: Mapping[str, str],
                    env: Mapping[str, str]) -> list[Problem]:
    """One problem per path for a value no arm of a union accepts: the arms that got furthest,
    their expectations joined ("a valid number, or 'auto'")."""
    depth = max(path.count(".") for path, _ in errors)
    by_path: dict[str, list[Mapping[str, Any]]] = {}
    for path, error in errors:
        if path.count(".") == depth:
            by_path.setdefault(path, []).append(error)
    problems = []
    for path, found in by_path.items():
        messages = [str(e["msg"]).removeprefix("Value error, ") for e in found]
        text = messages[0] + "".join(f", or {m.removeprefix('Input should be ')}" for m in messages[1:])
        given = redact.shown(found[0]["input"], path, env)
        hint = _choice_hint(found, path, env)
        problems.append(Problem(nearest_source(path, sources), path, f"{text}; got {given}{hint}"))
    return problems


def _choice_hint(errors: list[Mapping[str, Any]], path: str, env: Mapping[str, str]) -> str:
    """ "; did you mean `sharegpt`?" for a string that none of a Literal's choices accepts (never for a value
    read from the environment), or ""."""
    literal = next((e for e in errors if e["type"] == "literal_error" and isinstance(e["input"], str)), None)
    if literal is None or redact.expression_behind(path, env):
        return ""
    return did_you_mean(literal["input"], re.findall(r"'([^']*)'", str((literal.get("ctx") or {}).get("expected", ""))))


def _looks_local(value: str) -> bool:
    return value.startswith((".", "/", "~")) or Path(value).suffix in {".jsonl", ".json", ".csv", ".parquet"}


def missing_paths(recipe: Recipe) -> list[Problem]:
    """Local files a recipe names that do not exist (data, chat template, base model directory)."""
    checks: list[tuple[str, str, bool]] = []  # (key path, value, must be local)
    sources = recipe.dataset.all_sources()
    if recipe.dataset.eval and recipe.dataset.eval.path:
        sources.append(("dataset.eval", recipe.dataset.eval))  # type: ignore[arg-type]
    if recipe.dataset.eval and recipe.dataset.eval.sources:
        sources += [(f"dataset.eval.sources.{i}", s) for i, s in enumerate(recipe.dataset.eval.sources)]
    for prefix, source in sources:
        paths = source.path if isinstance(source.path, list) else [source.path]
        checks += [(f"{prefix}.path", str(p), _looks_local(str(p))) for p in paths]
    if recipe.model.chat_template and recipe.model.chat_template.endswith(".jinja"):
        checks.append(("model.chat_template", recipe.model.chat_template, True))
    checks.append(("model.name_or_path", recipe.model.name_or_path, recipe.model.name_or_path.startswith((".", "/", "~"))))
    problems = []
    for key, value, local in checks:
        if local and not Path(value).expanduser().exists():
            where, what = recipe.where(key), recipe.shown(key, value)
            hint = "" if what != value else path_hint(value)  # never a hint that shows a value from the environment
            problems.append(Problem(where, key, f"no such file or directory: {what} (relative paths start at "
                                                f"{Path.cwd()}){hint}"))
    if recipe.model.gguf_file and Path(recipe.model.name_or_path).is_dir():
        if not (Path(recipe.model.name_or_path) / recipe.model.gguf_file).is_file():
            where, model = recipe.where("model.gguf_file"), recipe.model
            problems.append(Problem(where, "model.gguf_file", f"{recipe.shown('model.gguf_file', model.gguf_file)} is "
                                    f"not in {recipe.shown('model.name_or_path', model.name_or_path)}"))
    return problems


def validate_recipe(data: Mapping[str, Any], sources: Mapping[str, str], path: Path | None,
                    env: Mapping[str, str]) -> Recipe:
    """The Recipe (schema-checked, carrying its source map and env expressions), or a RecipeError with every
    schema problem."""
    label = str(path) if path else ""
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(problems_from(exc, sources, env), source=label) from None
    recipe._sources = dict(sources)
    recipe._path = path
    recipe._env_expressions = dict(env)
    return recipe


def checked_plan(recipe: Recipe, hardware: Hardware) -> Plan:
    """The resolved plan, or every remaining problem at once: local files that do not exist and the
    combinations the resolver refuses (resolve() itself stays pure: it reads no files)."""
    problems = missing_paths(recipe)
    try:
        plan = resolve(recipe, hardware)
    except RecipeError as error:
        problems += error.problems
    if problems:
        raise RecipeError(problems, source=str(recipe.path or ""))
    return plan
