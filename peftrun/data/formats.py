"""Record formats -> TRL's columns: named formats (alpaca, sharegpt, ...) and the mapping form.

A converter turns one record into TRL's conversational (or prompt / completion) columns, or raises
RowError naming the field that cannot be converted; mixture.py runs them over a source and reports
every failing row with its source and number.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from peftrun.recipe.schema.dataset import ROLES, TEMPLATE_FIELDS, FormatMapping, template_fields

Record = dict[str, Any]
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "tool": "tool"}


class RowError(Exception):
    """A record that cannot be converted: which field, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _value(record: Record, field: str, kind: type = str) -> Any:
    value = record.get(field)
    if value is None:
        raise RowError(field, "missing or null")
    if not isinstance(value, kind):
        raise RowError(field, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional(record: Record, field: str) -> str:
    value = record.get(field)
    if value is not None and not isinstance(value, str):
        raise RowError(field, f"expected str, got {type(value).__name__}")
    return value or ""


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def turns(record: Record, field: str, role_key: str, content_key: str, roles: dict[str, str]) -> list[dict[str, str]]:
    """The turns under `field` as TRL messages, roles mapped; RowError for an empty list, a bad turn or role."""
    items = _value(record, field, list)
    if not items:
        raise RowError(field, "empty conversation")
    out = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise RowError(where, f"a turn must be an object with {role_key!r} and {content_key!r}")
        role = _value(item, role_key) if role_key in item else None
        if role is None:
            raise RowError(f"{where}.{role_key}", f"missing (the turn has {sorted(item)})")
        mapped = roles.get(role, role if role in ROLES else None)
        if mapped is None:
            known = sorted(set(roles) | set(ROLES))
            raise RowError(f"{where}.{role_key}", f"role {role!r} is not one of {', '.join(known)}; map it with format.roles")
        if item.get(content_key) is None:
            raise RowError(f"{where}.{content_key}", f"missing (the turn has {sorted(item)})")
        out.append(_turn(mapped, _value(item, content_key)))
    return out


def _with_system(record: Record, field: str | None, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    system = _optional(record, field) if field else ""
    return [_turn("system", system), *messages] if system else messages


def _split_last(messages: list[dict[str, str]], field: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise RowError(field, "needs at least one turn before a final assistant turn")
    return messages[:-1], messages[-1:]


def _label(record: Record, fields: tuple[str, ...]) -> bool:
    field = next((f for f in fields if record.get(f) is not None), fields[0])
    return _value(record, field, bool)


def alpaca(record: Record) -> Record:
    """instruction (+ input after a blank line) as the user turn, output as the reply, optional system."""
    instruction, extra = _value(record, "instruction"), _optional(record, "input")
    user = f"{instruction}\n\n{extra}" if extra else instruction
    prompt = _with_system(record, "system", [_turn("user", user)])
    return {"prompt": prompt, "completion": [_turn("assistant", _value(record, "output"))]}


def _sharegpt_turns(record: Record) -> list[dict[str, str]]:
    return _with_system(record, "system", turns(record, "conversations", "from", "value", SHAREGPT_ROLES))


def sharegpt(record: Record) -> Record:
    return {"messages": _sharegpt_turns(record)}


def sharegpt_preference(record: Record) -> Record:
    """conversations + chosen / rejected replies (each a {from, value} turn) -> prompt / chosen / rejected."""
    prompt = _sharegpt_turns(record)
    replies = {}
    for key in ("chosen", "rejected"):
        reply = turns({key: [_value(record, key, dict)]}, key, "from", "value", SHAREGPT_ROLES)
        replies[key] = [_turn("assistant", reply[0]["content"])]
    return {"prompt": prompt, **replies}


def sharegpt_kto(record: Record) -> Record:
    """conversations ending in the reply + a true/false `label` (or `kto_tag`) -> prompt / completion / label."""
    prompt, completion = _split_last(_sharegpt_turns(record), "conversations")
    return {"prompt": prompt, "completion": completion, "label": _label(record, ("label", "kto_tag"))}


def conversation_pair(record: Record) -> Record:
    """Two whole conversations (chosen, rejected) sharing a prefix -> prompt / chosen / rejected."""
    chosen = turns(record, "chosen", "role", "content", {})
    rejected = turns(record, "rejected", "role", "content", {})
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise RowError("chosen", "the two conversations share no prompt (their first turns differ)")
    return {"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:]}


def unpaired(record: Record) -> list[Record]:
    """A preference pair (prompt, chosen, rejected) -> two rows of prompt / completion / label (as for KTO)."""
    prompt = record.get("prompt")
    if prompt is None:
        raise RowError("prompt", "missing or null")
    return [{"prompt": prompt, "completion": _present(record, "chosen"), "label": True},
            {"prompt": prompt, "completion": _present(record, "rejected"), "label": False}]


def _present(record: Record, field: str) -> Any:
    if record.get(field) is None:
        raise RowError(field, "missing or null")
    return record[field]


# name -> (converter, the fields the data must have)
NAMED: dict[str, tuple[Callable[[Record], Record | list[Record]], tuple[str, ...]]] = {
    "alpaca": (alpaca, ("instruction", "output")),
    "sharegpt": (sharegpt, ("conversations",)),
    "sharegpt-preference": (sharegpt_preference, ("conversations", "chosen", "rejected")),
    "sharegpt-kto": (sharegpt_kto, ("conversations",)),
    "conversation-pair": (conversation_pair, ("chosen", "rejected")),
    "unpaired": (unpaired, ("prompt", "chosen", "rejected")),
}


def render(template: str, record: Record, key: str) -> str:
    """A field template filled from a record (field names only, checked by the schema); RowError on a null."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            value = record.get(name)
            if value is None:
                raise RowError(name, f"missing or null (in format.{key})")
            out.append(value if isinstance(value, str) else str(value))
    return "".join(out)


def mapped(spec: FormatMapping) -> Callable[[Record], Record]:
    """The converter a format mapping describes."""

    def convert(record: Record) -> Record:
        if spec.messages is not None:
            messages = _with_system(record, spec.system, turns(record, spec.messages, spec.role, spec.content, spec.roles))
            if spec.label is None:
                return {"messages": messages}
            prompt, completion = _split_last(messages, spec.messages)
            return {"prompt": prompt, "completion": completion, "label": _value(record, spec.label, bool)}
        out: Record = {}
        for key in TEMPLATE_FIELDS:
            template = getattr(spec, key)
            if template is None:
                continue
            text = render(template, record, key)
            out[key] = text if not spec.chat else [_turn("user" if key == "prompt" else "assistant", text)]
        if spec.chat:
            out["prompt"] = _with_system(record, spec.system, out["prompt"])
        if spec.label is not None:
            out["label"] = _value(record, spec.label, bool)
        return out

    return convert


def needed_fields(spec: str | FormatMapping) -> tuple[str, ...]:
    """Fields every record of a source must have for its format."""
    if isinstance(spec, str):
        return NAMED[spec][1]
    if spec.messages is not None:
        return tuple(f for f in (spec.messages, spec.label) if f)
    names = [n for key in TEMPLATE_FIELDS if getattr(spec, key) for n in template_fields(getattr(spec, key))]
    return tuple(dict.fromkeys([*names, *([spec.label] if spec.label else [])]))


def converter(spec: str | FormatMapping) -> Callable[[Record], Record | list[Record]]:
    return NAMED[spec][0] if isinstance(spec, str) else mapped(spec)


def describe(spec: str | FormatMapping | None) -> str:
    if spec is None:
        return "as is"
    return spec if isinstance(spec, str) else "mapping"


PLAIN_NAME = re.compile(r"^[\w .-]{1,64}$")


def shown_columns(names: list[str]) -> str:
    """Column names as an error shows them: a name that is not a plain one (e.g. the first line of a file
    read as CSV, which may be a credential) is never printed."""
    plain = [n for n in names if PLAIN_NAME.match(str(n))]
    hidden = len(names) - len(plain)
    return str(plain) + (f" and {hidden} column name(s) that are not plain names (not shown)" if hidden else "")
