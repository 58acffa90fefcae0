"""A translation becomes a recipe that validates: refused values listed, no-ops dropped, YAML written
with a comment block saying what could not be carried."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from peftrun.errors import Problem, RecipeError
from peftrun.interop.keymap import Translation
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.migrations import CURRENT_SCHEMA_VERSION
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve
from peftrun.recipe.trust import runs_code

SECTIONS = ("name", "seed", "model", "quantization", "peft", "trainer", "dataset", "output", "launch")
# Without these the recipe says nothing runnable: when peftrun refuses one, the import is refused.
ESSENTIAL = ("model.name_or_path", "trainer.type", "peft.method", "dataset.path", "dataset.sources")
DISCRIMINATORS = {"peft": "peft.method", "quantization": "quantization.bits"}
GPU = Hardware(cuda=True, bf16=True, device_count=1, name="GPU")  # a no-op must be one on any machine


@dataclass(frozen=True)
class Imported:
    """The outcome of an import: the recipe (as data and as text), its plan, and the translation's report."""

    recipe: dict[str, Any]
    plan: Plan
    translation: Translation
    text: str

    @property
    def complete(self) -> bool:
        return not self.translation.not_carried


def _order(path: str) -> tuple[int, int]:
    section = path.split(".")[0]
    return SECTIONS.index(section) if section in SECTIONS else 99, path not in ("trainer.type", "peft.method")


def nest(values: dict[str, Any], name: str) -> dict[str, Any]:
    """Dotted paths -> a recipe mapping, sections in the recipe's own order (discriminators first)."""
    data: dict[str, Any] = {"schema_version": CURRENT_SCHEMA_VERSION, "name": name}
    for path in sorted(values, key=_order):
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = values[path]
    return data


def _plan(values: dict[str, Any], name: str, hardware: Hardware = CPU) -> Plan:
    return resolve(load_recipe(nest(values, name)), hardware)


def _touches(path: str, problem: str) -> bool:
    return path == problem or path.startswith(problem + ".") or problem.startswith(path + ".")


def _reject(tr: Translation, problem: Problem) -> bool:
    """Take out what peftrun refuses and list it; refuse the import when the recipe would be empty of sense.
    True when a fallback was written in its place (the recipe must then be checked again before going on)."""
    hit = [p for p in tr.values if _touches(p, problem.path)] if problem.path else []
    if not hit:
        raise RecipeError(Problem("", problem.path, f"the imported recipe would not validate: {problem.message}"))
    for path in hit:
        source = tr.origin[path]
        replacement = tr.fallbacks.pop(path, None)
        value = tr.values.pop(path)
        if replacement is not None:
            for new_path, new_value in replacement.items():
                tr.write(new_path, new_value, source)
            tr.skip(source, f"only the first is carried, as {', '.join(replacement)}: this peftrun does not take "
                            f"{path} ({problem.message})")
            return True
        if any(_touches(path, essential) for essential in ESSENTIAL):
            raise RecipeError(Problem("", path, f"peftrun cannot run this {tr.tool} config: {problem.message}"))
        if path in tr.explicit:
            tr.explicit.discard(path)
            if problem.unknown_key:
                continue  # a tool default for a setting this trainer does not have
            tr.skip(f"{source} (default)", f"{tr.tool}'s default, {path}: {value!r}, not taken by this peftrun "
                                           f"({problem.message})")
            continue
        for each in [s for s, paths in tr.mapped.items() if path in paths] or [source]:
            tr.unmap(each, path)
            tr.skip(each, f"{path}: {value!r} not taken by this peftrun ({problem.message})")
    return False


def _prune_orphans(tr: Translation) -> None:
    """Settings of a section the run does not have (LoRA fields in a full fine-tuning) are no-ops."""
    for section, key in DISCRIMINATORS.items():
        if key in tr.values:
            continue
        for path in [p for p in tr.values if p.startswith(section + ".")]:
            tr.drop(path, f"the run has no {section} section ({key} not set), so it does not apply")


def _valid(tr: Translation, name: str) -> Plan:
    """Resolve the values, taking out each refused one (listed), until the recipe validates."""
    for _ in range(len(tr.values) + 1):
        try:
            _plan(tr.values, name, GPU)
            return _plan(tr.values, name)
        except RecipeError as exc:
            # what peftrun refuses among the values written goes first: a fallback may fill a missing key
            ours = [p for p in exc.problems if p.path and any(_touches(v, p.path) for v in tr.values)]
            for problem in ours or exc.problems:
                if _reject(tr, problem):
                    break
    raise RecipeError(Problem("", "", f"the {tr.tool} config does not give a valid recipe"))


def effective(plan: Plan, path: str) -> Any:
    """The value a resolved plan uses at a dotted recipe path (defaults included)."""
    node: Any = plan.recipe
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def _plans(values: dict[str, Any], name: str) -> tuple[Plan, Plan] | None:
    try:
        recipe = load_recipe(nest(values, name))
        return resolve(recipe, CPU), resolve(recipe, GPU)
    except RecipeError:
        return None


def _drop_noops(tr: Translation, name: str) -> None:
    """Take out each tool default written out that peftrun resolves to anyway, on CPU and on GPU. A value the
    source states is kept even when it equals peftrun's default: the recipe keeps its run when defaults change."""
    full = _plans(tr.values, name)
    assert full is not None  # the values were just validated
    for path in [p for p in tr.values if p in tr.explicit]:
        rest = _plans({p: v for p, v in tr.values.items() if p != path}, name)
        if rest is None or any(effective(a, path) != effective(b, path) for a, b in zip(full, rest)):
            continue
        full = rest
        tr.drop(path, f"same as peftrun's own value ({path}: {tr.values[path]!r})")


def header(tr: Translation, described: str) -> str:
    """The comment block at the top of an imported recipe."""
    lines = [
        f"# Imported by `peftrun import` from {described}.",
        *(f"# {note}" for note in tr.notes),
    ]
    if tr.explicit:
        lines.append(f"# {tr.tool} defaults written out (peftrun's differ): " + ", ".join(sorted(tr.explicit)))
    if tr.dropped:
        lines.append("# Dropped as no-ops: " + ", ".join(sorted(tr.dropped)))
    if tr.not_carried:
        lines.append(f"# NOT CARRIED: this recipe differs from the {tr.tool} run in these settings:")
        lines += [f"#   - {key}: {why}" for key, why in sorted(tr.not_carried.items())]
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    pass


def _float(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:  # 2e-05 reads back as a string in YAML 1.1
        text = text.replace("e", ".0e", 1)
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _float)


def dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def annotate(text: str, tr: Translation) -> str:
    """Each written line says where its value came from: the source key, or the tool's default."""
    lines, stack = [], []  # stack: (indent, key) of the mappings the line is in
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        key = line.strip().split(":", 1)[0] if ":" in line and not line.lstrip().startswith("- ") else None
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if key is None:
            lines.append(line)
            continue
        path = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        if path in tr.explicit:
            line += f"  # {tr.tool} default ({tr.origin[path]})"
        elif path in tr.origin and tr.origin[path] != path.split(".")[-1]:
            line += f"  # {tr.origin[path]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _flag_foreign_code(tr: Translation) -> None:
    """Another tool's config is foreign (docs/trust.md): a setting that runs code is written, but listed with
    the settings not carried (exit 9), so that the user reviews it before the recipe becomes theirs."""
    for path in [p for p, value in tr.values.items() if runs_code(p, value)]:
        tr.skip(tr.origin.get(path, path), f"{path}: {tr.values[path]!r} runs code on this machine: written, but an "
                                           "import is foreign; review it before you run the recipe")


def finish(tr: Translation, name: str, described: str) -> Imported:
    """Validate, drop no-ops, and write the recipe text."""
    _prune_orphans(tr)
    _valid(tr, name)
    _drop_noops(tr, name)
    plan = _valid(tr, name)
    _flag_foreign_code(tr)
    data = nest(tr.values, name)
    return Imported(data, plan, tr, header(tr, described) + annotate(dump(data), tr))
