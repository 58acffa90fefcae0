"""Axolotl's `datasets:` entries (prompt strategies and their field settings) as the recipe's data sources.

Read from Axolotl's src/axolotl/utils/schemas/datasets.py (the entry fields), src/axolotl/prompt_strategies/
chat_template.py (roles_to_train defaults to the assistant) and prompt_strategies/{dpo,kto}/chatml.py (the fields
the preference / KTO strategies read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peftrun.interop.convert import source_entry, template_name, write_sources
from peftrun.interop.keymap import Translation

# Axolotl's preference / KTO prompt strategies `<template>.<strategy>` (prompt_strategies/{dpo,kto}/chatml.py):
# the fields they read, as the recipe's format mapping (the template's turns rendered by model.chat_template).
RL_STRATEGIES: dict[str, dict[str, Any]] = {
    "intel": {"system": "system", "prompt": "{question}", "chosen": "{chosen}", "rejected": "{rejected}"},
    "prompt_pairs": {"system": "system", "prompt": "{prompt}", "chosen": "{chosen}", "rejected": "{rejected}"},
    "argilla": {"system": "system", "prompt": "{instruction}", "completion": "{completion}", "label": "label"},
}


DEFAULT_ROLES = {"human": "user", "gpt": "assistant"}


def _dataset(entry: Mapping[str, Any], index: int, tr: Translation, key: str) -> dict[str, Any] | None:
    kind = entry.get("type")
    fmt: Any = None
    if kind in ("alpaca", "sharegpt"):
        fmt = kind
    elif kind == "chat_template":
        fmt = _message_format(entry)
    elif kind == "completion":
        fmt = None if entry.get("field", "text") == "text" else {"text": entry["field"]}
    elif isinstance(kind, str) and kind.split(".")[-1] in RL_STRATEGIES and kind.split(".")[0] in ("chatml", "llama3"):
        fmt = {**RL_STRATEGIES[kind.split(".")[-1]], "chat": True}
        if not tr.get("chat_template"):
            tr.write("model.chat_template", kind.split(".")[0], f"{key}[{index}].type")
    elif kind is not None:
        tr.skip(f"{key}[{index}].type", f"Axolotl prompt strategy {kind!r}: peftrun reads TRL's standard columns "
                                        "(or named formats); check the data's columns and set dataset.columns")
    template = entry.get("conversation") or entry.get("chat_template")  # a per-dataset template (older: conversation)
    if template and not tr.get("chat_template"):
        for path, name in template_name(str(template), tr, f"{key}[{index}].chat_template").items():
            tr.write(path, name, f"{key}[{index}]")
    known = {"path", "type", "split", "name", "data_files", "ds_type", "field_messages", "message_property_mappings",
             "message_field_role", "message_field_content", "roles", "field", "conversation", "chat_template"}
    for extra in sorted(set(entry) - known):
        tr.skip(f"{key}[{index}].{extra}", "not carried by peftrun's importer")
    path = entry.get("data_files") if entry.get("data_files") and entry.get("path") in ("json", "csv", "parquet") \
        else entry.get("path")
    if not path:
        tr.skip(f"{key}[{index}]", "a dataset without a path")
        return None
    if isinstance(fmt, dict) and set(fmt) == {"text"}:
        return source_entry(path, split=entry.get("split"), name=entry.get("name"), columns=fmt)
    return source_entry(path, split=entry.get("split"), name=entry.get("name"), format=fmt)


def _message_format(entry: Mapping[str, Any]) -> Any:
    """Axolotl's chat_template dataset fields as the recipe's format mapping (none when already TRL's)."""
    props = dict(entry.get("message_property_mappings") or {})
    role = entry.get("message_field_role") or props.get("role", "role")
    content = entry.get("message_field_content") or props.get("content", "content")
    messages = entry.get("field_messages", "messages")
    given = entry.get("roles")
    # without `roles`, Axolotl maps human -> user and gpt -> assistant (prompt_strategies/chat_template.py)
    roles = {alias: name for name, aliases in given.items() for alias in aliases if alias != name} if given \
        else dict(DEFAULT_ROLES)
    if (messages, role, content) == ("messages", "role", "content") and not given:
        return None
    return {"messages": messages, "role": role, "content": content, **({"roles": roles} if roles else {})}


def datasets(value: Any, tr: Translation) -> dict[str, Any]:
    entries = [e for i, d in enumerate(value or []) if (e := _dataset(d, i, tr, "datasets")) is not None]
    write_sources(tr, "datasets", entries)
    kinds = [d.get("type") for d in value or []]
    if kinds and all(k == "alpaca" for k in kinds) and not tr.get("chat_template"):
        tr.write("model.chat_template", "alpaca", "datasets")  # Axolotl's alpaca type renders Alpaca's prompt
    if kinds and all(k == "chat_template" for k in kinds) and not tr.get("train_on_inputs"):
        # Axolotl's chat_template strategy trains on assistant turns only (roles_to_train: [assistant])
        return {"trainer.assistant_only_loss": True}
    return {}


def test_datasets(value: Any, tr: Translation) -> dict[str, Any]:
    """Axolotl's test_datasets as the eval data: one plain file as a path, typed ones as eval sources."""
    entries = [e for i, d in enumerate(value or []) if (e := _dataset(d, i, tr, "test_datasets")) is not None]
    if not entries:
        return {}
    if len(entries) == 1 and set(entries[0]) == {"path"}:
        return {"dataset.eval": {"path": entries[0]["path"]}}
    return {"dataset.eval": {"sources": entries}}
