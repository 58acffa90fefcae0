"""Reload a run's base model with its adapter: merged full models and quick generations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftrun.errors import RunDirError
from peftrun.recipe.methods import merge_refusal
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import method_info
from peftrun.train.rundir import RESOLVED_RECIPE


def plan_of_run(run_dir: Path, trust_remote_code: bool = False) -> Plan:
    """The plan a run was trained with, from its recipe.resolved.yaml. A run directory may come from anyone:
    nothing in it switches on code (docs/trust.md); trust_remote_code is what the caller passes."""
    from peftrun.launch.preflight import probe_torch
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.resolver import resolve

    recipe_file = run_dir / RESOLVED_RECIPE
    if not recipe_file.is_file():
        raise RunDirError(f"{run_dir} is not a peftrun run directory (no {RESOLVED_RECIPE})")
    if not (run_dir / "adapter_config.json").is_file() and not (run_dir / "config.json").is_file():
        raise RunDirError(f"{run_dir} holds no saved adapter or model yet (did the run finish?)")
    switch = f"model.trust_remote_code={str(trust_remote_code).lower()}"
    return resolve(load_recipe(recipe_file, [switch]), probe_torch())


def load_tuned(run_dir: Path, quantized: bool = False, trust_remote_code: bool = False) -> tuple[Any, Any, Plan]:
    """(model with the run's adapter, tokenizer, plan). The base loads in full precision unless `quantized`;
    a model repository's code runs only when the caller passes `trust_remote_code`."""
    from peftrun.train.modeling import load_model, load_tokenizer

    plan = plan_of_run(run_dir, trust_remote_code)
    base_plan = plan if quantized else plan.with_sections(quantization=None)
    tokenizer = load_tokenizer(plan)
    if plan.recipe.peft is None:  # a full fine-tune: the run directory holds the whole model
        base_plan = base_plan.with_sections(model=plan.recipe.model.model_copy(update={
            "name_or_path": str(run_dir), "gguf_file": None, "revision": None}))
        return load_model(base_plan, tokenizer), tokenizer, plan
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_model(base_plan, tokenizer), str(run_dir))
    return model, tokenizer, plan


def merge_run(run_dir: Path, out_dir: Path, dtype: str | None = None, trust_remote_code: bool = False) -> Path:
    """Merge the run's adapter into a full-precision copy of its base and save it, in `dtype` (default: the
    run's model dtype), with the tokenizer and a model card; files get the permissions the umask gives."""
    import torch

    from peftrun.train.card import CARD, merged_card

    model, tokenizer, plan = load_tuned(run_dir, trust_remote_code=trust_remote_code)
    if plan.recipe.peft is None:
        raise RunDirError(f"{run_dir} is a full fine-tune: it is already a complete model")
    method = plan.recipe.peft.method
    reason = merge_refusal(method, bool(method_info(method)["prompt_learning"]))
    if reason:
        raise RunDirError(f"a {method} adapter cannot be merged into the model weights: {reason}")
    try:
        merged = model.merge_and_unload()
    except (ValueError, NotImplementedError, AttributeError) as exc:  # PEFT's own limits for this method / model
        raise RunDirError(f"PEFT cannot merge this {method} adapter: {exc}") from None
    dtype = dtype if dtype not in (None, "auto") else plan.recipe.model.dtype
    merged = merged.to(getattr(torch, str(dtype)))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / CARD).write_text(merged_card(plan, run_dir, str(dtype)))
    usual_permissions(out_dir)
    return out_dir


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else the usual 022."""
    try:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("Umask:"))
        return int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError):
        return 0o022


def usual_permissions(directory: Path) -> None:
    """Every file as a plain write would have made it (safetensors' temporary files are private: 0600)."""
    mode = 0o666 & ~_umask()
    for path in directory.rglob("*"):
        if path.is_file():
            path.chmod(mode)
