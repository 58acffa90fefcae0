"""Load a plan's datasets, rename columns, split off eval data, and check the format fits the trainer.

All of it runs before the model loads, so a wrong dataset fails in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.data.formats import describe, shown_columns
from peftrun.data.mixture import check_shape, convert, mix, unify
from peftrun.errors import DataError
from peftrun.hub import is_local, offline, offline_message
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema.dataset import SourceSection
from peftrun.recipe.trainer_types import TRAINERS

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}

@dataclass(frozen=True)
class TrainingData:
    train: Any  # datasets.Dataset
    eval: Any | None
    format: str
    sources: tuple[dict[str, Any], ...] = ()  # per source: key, path, format, rows, fingerprint

    def fingerprint(self) -> dict[str, Any]:
        """Identifies the exact data a run saw (datasets' content fingerprints and sizes, per source too)."""
        out = {"train": self.train._fingerprint, "train_rows": len(self.train), "format": self.format,
               "sources": list(self.sources)}
        if self.eval is not None:
            out.update(eval=self.eval._fingerprint, eval_rows=len(self.eval))
        return out

    @property
    def conversational(self) -> bool:
        row = self.train[0]
        return any(isinstance(row.get(c), list) for c in ("messages", "conversations", "prompt", "chosen"))


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _load(paths: str | list[str], name: str | None, split: str, key: str, data_files: Any = None,
          cache_dir: str | None = None) -> Any:
    """One split from local files, a local directory, or the hub."""
    import datasets

    items = _as_list(paths)
    first = items[0]
    try:
        if all(Path(p).suffix in LOADERS for p in items):
            kinds = {LOADERS[Path(p).suffix] for p in items}
            if len(kinds) > 1:
                raise DataError(f"{key}: mix of file types {sorted(kinds)}; use one format per dataset")
            missing = [p for p in items if not Path(p).is_file()]
            if missing:
                raise DataError(f"{key}: no such file: {', '.join(missing)}")
            kind = kinds.pop()
            if kind == "json":
                return _json_dataset(items, cache_dir)
            return datasets.load_dataset(kind, data_files={split: items}, split=split, cache_dir=cache_dir)
        if len(items) > 1:
            raise DataError(f"{key}: a list must hold data files (.jsonl .json .csv .parquet)")
        return datasets.load_dataset(first, name, split=split, data_files=data_files, cache_dir=cache_dir)
    except DataError:
        raise
    except (ConnectionError, FileNotFoundError) as exc:
        if not is_local(first) and offline():
            raise DataError(f"{key}: {offline_message('dataset', first)}") from None
        raise DataError(f"{key}: cannot load {first!r}: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # e.g. unknown split
        raise DataError(f"{key}: cannot load split {split!r} of {first!r}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for unreadable files
        cause = exc.__cause__  # datasets wraps what our JSON reader raised in DatasetGenerationError
        if isinstance(cause, DataError):
            raise DataError(f"{key}: {cause}") from None
        raise DataError(f"{key}: cannot read {first!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def _parsed(text: str, path: str, line_offset: int = 0) -> Any:
    """JSON from `text`; a syntax error names the file, line and column (never the content)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno + line_offset}:{exc.colno}: not valid JSON: {exc.msg}") from None


def _records(path: str) -> list[dict[str, Any]]:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".jsonl"):
        return [_parsed(line, path, number - 1) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    data = _parsed(text, path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict):  # column-oriented: {"column": [values, ...], ...}
        data = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    return data


def json_rows(paths: list[str], stamps: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
    """The records of .jsonl / .json files, values as JSON has them, each with every field any record has
    (None where absent: Arrow takes a batch's fields from its first record and would drop the others).
    (`stamps`, each file's size and mtime, only key the datasets cache so that a changed file is read again.)"""
    records = [record for path in paths for record in _records(path)]
    fields = list(dict.fromkeys(key for record in records if isinstance(record, dict) for key in record))
    for record in records:
        yield {key: record.get(key) for key in fields} if isinstance(record, dict) else record


def _json_dataset(paths: list[str], cache_dir: str | None) -> Any:
    """JSON data read with Python's json module: pyarrow's JSON reader turns strings that look like dates
    ("2021-03-05") into timestamps, which would change what the model is trained on."""
    import datasets

    stamps = [(Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in paths]
    return datasets.Dataset.from_generator(json_rows, gen_kwargs={"paths": list(paths), "stamps": stamps},
                                           cache_dir=cache_dir)


def _rename(dataset: Any, columns: dict[str, str], key: str) -> Any:
    missing = {target: source for target, source in columns.items() if source not in dataset.column_names}
    if missing:
        wanted = ", ".join(f"{source!r} (for {target})" for target, source in missing.items())
        raise DataError(f"{key}: dataset.columns names {wanted}, but the data has {shown_columns(dataset.column_names)}")
    renames = {source: target for target, source in columns.items() if source != target}
    return dataset.rename_columns(renames) if renames else dataset


def detect_format(trainer_type: str, column_names: list[str], key: str) -> str:
    """The TRL data format these columns make for the trainer, or a DataError saying what is needed."""
    found = set(column_names)
    formats = TRAINERS[trainer_type].formats
    for shape in formats:
        if shape.columns <= found:
            return shape.name
    options = " or ".join(shape.describe() for shape in formats)
    raise DataError(
        f"{key}: the {trainer_type} trainer needs {options} columns, but the data has {shown_columns(sorted(found))}; "
        "map your column names with dataset.columns, e.g. columns: {prompt: question}"
    )


def _load_source(plan: Plan, prefix: str, source: SourceSection, split: str | None = None) -> Any:
    """One source read, renamed, capped and converted to TRL's columns (or checked to hold one shape)."""
    section = plan.recipe.dataset
    key = f"{prefix}.path"
    data = _load(source.path, source.name, split or source.split, key, source.data_files, section.cache_dir)
    data = _rename(data, source.columns, key)
    if source.max_samples is not None and source.max_samples < len(data):
        data = data.select(range(source.max_samples))  # cap first: the eval fraction is of what is used
    label = f"{prefix} ({source.path if isinstance(source.path, str) else source.path[0]})"
    if source.format is None:
        check_shape(data, label)
        return data
    return convert(data, source.format, label, section.cache)


def _source_record(prefix: str, source: SourceSection, data: Any) -> dict[str, Any]:
    return {"key": prefix, "path": source.path, "format": describe(source.format), "rows": len(data),
            "fingerprint": data._fingerprint}


def _load_mixture(plan: Plan, sources: list[tuple[str, SourceSection]], split: str | None = None) -> tuple[Any, list[dict[str, Any]]]:
    parts = [(prefix, _load_source(plan, prefix, source, split)) for prefix, source in sources]
    records = [_source_record(prefix, source, data) for (prefix, source), (_, data) in zip(sources, parts)]
    unified = unify(parts, plan.trainer_type)
    return mix(unified, plan.recipe.dataset.interleave, plan.recipe.seed), records


def _load_eval(plan: Plan, train: Any) -> tuple[Any, Any]:
    """(train, eval): the eval split held out of the mixture, or read from its own split, path or sources."""
    section, spec = plan.recipe.dataset, plan.recipe.dataset.eval
    if spec is None:
        return train, None
    if spec.fraction is not None:
        parts = train.train_test_split(test_size=spec.fraction, seed=plan.recipe.seed)
        return parts["train"], parts["test"]
    if spec.sources is not None:
        sources = [(f"dataset.eval.sources.{i}", s) for i, s in enumerate(spec.sources)]
        evaluation, _ = _load_mixture(plan, sources)
    elif spec.path is not None:
        fields = {k: getattr(section, k) for k in ("name", "columns", "format") if section.sources is None}
        evaluation = _load_source(plan, "dataset.eval", SourceSection(path=spec.path, **fields))
    else:
        evaluation, _ = _load_mixture(plan, section.all_sources(), spec.split)
    detect_format(plan.trainer_type, evaluation.column_names, "dataset.eval")
    return train, evaluation


def load_training_data(plan: Plan) -> TrainingData:
    """Train (and eval) datasets for a plan: each source converted, the sources mixed, split, and checked
    against the trainer."""
    import datasets

    section = plan.recipe.dataset
    (datasets.enable_caching if section.cache else datasets.disable_caching)()
    train, records = _load_mixture(plan, section.all_sources())
    fmt = detect_format(plan.trainer_type, train.column_names, "dataset.path" if section.sources is None else "dataset.sources")
    train, evaluation = _load_eval(plan, train)
    if len(train) == 0:
        raise DataError("dataset.path: the training split is empty")
    return TrainingData(train, evaluation, fmt, tuple(records))
