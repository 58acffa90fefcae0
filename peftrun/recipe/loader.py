"""Recipe files to a validated Recipe: safe YAML, `extends`, overrides, interpolation.

A source map (dotted key path -> "file:line:col" or "command line: key=value")
follows every key through each step, so errors and `explain` can say where a
value came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from peftrun.errors import Problem, RecipeError
from peftrun.recipe import bases as shared
from peftrun.recipe import defaults, interpolation, trust
from peftrun.recipe import redact
from peftrun.recipe.schema import Recipe
from peftrun.recipe.validation import validate_recipe

Path_ = tuple[str, ...]
Sources = dict[Path_, str]


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `2e-4` as a float (YAML 1.2 style)."""


_SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# One rule for recipes and editors: YAML 1.1 reads yes/no/on/off as booleans, YAML 1.2 (editors) as strings.
_YAML11_BOOLEAN = ("`{}` is a boolean in YAML 1.1 and a string in YAML 1.2 (what editors read): write true or false; "
                   "quote it for the text")


def _where(file: str, node: yaml.Node) -> str:
    return f"{file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


class _Builder:
    """Turns one YAML node tree into plain data, recording each key's position."""

    def __init__(self, loader: _SafeLoader, file: str) -> None:
        self.loader, self.file = loader, file
        self.sources: Sources = {}
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
            message = f"could not determine a constructor for the tag {node.tag!r}"
            self.problems.append(Problem(_where(self.file, node), ".".join(path), _yaml_message(yaml.YAMLError(message))))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self._item(child, (*path, str(i))) for i, child in enumerate(node.value)]
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            self.problems.append(Problem(_where(self.file, node), ".".join(path), _YAML11_BOOLEAN.format(node.value)))
            return None
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(Problem(_where(self.file, node), ".".join(path), _yaml_message(exc)))
            return None

    def _item(self, node: yaml.Node, path: Path_) -> Any:
        self.sources[path] = _where(self.file, node)
        return self.build(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # YAML merge keys (<<)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, path)
            where = _where(self.file, key_node)
            if not isinstance(key, str):
                self.problems.append(Problem(where, ".".join(path), f"keys must be strings, got {key!r}"))
                continue
            child = (*path, key)
            if key in out:
                first = self.sources[child]
                self.problems.append(Problem(where, ".".join(child), f"duplicate key (first defined at {first})"))
                continue
            self.sources[child] = where
            out[key] = self.build(value_node, child)
        return out


def _yaml_message(exc: yaml.YAMLError) -> str:
    text = " ".join(str(getattr(exc, "problem", None) or exc).split())
    if "could not determine a constructor" in text:
        return f"{text}: only plain YAML is allowed (safe loader; no Python tags)"
    return text


MAX_FILE_BYTES = 1_000_000  # a recipe is a few kilobytes
MAX_NODES = 100_000  # values in one file once YAML aliases are expanded
MAX_DEPTH = 64  # nesting levels of one file


def _expanded_size(node: yaml.Node, file: str, memo: dict[int, int], depth: int = 0) -> int:
    """How many values `node` holds once its aliases are expanded (each shared node counted once per use,
    computed once): a located RecipeError beyond MAX_NODES or MAX_DEPTH, before anything is constructed."""
    if id(node) in memo:
        return memo[id(node)]
    if depth > MAX_DEPTH:
        raise RecipeError(Problem(_where(file, node), "", f"nested more than {MAX_DEPTH} levels deep"))
    children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else (
        node.value if isinstance(node, yaml.SequenceNode) else [])
    memo[id(node)] = 1 + sum(_expanded_size(c, file, memo, depth + 1) for c in children)
    if memo[id(node)] > MAX_NODES:
        raise RecipeError(Problem(_where(file, node), "", (
            f"more than {MAX_NODES:,} values once its YAML aliases are expanded (an alias bomb?)")))
    return memo[id(node)]


def _text(path: Path, file: str) -> str:
    """The recipe's text: UTF-8, at most MAX_FILE_BYTES."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RecipeError(Problem(file, "", f"{path.stat().st_size:,} bytes: a recipe is at most {MAX_FILE_BYTES:,}"))
        data = path.read_bytes()
    except OSError as exc:
        raise RecipeError(Problem(file, "", f"cannot read recipe: {exc.strerror}")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecipeError(Problem(f"{file}:{line}:{column}", "", "not UTF-8 text: save the recipe as UTF-8")) from None


def _compose(text: str, file: str) -> tuple[_SafeLoader, yaml.Node | None]:
    loader = _SafeLoader(text)
    try:
        return loader, loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        raise RecipeError(Problem(where, "", f"invalid YAML: {_yaml_message(exc)}")) from None
    except RecursionError:
        raise RecipeError(Problem(file, "", f"nested more than {MAX_DEPTH} levels deep")) from None
    finally:
        loader.dispose()


def read_yaml(path: Path, label: str | None = None) -> tuple[dict[str, Any], Sources]:
    """One YAML file as a mapping and its source map (files named `label`); every problem in it at once."""
    file = label or _display(path)
    loader, root = _compose(_text(path, file), file)
    if root is None:
        return {}, {}
    _expanded_size(root, file, {})
    builder = _Builder(loader, file)
    data = builder.build(root, ())
    if not isinstance(data, dict):
        builder.problems.append(Problem(_where(file, root), "", "a recipe must be a mapping of sections"))
    if builder.problems:
        raise RecipeError(builder.problems, source=file)
    return data, builder.sources


def _is_shadowed(over: Mapping[str, Any], path: Path_) -> bool:
    """True when `over` replaces the value at `path` (or one of its parents) with a non-mapping."""
    node: Any = over
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
        if not isinstance(node, Mapping):
            return True
    return False


def deep_merge(
    base: dict[str, Any], base_src: Sources, over: Mapping[str, Any], over_src: Sources
) -> tuple[dict[str, Any], Sources]:
    """Merge `over` into `base` (mappings recursively, anything else replaced), with sources."""

    def merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for key, value in b.items():
            both_maps = isinstance(out.get(key), dict) and isinstance(value, Mapping)
            out[key] = merge(out[key], value) if both_maps else value
        return out

    kept = {p: s for p, s in base_src.items() if not _is_shadowed(over, p)}
    return merge(base, over), {**kept, **over_src}


def _display(path: Path) -> str:
    """A path as the user would write it: relative to the working directory when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _merge_bases(
    bases: Any, parent: Path, chain: tuple[Path, ...], where: str, ctx: shared.Context, sources: Sources | None = None
) -> tuple[dict[str, Any], Sources]:
    """Load and deep-merge the recipes named by `extends` (recipe/bases.py), in order; a problem with
    one entry of a list is located at that entry (`sources`)."""
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise RecipeError(Problem(where, "extends", "must be a path or a list of paths"))
    merged: dict[str, Any] = {}
    merged_src: Sources = {}
    for i, base in enumerate(bases):
        at = (sources or {}).get(("extends", str(i)), where)
        base_path = shared.locate(base, parent, at, ctx)
        if base_path in chain:
            cycle = " -> ".join(ctx.label(p) or _display(p) for p in (*chain, base_path))
            raise RecipeError(Problem(at, "extends", f"extends cycle: {cycle}"))
        if not ctx.file_to_read(base_path).is_file():
            raise RecipeError(Problem(at, "extends", f"base recipe not found: {base} (looked for {base_path})"))
        ctx.verify(base_path, at)
        base_data, base_src = _load_file(base_path, (*chain, base_path), ctx)
        if base_path.resolve() in ctx.own_files:
            ctx.own.add(ctx.label(base_path) or _display(ctx.file_to_read(base_path)))
        ctx.record(base_path, _display(base_path))
        merged, merged_src = deep_merge(merged, merged_src, base_data, base_src)
    return merged, merged_src


def _load_file(path: Path, chain: tuple[Path, ...], ctx: shared.Context) -> tuple[dict[str, Any], Sources]:
    data, sources = read_yaml(ctx.file_to_read(path), ctx.label(path))
    if len(chain) == 1:
        ctx.top = ctx.label(path) or _display(ctx.file_to_read(path))
    if ctx.suffix(path):
        sources = {p: f"{s} ({ctx.suffix(path)})" for p, s in sources.items()}
    if len(chain) == 1:  # the user's own file: it may accept bases that move
        ctx.allow_moving = ctx.allow_moving or shared.accepts_moving(data)
    bases = data.pop("extends", None)
    if bases is None:
        return data, sources
    where = sources.get(("extends",), _display(path))
    merged, merged_src = _merge_bases(bases, path.parent, chain, where, ctx, sources)
    return deep_merge(merged, merged_src, data, {p: s for p, s in sources.items() if p[0] != "extends"})


def _leaf_paths(data: Any, prefix: Path_ = ()) -> Iterable[Path_]:
    if prefix:
        yield prefix
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _leaf_paths(value, (*prefix, str(key)))


def parse_overrides(overrides: Iterable[str]) -> tuple[dict[str, Any], Sources]:
    """Command-line `key=value` overrides (OmegaConf dotlist syntax) with their sources."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    data: dict[str, Any] = {}
    sources: Sources = {}
    problems: list[Problem] = []
    for item in overrides:
        key = item.split("=", 1)[0]
        if "=" not in item or not key:
            problems.append(Problem("command line", item, "an override must look like key.path=value"))
            continue
        try:
            parsed = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as exc:
            problems.append(Problem("command line", key, f"cannot parse {item!r}: {exc}"))
            continue
        assert isinstance(parsed, dict)
        src = {p: f"command line: {item}" for p in _leaf_paths(parsed)}
        data, sources = deep_merge(data, sources, parsed, src)
    if problems:
        raise RecipeError(problems, source="command line")
    return data, sources


def _interpolates(data: Any) -> bool:
    if isinstance(data, Mapping):
        return any(_interpolates(v) for v in data.values())
    if isinstance(data, list):
        return any(_interpolates(v) for v in data)
    return isinstance(data, str) and "${" in data


def interpolate(data: dict[str, Any], sources: Sources) -> dict[str, Any]:
    """Resolve `${...}` interpolations (and `${oc.env:VAR,default}`) everywhere."""
    if not _interpolates(data):
        return data  # nothing to resolve: OmegaConf costs ~20 ms a recipe
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        resolved = OmegaConf.to_container(OmegaConf.create(data), resolve=True)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "")
        where = sources.get(tuple(key.split(".")), "") if key else ""
        message = " ".join(str(exc).split("\n")[0].split())
        raise RecipeError(Problem(where, key, f"interpolation failed: {message}")) from None
    assert isinstance(resolved, dict)
    return resolved


def load_recipe(
    recipe: str | Path | Mapping[str, Any], overrides: Iterable[str] = (), bases: shared.Context | None = None
) -> Recipe:
    """Load, compose, override, interpolate and validate a recipe; every problem at once.

    `recipe` is a YAML path or an already-parsed mapping (relative `extends` then
    resolve against the current directory). `bases` says how to name files read from
    elsewhere (e.g. a git revision); a fresh context by default.
    """
    path = None if isinstance(recipe, Mapping) else Path(recipe)
    try:
        return _load(recipe, path, overrides, bases or shared.Context())
    except RecipeError as error:
        error.source = error.source or (_display(path.resolve()) if path else "")
        raise


def _load(
    recipe: str | Path | Mapping[str, Any], path: Path | None, overrides: Iterable[str], ctx: shared.Context
) -> Recipe:
    over, over_src = parse_overrides(overrides)
    ctx.allow_moving = ctx.allow_moving or shared.accepts_moving(over)
    if path is None:
        assert isinstance(recipe, Mapping)
        data, sources = _load_mapping(dict(recipe), ctx)
    else:
        data, sources = _load_file(path.resolve(), (path.resolve(),), ctx)
    data, sources = deep_merge(data, sources, over, over_src)
    if "name" not in data:
        data["name"] = path.stem if path else "recipe"
        sources[("name",)] = defaults.RULES["name"]
    flat = {".".join(p): s for p, s in sources.items()}
    exprs = interpolation.scan(interpolations(data), flat)
    interpolation.check_expansion(data, exprs, flat)
    env = interpolation.env_derived(exprs)
    data = interpolate(data, sources)
    redact.keep_secrets(data, interpolation.env_values(exprs), env)
    problems = redact.environment_problems(env, flat) + trust.foreign(data, trust.Provenance(flat, exprs, ctx.top, ctx.own), ctx.describe,
                                                        lambda p: redact.expression_behind(p, env) is not None)
    try:
        recipe = validate_recipe(data, flat, path, env)
    except RecipeError as error:
        raise RecipeError([*error.problems, *problems]) from None
    if problems:
        raise RecipeError(problems)
    recipe._bases = ctx.records
    return recipe


def interpolations(data: Any, prefix: str = "") -> dict[str, str]:
    """Dotted path -> raw value for every string holding an interpolation (`${...}`); those that read an
    environment variable (through_references) keep their expression in saved recipes and are never printed."""
    if isinstance(data, Mapping):
        items = ((f"{prefix}.{k}" if prefix else str(k), v) for k, v in data.items())
    elif isinstance(data, list):
        items = ((f"{prefix}.{i}", v) for i, v in enumerate(data))
    else:
        return {prefix: data} if isinstance(data, str) and "${" in data else {}
    return {path: raw for key, value in items for path, raw in interpolations(value, key).items()}


def _load_mapping(raw: dict[str, Any], ctx: shared.Context) -> tuple[dict[str, Any], Sources]:
    ctx.allow_moving = ctx.allow_moving or shared.accepts_moving(raw)
    bases = raw.pop("extends", None)
    sources: Sources = {p: "python mapping" for p in _leaf_paths(raw)}
    if bases is None:
        return raw, sources
    merged, merged_src = _merge_bases(bases, Path.cwd(), (), "python mapping", ctx)
    return deep_merge(merged, merged_src, raw, sources)
