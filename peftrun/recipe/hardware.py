"""A description of the hardware a plan is resolved for, and its probe without torch (runs probe with torch: peftrun.launch.preflight.probe_torch)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from peftrun.errors import Problem, RecipeError


@dataclass(frozen=True)
class Hardware:
    cuda: bool = False
    bf16: bool = False  # the GPU computes in bfloat16 (compute capability >= 8.0)
    device_count: int = 0
    name: str = "cpu"
    memory_bytes: int | None = None  # per device (GPU memory, or the machine's RAM for the CPU); None: unknown
    nodes: int = 1  # machines, each with device_count GPUs

    def describe(self) -> str:
        if not self.cuda:
            return f"CPU only ({os.cpu_count()} cores)"
        machines = f"{self.nodes} nodes x " if self.nodes > 1 else ""
        return f"{machines}{self.device_count} x {self.name}" + (" (bf16)" if self.bf16 else "")


@dataclass(frozen=True)
class Topology:
    """The machines a command is asked about: `--gpu [Nx]NAME`, `--gpus N`, `--nodes N`, `--gpus-per-node G`."""

    gpu: str | None = None  # a GPU name or size, as --gpu takes it, without its count
    gpus_per_node: int | None = None  # None: as many as the machine has
    nodes: int = 1


_COUNTED = re.compile(r"^\s*(\d+)\s*[x*]\s*(.+)$", re.IGNORECASE)


def _at_least_one(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise RecipeError(Problem(flag, "", f"{flag} must be at least 1, not {value}"))


def topology(gpu: str | None = None, gpus: int | None = None, nodes: int | None = None,
             gpus_per_node: int | None = None) -> Topology:
    """The machines from the command line, for every command that takes these flags (plan, explain, validate,
    submit): `8x h100` counts the GPUs of one node; `--gpus-per-node` is the same number and `--gpus` its older
    name; two counts that disagree are an error."""
    for flag, value in (("--gpus", gpus), ("--nodes", nodes), ("--gpus-per-node", gpus_per_node)):
        _at_least_one(flag, value)
    counted = _COUNTED.match(gpu or "")
    named = int(counted.group(1)) if counted else None
    _at_least_one("--gpu", named)
    given = {flag: value for flag, value in (("--gpu", named), ("--gpus-per-node", gpus_per_node), ("--gpus", gpus))
             if value is not None}
    if len(set(given.values())) > 1:
        shown = ", ".join(f"{flag} {value}" for flag, value in given.items())
        raise RecipeError(Problem("--gpus-per-node", "", f"GPU counts disagree ({shown}): give the GPUs per node once"))
    name = counted.group(2).strip() if counted else gpu
    return Topology(name, next(iter(given.values()), None), nodes or 1)


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
