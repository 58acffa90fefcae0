"""`peftrun export trl`: a resolved recipe as a TRL CLI config, so that `trl <type> --config OUT` trains the
same thing. TRL's CLI reads one YAML holding the fields of ModelConfig, ScriptArguments, DatasetMixtureConfig
and the trainer's config class (trl/scripts/*.py); keys it does not know reach `accelerate launch`
(`accelerate_config`, `num_processes`). What that form cannot say is listed, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.interop.writer import dump
from peftrun.recipe.objects import target_modules
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import LoraSection
from peftrun.recipe.trainer_types import TRAINERS

SHIPPED_TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "templates"
LOCAL_LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# The LoRA fields TRL's ModelConfig carries to get_peft_config (any other field set in a recipe is listed).
CARRIED_LORA = {"method", "r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save", "use_rslora",
                "use_dora", "task_type", "target_parameters"}


@dataclass
class Exported:
    """A TRL CLI config for a plan: the command, its YAML data, and what it cannot express."""

    command: str
    data: dict[str, Any] = field(default_factory=dict)
    not_expressible: dict[str, str] = field(default_factory=dict)  # recipe key -> why
    notes: list[str] = field(default_factory=list)
    files: dict[Path, str] = field(default_factory=dict)  # files the config names, to write beside it

    def text(self, source: str) -> str:
        lines = [f"# TRL CLI config exported by `peftrun export trl` from {source}.",
                 f"# Run it with: trl {self.command} --config <this file>"]
        lines += [f"# {note}" for note in self.notes]
        if self.not_expressible:
            lines.append("# NOT EXPRESSIBLE in TRL's CLI (this run differs from the recipe's here):")
            lines += [f"#   - {key}: {why}" for key, why in sorted(self.not_expressible.items())]
        return "\n".join(lines) + "\n" + dump(self.data)


def one_item_safe(names: list[str] | str | None) -> list[str] | str | None:
    """TRL's ModelConfig turns a one-item lora_target_modules list into a string, which PEFT reads as a full-match
    regex: `q_proj` would then match no module. A one-item list becomes the regex PEFT's list matching means."""
    if isinstance(names, list) and len(names) == 1:
        return [rf"(.*\.)?{names[0]}"]
    return names


def _model(plan: Plan, out: Exported, beside: Path | None) -> None:
    model = plan.recipe.model
    out.data.update(model_name_or_path=model.name_or_path, dtype=model.dtype)
    if model.revision:
        out.data["model_revision"] = model.revision
    if model.attn_implementation:
        out.data["attn_implementation"] = model.attn_implementation
    if model.trust_remote_code:
        out.data["trust_remote_code"] = True
    for key, why in (("tokenizer", "TRL's scripts load the tokenizer from model_name_or_path"),
                     ("gguf_file", "TRL's scripts cannot load a GGUF checkpoint")):
        if getattr(model, key):
            out.not_expressible[f"model.{key}"] = why
    _template(plan, out, beside)
    _special_tokens(plan, out)


def _trl_fields(plan: Plan) -> set[str]:
    from peftrun.recipe.schema import trl_table

    return {row["name"] for row in trl_table()["fields"][plan.trainer_type]}


def _template(plan: Plan, out: Exported, beside: Path | None) -> None:
    """A .jinja path as chat_template_path; a shipped template name written beside the export as a file and
    named by chat_template_path (TRL's SFT / DPO configs read a template from a file)."""
    template = plan.recipe.model.chat_template
    if not template:
        return
    takes_path = "chat_template_path" in _trl_fields(plan)
    if str(template).endswith(".jinja") and takes_path:
        out.data["chat_template_path"] = template
        return
    shipped = SHIPPED_TEMPLATES / f"{template}.jinja"
    if takes_path and shipped.is_file() and beside is not None:
        path = beside.with_name(f"{beside.stem}.{template}.jinja")
        out.files[path] = shipped.read_text()
        out.data["chat_template_path"] = str(path)
        out.notes.append(f"chat template {template}: peftrun's template written to {path}")
        return
    where = "a .jinja path (chat_template_path): write the export to a file (-o) to get it beside" if takes_path \
        else "no template"
    out.not_expressible["model.chat_template"] = f"{template}: TRL's {plan.trainer_type} config takes {where}"


def _special_tokens(plan: Plan, out: Exported) -> None:
    """pad / eos go to the trainer config fields of those names where it has them; others are listed."""
    tokens = getattr(plan.recipe.model, "special_tokens", None)
    if tokens is None:
        return
    fields = _trl_fields(plan)
    for key in ("pad_token", "eos_token", "bos_token", "additional"):
        value = getattr(tokens, key, None)
        if not value:
            continue
        if key in fields:
            out.data.setdefault(key, value)
        else:
            out.not_expressible[f"model.special_tokens.{key}"] = f"TRL's {plan.trainer_type} config has no {key}"


def _quantization(plan: Plan, out: Exported) -> None:
    quant = plan.recipe.quantization
    if quant is None:
        return
    if quant.bits == 8:
        out.data["load_in_8bit"] = True
        return
    out.data.update(load_in_4bit=True, bnb_4bit_quant_type=quant.quant_type, use_bnb_nested_quant=quant.double_quant)
    if quant.quant_storage:
        out.data["bnb_4bit_quant_storage"] = quant.quant_storage
    if quant.compute_dtype != plan.recipe.model.dtype:
        out.not_expressible["quantization.compute_dtype"] = "TRL computes 4-bit layers in ModelConfig.dtype " \
                                                            f"({plan.recipe.model.dtype})"


def _peft(plan: Plan, out: Exported) -> bool:
    """ModelConfig's LoRA fields; False when the method is not one TRL's get_peft_config builds."""
    peft = plan.recipe.peft
    if peft is None:
        return True
    if not isinstance(peft, LoraSection):
        return False
    targets = one_item_safe(target_modules(peft.target_modules))
    out.data.update(use_peft=True, lora_r=peft.r, lora_alpha=peft.lora_alpha, lora_dropout=peft.lora_dropout,
                    lora_task_type=plan.task_type)
    if targets is not None:
        out.data["lora_target_modules"] = [targets] if isinstance(targets, str) else targets
    if targets != target_modules(peft.target_modules):
        out.notes.append("lora_target_modules: a one-item list is written as the regex PEFT's list matching means "
                         "(TRL's ModelConfig makes a one-item list a string, which PEFT reads as a full-match regex)")
    for key, name in (("modules_to_save", "lora_modules_to_save"), ("use_rslora", "use_rslora"),
                      ("use_dora", "use_dora"), ("target_parameters", "lora_target_parameters")):
        if getattr(peft, key, None):
            out.data[name] = getattr(peft, key)
    fields = type(peft).model_fields
    for key in sorted(peft.model_fields_set - CARRIED_LORA):
        if getattr(peft, key) not in (fields[key].default, {}, None):
            out.not_expressible[f"peft.{key}"] = "TRL's get_peft_config builds LoraConfig from r, alpha, dropout, " \
                                                 "targets, modules_to_save, rsLoRA and DoRA only"
    return True


def _local(path: str) -> dict[str, Any] | None:
    """A local data file as a DatasetConfig entry (TRL loads it with the `json` / `csv` / `parquet` builder)."""
    loader = LOCAL_LOADERS.get(Path(path).suffix)
    return {"path": loader, "data_files": path} if loader else None


def _entries(dataset: Any, out: Exported) -> list[dict[str, Any]]:
    """DatasetConfig entries for the recipe's data: its sources (a mixture) or its path(s); what a TRL entry cannot
    say about one (formats, renamed columns, sample caps) is listed."""
    sources = getattr(dataset, "sources", None) or [dataset]
    entries = []
    for i, source in enumerate(sources):
        where = f"dataset.sources.{i}" if source is not dataset else "dataset"
        paths = [source.path] if isinstance(source.path, str) else list(source.path or [])
        for path in paths:
            entry = _local(path) or {"path": path}
            for key in ("name", "split"):
                value = getattr(source, key, None)
                if value and value != "train":
                    entry[key] = value
            entries.append(entry)
        for key, why in (("columns", "TRL's CLI selects columns but does not rename them"),
                         ("max_samples", "TRL's CLI has no sample cap"),
                         ("format", "TRL's CLI reads TRL's standard columns only")):
            if getattr(source, key, None):
                out.not_expressible[f"{where}.{key}"] = why
    return entries


def _dataset(plan: Plan, out: Exported) -> None:
    dataset = plan.recipe.dataset
    entries = _entries(dataset, out)
    evaluation = dataset.eval
    fraction = evaluation is not None and evaluation.fraction is not None
    sliced = any("[" in str(entry.get("split", "")) for entry in entries)  # train[:90%]: a load_dataset split
    if len(entries) > 1 or "data_files" in entries[0] or fraction or sliced:
        out.data["datasets"] = entries  # DatasetConfig.split goes to load_dataset; dataset_train_split is a key
    else:
        keys = {"path": "dataset_name", "name": "dataset_config", "split": "dataset_train_split"}
        out.data.update({keys[k]: v for k, v in entries[0].items()})
    if fraction:
        out.data["test_split_size"] = evaluation.fraction
    elif evaluation is not None and evaluation.split is not None and "datasets" not in out.data \
            and "[" not in evaluation.split:
        out.data["dataset_test_split"] = evaluation.split  # a key of the loaded DatasetDict
    elif evaluation is not None:
        out.not_expressible["dataset.eval"] = "TRL's scripts evaluate on a split of the training dataset only: " \
                                              "evaluation is off in this config (eval_strategy: no)"
    if getattr(dataset, "interleave", None):
        out.not_expressible["dataset.interleave"] = "TRL's CLI concatenates a mixture (its `fraction` caps " \
                                                    "shares, it does not interleave)"


def _reward_funcs(names: list[str]) -> list[str]:
    from peftrun.recipe.defaults import SHIPPED_REWARDS

    return [f"peftrun.train.rewards.{n}" if n in SHIPPED_REWARDS else n.replace(":", ".") for n in names]


def _trainer(plan: Plan, out: Exported) -> None:
    out.data.update({k: v for k, v in plan.training_args.items()})
    rewards = getattr(plan.recipe.trainer, "reward_funcs", None)
    if rewards:  # GRPO / RLOO: their script arguments
        out.data["reward_funcs"] = _reward_funcs(list(rewards))
    output = plan.recipe.output
    if output.push_to_hub:  # private unless the recipe says otherwise, as peftrun pushes (transformers: public)
        out.data.update(push_to_hub=True, hub_model_id=output.hub_model_id, hub_private_repo=output.private)
    if output.save != "adapter":
        out.not_expressible["output.save"] = f"{output.save}: TRL's scripts save the adapter only"


def _launch(plan: Plan, out: Exported) -> None:
    launch = plan.recipe.launch
    if launch.accelerate_config:
        out.data["accelerate_config"] = launch.accelerate_config
        return
    processes = launch.num_processes if isinstance(launch.num_processes, int) else 1
    if launch.strategy == "ddp" and processes * launch.num_machines == 1:
        return
    if launch.strategy == "deepspeed":
        out.data["accelerate_config"] = f"zero{launch.zero_stage}"
        if launch.offload_optimizer or launch.offload_params:
            out.not_expressible["launch.offload_*"] = "TRL's zero presets offload nothing; give your own " \
                                                      "launch.accelerate_config"
    elif launch.strategy == "fsdp":
        out.data["accelerate_config"] = "fsdp1"
        out.notes.append("TRL's fsdp1 preset: full shard, transformer-layer wrapping, use_orig_params true, full "
                         "state dict (peftrun's FSDP launch: use_orig_params false, sharded checkpoints)")
        if launch.offload_params:
            out.not_expressible["launch.offload_params"] = "TRL's fsdp1 preset does not offload"
    else:
        out.data["accelerate_config"] = "multi_gpu"
    out.data["num_processes"] = processes
    if launch.num_machines > 1:
        out.not_expressible["launch.num_machines"] = "multi-node: give your own launch.accelerate_config"


def _refused(plan: Plan, path: str, message: str) -> RecipeError:
    return RecipeError(Problem(plan.recipe.where(path), path, f"cannot be exported: {message}"))


def export_trl(plan: Plan, beside: Path | None = None) -> Exported:
    """The TRL CLI config for a resolved plan; `beside`: the file it will be written to (files it names go next
    to it)."""
    if not TRAINERS[plan.trainer_type].trl_command:
        raise _refused(plan, "trainer.type", f"TRL's CLI has no `{plan.trainer_type}` command")
    out = Exported(plan.trainer_type)
    _model(plan, out, beside)
    _quantization(plan, out)
    if not _peft(plan, out):
        raise _refused(plan, "peft.method", f"TRL's CLI builds LoRA adapters only (get_peft_config), "
                                            f"not {plan.peft_method}")
    _dataset(plan, out)
    _trainer(plan, out)
    if "dataset.eval" in out.not_expressible:
        out.data["eval_strategy"] = "no"  # else TRL's script looks for a `test` split that is not there
    _launch(plan, out)
    return out
