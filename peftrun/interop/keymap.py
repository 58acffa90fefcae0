"""The key-map table each importer is (source key -> peftrun key, conversion, note) and the walk that applies it.

A tool's table is data: the docs page of each tool is generated from it and a
test walks it, so what the importer does and what the docs say cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from peftrun.recipe.migrations import CHANGES

RENAMED = {change.old: change for change in CHANGES if not change.ratio}  # ratio renames need a value check


class _Unset:
    def __repr__(self) -> str:
        return "-"


UNSET: Any = _Unset()  # a key whose tool has no default worth carrying


def source_key(entry: str) -> str:
    """The top-level source key a `not_carried` entry is about (`lora_target_modules[2]` and `trl.beta: ...` name
    `lora_target_modules` and `trl`; a tool default not taken keeps its mark: `torch_dtype (default)`)."""
    return entry.split("[")[0].split(".")[0].split(":")[0]


@dataclass
class Translation:
    """A source config on its way to a recipe: the values written, where each came from, and the report."""

    tool: str
    config: Mapping[str, Any]
    base: str = "."  # the directory of the source file: files it names are looked for there
    values: dict[str, Any] = field(default_factory=dict)  # peftrun dotted path -> value
    origin: dict[str, str] = field(default_factory=dict)  # peftrun dotted path -> source key
    explicit: set[str] = field(default_factory=set)  # paths filled from the source tool's defaults
    mapped: dict[str, list[str]] = field(default_factory=dict)  # source key -> peftrun paths
    dropped: dict[str, str] = field(default_factory=dict)  # source key -> why it is a no-op
    not_carried: dict[str, str] = field(default_factory=dict)  # source key -> why it cannot be carried
    fallbacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> values to write if it is refused
    notes: list[str] = field(default_factory=list)  # how the importer read the config (e.g. the trainer chosen)

    def get(self, key: str, default: Any = None) -> Any:
        """The source value at a dotted key (nested mappings walked), or `default`."""
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        return self.get(key, UNSET) is not UNSET

    def write(self, path: str, value: Any, source: str, *, default: bool = False) -> None:
        """Write `value` at a peftrun path (a name the libraries retired becomes its successor, from the
        migration registry); a written value wins over a tool default."""
        change = RENAMED.get(path)
        if change is not None and change.new is None:
            self.skip(source, f"{path}: {change.hint()}")
            return
        path = change.new if change is not None and change.new else path
        if default and path in self.values:
            return
        if path not in self.values or path in self.explicit:
            self.origin[path] = source  # the first setting that wrote it names it
        self.values[path] = value
        if default:
            self.explicit.add(path)
        else:
            self.explicit.discard(path)
            if path not in self.mapped.setdefault(source, []):
                self.mapped[source].append(path)

    def unmap(self, source: str, path: str) -> None:
        """`source` no longer writes `path`."""
        if path in self.mapped.get(source, []):
            self.mapped[source].remove(path)
            if not self.mapped[source]:
                del self.mapped[source]

    def drop(self, path: str, reason: str) -> Any:
        """Take a value out as a no-op: a tool default silently, a written setting said so once none of its
        values is left. Returns the value."""
        source, value = self.origin[path], self.values.pop(path)
        if path in self.explicit:
            self.explicit.discard(path)
            return value
        self.unmap(source, path)
        if source not in self.mapped:
            self.noop(source, reason)
        return value

    def skip(self, source: str, reason: str) -> None:
        """A source setting that cannot be carried, with the reason (never dropped silently)."""
        known = self.not_carried.get(source)
        self.not_carried[source] = reason if known in (None, reason) else f"{known}; {reason}"

    def noop(self, source: str, reason: str) -> None:
        self.dropped[source] = reason


Convert = Callable[[Any, Translation], Mapping[str, Any]]


@dataclass(frozen=True)
class Key:
    """One row of a tool's key map."""

    source: str  # the source tool's key (dotted inside nested sections)
    target: str = ""  # the peftrun key(s) it becomes, as the docs show them; "" when not carried
    how: str = "same value"  # the conversion, in words (docs)
    convert: Convert | None = None  # value, translation -> {peftrun path: value}; None: {target: value}
    default: Any = UNSET  # the source tool's value when the key is absent (made explicit where peftrun differs)
    reason: str = ""  # why a key without a target cannot be carried

    def apply(self, value: Any, tr: Translation, *, default: bool = False) -> None:
        if not self.target:
            tr.skip(self.source, self.reason)
            return
        out = self.convert(value, tr) if self.convert else {self.target: value}
        recorded = self.source in tr.mapped or self.source in tr.dropped or self.source in tr.not_carried
        if not out and not default and not recorded:
            tr.noop(self.source, "off or empty: nothing to carry")
        for path, converted in out.items():
            tr.write(path, converted, self.source, default=default)


Fallback = Callable[[str, Any, Translation], bool]  # key, value, translation -> handled


@dataclass(frozen=True)
class Table:
    """A source tool's whole key map: rows, the sources they are read from, and a hook for open-ended keys."""

    tool: str
    title: str
    keys: tuple[Key, ...]
    cited: tuple[str, ...]  # where the keys and defaults were read (files, URLs)
    fallback: Fallback | None = None  # keys no row names (e.g. any TRL config field)
    fallback_doc: str = ""  # what the fallback does, for the docs
    ignored: Mapping[str, str] = field(default_factory=dict)  # keys with no effect on what trains -> why
    known: str = ""  # the generated table of every key the tool takes (tool_keys/<known>.json), if there is one

    def __post_init__(self) -> None:
        names = [k.source for k in self.keys]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        assert not duplicated, f"{self.tool}: keys listed twice: {duplicated}"

    def row(self, source: str) -> Key | None:
        return next((k for k in self.keys if k.source == source), None)

    def nests(self, prefix: str) -> bool:
        """Whether rows name keys inside the section `prefix`."""
        return any(k.source.startswith(prefix + ".") for k in self.keys)


def _walk(node: Mapping[str, Any], table: Table, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if table.row(path) is None and isinstance(value, Mapping) and table.nests(path):
            yield from _walk(value, table, path + ".")
        else:
            yield path, value


EMPTY = (None, False, "", [], {})
KNOWN = Path(__file__).with_name("tool_keys")


@cache
def known_keys(name: str) -> dict[str, Any]:
    """A tool's keys, defaults and declarations, generated from its source (scripts/gen_tool_keys.py)."""
    return json.loads((KNOWN / f"{name}.json").read_text())


def _asks_nothing(key: str, value: Any, table: Table) -> bool:
    """An empty, false or null key (one no row carries) whose tool default is empty too: it asks for nothing."""
    if value not in EMPTY:
        return False
    row = known_keys(table.known)["keys"].get(key.split(".")[-1]) if table.known else None
    return row is None or row["default"] in EMPTY


def unknown(key: str, table: Table) -> str:
    """Why a key no row or fallback takes is not carried: a valid setting of the tool, or not one of its keys."""
    if not table.known:
        return f"peftrun's importer has no counterpart for this {table.title} setting"
    data = known_keys(table.known)
    row = data["keys"].get(key.split(".")[-1].split("[")[0])
    where = f"{data['repository']}@{data['commit'][:10]}"
    if row is None:
        return f"not a key {table.title} declares at {where} (misspelt, or of another version): not carried"
    return (f"a {table.title} setting ({row['at']} at {where}) that peftrun's importer does not carry; "
            "the run differs in it")


def translate(config: Mapping[str, Any], table: Table, base: str = ".") -> Translation:
    """Apply a table to a source config: every key mapped, dropped or listed as not carried, then the
    tool's own defaults for the keys the config leaves out."""
    tr = Translation(table.title, config, base)
    for key, value in _walk(config, table):
        row = table.row(key)
        if key in table.ignored:
            tr.noop(key, table.ignored[key])
        elif row is not None and value is None and row.target and row.default is not UNSET:
            row.apply(row.default, tr)  # written empty: the tool uses its default
        elif row is not None and not row.target and _asks_nothing(key, value, table):
            tr.noop(key, "empty, false or null: asks for nothing")
        elif row is not None and value is None and row.target:
            tr.noop(key, "unset")
        elif row is not None:
            row.apply(value, tr)
        elif table.fallback and table.fallback(key, value, tr):
            continue
        elif _asks_nothing(key, value, table):
            tr.noop(key, "empty, false or null: asks for nothing")
        else:
            tr.skip(key, unknown(key, table))
    for row in table.keys:
        if row.default is not UNSET and row.target and not tr.has(row.source):
            row.apply(row.default, tr, default=True)
    return tr
