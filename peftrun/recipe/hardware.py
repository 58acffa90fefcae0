"""A description of the hardware a plan is resolved for, and its probe without torch (runs probe with torch: peftrun.launch.preflight.probe_torch)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    cuda: bool = False
    bf16: bool = False  # the GPU computes in bfloat16 (compute capability >= 8.0)
    device_count: int = 0
    name: str = "cpu"

    def describe(self) -> str:
        if not self.cuda:
            return f"CPU only ({os.cpu_count()} cores)"
        return f"{self.device_count} x {self.name}" + (" (bf16)" if self.bf16 else "")


CPU = Hardware()


def probe_light() -> Hardware:
    """Hardware from nvidia-smi, without importing torch (for validate / explain)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1") or not shutil.which("nvidia-smi"):
        return CPU
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return CPU
    gpus = [line.split(",") for line in out.strip().splitlines() if "," in line]
    if not gpus:
        return CPU
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = len(visible.split(",")) if visible else len(gpus)
    name, cap = gpus[0][0].strip(), gpus[0][1].strip()
    return Hardware(cuda=True, bf16=float(cap or 0) >= 8.0, device_count=count, name=name)
