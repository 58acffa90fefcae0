"""Generate peftrun/recipe/schema/trl_fields.json from the installed TRL.

The table lets peftrun validate `trainer:` sections by TRL's own field names and
types without importing trl (5-6 s). Run it after upgrading TRL:

    python scripts/gen_trl_fields.py            # rewrite the table
    python scripts/gen_trl_fields.py --check    # exit 1 if it drifted

tests/schema/test_trl_fields.py runs the check.
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


def _kinds(tp: object) -> tuple[list[str], bool, list | None]:
    """Map a dataclass annotation to (kinds, nullable, choices)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        kinds: list[str] = []
        nullable, choices = False, None
        for arg in typing.get_args(tp):
            sub, sub_null, sub_choices = _kinds(arg)
            kinds += [k for k in sub if k not in kinds]
            nullable |= sub_null
            choices = sub_choices or choices
        if choices and "str" in kinds and set(kinds) <= {"str", "list[str]"}:
            kinds = ["str"]
        return kinds, nullable, choices
    if tp is type(None):
        return [], True, None
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


def describe(config_class: type) -> list[dict]:
    hints = typing.get_type_hints(config_class)
    rows = []
    for field in dataclasses.fields(config_class):
        if not field.init or field.name.startswith("_"):
            continue
        kinds, nullable, choices = _kinds(hints[field.name])
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


def build_table() -> dict:
    import trl

    classes = {"sft": trl.SFTConfig, "dpo": trl.DPOConfig, "grpo": trl.GRPOConfig, "reward": trl.RewardConfig}
    return {
        "trl_version": trl.__version__,
        "classes": {kind: cls.__name__ for kind, cls in classes.items()},
        "fields": {kind: describe(cls) for kind, cls in classes.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the table differs from the installed TRL")
    args = parser.parse_args()
    text = json.dumps(build_table(), indent=1, sort_keys=True) + "\n"
    if args.check:
        if TABLE.read_text() != text:
            print(f"{TABLE} is out of date: run python scripts/gen_trl_fields.py", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(text)
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
