"""peftrun as a user installs it: build the wheel, install it with no extras into a fresh virtualenv
(torch first, from constraints.txt), and from an empty folder outside the source tree run `init --list`,
`init`, `validate`, `explain`, `schema --check` and a tiny training run. Exit 1 on the first failure.

    python scripts/wheel_check.py          # run by `make wheel-check` and .ci/run
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = """\
model: {{name_or_path: {model}, dtype: float32}}
peft: {{method: lora, r: 4, target_modules: all-linear}}
trainer: {{type: sft, max_steps: 3, per_device_train_batch_size: 4, gradient_accumulation_steps: 1,
          logging_steps: 1, learning_rate: 1.0e-3}}
dataset: {{path: {data}}}
"""


def sh(*cmd: str | Path, cwd: Path | None = None) -> str:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, text=True, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"wheel check failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def install(work: Path) -> Path:
    """The wheel in a fresh virtualenv; returns its bin/ folder."""
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", ROOT, "-w", work / "dist")
    wheel = next((work / "dist").glob("peftrun-*.whl"))
    sh(sys.executable, "-m", "venv", work / "venv")
    pip = work / "venv" / "bin" / "pip"
    sh(pip, "install", "-q", "-c", ROOT / "constraints.txt", "torch")
    sh(pip, "install", "-q", "-c", ROOT / "constraints.txt", wheel)
    return work / "venv" / "bin"


def tiny_model(python: Path, where: Path) -> None:
    """A tiny random model, tokenizer and data built by the tests' own helpers (tests/tiny.py)."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import tiny; d = Path(sys.argv[2]); "
            "tiny.build_tokenizer(d / 'model'); tiny.build_model(d / 'model'); "
            "tiny.write_jsonl(d / 'data' / 'sft.jsonl', tiny.sft_rows())")
    sh(python, "-c", code, ROOT / "tests", where)


def main() -> int:
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="peftrun-wheel-") as tmp:
        work = Path(tmp)
        bin_dir = install(work)
        user = work / "user"
        user.mkdir()
        peftrun = bin_dir / "peftrun"
        listing = sh(peftrun, "init", "--list", cwd=user)
        assert "sft-lora-qwen2" in listing and "quickstart" in listing, listing
        sh(peftrun, "init", "sft-lora-qwen2", cwd=user)
        sh(peftrun, "validate", "sft-lora-qwen2.yaml", cwd=user)
        sh(peftrun, "explain", "sft-lora-qwen2.yaml", cwd=user)
        sh(peftrun, "schema", "--check", cwd=user)
        tiny_model(bin_dir / "python", user)
        (user / "tiny.yaml").write_text(TINY_RECIPE.format(model=user / "model", data=user / "data" / "sft.jsonl"))
        sh(peftrun, "tiny.yaml", cwd=user)
        assert (user / "runs" / "tiny" / "adapter_model.safetensors").is_file(), "the tiny run saved no adapter"
        assert not (user / "runs" / "tiny" / "loss.png").exists(), "no plot without the plot extra"
    print("wheel check passed: init, validate, explain, schema --check and a tiny run from the installed wheel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
