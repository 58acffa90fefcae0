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
    memory_bytes: int | None = None  # per device (GPU memory, or the machine's RAM for the CPU); None: unknown

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
            ["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"],
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
    memory = int(float(gpus[0][2]) * 2**20) if len(gpus[0]) > 2 and gpus[0][2].strip() else None
    return Hardware(cuda=True, bf16=float(cap or 0) >= 8.0, device_count=count, name=name, memory_bytes=memory)


def ram_bytes() -> int | None:
    """This machine's physical memory (what a CPU run can use)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
