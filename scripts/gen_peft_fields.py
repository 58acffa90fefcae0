"""Generate peftrun/recipe/schema/peft_fields.json from the installed PEFT.

The table lets peftrun validate `peft:` sections by each method's own PEFT config
fields (name, type, default, help) without importing peft (5 s). Run it after
upgrading PEFT:

    python scripts/gen_peft_fields.py            # rewrite the table
    python scripts/gen_peft_fields.py --check    # exit 1 if it drifted

tests/recipe/schema/test_generated_tables.py runs the check.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_trl_fields import Kinds, describe, write_or_check  # noqa: E402

TABLE = Path(__file__).resolve().parents[1] / "peftrun" / "recipe" / "schema" / "peft_fields.json"
# Fields of every PEFT config that PEFT itself fills (peftrun infers task_type, see the schema).
PEFT_OWNED = ("peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision", "inference_mode")
LIST_ITEMS = {int: "list[int]", str: "list[str]", float: "list[float]"}


def _leaf(tp: object) -> Kinds | None:
    """PEFT's annotations beyond TRL's: string literals keep their choices, nested config dataclasses
    (LoftQConfig, EvaConfig, ...) are written as mappings, lists of other items stay lists."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        values = typing.get_args(tp)
        if all(isinstance(v, str) for v in values):
            return ["str"], False, list(values)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return ["dict"], False, None
    if origin is list:
        (item,) = typing.get_args(tp) or (typing.Any,)
        if isinstance(item, type) and issubclass(item, enum.Enum):
            return ["list[str]"], False, None
        return [LIST_ITEMS.get(item, "list")], False, None  # type: ignore[call-overload]
    return None


def _nested(config_class: type) -> dict[str, type]:
    """Fields whose value is a nested config dataclass (LoftQConfig, EvaConfig, CordaConfig, ...): name -> class."""
    out = {}
    for name, hint in typing.get_type_hints(config_class).items():
        for arg in (hint, *typing.get_args(hint)):
            if isinstance(arg, type) and dataclasses.is_dataclass(arg):
                out[name] = arg
    return out


def _required(config_class: type) -> set[str]:
    return {
        f.name for f in dataclasses.fields(config_class)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    }


def build_table() -> dict:
    import peft
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    methods, nested = {}, {}
    for peft_type, config_class in sorted(PEFT_TYPE_TO_CONFIG_MAPPING.items(), key=lambda item: item[0].value):
        required, inner = _required(config_class), _nested(config_class)
        rows = [row for row in describe(config_class, _leaf) if row["name"] not in PEFT_OWNED]
        for row in rows:
            if row["name"] in required:
                row["required"] = True
            if row["name"] in inner:
                row["config"] = inner[row["name"]].__name__
                nested[row["config"]] = describe(inner[row["name"]], _leaf)
        methods[peft_type.value.lower()] = {
            "class": config_class.__name__,
            "prompt_learning": issubclass(config_class, peft.PromptLearningConfig),
            "fields": rows,
        }
    return {"peft_version": peft.__version__, "methods": methods, "nested": nested}


def main() -> int:
    return write_or_check(TABLE, build_table, "gen_peft_fields.py")


if __name__ == "__main__":
    sys.exit(main())
