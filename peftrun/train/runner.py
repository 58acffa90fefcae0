"""`peftrun RECIPE`: load data and model, train with TRL, and leave a complete run directory.

The runner owns every side effect of a run; the steps it calls (data, modeling,
builders, rundir, card) are small functions of the Plan.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.errors import DataError, Interrupted, LaunchError, TrainingError, scrub
from peftrun.hub import offline_scope
from peftrun.launch import launcher as launch
from peftrun.launch import ranks
from peftrun.launch.runmode import RunMode
from peftrun.recipe.extras import EXTRAS
from peftrun.recipe.launch_command import describe
from peftrun.recipe.launch_rules import is_sharded
from peftrun.recipe.plan import Plan
from peftrun.recipe.trainer_types import TRAINERS
from peftrun.train import checkpoints, guards, lock, progress, rundir, sharded, throughput


def plan_for(recipe: Any, overrides: Iterable[str] = ()) -> Plan:
    """Load (unless given a Recipe), resolve for the hardware torch sees, and check this machine can run
    it. The hub's offline mode is settled after a bad recipe has failed, before anything may touch the hub."""
    from peftrun.launch.preflight import probe_torch
    from peftrun.hub import ensure_offline_mode
    from peftrun.recipe.loader import load_recipe
    from peftrun.launch.preflight import preflight
    from peftrun.recipe.schema import Recipe
    from peftrun.recipe.validation import checked_plan

    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    ensure_offline_mode()
    plan = checked_plan(loaded, probe_torch())
    preflight(plan)
    return plan


class _StopOnSignal:
    """SIGINT / SIGTERM / SIGUSR1 (a Slurm job before its time limit) ask the trainer to save a checkpoint and
    stop after the current step; every rank of a multi-process run stops at the same step when any rank was
    signalled (a rank that stopped alone would leave the others waiting in a collective)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopOnSignal":
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            signal.signal(signum, self._previous[signum])
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        stop = self

        class StopCallback(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                if sharded.on_any_rank(stop.requested, args.device):
                    stop.requested = True
                    control.should_save = True
                    control.should_training_stop = True
                return control

        return StopCallback()


def _trainable_snapshot(model: Any) -> dict[str, Any]:
    """Copies of the trainable tensors (a sample of at most 16 for large full fine-tunes)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if sum(p.numel() for _, p in params) > 50_000_000:
        step = max(1, len(params) // 16)
        params = params[::step]
    return {n: p.detach().to("cpu", copy=True) for n, p in params}


@dataclass
class _Start:
    """The trainable weights and the step training starts from: the fresh ones, or after --resume the
    checkpoint's (transformers loads it inside train(), before on_train_begin)."""

    weights: dict[str, Any]
    step: int = 0

    def callback(self) -> Any:
        from transformers import TrainerCallback

        start = self

        class RecordStart(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
                start.weights, start.step = _trainable_snapshot(model), state.global_step

        return RecordStart()


def _check_learned(model: Any, start: _Start, state: Any, trainer_type: str) -> None:
    """A run whose trainable parameters never changed from where it started is a failure, not a success."""
    import torch

    now = {n: p.detach().cpu() for n, p in model.named_parameters() if n in start.weights}
    changed = any(not torch.equal(start.weights[n], now[n]) for n in start.weights if n in now)
    norms = [e["grad_norm"] for e in state.log_history if "grad_norm" in e and e.get("step", 0) > start.step]
    if not changed or (norms and all(float(n) == 0.0 for n in norms)):
        causes = "a zero learning rate or labels that are all masked"
        if TRAINERS[trainer_type].rewards:
            causes += ", or rewards that never differ within a group of generations (every advantage is then zero)"
        origin = f"those of the checkpoint it resumed from (step {start.step})" if start.step else "their initialization"
        raise TrainingError(
            f"training finished but the trainable parameters never changed, so the saved weights would equal {origin}; "
            f"usual causes: {causes}"
        )


def _count_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def _final_losses(log_history: list[dict[str, Any]]) -> dict[str, float | None]:
    train = [e["loss"] for e in log_history if "loss" in e]
    evals = [e["eval_loss"] for e in log_history if "eval_loss" in e]
    summary = next((e for e in reversed(log_history) if "train_loss" in e), {})
    return {
        "final_train_loss": train[-1] if train else summary.get("train_loss"),
        "final_eval_loss": evals[-1] if evals else None,
    }


def train(plan: Plan, model: Any = None, *, mode: RunMode = RunMode.FRESH, verbose: bool = False) -> Path:
    """Run a resolved plan end to end, its run directory locked to this run; returns the run directory."""
    run_dir = Path(plan.output_dir)
    with progress.quiet(verbose), guards.write_failures(plan), lock.holding(run_dir, main=ranks.rank() == 0):
        done = rundir.finished(run_dir, rundir.resolved_recipe_text(plan)) if mode is RunMode.RESUME else None
        if done is not None:
            print(done)
            return run_dir
        return _train_locked(plan, model, mode)


def _train_locked(plan: Plan, model: Any, mode: RunMode) -> Path:
    from peftrun.builders import build_training_args
    from peftrun.train.publish import check_can_push
    from peftrun.train.rewards import resolve_rewards

    started, start_clock = rundir.now(), time.perf_counter()
    rewards = resolve_rewards(plan.recipe) if TRAINERS[plan.trainer_type].rewards else None
    if plan.recipe.output.push_to_hub:
        check_can_push(str(plan.recipe.output.hub_model_id))
    args = build_training_args(plan)
    run_dir, label, text = Path(plan.output_dir), str(plan.recipe.path or "RECIPE"), rundir.resolved_recipe_text(plan)
    main = ranks.rank() == 0
    resume_from = rundir.check(run_dir, label, text, mode) if main else None
    data, tokenizer, model, teacher, estimate, checks = _load_inputs(plan, model, args)
    if main:
        rundir.claim(run_dir, text, mode)
        progress.open_log(run_dir)
    resume_from = sharded.sync_run_dir(run_dir, mode, resume_from)  # ranks wait for rank 0, resume alike
    extras = {"reward_funcs": rewards, "teacher_model": teacher}
    trainer, result, before = _train(plan, args, model, tokenizer, data, extras, resume_from, estimate)
    sharded.save_on_every_rank(plan, trainer, run_dir, before)  # FSDP / ZeRO-3 gather on every rank
    if trainer.is_world_process_zero():
        _finish(plan, trainer, tokenizer, data, result, started, time.perf_counter() - start_clock, estimate, checks)
    return run_dir


def _load_inputs(plan: Plan, model: Any, args: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Data first (a wrong dataset fails in seconds), then the memory plan (it checks the recipe's module names
    on the model's skeleton before any weight loads), the tokenizer, the data checks (docs/data.md), the
    distillation teacher (its tokenizer checked first) and the model (unless given).
    Returns (data, tokenizer, model, teacher, estimate, data check report)."""
    from peftrun.data import load_training_data
    from peftrun.data.checks import check_before_training
    from peftrun.data.templates import fit_embeddings, require_template
    from peftrun.plan.estimate import estimate_or_warn
    from peftrun.train.modeling import load_model, load_tokenizer, planned_on_source
    from peftrun.train.teacher import load_teacher

    data = load_training_data(plan)
    estimate = estimate_or_warn(planned_on_source(plan)) if model is None else None  # GGUF: its converted config
    tokenizer = load_tokenizer(plan)
    require_template(tokenizer, plan, data.conversational)
    checks, local_rank = check_before_training(plan, data, tokenizer, args), args.local_process_index
    teacher = load_teacher(plan, tokenizer, local_rank) if plan.trainer_type == "distillation" else None
    if model is None:
        model = load_model(plan, tokenizer, local_rank)
    else:
        fit_embeddings(model, tokenizer)  # a caller's model meets the recipe's added tokens
    return data, tokenizer, model, teacher, estimate, checks


def _train(plan: Plan, args: Any, model: Any, tokenizer: Any, data: Any, extras: Mapping[str, Any],
           resume_from: Path | None, estimate: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Build the TRL trainer and train; returns (trainer, train result, trainable weights before)."""
    from peftrun.builders.trainer import build_trainer
    from peftrun.train.banner import banner_for
    from peftrun.train import init_data_pass, weight_conversion
    from peftrun.train.modeling import expose_output_bias, keep_full_layers_at_model_dtype

    stopper = _StopOnSignal()
    init_data_pass.before_wrap(plan, model, data, tokenizer)  # CorDA (EVA runs after the wrap)
    trainer = build_trainer(plan, args, model, tokenizer, data, extras,
                            callbacks=[stopper.callback(), checkpoints.completion_callback()])
    batching = throughput.install(plan, trainer)  # what trainer.throughput chose; tokens per second in the logs
    if trainer.train_dataset is not None and len(trainer.train_dataset) == 0:
        raise DataError("no training example is left after tokenization: each lost its trained tokens to "
                        "truncation at trainer.max_length; raise it (`peftrun data RECIPE` shows the lengths)")
    progress.attach(trainer, banner_for(plan, data, estimate, batching.name))
    expose_output_bias(trainer.model)
    init_data_pass.after_wrap(plan, trainer, data, tokenizer)
    guards.watch_non_finite(plan, trainer)
    if trainer.is_world_process_zero():
        weight_conversion.save_initial(plan, trainer.model)
        guards.check_free_space(plan, trainer)
    if plan.recipe.quantization is not None:
        keep_full_layers_at_model_dtype(trainer.model, plan.recipe.model.dtype)
    before = _trainable_snapshot(trainer.model)
    start = _Start(before)
    if resume_from is not None and not is_sharded(plan.recipe.launch):
        trainer.add_callback(start.callback())
    with stopper:
        result = checkpoints.train_or_reload(trainer, resume_from)
    if stopper.requested:
        trainer.save_state()
        raise Interrupted(
            f"stopped at step {trainer.state.global_step}; the checkpoint in {plan.output_dir} resumes with "
            f"`peftrun {plan.recipe.path or 'RECIPE'} --resume`"
        )
    if not is_sharded(plan.recipe.launch):  # sharded runs check the saved adapter instead (sharded.py)
        _check_learned(trainer.model, start, trainer.state, plan.trainer_type)
    return trainer, result, before


def _finish(plan: Plan, trainer: Any, tokenizer: Any, data: Any, result: Any, started: str, wall: float,
            estimate: Any = None, checks: Any = None) -> None:
    """Save the adapter, tokenizer, card, plot, merged model (if asked) and manifest."""
    from peftrun.train import weight_conversion
    from peftrun.train.card import model_card
    from peftrun.train.merge import usual_permissions
    from peftrun.train.plot import plot_losses
    from peftrun.train.summary import print_summary

    run_dir = Path(plan.output_dir)
    if not sharded.saves_on_every_rank():  # several processes: every rank saved it in train()
        weight_conversion.save_adapter(plan, trainer, run_dir)
    tokenizer.save_pretrained(str(run_dir))
    history = trainer.state.log_history
    trainable, total = _count_parameters(trainer.model)
    summary = {
        "steps": trainer.state.global_step,
        **_final_losses(history),
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0), 2),
        "wall_time_s": round(wall, 2),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "tokens_per_s": progress.tokens_per_s(trainer),
        **throughput.record(trainer),
    }
    plot = plot_losses(history, run_dir / "loss.png", plan.recipe.name)
    merged = None
    if plan.recipe.output.save in ("merged", "both") and plan.recipe.peft is not None:
        from peftrun.train.merge import merge_run

        merged = merge_run(run_dir, run_dir / "merged", trust_remote_code=plan.recipe.model.trust_remote_code)
    (run_dir / "README.md").write_text(scrub(model_card(plan, summary)))
    manifest = _manifest(plan, data, summary, started, merged)
    manifest["data_checks"] = checks.manifest() if checks is not None else None
    if estimate is not None:
        from peftrun.plan.measured import memory_record

        manifest["memory"] = memory_record(estimate)
    usual_permissions(run_dir)
    rundir.write_manifest(run_dir, manifest)
    if plan.recipe.output.push_to_hub:
        from peftrun.train.publish import push_run

        push_run(run_dir, str(plan.recipe.output.hub_model_id), plan.recipe.output.private)
    print_summary(plan, summary, {"model card": run_dir / "README.md", "log": progress.log_path(),
                                  "loss plot": plot or f"not drawn: {EXTRAS['plot'].install}",
                                  "manifest": run_dir / rundir.MANIFEST, "merged": merged}, manifest.get("memory"))


def _manifest(plan: Plan, data: Any, summary: dict[str, Any], started: str, merged: Path | None) -> dict[str, Any]:
    from peftrun.train.generation import system_prompt
    from peftrun.train.modeling import model_source

    return {
        "peftrun_manifest": 1,
        "versions": rundir.library_versions(),
        "recipe": {"path": str(plan.recipe.path) if plan.recipe.path else None, **rundir.git_state(plan.recipe.path),
                   "bases": plan.recipe.bases},
        "model": {"name_or_path": plan.recipe.model.name_or_path, "gguf_file": plan.recipe.model.gguf_file,
                  "loaded_from": model_source(plan)[0]},
        "data": {**data.fingerprint(), "system_prompt": system_prompt(data.train)},
        "seed": plan.recipe.seed,
        "hardware": {"description": plan.hardware.describe(), "cuda": plan.hardware.cuda, **rundir.host()},
        "world_size": ranks.world_size(),
        "launch": plan.recipe.launch.model_dump(mode="json"),
        "started": started,
        "ended": rundir.now(),
        "training": summary,
        "merged_model": str(merged) if merged else None,
    }


def run(recipe: Any, overrides: Iterable[str] = (), model: Any = None, *, mode: RunMode | str = RunMode.FRESH,
        verbose: bool = False) -> Path:
    """Python API: train a recipe (path, mapping or Recipe); `model` may be one the caller built; `mode`
    "fresh" (the default), "resume" or "overwrite" says how the run uses its directory. The hub's offline
    mode is decided for this call only: the caller's process is left as it was."""
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.schema import Recipe

    mode = RunMode.of(mode)
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)  # a bad recipe fails first
    with offline_scope():
        plan = plan_for(loaded)
        if launch.needs_launch(plan):
            raise LaunchError(
                f"the recipe asks for {describe(plan)}, which this one Python process cannot run: use "
                "`peftrun RECIPE` (it starts the processes) or start this script with `accelerate launch`"
            )
        return train(plan, model, mode=mode, verbose=verbose)


def print_dry_run(plan: Plan) -> None:
    """Print the plan and the exact library objects a run would build."""
    from peftrun.builders import build_peft_config, build_quantization_config, build_training_args
    from peftrun.plan import report
    from peftrun.plan.estimate import estimate_or_warn
    from peftrun.recipe import explain
    from peftrun.train.data_length import longest_example, sized_for

    print(explain.as_table(plan))
    # a wrong module name fails the dry run; a model it cannot read leaves a warning
    estimate = estimate_or_warn(plan, sized_for(plan, longest_example(plan)))
    print("\nplan for this machine:")
    print(report.as_text(estimate) if estimate is not None else "  not available (see the warning)")
    print("\nobjects:")
    for obj in (build_peft_config(plan), build_quantization_config(plan), build_training_args(plan)):
        if obj is not None:
            print(f"  {type(obj).__module__}.{type(obj).__name__}")
    print(f"\ndry run: nothing was loaded or written (the run would go to {plan.output_dir})")


@dataclass
class _LaunchRunDir:
    """The run directory checks the launching process makes before the launcher starts (launch.RunDirChecks)."""

    plan: Plan
    mode: RunMode

    @property
    def manifest(self) -> Path:
        return Path(self.plan.output_dir) / rundir.MANIFEST

    @contextmanager
    def hold(self) -> Iterator[launch.HeldLock]:
        with lock.holding(Path(self.plan.output_dir)) as held:
            yield launch.HeldLock({lock.HOLDER_ENV: str(os.getpid())}, (held.fd,) if held and held.fd is not None else ())

    def check_before_launch(self) -> str | None:
        plan, text = self.plan, rundir.resolved_recipe_text(self.plan)
        if self.mode is RunMode.RESUME and (done := rundir.finished(Path(plan.output_dir), text)) is not None:
            return done
        rundir.check(Path(plan.output_dir), str(plan.recipe.path or "RECIPE"), text, self.mode)
        from peftrun.plan.estimate import check_targets

        check_targets(plan)
        return None


def run_from_cli(recipe: str, overrides: list[str], *, mode: RunMode, dry_run: bool, verbose: bool = False) -> int:
    plan = plan_for(recipe, overrides)
    # a multi-process recipe re-runs this command under accelerate's launcher
    plan, launched = launch.from_cli(plan, recipe, overrides, mode=mode, dry_run=dry_run,
                                     run_dir=_LaunchRunDir(plan, mode))
    if launched is not None:
        return launched
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if dry_run:
        print_dry_run(plan)
        return 0
    train(plan, mode=mode, verbose=verbose)
    return 0
