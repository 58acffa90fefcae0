"""`peftrun sweep`: one worker's loop over the sweep's trials, then the sweep's report.

Every start of `peftrun sweep SWEEP.yaml` is a worker: it takes the next trial (one cut short first, then a
new one while the budget lasts), runs it and records it, until none is left. Several workers on one sweep
directory (processes on one machine, or the tasks of a cluster's array job on a shared file system) share
the work without running a trial twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftrun.errors import TrainingError
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.sweep import SweepFile
from peftrun.sweep import report
from peftrun.sweep.study import SweepDir, next_trial, open_study
from peftrun.sweep.trial import record, run_trial


def run_sweep(sweep: SweepFile, hardware: Hardware, trials: int | None = None) -> Path:
    """Run trials until the budget is spent; print the table, write the plot and the best recipe."""
    where = SweepDir(sweep.directory)
    study = open_study(sweep, where)
    while (chosen := next_trial(study, where, sweep.section, trials)) is not None:
        try:
            verb = "resuming" if chosen.resumed else "starting"
            values = ", ".join(f"{k}={v}" for k, v in chosen.params.items())
            print(f"{verb} trial {chosen.trial.number}: {values}", flush=True)
            outcome = run_trial(sweep, where, chosen, hardware)
            record(study, chosen, outcome)
            shown = f" {sweep.section.metric.name} {outcome.value:.6g}" if outcome.value is not None else ""
            print(f"trial {chosen.trial.number}: {outcome.status}{shown} {outcome.attrs.get('note', '')}", flush=True)
        finally:
            chosen.release()
    return _report(sweep, where, study)


def _report(sweep: SweepFile, where: SweepDir, study: Any) -> Path:
    table = report.rows(study)
    print()
    print(report.as_table(table, list(sweep.section.params), sweep.section.metric.name))
    plot = report.plot(table, sweep, where.plot)
    best = report.best_row(table, sweep.section.metric.goal)
    if best is None:
        raise TrainingError(f"no trial of the sweep completed (table above; logs in {where.root / 'logs'})")
    path = report.write_best(best, sweep, where)
    print(f"\nbest: trial {best['trial']} ({sweep.section.metric.name} {best['value']:.6g}) in {best['run_dir']}")
    print(f"  best recipe  {path} (re-run: peftrun {path})")
    if plot is not None:
        print(f"  plot         {plot}")
    return where.root
