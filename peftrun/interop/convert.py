"""Conversions several importers share: numbers written as strings, per-epoch counts, precision flags,
chat template names, DeepSpeed config files, data sources."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.interop.keymap import RENAMED, Convert, Translation

# Chat template names the recipe's `model.chat_template` takes (the data contract), by the names tools use.
TEMPLATE_NAMES = {
    "chatml": "chatml", "llama2": "llama2", "llama3": "llama3", "mistral": "mistral", "gemma": "gemma",
    "phi_3": "phi3", "phi3": "phi3", "qwen3": "qwen3", "qwen3_nothink": "qwen3-no-thinking", "zephyr": "zephyr",
    "alpaca": "alpaca",
}


def number(value: Any) -> float | int:
    """A number a YAML 1.1 reader left as a string (`2e-4`), or the number itself."""
    if isinstance(value, str):
        value = float(value)
    return value


def to(path: str, cast: Any = None) -> Convert:
    """The value, cast, at one peftrun path."""
    return lambda value, tr: {path: cast(value) if cast else value}


def when_true(values: Mapping[str, Any]) -> Convert:
    """Fixed values when the flag is on; nothing (a no-op) when it is off."""
    return lambda value, tr: dict(values) if value else {}


def not_carried_when_on(key: str, reason: str) -> Convert:
    """A flag whose `on` cannot be carried (listed with the reason); off is a no-op."""
    def convert(value: Any, tr: Translation) -> dict[str, Any]:
        if value:
            tr.skip(key, reason)
        return {}
    return convert


def partial_freezing(key: str, tr: Translation) -> dict[str, Any]:
    """Training some of a model's own parameters and freezing the rest: one rule for every tool (Axolotl's
    unfrozen_parameters and LISA, LLaMA-Factory's freeze): refused, since peftrun trains an adapter or all."""
    raise RecipeError(Problem("", key, f"peftrun cannot run this {tr.tool} config: {key} trains only some of the "
                                       "model's parameters (partial freezing); peftrun trains a PEFT adapter or every "
                                       "parameter. Use an adapter (e.g. LoRA on those modules) instead"))


def per_epoch(count: int | None, epochs: float) -> float | None:
    """N times per epoch as a fraction of all steps (transformers reads a float below 1 as a ratio)."""
    if not count:
        return None
    fraction = 1.0 / (count * float(epochs))
    return fraction if fraction < 1.0 else None


def dtype_of(bf16: Any, fp16: Any) -> str:
    """The model dtype that a tool's bf16 / fp16 training flags mean."""
    if bf16 == "auto":
        return "float16" if fp16 else "auto"
    if bf16:
        return "bfloat16"
    return "float16" if fp16 else "float32"


def template_name(value: str, tr: Translation, source: str) -> dict[str, Any]:
    """A tool's chat template name as the recipe's, or listed as not carried."""
    name = TEMPLATE_NAMES.get(str(value).lower())
    if name is None:
        tr.skip(source, f"{tr.tool}'s chat template {value!r} has no counterpart among peftrun's named templates; "
                        "leave model.chat_template unset to use the tokenizer's own, or give a .jinja file")
        return {}
    return {"model.chat_template": name}


def near(path: str, tr: Translation) -> Path | None:
    """A file named in a config, looked for next to the config and in the working directory."""
    base = Path(tr.base)
    for candidate in (base / path, Path(path)):
        if candidate.is_file():
            return candidate
    return None


ZERO_IN_NAME = re.compile(r"(?:zero|_z)[_-]?([0-3])(?![0-9])", re.I)  # zero3_bf16.json, ds_z3_config.json


def deepspeed(value: Any, tr: Translation, source: str) -> dict[str, Any]:
    """A DeepSpeed config (a file path or an inline mapping) as `launch`: ZeRO stage and offloads, read from the
    file; a file that is not here gives its stage from its name (the offloads are then listed, never guessed)."""
    config: Any = value
    if isinstance(value, str):
        found = near(value, tr)
        config = json.loads(found.read_text()) if found else None
    if config is None:
        match = ZERO_IN_NAME.search(Path(str(value)).name)
        if not match:
            tr.skip(source, f"DeepSpeed config {value} not found here, and its name does not say the ZeRO stage")
            return {}
        tr.skip(source, f"DeepSpeed config {value} not found here: ZeRO stage {match.group(1)} read from its name; "
                        "its offload and other settings are not known, so not carried")
        return _zero(int(match.group(1)), {}, tr, source)
    zero = config.get("zero_optimization", {}) if isinstance(config, Mapping) else {}
    return _zero(int(zero.get("stage", 0)), zero, tr, source)


def _zero(stage: int, zero: Mapping[str, Any], tr: Translation, source: str) -> dict[str, Any]:
    if stage == 0:
        tr.notes.append(f"{source}: ZeRO stage 0 shards nothing: written as DDP (the same data parallelism)")
        return {"launch.strategy": "ddp"}
    out: dict[str, Any] = {"launch.strategy": "deepspeed", "launch.zero_stage": stage}
    for key in ("offload_optimizer", "offload_param"):
        device = (zero.get(key) or {}).get("device", "none")
        out["launch." + ("offload_params" if key == "offload_param" else key)] = device not in ("none", None)
    return out


def source_entry(path: str, **fields: Any) -> dict[str, Any]:
    """One data source as the recipe writes it (only the fields given)."""
    return {"path": path, **{k: v for k, v in fields.items() if v not in (None, {}, "train")}}


def write_sources(tr: Translation, source: str, entries: list[dict[str, Any]]) -> None:
    """One source as `dataset.path` (+ its fields); several as `dataset.sources`. When this peftrun does not
    take `sources`, the first is written in the single-source form and the rest are listed."""
    if not entries:
        return
    first = entries[0]
    single = {f"dataset.{key}": value for key, value in first.items()}
    if len(entries) == 1:
        for path, value in single.items():
            tr.write(path, value, source)
        return
    tr.write("dataset.sources", entries, source)
    tr.fallbacks["dataset.sources"] = single


def trainer_fields() -> frozenset[str]:
    """Every field of the TRL config classes this peftrun's recipe takes under `trainer:`."""
    from peftrun.recipe.schema import OWNED_ELSEWHERE, trl_table

    names = {row["name"] for rows in trl_table()["fields"].values() for row in rows}
    return frozenset(names - set(OWNED_ELSEWHERE))


def trainer_field(key: str, value: Any, tr: Translation) -> bool:
    """A key that is a TRL (transformers) training argument by the same name goes to `trainer.<key>` (an older
    name of one, e.g. max_seq_length, to its current name)."""
    if key not in trainer_fields() and f"trainer.{key}" not in RENAMED:
        return False
    if isinstance(value, str) and key in list_fields():
        value = [value]  # a list field given one name (DPO's loss_type: apo_zero, as TRL's parser takes it)
    tr.write(f"trainer.{key}", number(value) if key == "learning_rate" else value, key)
    return True


@cache
def list_fields() -> frozenset[str]:
    """TRL config fields that only take a list (of names)."""
    from peftrun.recipe.schema import trl_table

    return frozenset(row["name"] for rows in trl_table()["fields"].values() for row in rows
                     if row["kinds"] and all(k.startswith("list") for k in row["kinds"]))
