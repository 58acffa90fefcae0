"""Pydantic fields from the generated library tables (trl_fields.json, peft_fields.json).

A table row holds a library field's name, kinds (JSON types), nullability, choices,
default and help; these turn it into an annotation and a pydantic Field whose
description reaches the JSON Schema.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import Field, StrictBool, StrictInt, StrictStr

KIND_TYPES: dict[str, Any] = {
    "bool": StrictBool,
    "int": StrictInt,
    "float": float,
    "str": StrictStr,
    "list[str]": list[StrictStr],
    "list[float]": list[float],
    "list[int]": list[StrictInt],
    "list": list[Any],
    "dict": dict[str, Any],
    "any": Any,
}


@cache
def load_table(name: str) -> dict[str, Any]:
    """A generated table next to this module, by file name."""
    return json.loads(Path(__file__).with_name(name).read_text())


def annotation(row: dict[str, Any]) -> Any:
    """The annotation for a table row: its choices as a Literal, its other kinds, None when nullable."""
    if "choices" in row:
        options: list[Any] = [Literal[tuple(row["choices"])]]  # type: ignore[misc]
        options += [KIND_TYPES[k] for k in row["kinds"] if k != "str"]
    else:
        options = [KIND_TYPES[k] for k in row["kinds"]]
    if row["nullable"]:
        options.append(type(None))
    return options[0] if len(options) == 1 else Union[tuple(options)]  # type: ignore[return-value]


def field(row: dict[str, Any], **constraints: Any) -> tuple[Any, Any]:
    """(annotation, Field) for a table row; a row without a default takes None (the library computes it)."""
    default = row.get("default")
    kind = annotation(row)
    if default is None and not row["nullable"]:
        kind = Union[kind, None]
    return kind, Field(default, description=row["help"] or None, **constraints)
