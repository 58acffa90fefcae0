"""What `peftrun explain` shows: every resolved value, its source, and the objects it builds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from peftrun.recipe import launch_command as launch
from peftrun.recipe.objects import peft_class, peft_kwargs, quantization_kwargs
from peftrun.recipe.defaults import SHOWN_TRL_DEFAULTS, TRL_DEFAULT_ALIASES
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import trl_table
from peftrun.recipe.trainer_types import TRAINERS

Row = tuple[str, Any, str]  # key path, value, source


def _section_rows(prefix: str, section: BaseModel | None, plan: Plan) -> list[Row]:
    if section is None:
        return [(prefix, None, plan.source(prefix) if prefix in plan.provenance else "omitted")]
    rows = []
    for key in type(section).model_fields:
        value = getattr(section, key)
        path = f"{prefix}.{key}"
        if isinstance(value, BaseModel):
            rows += _section_rows(path, value, plan)
        elif isinstance(value, list) and value and all(isinstance(item, BaseModel) for item in value):
            for i, item in enumerate(value):  # e.g. dataset.sources.0.path
                rows += _section_rows(f"{path}.{i}", item, plan)
        else:
            rows.append((path, value, plan.source(path)))
    return rows


def _trainer_rows(plan: Plan) -> list[Row]:
    rows: list[Row] = [("trainer.type", plan.trainer_type, plan.source("trainer.type"))]
    if TRAINERS[plan.trainer_type].rewards:
        rows.append(("trainer.reward_funcs", plan.recipe.trainer.reward_funcs, plan.source("trainer.reward_funcs")))
    rows.append(("trainer.throughput", plan.recipe.trainer.throughput, plan.source("trainer.throughput")))
    rows += [(f"trainer.{k}", v, plan.source(f"trainer.{k}")) for k, v in sorted(plan.training_args.items())]
    return rows + _trl_default_rows(plan)


def _trl_default_rows(plan: Plan) -> list[Row]:
    """The settings of SHOWN_TRL_DEFAULTS that the run leaves to TRL, with TRL's default."""
    kind = TRAINERS[plan.trainer_type]
    fields = {row["name"]: row for row in trl_table()["fields"][kind.name]}
    source = f"default: TRL {kind.config_class}"

    def default(name: str) -> Any:
        value, alias = fields[name].get("default"), TRL_DEFAULT_ALIASES.get(name)
        return fields[alias].get("default") if value is None and alias in fields else value

    return [(f"trainer.{name}", default(name), source)
            for name in SHOWN_TRL_DEFAULTS if name in fields and name not in plan.training_args]


def built_objects(plan: Plan) -> dict[str, dict[str, Any]]:
    """The library objects a run builds, as class name -> keyword arguments (no library imported)."""
    objects: dict[str, dict[str, Any]] = {}
    if plan.recipe.peft is not None:
        objects[f"peft.{peft_class(plan)}"] = peft_kwargs(plan)
    quant = quantization_kwargs(plan)
    if quant is not None:
        objects["transformers.BitsAndBytesConfig"] = quant
    kind = TRAINERS[plan.trainer_type]
    objects[f"{kind.module}.{kind.config_class}"] = dict(plan.training_args)
    return objects


def rows(plan: Plan) -> list[Row]:
    """Every resolved value of the plan with where it came from."""
    recipe = plan.recipe
    out: list[Row] = [
        ("name", recipe.name, plan.source("name")),
        ("seed", recipe.seed, plan.source("seed")),
    ]
    for section in ("model", "quantization"):
        out += _section_rows(section, getattr(recipe, section), plan)
    peft_default = f"default: PEFT's {peft_class(plan)}" if recipe.peft else "default"
    out += [(k, v, peft_default if s == "default" else s) for k, v, s in _section_rows("peft", recipe.peft, plan)]
    out += _trainer_rows(plan)
    for section in ("dataset", "output", "launch"):
        out += _section_rows(section, getattr(recipe, section), plan)
    return out


def as_data(plan: Plan) -> dict[str, Any]:
    """The explanation as plain data (for --format json / yaml)."""
    return {
        "recipe": str(plan.recipe.path or ""),
        "hardware": plan.hardware.describe(),
        "bases": plan.recipe.bases,
        "values": [{"key": k, "value": v, "source": s} for k, v, s in rows(plan)],
        "builds": built_objects(plan),
        "warnings": list(plan.warnings),
        "launch": launch.explain_data(plan),
    }


def as_table(plan: Plan) -> str:
    """The explanation as an aligned text table."""
    table = rows(plan)
    shown = [(k, _show(v), s) for k, v, s in table]
    width_key = max(len(k) for k, _, _ in shown)
    width_value = min(max(len(v) for _, v, _ in shown), 48)
    lines = [f"recipe:   {plan.recipe.path or '(mapping)'}", f"hardware: {plan.hardware.describe()}"]
    lines += [f"base:     {base_line(base)}" for base in plan.recipe.bases] + [""]
    lines += [f"{k:<{width_key}}  {v:<{width_value}}  {s}" for k, v, s in shown]
    for name, kwargs in built_objects(plan).items():
        lines += ["", f"{name}("]
        lines += [f"    {k}={v!r}," for k, v in kwargs.items()]
        lines.append(")")
    lines += launch.explain_lines(plan)
    lines += [f"\nwarning: {w}" for w in plan.warnings]
    return "\n".join(lines)


def base_line(base: dict[str, str]) -> str:
    """One base a recipe extends: its name and commit (git) or content hash."""
    return f"{base['base']} commit {base['commit']}" if "commit" in base else f"{base['base']} sha256 {base['sha256']}"


def _show(value: Any) -> str:
    if isinstance(value, str) and "\n" in value:
        return repr(value)  # one row per value
    return "null" if value is None else str(value)
