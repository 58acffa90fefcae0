"""What a run measured next to what the plan estimated (the manifest's `memory` entry): every run checks
the estimator. CUDA: torch's peak allocated and reserved bytes; CPU: the process's peak RSS."""

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


def memory_record(estimate: Estimate) -> dict[str, Any]:
    measured = peak_bytes()
    peak = measured.get("cuda_max_reserved", measured.get("peak_rss", 0))
    expected = estimate.memory.band["expected"]
    return {**summary(estimate), "measured_gb": {k: round(v / 1e9, 3) for k, v in measured.items()},
            "error": round((expected - peak) / peak, 3) if peak else None}
