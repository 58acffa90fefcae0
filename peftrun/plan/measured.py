"""What a run measured next to what the plan estimated (the manifest's `memory` entry): every run checks
the estimator, figure against the same figure. CUDA: torch's peak allocated bytes against the plan's live
tensors, its peak reserved bytes against the plan's reserved figure; CPU: the process's peak RSS against the
expected total."""

from __future__ import annotations

import resource
import sys
from typing import Any

from peftrun.plan.estimate import Estimate, summary


def peak_bytes() -> dict[str, int]:
    import torch

    if torch.cuda.is_available():
        return {"cuda_max_allocated": torch.cuda.max_memory_allocated(), "cuda_max_reserved": torch.cuda.max_memory_reserved()}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss": rss if sys.platform == "darwin" else rss * 1024}


PAIRS = {"cuda_max_reserved": "reserved", "cuda_max_allocated": "live"}


def _error(planned: int, peak: int) -> float | None:
    return round((planned - peak) / peak, 3) if peak else None


def memory_record(estimate: Estimate) -> dict[str, Any]:
    measured = peak_bytes()
    figures = estimate.memory.figures
    if "peak_rss" in measured:
        errors = {"peak_rss": _error(estimate.memory.band["expected"], measured["peak_rss"])}
    else:
        errors = {name: _error(figures[figure], measured[name]) for name, figure in PAIRS.items()}
    return {**summary(estimate), "measured_gb": {k: round(v / 1e9, 3) for k, v in measured.items()},
            "error": next(iter(errors.values())), "errors": errors}
