"""The start banner: one screen saying what a run will do, printed when training begins.

Each value is the resolved Plan's (the same that `peftrun explain` shows), or what the trainer computed
from it (steps, parameter counts); a value that came from a base recipe, a rule or a default says so
in brackets, so that nothing a recipe did not write goes unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun import __version__
from peftrun.recipe.plan import Plan


@dataclass(frozen=True)
class RunFacts:
    """What is known once the data, the model and the trainer exist."""

    train_rows: int
    eval_rows: int | None
    trainable: int
    total: int
    max_steps: int
    epochs: float
    world_size: int
    loaded_from: str
    memory_gb: float | None  # the plan's expected peak per device
    device_gb: float | None
    log: Path | None
    batching: str | None = None  # what trainer.throughput chose at run time (padded, padding_free, packed)


def origin(plan: Plan, path: str) -> str:
    """` [base NAME]`, ` [rule NAME]` or ` [default]` for a value the recipe file did not write, else ``."""
    source = plan.source(path)
    if source.startswith("rule "):
        return f" [rule {source[5:].split(':')[0]}]"
    for base in plan.recipe.bases:
        if source.startswith(f"{base['base']}:"):
            return f" [base {base['base']}]"
    return " [default]" if source.startswith("default") else ""


def number(value: Any) -> str:
    """16.0 -> 16; 0.0005 -> 5e-04; other values as they are."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def _arg(plan: Plan, args: Any, key: str, unit: str = "") -> str:
    """The TRL config's value of `key` (with `unit`), marked with where it came from."""
    return number(getattr(args, key)) + unit + origin(plan, f"trainer.{key}")


def _method(plan: Plan, facts: RunFacts) -> str:
    peft = plan.recipe.peft
    share = facts.trainable / max(facts.total, 1)
    counted = f"{facts.trainable:,} trainable of {facts.total:,} parameters ({share:.2%})"
    if peft is None:
        return f"full fine-tuning: {counted}"
    shape = f" r={peft.r} alpha={peft.lora_alpha} on {peft.target_modules}" if peft.method == "lora" else ""
    return f"{peft.method}{shape}: {counted}"


def _model(plan: Plan, facts: RunFacts) -> str:
    model = plan.recipe.model
    name = model.name_or_path + (f" ({model.gguf_file})" if model.gguf_file else "")
    where = f", loads from {facts.loaded_from}" if facts.loaded_from != model.name_or_path else ""
    return f"{name}{where}; {model.dtype}{origin(plan, 'model.dtype')}"


def _schedule(plan: Plan, args: Any) -> str:
    strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
    if strategy == "no":
        evaluation = "no evaluation"
    else:
        evaluation = (f"eval every {_arg(plan, args, 'eval_steps', ' steps')}" if strategy == "steps" else "eval every epoch")
        evaluation += ", and at the start" if args.eval_on_start else ""
    save = str(getattr(args.save_strategy, "value", args.save_strategy))
    saving = f"checkpoint every {_arg(plan, args, 'save_steps', ' steps')}" if save == "steps" else f"checkpoints: {save}"
    return f"{evaluation}; {saving}; log every {_arg(plan, args, 'logging_steps', ' steps')}"


def _precision(plan: Plan, args: Any) -> str:
    mixed = "bf16" if args.bf16 else "fp16" if args.fp16 else "no mixed precision"
    quant = plan.recipe.quantization
    bits = f", base in {quant.bits}-bit" if quant is not None else ""
    return f"{mixed}{origin(plan, 'trainer.bf16')}{bits} on {plan.hardware.describe()}"


def _batching(plan: Plan, args: Any, chosen: str | None) -> str:
    """`padding-free batches (throughput auto [rule ...])`: what the run batches with and why (the manifest has
    the whole reason); TRL's own flags where peftrun chose nothing."""
    rule = getattr(plan.recipe.trainer, "throughput", None)
    if chosen is not None and rule is not None:
        return f"{chosen.replace('_', '-')} batches (throughput {rule}{origin(plan, 'trainer.throughput')})"
    return ", ".join(f"{key} {_arg(plan, args, key)}" for key in ("packing", "padding_free") if hasattr(args, key))


def _steps(plan: Plan, facts: RunFacts) -> str:
    """`32 (1 epoch [base peftrun:defaults] of 256 rows)`, or `6 [max_steps] (...)` when max_steps decides."""
    epochs = f"{number(float(facts.epochs))} epoch{'s' if facts.epochs != 1 else ''}"
    if plan.training_args.get("max_steps", -1) > 0:
        return f"{facts.max_steps:,}{origin(plan, 'trainer.max_steps')} (max_steps; {epochs} of {facts.train_rows:,} rows)"
    return f"{facts.max_steps:,} ({epochs}{origin(plan, 'trainer.num_train_epochs')} of {facts.train_rows:,} rows)"


def _memory(facts: RunFacts) -> str:
    if facts.memory_gb is None:
        return "no plan (see the warning above)"
    device = f" of {facts.device_gb:.1f} GB" if facts.device_gb else ""
    return f"planned peak {facts.memory_gb:.2f} GB per device{device}"


def render(plan: Plan, args: Any, facts: RunFacts) -> str:
    """The banner for a plan, its TRL config `args` and the facts of the run."""
    recipe = plan.recipe
    bases = ", ".join(b["base"] for b in recipe.bases)
    label = f"{recipe.path or 'a mapping'}" + (f", extends {bases}" if bases else "")
    eval_rows = f", {facts.eval_rows:,} eval rows" if facts.eval_rows else ", no eval split"
    per_device, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
    effective = per_device * accumulation * facts.world_size
    processes = "process" if facts.world_size == 1 else "processes"
    log = f" (log: {facts.log})" if facts.log else ""
    rows = [
        ("model", _model(plan, facts)),
        ("method", _method(plan, facts)),
        ("data", f"{facts.train_rows:,} train rows{eval_rows}"),
        ("batch", f"{per_device}{origin(plan, 'trainer.per_device_train_batch_size')} per device x {accumulation}"
                  f"{origin(plan, 'trainer.gradient_accumulation_steps')} accumulation x {facts.world_size} "
                  f"{processes} = {effective} rows per step"),
        ("steps", f"{_steps(plan, facts)}; learning rate {_arg(plan, args, 'learning_rate')}"),
        ("schedule", _schedule(plan, args)),
        ("precision", _precision(plan, args)),
        ("batching", _batching(plan, args, facts.batching)),
        ("memory", _memory(facts)),
        ("output", f"{plan.output_dir}{log}"),
    ]
    head = f"peftrun {__version__}: {recipe.name} ({label}), {plan.trainer_type}"
    return "\n".join([head, *(f"  {key:<10} {value}" for key, value in rows if value), ""])


def banner_for(plan: Plan, data: Any, estimate: Any, batching: str | None = None) -> Any:
    """The banner as a function of what the trainer knows when training begins: (args, state, model) -> text."""
    from peftrun.launch import ranks
    from peftrun.train import progress
    from peftrun.train.modeling import model_source

    rows = data.fingerprint()

    def banner(args: Any, state: Any, model: Any) -> str:
        params = list(model.parameters())
        device = estimate.device_memory if estimate is not None else None
        facts = RunFacts(
            train_rows=rows["train_rows"], eval_rows=rows.get("eval_rows"),
            trainable=sum(p.numel() for p in params if p.requires_grad), total=sum(p.numel() for p in params),
            max_steps=state.max_steps, epochs=state.num_train_epochs, world_size=ranks.world_size(),
            loaded_from=model_source(plan)[0],
            memory_gb=estimate.memory.band["expected"] / 1e9 if estimate is not None else None,
            device_gb=device / 1e9 if device else None, log=progress.log_path(), batching=batching)
        return render(plan, args, facts)

    return banner
