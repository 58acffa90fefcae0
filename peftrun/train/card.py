"""The model card (README.md) a run leaves next to its adapter, with the front matter the Hugging Face
Hub reads (written by huggingface_hub's own ModelCardData, evaluation as `model-index` results)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from peftrun.hub import is_local
from peftrun.recipe.objects import peft_class, peft_kwargs
from peftrun.recipe.plan import Plan
from peftrun.recipe.trainer_types import TRAINERS

CARD = "README.md"
ROUND = 4  # decimals of the losses and rates a card shows


def _hyperparameters(plan: Plan) -> list[str]:
    lines = [f"- trainer: TRL {plan.trainer_type}", f"- learning rate: {plan.training_args['learning_rate']:.3g}"]
    peft = plan.recipe.peft
    if peft is not None and peft.method == "lora":
        variant = " + ".join(v for v, on in (("DoRA", peft.use_dora), ("rsLoRA", peft.use_rslora)) if on)
        lines.append(f"- LoRA r={peft.r}, alpha={peft.lora_alpha}, dropout={peft.lora_dropout}, "
                     f"targets={peft.target_modules}" + (f" ({variant})" if variant else ""))
    elif peft is not None and peft.method == "prompt_tuning":
        lines.append(f"- prompt tuning: {peft.num_virtual_tokens} virtual tokens, init {peft.prompt_tuning_init}")
    elif peft is not None:
        settings = ", ".join(f"{k}={v}" for k, v in peft_kwargs(plan).items() if k != "task_type")
        lines.append(f"- {peft.method} ({peft_class(plan)}): {settings or 'PEFT defaults'}")
    quant = plan.recipe.quantization
    if quant is not None:
        lines.append(f"- base quantized to {quant.bits}-bit" + (f" {quant.quant_type}" if quant.bits == 4 else ""))
    for key in ("num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length"):
        if key in plan.training_args:
            lines.append(f"- {key}: {plan.training_args[key]}")
    return lines


def _how_to_load(plan: Plan) -> list[str]:
    """Loading code with plain PEFT (or transformers for a full fine-tune)."""
    reward = TRAINERS[plan.trainer_type].sequence_classification
    head = "SequenceClassification" if reward else "CausalLM"
    extra = ", num_labels=1" if reward else ""
    model = plan.recipe.model
    if plan.recipe.peft is None:
        code = (f"from transformers import AutoModelFor{head}\n\n"
                f"model = AutoModelFor{head}.from_pretrained({plan.output_dir!r}{extra})")
        return ["```python", code, "```"]
    gguf = f", gguf_file={model.gguf_file!r}" if model.gguf_file else ""
    code = (f"from peft import PeftModel\nfrom transformers import AutoModelFor{head}\n\n"
            f"base = AutoModelFor{head}.from_pretrained({model.name_or_path!r}{gguf}{extra})\n"
            f"model = PeftModel.from_pretrained(base, {plan.output_dir!r})")
    lines = ["```python", code, "```", "", "or in one line, with the base `adapter_config.json` names:", "",
             "```python", f"from peft import AutoPeftModelFor{head}\n\n"
             f"model = AutoPeftModelFor{head}.from_pretrained({plan.output_dir!r}{extra})", "```"]
    if model.gguf_file:
        lines += ["", "(`adapter_config.json` names the float copy of the GGUF base in peftrun's local cache: "
                  "elsewhere, use the first form.)"]
    return lines


def base_license(plan: Plan) -> str | None:
    """The base model's license where it says: a local base's own card, or a GGUF file's `general.license`."""
    model = plan.recipe.model
    if not is_local(model.name_or_path):
        return None
    base = Path(model.name_or_path).expanduser()
    if model.gguf_file:
        try:
            from gguf import GGUFReader

            field = GGUFReader(str(base / model.gguf_file)).get_field("general.license")
            return field.contents() if field is not None else None
        except Exception:  # noqa: BLE001 - a license we cannot read is a license we do not state
            return None
    if (base / CARD).is_file():
        from huggingface_hub import metadata_load

        license_ = (metadata_load(base / CARD) or {}).get("license")
        return str(license_) if license_ else None
    return None


def rounded(value: Any) -> Any:
    return round(value, ROUND) if isinstance(value, float) else value


def _sources(plan: Plan) -> list[str]:
    return [p for _, s in plan.recipe.dataset.all_sources() for p in ([s.path] if isinstance(s.path, str) else s.path)]


def _eval_results(plan: Plan, summary: dict[str, Any], evaluation: dict[str, Any] | None) -> list[Any]:
    """model-index entries: the eval loss at the end of training, and `peftrun eval`'s figures."""
    from huggingface_hub import EvalResult

    task = _task(plan)
    where = evaluation.get("data") if evaluation else None
    dataset = where or (plan.recipe.dataset.eval.path if plan.recipe.dataset.eval and plan.recipe.dataset.eval.path
                        else f"{plan.recipe.name} eval split")
    metrics: list[tuple[str, str, Any]] = []
    if summary.get("final_eval_loss") is not None:
        metrics.append(("loss", "eval loss at the end of training", summary["final_eval_loss"]))
    if evaluation:
        metrics += [("loss", "completion loss (peftrun eval)", evaluation["tuned"]["loss"]),
                    ("exact_match", "exact match (peftrun eval)", evaluation["tuned"]["exact_match"])]
    return [EvalResult(task_type=task, dataset_type=str(dataset), dataset_name=str(dataset), metric_type=kind,
                       metric_name=name, metric_value=rounded(float(value))) for kind, name, value in metrics]


def front_matter(plan: Plan, summary: dict[str, Any], evaluation: dict[str, Any] | None = None,
                 merged: bool = False) -> str:
    """The card's YAML front matter, as huggingface_hub writes it (`merged`: for the merged model)."""
    from huggingface_hub import ModelCardData

    recipe = plan.recipe
    hub_base = None if is_local(recipe.model.name_or_path) else recipe.model.name_or_path
    method = recipe.peft.method if recipe.peft else "full-fine-tuning"
    results = _eval_results(plan, summary, evaluation)
    relation = "merge" if merged else "adapter" if recipe.peft else "finetune"
    data = ModelCardData(
        base_model=hub_base, base_model_relation=relation,
        library_name="peft" if recipe.peft and not merged else "transformers",
        pipeline_tag=_task(plan),
        tags=["peftrun", "trl", plan.trainer_type, method], license=base_license(plan),
        datasets=[p for p in _sources(plan) if not is_local(p)] or None,
        model_name=recipe.name if results else None, eval_results=results or None,
    )
    return data.to_yaml()


def _results(summary: dict[str, Any], evaluation: dict[str, Any] | None) -> list[str]:
    lines = [f"- {k}: {rounded(v):,}" if isinstance(v, int) else f"- {k}: {rounded(v)}"
             for k, v in summary.items() if v is not None]
    if evaluation:
        lines += ["", f"`peftrun eval` on {evaluation['n']} held-out examples ({evaluation.get('data') or 'the eval split'}):",
                  "", "| | base | tuned |", "|---|---|---|",
                  *(f"| {label} | {evaluation['base'][key]:.{digits}f} | {evaluation['tuned'][key]:.{digits}f} |"
                    for label, key, digits in (("completion loss", "loss", 4), ("exact match", "exact_match", 2))),
                  "", f"The examples the tuned model gets wrong, with both models' outputs: `{evaluation['failures_file']}`."]
    return lines


def merged_card(plan: Plan, run_dir: Path, dtype: str) -> str:
    """README.md of a merged model: the base with the run's adapter merged in, loadable with transformers."""
    head = "SequenceClassification" if TRAINERS[plan.trainer_type].sequence_classification else "CausalLM"
    return "\n".join([
        "---", front_matter(plan, {}, merged=True).rstrip(), "---",
        f"# {plan.recipe.name} (merged)",
        "",
        f"{plan.recipe.model.name_or_path} with the {plan.peft_method} adapter of the peftrun run `{run_dir}` merged "
        f"into its weights, saved in {dtype}. The run's own card has its recipe, data and results.",
        "",
        "```python",
        f"from transformers import AutoModelFor{head}\n\nmodel = AutoModelFor{head}.from_pretrained(\"DIR\")",
        "```",
        "",
    ])


def model_card(plan: Plan, summary: dict[str, Any], evaluation: dict[str, Any] | None = None,
               recipe_text: str | None = None) -> str:
    """README.md for a run: front matter, what was trained, the loss plot, results, the recipe's hash, loading."""
    from peftrun.train.rundir import RESOLVED_RECIPE, resolved_recipe_text

    recipe = plan.recipe
    base = recipe.model.name_or_path + (f" ({recipe.model.gguf_file})" if recipe.model.gguf_file else "")
    method = recipe.peft.method if recipe.peft else "full fine-tuning"
    digest = hashlib.sha256((recipe_text or resolved_recipe_text(plan)).encode()).hexdigest()
    return "\n".join([
        "---", front_matter(plan, summary, evaluation).rstrip(), "---",
        f"# {recipe.name}",
        "",
        f"Fine-tuned with peftrun from the recipe `{RESOLVED_RECIPE}` in this folder (sha256 `{digest}`).",
        "",
        f"- base model: {base}",
        f"- method: {method}",
        f"- data: {'; '.join(_sources(plan))} (split {recipe.dataset.split})",
        f"- chat template: {recipe.model.chat_template or 'that of the base tokenizer'} (saved with the tokenizer)",
        *_hyperparameters(plan),
        "",
        "## Training loss",
        "",
        f"![training loss of {recipe.name}](loss.png)",
        "",
        "## Results",
        "",
        *_results(summary, evaluation),
        "",
        "## How to load",
        "",
        *_how_to_load(plan),
        "",
        f"Or: `peftrun generate {plan.output_dir} --prompt \"...\"`.",
        "",
    ])


def _task(plan: Plan) -> str:
    """The hub's task of the trained model: a scalar head scores text, a language model generates it."""
    return "text-classification" if TRAINERS[plan.trainer_type].sequence_classification else "text-generation"
