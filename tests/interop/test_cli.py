"""`peftrun import` and `peftrun export trl` as commands: exit statuses, what is written where, detection stated,
no overwriting, refusals write nothing, and both stay light (no torch / trl imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.errors import NotCarried

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peftrun", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_everything_carried_exits_0_and_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "dpo.yaml"
    result = run("import", str(FIXTURES / "trl" / "dpo-8bit.sh"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "read as" not in result.stderr and "detected TRL (command line) from: trl dpo" in result.stderr
    assert result.stdout == ""
    assert run("validate", str(out)).returncode == 0
    assert "NOT CARRIED" not in out.read_text()


def test_written_with_something_not_carried_exits_9_and_lists_it(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    code = main(["import", str(FIXTURES / "axolotl" / "fsdp-unsupported.yml")])
    captured = capsys.readouterr()
    assert code == NotCarried.exit_code == 9
    assert captured.out.startswith("# Imported by `peftrun import` from the Axolotl YAML config")
    assert "#   - group_by_length: transformers 5 removed group_by_length" in captured.out
    assert "  NOT CARRIED group_by_length: transformers 5 removed group_by_length" in captured.err
    assert "detected Axolotl (YAML config) from: adapter, base_model" in captured.err


def test_an_existing_output_is_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "r.yaml"
    out.write_text("mine\n")
    source = str(FIXTURES / "trl" / "dpo-8bit.sh")
    result = run("import", source, "-o", str(out))
    assert result.returncode == 2 and out.read_text() == "mine\n"
    assert f"{out}: exists; pass --force to overwrite it" in result.stderr
    assert run("import", source, "-o", str(out), "--force").returncode == 0
    assert out.read_text().startswith("# Imported")


@pytest.mark.parametrize(("source", "message"), [
    ("llamafactory/ppo.yaml", "trainer.type: peftrun cannot run this LLaMA-Factory config: unknown value 'ppo'"),
    ("trl/missing.yaml", "trl/missing.yaml: no such file"),
])
def test_a_refusal_writes_nothing_and_says_why(source: str, message: str, tmp_path: Path) -> None:
    out = tmp_path / "r.yaml"
    result = run("import", str(FIXTURES / source), "-o", str(out))
    assert result.returncode == 2 and not out.exists()
    assert message in result.stderr


def test_undetectable_configs_ask_for_from(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 1.0e-4\n")
    result = run("import", str(config))
    assert result.returncode == 2
    assert "cannot tell which tool this config is for from its keys: give --from" in result.stderr
    forced = run("import", str(FIXTURES / "trl" / "sft-lora.yaml"), "--from", "trl")
    assert "read as TRL (YAML config, --from trl)" in forced.stderr


def test_export_writes_a_trl_config_and_lists_what_it_cannot_say(tmp_path: Path) -> None:
    out = tmp_path / "trl.yaml"
    result = run("export", "trl", "recipes/qlora-llama.yaml", "-o", str(out), "--gpu", "h100")
    assert result.returncode == 0, result.stderr
    assert f"run it with `trl sft --config {out}`" in result.stderr
    text = out.read_text()
    assert text.startswith("# TRL CLI config exported by `peftrun export trl` from recipes/qlora-llama.yaml")
    assert "\ndtype: bfloat16\n" in text and "use_cpu" not in text  # resolved for the H100, not this machine
    assert run("export", "trl", "recipes/qlora-llama.yaml", "-o", str(out)).returncode == 2


def test_export_exits_9_when_trl_cannot_say_something(tmp_path: Path) -> None:
    """The quickstart evaluates on its own file, which TRL's scripts cannot: evaluation is off there, and said."""
    result = run("export", "trl", "recipes/quickstart.yaml", "-o", str(tmp_path / "trl.yaml"))
    assert result.returncode == 9
    assert "not expressible in TRL's CLI: dataset.eval: TRL's scripts evaluate on a split" in result.stderr


PROGRAM = """
import contextlib, io, json, sys
from peftrun.cli import main
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes.append(main(["import", "tests/interop/fixtures/axolotl/qlora-chat.yml"]))
    codes.append(main(["import", "tests/interop/fixtures/torchtune/lora-alpaca.yaml"]))
    codes.append(main(["export", "trl", "recipes/qlora-llama.yaml", "--gpu", "h100"]))
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "transformers", "peft", "trl", "bitsandbytes",
                                                          "datasets", "accelerate"})
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_import_and_export_stay_light() -> None:
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["codes"][0] in (0, 9) and report["codes"][1:] == [9, 0]  # torchtune's alpaca prompt: listed
    assert report["heavy"] == []
