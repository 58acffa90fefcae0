"""`peftrun eval` keeps what it measured: results and the examples the tuned model gets wrong are written
into the run directory, and the manifest and the model card carry them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peftrun.train.card import CARD, model_card
from peftrun.train.durable import write_atomic
from peftrun.train.rundir import MANIFEST, RESOLVED_RECIPE, write_manifest

EVAL_FILE = "eval.json"
FAILURES_FILE = "eval_failures.jsonl"


def keep(run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write eval.json and eval_failures.jsonl, add the results to the manifest (`evaluation`) and rewrite the
    card with them; returns the manifest's entry."""
    from peftrun.train.merge import plan_of_run

    entry = {key: value for key, value in result.items() if key != "failures"}
    entry["failures_file"] = FAILURES_FILE
    write_atomic(run_dir / FAILURES_FILE, "".join(json.dumps(f) + "\n" for f in result.get("failures", [])))
    write_atomic(run_dir / EVAL_FILE, json.dumps(entry, indent=2) + "\n")
    manifest = json.loads((run_dir / MANIFEST).read_text())
    manifest["evaluation"] = entry
    card = model_card(plan_of_run(run_dir), manifest.get("training", {}), entry,
                      recipe_text=(run_dir / RESOLVED_RECIPE).read_text())
    write_atomic(run_dir / CARD, card)
    write_manifest(run_dir, manifest)
    return entry
