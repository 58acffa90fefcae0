"""Reading what `peftrun import` is given: a YAML config, a model card (README.md) that embeds one, or a
TRL command line; and telling which tool it is for from its keys."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from peftrun.errors import Problem, RecipeError

TOOLS = ("axolotl", "llamafactory", "trl", "torchtune")
TRL_COMMANDS = ("sft", "dpo", "grpo", "kto", "reward", "rloo", "distillation", "orpo", "cpo")
YAML_BLOCK = re.compile(r"```ya?ml\s*\n(.*?)```", re.S)
# Keys that only one tool writes, by tool: the detection counts them.
SIGNS: dict[str, frozenset[str]] = {
    "axolotl": frozenset({"base_model", "micro_batch_size", "sequence_len", "adapter", "lora_target_linear",
                          "val_set_size", "num_epochs", "datasets", "sample_packing", "evals_per_epoch",
                          "saves_per_epoch", "special_tokens", "wandb_project", "lora_r"}),
    "llamafactory": frozenset({"stage", "finetuning_type", "lora_rank", "lora_target", "template", "cutoff_len",
                               "quantization_bit", "val_size", "dataset_dir", "do_train", "pref_beta",
                               "plot_loss", "overwrite_cache", "preprocessing_num_workers"}),
    "trl": frozenset({"use_peft", "lora_task_type", "dataset_name", "dataset_train_split", "dataset_test_split",
                      "use_bnb_nested_quant", "bnb_4bit_quant_type", "lora_target_modules", "test_split_size",
                      "reward_funcs", "model_revision", "model_init_kwargs", "reward_model_name_or_path",
                      "dataset_streaming", "dataset_config", "dataset_mixture", "dataset_mixer", "dataset_splits",
                      "torch_dtype"}),
}


@dataclass(frozen=True)
class Source:
    """A source config as a mapping, how it was read, and what it says about its tool."""

    config: dict[str, Any]
    path: Path
    form: str  # "YAML config", "model card", "command line"
    trl_command: str | None = None  # `trl sft ...`: the trainer it names
    tool: str | None = None  # a form that only one tool writes
    evidence: tuple[str, ...] = field(default=())


def _refuse(path: Path, message: str) -> RecipeError:
    return RecipeError(Problem(str(path), "", message))


def _mapping(text: str, path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _refuse(path, f"not readable as YAML: {exc}") from None
    if not isinstance(data, dict):
        raise _refuse(path, "a config must be a YAML mapping of settings")
    return data


def _scalar(text: str) -> Any:
    """A command-line value as TRL's parser would type it (numbers, booleans), else the text."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_command_line(words: list[str]) -> dict[str, Any]:
    """`--key value [value...]` and bare `--flag` pairs as a mapping (a flag alone is true)."""
    config: dict[str, Any] = {}
    key = None
    for word in words:
        if word.startswith("--"):
            key, _, inline = word[2:].partition("=")
            key = key.replace("-", "_")
            config[key] = _scalar(inline) if inline else True
        elif key is not None:
            value = _scalar(word)
            previous = config[key]
            config[key] = value if previous is True else [*previous, value] if isinstance(previous, list) \
                else [previous, value]
    return config


SCRIPT = re.compile(r"(^|.*[/.])scripts[/.](\w+?)(\.py)?$")  # trl/scripts/sft.py, -m trl.scripts.sft


def _command(words: list[str]) -> tuple[int, int, str]:
    """Where the TRL command is, where its arguments start, and the command: `trl sft ...` or TRL's script run
    directly."""
    for at, word in enumerate(words):
        if word == "trl" and at + 1 < len(words):
            return at, at + 2, words[at + 1]
        match = SCRIPT.match(word)
        if match and "trl" in word:
            return at, at + 1, match.group(2)
    return len(words), len(words), ""


def _launcher(words: list[str], at: int) -> dict[str, Any]:
    """`accelerate launch --num_processes N --config_file F <script>`: the launch settings, by TRL's CLI keys."""
    if "launch" not in words[:at] or "accelerate" not in words[:at]:
        return {}
    given = parse_command_line(words[words.index("launch") + 1:at])
    names = {"num_processes": "num_processes", "config_file": "accelerate_config"}
    return {names[k]: v for k, v in given.items() if k in names}


def _command_line(text: str, path: Path) -> Source:
    words = shlex.split(text.replace("\\\n", " "), comments=True)
    at, start, command = _command(words)
    if command not in TRL_COMMANDS:
        raise _refuse(path, f"`trl {command}`: not a TRL training command peftrun imports ({', '.join(TRL_COMMANDS)})")
    config = {**_launcher(words, at), **parse_command_line(words[start:])}
    included = config.pop("config", None)
    if included is not None:
        found = path.parent / str(included)
        if not found.is_file():
            raise _refuse(path, f"--config {included}: no such file next to {path.name}")
        config = {**_mapping(found.read_text(), found), **config}  # the command line wins, as in TRL
    return Source(config, path, "command line", command, "trl", (f"trl {command}",))


RUN_FILES = ("training_args.yaml", "README.md")  # what a LLaMA-Factory run / an Axolotl model repo leaves


def _is_command_line(text: str) -> bool:
    """A shell line running `trl <command>` (comments and blank lines before it allowed), not a YAML mapping."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines or re.match(r"\s*[\w.-]+\s*:", lines[0]):
        return False
    return bool(re.search(r"(^|[\s/])trl\s+[\w-]+|trl[/.]scripts[/.]\w+", lines[0]))


def read_source(path: Path) -> Source:
    """The config at `path`: YAML, a model card's embedded YAML block, or a `trl <command> ...` line; a directory
    gives its training_args.yaml (a LLaMA-Factory run) or README.md (a model card)."""
    if path.is_dir():
        found = [path / name for name in RUN_FILES if (path / name).is_file()]
        if not found:
            raise _refuse(path, f"a directory without {' or '.join(RUN_FILES)}: name the config file")
        path = found[0]
    if not path.is_file():
        raise _refuse(path, "no such file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(path, f"cannot read it: {exc}") from None
    if _is_command_line(text):
        return _command_line(text, path)
    if path.suffix.lower() == ".md":
        for block in YAML_BLOCK.findall(text):
            data = yaml.safe_load(block) if block.strip() else None
            if isinstance(data, dict) and "base_model" in data:
                return Source(data, path, "model card", tool="axolotl", evidence=("an Axolotl config in a model card",))
        raise _refuse(path, "no YAML block with a config (base_model: ...) in this model card")
    return Source(_mapping(text, path), path, "YAML config")


def _components(config: dict[str, Any]) -> list[str]:
    return [key for key, value in config.items() if isinstance(value, dict) and "_component_" in value]


def detect(source: Source) -> tuple[str, tuple[str, ...]]:
    """The tool a config is for, and the keys that say so; refused when the keys do not tell."""
    if source.tool:
        return source.tool, source.evidence
    if "train_dataset" in source.config and "model" in source.config:
        raise _refuse(source.path, "a LLaMA-Factory v1 config (model, train_dataset, peft_config, dist_config: "
                                   "src/llamafactory/v1/config): peftrun imports LLaMA-Factory's v0 format "
                                   "(`llamafactory-cli train`: model_name_or_path, stage, dataset, ...) only")
    components = _components(source.config)
    if components:
        return "torchtune", tuple(f"{key}._component_" for key in components)
    scores = {tool: sorted(set(source.config) & signs) for tool, signs in SIGNS.items()}
    ranked = sorted(scores.items(), key=lambda item: -len(item[1]))
    (best, keys), (_, runner_up) = ranked[0], ranked[1]
    if not keys or len(keys) == len(runner_up):
        raise _refuse(source.path, "cannot tell which tool this config is for from its keys: "
                                   f"give --from ({' | '.join(TOOLS)})")
    return best, tuple(keys)
