"""One source converted to TRL's columns (with every failing row located), and sources mixed into one dataset."""

from __future__ import annotations

import logging
from typing import Any

from peftrun.data.formats import RowError, converter, describe, needed_fields, shown_columns
from peftrun.errors import DataError
from peftrun.recipe.schema.dataset import FormatMapping

log = logging.getLogger("peftrun")
SHAPE_COLUMNS = ("messages", "conversations", "prompt", "completion", "chosen", "rejected", "text", "label")
MAX_ROW_ERRORS = 5


# Names other tools and data sets give the fields a named format reads (for the hint of a missing field).
SYNONYMS = {"output": ("response", "answer", "completion", "target", "reply"),
            "instruction": ("prompt", "question", "query", "task"),
            "conversations": ("messages", "conversation", "dialog", "turns"),
            "chosen": ("preferred", "accepted", "good"), "rejected": ("dispreferred", "bad")}


def mapping_hint(missing: list[str], present: list[str], needed: tuple[str, ...]) -> str:
    """ "; if `response` holds output, rename it in the source: `columns: {output: response}`" for the fields
    of the data that look like the missing ones (by a usual other name, or a close spelling), or ""."""
    import difflib

    spare = [c for c in present if c not in needed]
    pairs = {}
    for field in missing:
        guess = next((c for c in SYNONYMS.get(field, ()) if c in spare), None)
        close = difflib.get_close_matches(field, spare, n=1, cutoff=0.6)
        if guess or close:
            pairs[field] = guess or close[0]
    if not pairs:
        return ""
    holds = " and ".join(f"`{source}` holds {field}" for field, source in pairs.items())
    mapping = ", ".join(f"{field}: {source}" for field, source in pairs.items())
    pronoun = "it" if len(pairs) == 1 else "them"
    return f"; if {holds}, rename {pronoun} in the source: `columns: {{{mapping}}}`"


def convert(dataset: Any, spec: str | FormatMapping, label: str, cache: bool) -> Any:
    """The source's records in TRL's columns; a DataError naming the source, row and field of each bad record
    (up to five, from the first batch that has one)."""
    missing = [f for f in needed_fields(spec) if f not in dataset.column_names]
    if missing:
        raise DataError(f"{label}: format {describe(spec)} needs the field(s) {', '.join(missing)}, but the data has "
                        f"{shown_columns(dataset.column_names)}"
                        f"{mapping_hint(missing, dataset.column_names, needed_fields(spec))}")
    convert_one = converter(spec)

    def batch(rows: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        out: list[dict[str, Any]] = []
        errors: list[str] = []
        for j, index in enumerate(indices):
            record = {k: values[j] for k, values in rows.items()}
            try:
                result = convert_one(record)
            except RowError as exc:
                errors.append(f"{label} row {index + 1}: {exc.field}: {exc.message}")
                continue
            out += result if isinstance(result, list) else [result]
        if errors:
            more = f"\n  (and {len(errors) - MAX_ROW_ERRORS} more in these rows)" if len(errors) > MAX_ROW_ERRORS else ""
            head = f"{len(errors)} record(s) cannot be converted with format {describe(spec)}:\n  "
            raise DataError(head + "\n  ".join(errors[:MAX_ROW_ERRORS]) + more)
        return {key: [row[key] for row in out] for key in (out[0] if out else {})}

    return dataset.map(batch, batched=True, with_indices=True, remove_columns=dataset.column_names,
                       load_from_cache_file=cache, desc=f"Converting {label} ({describe(spec)})")


def check_shape(dataset: Any, label: str) -> None:
    """Data given as is must hold one shape: every row has the same TRL columns filled."""
    columns = [c for c in SHAPE_COLUMNS if c in dataset.column_names]
    if not columns or len(dataset) == 0:
        return
    table = dataset.data
    if all(table.column(c).null_count in (0, len(dataset)) for c in columns):
        return
    first: frozenset[str] | None = None
    for start, rows in _batches(dataset.select_columns(columns)):
        for j in range(len(rows[columns[0]])):
            shape = frozenset(c for c in columns if rows[c][j] is not None)
            first = shape if first is None else first
            if shape != first:
                differ = ", ".join(sorted(shape ^ first))
                raise DataError(f"{label} row {start + j + 1}: {differ}: this row has {', '.join(sorted(shape)) or 'nothing'}, "
                                f"but row 1 has {', '.join(sorted(first))}; one source holds one shape (split the "
                                "rows into two sources, or give the source a format)")


def _batches(dataset: Any, size: int = 1000) -> Any:
    for start in range(0, len(dataset), size):
        yield start, dataset[start:start + size]


def _as_messages(row: dict[str, Any]) -> dict[str, Any]:
    return {"messages": row["prompt"] + row["completion"]}


def unify(parts: list[tuple[str, Any]], trainer_type: str) -> list[Any]:
    """The sources in one set of columns: conversational prompt / completion joins messages when SFT sources
    mix the two; any other difference is an error naming the sources."""
    shapes = {frozenset(ds.column_names) for _, ds in parts}
    if len(shapes) == 1:
        return [ds for _, ds in parts]
    joinable = {frozenset({"messages"}), frozenset({"prompt", "completion"})}
    if trainer_type == "sft" and shapes == joinable and all(_conversational(ds) for _, ds in parts):
        log.warning("the sources mix prompt / completion and messages: all become messages, which train on every "
                    "token unless trainer.assistant_only_loss is true")
        return [ds.map(_as_messages, remove_columns=["prompt", "completion"], desc=f"Joining {label} into messages")
                if "prompt" in ds.column_names else ds for label, ds in parts]
    listed = "; ".join(f"{label} has {sorted(ds.column_names)}" for label, ds in parts)
    raise DataError(f"dataset.sources: the sources convert to different columns and cannot be mixed: {listed}")


def _conversational(dataset: Any) -> bool:
    return len(dataset) > 0 and ("messages" in dataset.column_names or isinstance(dataset[0].get("prompt"), list))


def mix(parts: list[Any], probabilities: list[float] | None, seed: int) -> Any:
    """Concatenate the sources, or interleave them with the given probabilities (seeded, until one runs out)."""
    import datasets

    if len(parts) == 1:
        return parts[0]
    features = parts[0].features
    try:
        parts = [p if p.features == features else p.cast(features) for p in parts]
    except (ValueError, TypeError) as exc:
        raise DataError(f"dataset.sources: the sources' columns have different types: {exc}") from None
    if probabilities is None:
        return datasets.concatenate_datasets(parts)
    total = sum(probabilities)
    return datasets.interleave_datasets(parts, probabilities=[p / total for p in probabilities], seed=seed)
