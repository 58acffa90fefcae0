"""Renamed and removed recipe keys, peftrun's and the libraries', in one registry; and the file
rewrite `peftrun migrate` does with it.

`validate` reports an old name with its fix (validation.KEY_HINTS and the trainer schema read this
registry); `migrate` renames keys in place: the text is edited at the positions a round-trip YAML
parse (ruamel.yaml) reports, so comments, key order, quoting and layout stay byte for byte. A value
whose meaning cannot be carried over mechanically is reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftrun.errors import Problem, RecipeError

CURRENT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Change:
    """One key that a library or peftrun renamed (`new`) or removed (`new` None)."""

    old: str  # dotted key path in a recipe: section.key
    new: str | None
    by: str  # who changed it, and in which version
    schema_version: int  # the recipe format version from which peftrun refuses the old name
    note: str = ""  # what the value means now, or what to do instead
    ratio: bool = False  # the value keeps its meaning only as a float in [0, 1)

    @property
    def key(self) -> str:
        return self.old.rsplit(".", 1)[-1]

    def hint(self) -> str:
        """The fix `validate` prints after "`key` is not a key here: "."""
        if self.new is None:
            return f"{self.by} removed it: {self.note}"
        note = f" ({self.note})" if self.note else ""
        return f"{self.by} renamed it: use {self.new}{note}; `peftrun migrate` rewrites it"


CHANGES: tuple[Change, ...] = (
    Change("trainer.max_seq_length", "trainer.max_length", "TRL 0.20", 1),
    Change("trainer.evaluation_strategy", "trainer.eval_strategy", "transformers 4.46", 1),
    Change("trainer.warmup_ratio", "trainer.warmup_steps", "transformers 5.2", 1,
           note="a value below 1 is a ratio of the total steps", ratio=True),
    Change("trainer.gradient_checkpointing", "trainer.activation_checkpointing", "transformers 5", 1),
    Change("trainer.gradient_checkpointing_kwargs", "trainer.activation_checkpointing_kwargs", "transformers 5", 1),
    Change("model.torch_dtype", "model.dtype", "transformers 4.56", 1),
    Change("trainer.max_prompt_length", None, "TRL 1.0", 1,
           note="prompts are no longer truncated on their own; shorten them in the data or rely on max_length"),
)


def key_hints() -> dict[str, str]:
    """Old key name -> the fix, for validation's unknown-key messages."""
    return {change.key: change.hint() for change in CHANGES}


def retired(section: str) -> frozenset[str]:
    """Keys of `section` that the registry retires (a library may still accept them as aliases)."""
    return frozenset(c.key for c in CHANGES if c.old.startswith(f"{section}."))


@dataclass(frozen=True)
class Finding:
    """One thing migrate found in a file: a rename it does, or a problem it leaves to the user."""

    where: str  # file:line:col
    change: Change
    problem: str = ""  # empty when the rename is mechanical

    def __str__(self) -> str:
        if self.problem:
            return f"{self.where}: {self.change.old}: {self.problem}"
        return f"{self.where}: {self.change.old} -> {self.change.new} ({self.change.by})"


def _check_value(change: Change, mapping: Any, new_key: str) -> str:
    if new_key in mapping:
        return f"both `{change.key}` and `{new_key}` are set: keep one by hand ({change.hint()})"
    value = mapping[change.key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
    if change.ratio and not ok:
        return f"{value!r} is not a ratio in [0, 1): set {change.new} by hand ({change.by}; {change.note})"
    return ""


def _findings(data: Any, file: str) -> tuple[list[Finding], list[tuple[int, int, str, str]]]:
    """What to report, and the key edits (line, column, old key, new key) to make."""
    findings: list[Finding] = []
    edits: list[tuple[int, int, str, str]] = []
    for change in CHANGES:
        section, key = change.old.split(".")
        mapping = data.get(section) if hasattr(data, "get") else None
        if not hasattr(mapping, "lc") or key not in mapping:
            continue
        line, col = mapping.lc.key(key)
        where = f"{file}:{line + 1}:{col + 1}"
        if change.new is None:
            findings.append(Finding(where, change, change.hint()))
            continue
        new_key = change.new.rsplit(".", 1)[-1]
        problem = _check_value(change, mapping, new_key)
        findings.append(Finding(where, change, problem))
        if not problem:
            edits.append((line, col, key, new_key))
    return findings, edits


def _rename(lines: list[str], line: int, col: int, old: str, new: str) -> None:
    text = lines[line]
    quote = text[col] if text[col] in "'\"" else ""
    start = col + len(quote)
    assert text.startswith(old, start), f"{old!r} not at {line + 1}:{col + 1}"
    lines[line] = text[:start] + new + text[start + len(old):]


def migrate_text(text: str, file: str) -> tuple[str, list[Finding]]:
    """The migrated text and every finding (renames done, and values left to the user)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        raise RecipeError(Problem(where, "", f"invalid YAML: {exc.problem or exc}"), source=file) from None
    findings, edits = _findings(data, file)
    lines = text.splitlines(keepends=True)
    for line, col, old, new in sorted(edits, reverse=True):  # right to left: earlier columns stay valid
        _rename(lines, line, col, old, new)
    return "".join(lines), sorted(findings, key=lambda f: [int(n) for n in f.where.rsplit(":", 2)[1:]])
