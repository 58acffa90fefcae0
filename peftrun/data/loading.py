"""Load a plan's datasets, rename columns, split off eval data, and check the format fits the trainer.

All of it runs before the model loads, so a wrong dataset fails in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.errors import DataError
from peftrun.hub import is_local, offline, offline_message
from peftrun.recipe.plan import Plan

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}

# What each trainer reads, as (format name, required columns) alternatives.
FORMATS: dict[str, list[tuple[str, frozenset[str]]]] = {
    "sft": [
        ("prompt-completion", frozenset({"prompt", "completion"})),
        ("conversational", frozenset({"messages"})),
        ("conversational (ShareGPT)", frozenset({"conversations"})),  # TRL converts it to messages
        ("language modeling", frozenset({"text"})),
    ],
    "dpo": [("preference", frozenset({"chosen", "rejected"}))],
    "reward": [("preference", frozenset({"chosen", "rejected"}))],
    "grpo": [("prompt-only", frozenset({"prompt"}))],
    "rloo": [("prompt-only", frozenset({"prompt"}))],
    "kto": [("unpaired preference", frozenset({"prompt", "completion", "label"}))],
    "distillation": [("prompt-only", frozenset({"prompt"}))],  # TRL's DistillationTrainer generates on-policy
    "orpo": [("preference", frozenset({"chosen", "rejected"}))],
    "cpo": [("preference", frozenset({"chosen", "rejected"}))],
}


@dataclass(frozen=True)
class TrainingData:
    train: Any  # datasets.Dataset
    eval: Any | None
    format: str

    def fingerprint(self) -> dict[str, Any]:
        """Identifies the exact data a run saw (datasets' content fingerprints and sizes)."""
        out = {"train": self.train._fingerprint, "train_rows": len(self.train), "format": self.format}
        if self.eval is not None:
            out.update(eval=self.eval._fingerprint, eval_rows=len(self.eval))
        return out


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _load(paths: str | list[str], name: str | None, split: str, key: str) -> Any:
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
                return _json_dataset(items)
            return datasets.load_dataset(kind, data_files={split: items}, split=split)
        if len(items) > 1:
            raise DataError(f"{key}: a list must hold data files (.jsonl .json .csv .parquet)")
        return datasets.load_dataset(first, name, split=split)
    except DataError:
        raise
    except (ConnectionError, FileNotFoundError) as exc:
        if not is_local(first) and offline():
            raise DataError(f"{key}: {offline_message('dataset', first)}") from None
        raise DataError(f"{key}: cannot load {first!r}: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # e.g. unknown split
        raise DataError(f"{key}: cannot load split {split!r} of {first!r}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for unreadable files
        raise DataError(f"{key}: cannot read {first!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def json_rows(paths: list[str], stamps: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
    """The records of .jsonl / .json files, values as JSON has them. (`stamps`, each file's size and
    mtime, only key the datasets cache so that a changed file is read again.)"""
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        if path.endswith(".jsonl"):
            yield from (json.loads(line) for line in text.splitlines() if line.strip())
            continue
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if isinstance(data, dict):  # column-oriented: {"column": [values, ...], ...}
            data = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
        yield from data


def _json_dataset(paths: list[str]) -> Any:
    """JSON data read with Python's json module: pyarrow's JSON reader turns strings that look like dates
    ("2021-03-05") into timestamps, which would change what the model is trained on."""
    import datasets

    stamps = [(Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in paths]
    return datasets.Dataset.from_generator(json_rows, gen_kwargs={"paths": list(paths), "stamps": stamps})


def _rename(dataset: Any, columns: dict[str, str], key: str) -> Any:
    missing = {target: source for target, source in columns.items() if source not in dataset.column_names}
    if missing:
        wanted = ", ".join(f"{source!r} (for {target})" for target, source in missing.items())
        raise DataError(f"{key}: dataset.columns names {wanted}, but the data has {dataset.column_names}")
    renames = {source: target for target, source in columns.items() if source != target}
    return dataset.rename_columns(renames) if renames else dataset


def detect_format(trainer_type: str, column_names: list[str], key: str) -> str:
    """The TRL data format these columns make for the trainer, or a DataError saying what is needed."""
    found = set(column_names)
    for name, needed in FORMATS[trainer_type]:
        if needed <= found:
            return name
    options = " or ".join(f"{name} ({', '.join(sorted(needed))})" for name, needed in FORMATS[trainer_type])
    raise DataError(
        f"{key}: the {trainer_type} trainer needs {options} columns, but the data has {sorted(found)}; "
        "map your column names with dataset.columns, e.g. columns: {prompt: question}"
    )


def load_training_data(plan: Plan) -> TrainingData:
    """Train (and eval) datasets for a plan, renamed, capped, split, and checked against the trainer."""
    section, seed = plan.recipe.dataset, plan.recipe.seed
    train = _rename(_load(section.path, section.name, section.split, "dataset.path"), section.columns, "dataset.path")
    fmt = detect_format(plan.trainer_type, train.column_names, "dataset.path")
    if section.max_samples is not None and section.max_samples < len(train):
        train = train.select(range(section.max_samples))  # cap first: the eval fraction is of what is used
    evaluation = None
    spec = section.eval
    if spec is not None and spec.fraction is not None:
        parts = train.train_test_split(test_size=spec.fraction, seed=seed)
        train, evaluation = parts["train"], parts["test"]
    elif spec is not None:
        source = spec.path if spec.path is not None else section.path
        split = spec.split or ("train" if spec.path is not None else section.split)
        evaluation = _rename(_load(source, section.name, split, "dataset.eval"), section.columns, "dataset.eval")
        detect_format(plan.trainer_type, evaluation.column_names, "dataset.eval")
    if len(train) == 0:
        raise DataError("dataset.path: the training split is empty")
    return TrainingData(train, evaluation, fmt)
