"""Generate peftrun/recipe/schema/trl_fields.json from the installed TRL.

The table lets peftrun validate `trainer:` sections by TRL's own field names and
types without importing trl (5-6 s). Run it after upgrading TRL:

    python scripts/gen_trl_fields.py            # rewrite the table
    python scripts/gen_trl_fields.py --check    # exit 1 if it drifted

tests/recipe/schema/test_generated_tables.py runs the check.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
import types
import typing
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "peftrun" / "recipe" / "schema" / "trl_fields.json"
SIMPLE = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict"}


Kinds = tuple[list[str], bool, "list | None"]


def _kinds(tp: object, leaf: typing.Callable[[object], Kinds | None] | None = None) -> Kinds:
    """Map a dataclass annotation to (kinds, nullable, choices); `leaf` may map a non-union type first."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        kinds: list[str] = []
        nullable, choices = False, None
        for arg in typing.get_args(tp):
            sub, sub_null, sub_choices = _kinds(arg, leaf)
            kinds += [k for k in sub if k not in kinds]
            nullable |= sub_null
            choices = sub_choices or choices
        if choices and "str" in kinds and set(kinds) <= {"str", "list[str]"}:
            kinds = ["str"]
        return sorted(kinds), nullable, choices  # sorted: typing caches equal unions in first-seen order
    if tp is type(None):
        return [], True, None
    mapped = leaf(tp) if leaf else None
    if mapped is not None:
        return mapped
    if origin is typing.Literal:
        return sorted({SIMPLE[type(a)] for a in typing.get_args(tp)}), False, None
    if origin is list:
        (arg,) = typing.get_args(tp) or (typing.Any,)
        inner = SIMPLE.get(arg, "str") if not isinstance(arg, type) or not issubclass(arg, enum.Enum) else "str"
        return [f"list[{inner}]"], False, None
    if origin is dict:
        return ["dict"], False, None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ["str"], False, [m.value for m in tp]
    if tp in SIMPLE:
        return [SIMPLE[tp]], False, None
    return ["any"], False, None


def _default(field: dataclasses.Field) -> tuple[bool, object]:
    if field.default is dataclasses.MISSING:
        if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            value = field.default_factory()  # type: ignore[misc]
        else:
            return False, None
    else:
        value = field.default
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        json.dumps(value)
    except TypeError:
        return False, None
    return True, value


def describe(config_class: type, leaf: typing.Callable[[object], Kinds | None] | None = None) -> list[dict]:
    hints = typing.get_type_hints(config_class)
    rows = []
    for field in dataclasses.fields(config_class):
        if not field.init or field.name.startswith("_"):
            continue
        kinds, nullable, choices = _kinds(hints[field.name], leaf)
        choices = field.metadata.get("choices", choices)
        row: dict = {"name": field.name, "kinds": kinds, "nullable": nullable}
        if choices:
            row["choices"] = [c for c in choices if c is not None]
        has_default, default = _default(field)
        if has_default:
            row["default"] = default
        row["help"] = " ".join(str(field.metadata.get("help", "")).split())
        rows.append(row)
    return rows


# trainer type -> (module, config class); the experimental ones come from trl.experimental
CONFIGS = {
    "sft": ("trl", "SFTConfig"),
    "dpo": ("trl", "DPOConfig"),
    "grpo": ("trl", "GRPOConfig"),
    "reward": ("trl", "RewardConfig"),
    "kto": ("trl", "KTOConfig"),
    "rloo": ("trl", "RLOOConfig"),
    "distillation": ("trl", "DistillationConfig"),
    "orpo": ("trl.experimental.orpo", "ORPOConfig"),
    "cpo": ("trl.experimental.cpo", "CPOConfig"),
}


def build_table() -> dict:
    import importlib
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import trl

    classes = {kind: getattr(importlib.import_module(module), name) for kind, (module, name) in CONFIGS.items()}
    return {
        "trl_version": trl.__version__,
        "classes": {kind: cls.__name__ for kind, cls in classes.items()},
        "modules": {kind: module for kind, (module, _) in CONFIGS.items()},
        "fields": {kind: describe(cls) for kind, cls in classes.items()},
    }


def write_or_check(table: Path, build: typing.Callable[[], dict], script: str) -> int:
    """Rewrite `table` from `build()`, or with --check exit 1 when it differs (shared with gen_peft_fields.py)."""
    parser = argparse.ArgumentParser(description=f"Generate {table.name} from the installed library.")
    parser.add_argument("--check", action="store_true", help="fail if the table differs from the installed library")
    args = parser.parse_args()
    text = json.dumps(build(), indent=1, sort_keys=True) + "\n"
    if args.check:
        if not table.is_file() or table.read_text() != text:
            print(f"{table} is out of date: run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    table.write_text(text)
    print(f"wrote {table}")
    return 0


def main() -> int:
    return write_or_check(TABLE, build_table, "gen_trl_fields.py")


if __name__ == "__main__":
    sys.exit(main())
