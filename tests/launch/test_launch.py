"""Beyond one process: the `launch:` section, the launcher command, refusals, and two real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from peftrun.launch import launcher as launch
from peftrun.launch import ranks
from peftrun.recipe import launch_command
from peftrun.launch.preflight import preflight
from peftrun.cli import main
from peftrun.errors import LaunchError, RecipeError
from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import resolve

ROOT = Path(__file__).resolve().parents[2]
GPU8 = Hardware(cuda=True, bf16=True, device_count=8, name="H100")
GPU2 = Hardware(cuda=True, bf16=True, device_count=2, name="A100")
WORKER_ENV = ("WORLD_SIZE", "LOCAL_RANK", "RANK", ranks.EXPECTED_WORLD_SIZE, "ACCELERATE_USE_FSDP",
              "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE")


@pytest.fixture(autouse=True)
def _not_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests play the launching process, whatever environment pytest runs in."""
    for key in WORKER_ENV:
        monkeypatch.delenv(key, raising=False)


def data(launch_section: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "t",
        "model": {"name_or_path": "org/model"},
        "peft": {"method": "lora"},
        "trainer": {"type": "sft"},
        "dataset": {"path": "org/data"},
    }
    out.update(sections)
    if launch_section is not None:
        out["launch"] = launch_section
    return out


def plan_of(launch_section: dict[str, Any] | None = None, hardware: Hardware = CPU, overrides: tuple[str, ...] = (),
            **sections: Any) -> Plan:
    return resolve(load_recipe(data(launch_section, **sections), list(overrides)), hardware)


def refusals(launch_section: dict[str, Any] | None, hardware: Hardware = CPU, **sections: Any) -> dict[str, str]:
    with pytest.raises(RecipeError) as caught:
        plan_of(launch_section, hardware, **sections)
    return {p.path: p.message for p in caught.value.problems}


def parsed(argv: list[str]) -> Any:
    """accelerate's own parser reads the command peftrun builds (every option exists, values parse)."""
    from accelerate.commands.launch import launch_command_parser

    assert argv[1:3] == ["-m", launch_command.LAUNCHER_MODULE]
    return launch_command_parser().parse_args(argv[3:])


# --- the launcher command ------------------------------------------------------------------------

def test_one_process_runs_without_a_launcher() -> None:
    plan = plan_of()
    assert not launch.needs_launch(plan)
    assert launch_command.command(plan) is None
    assert launch_command.explain_lines(plan)[-1] == "launch: one process (no launcher)"


def test_ddp_command_runs_this_same_peftrun_command_in_every_process() -> None:
    plan = plan_of({"num_processes": 2})
    argv = launch_command.launch_argv(plan, ["run", "r.yaml", "launch.num_processes=2", "--overwrite"], python="py")
    assert argv[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert argv[-6:] == ["-m", "peftrun", "run", "r.yaml", "launch.num_processes=2", "--overwrite"]
    args = parsed(argv)
    # --multi_gpu, never --cpu: `accelerate launch --cpu --num_processes 2` silently runs ONE process
    assert args.multi_gpu and not args.cpu and not args.use_fsdp and not args.use_deepspeed
    assert (args.num_processes, args.num_machines, args.mixed_precision) == (2, 1, "no")
    assert args.module and args.training_script == "peftrun"
    assert args.training_script_args == ["run", "r.yaml", "launch.num_processes=2", "--overwrite"]


def test_fsdp_command_is_peft_fsdp_qlora_setup() -> None:
    plan = plan_of({"strategy": "fsdp", "num_processes": 8, "offload_params": True}, GPU8,
                   quantization={"bits": 4})
    args = parsed(launch_command.launch_argv(plan, ["run", "r.yaml"]))
    assert args.use_fsdp and not args.multi_gpu
    assert args.num_processes == 8 and args.mixed_precision == "bf16"
    assert args.fsdp_use_orig_params == "false"  # the trainer wraps LoRA layers apart from the frozen base
    assert args.fsdp_cpu_ram_efficient_loading == "true" and args.fsdp_sync_module_states == "true"
    assert args.fsdp_state_dict_type == "SHARDED_STATE_DICT"  # the final adapter is gathered FULL_STATE_DICT
    assert args.fsdp_offload_params == "true"
    assert args.fsdp_auto_wrap_policy == "TRANSFORMER_BASED_WRAP"


def test_zero3_command_saves_a_whole_16bit_adapter() -> None:
    plan = plan_of({"strategy": "deepspeed", "zero_stage": 3, "num_processes": 4, "offload_optimizer": True,
                    "offload_params": True}, GPU8, quantization={"bits": 4})
    args = parsed(launch_command.launch_argv(plan, ["run", "r.yaml"]))
    assert args.use_deepspeed and args.zero_stage == 3 and args.num_processes == 4
    assert args.zero3_save_16bit_model == "true" and args.zero3_init_flag == "true"
    assert (args.offload_optimizer_device, args.offload_param_device) == ("cpu", "cpu")
    assert args.gradient_accumulation_steps is None  # left to the trainer ("auto"), so they cannot disagree


def test_zero2_command_offloads_only_the_optimizer() -> None:
    plan = plan_of({"strategy": "deepspeed", "num_processes": 2}, GPU8)
    args = parsed(launch_command.launch_argv(plan, ["run", "r.yaml"]))
    assert args.zero_stage == 2 and args.offload_param_device == "none"
    assert args.zero3_save_16bit_model is None


def test_multi_node_counts_processes_per_machine() -> None:
    plan = plan_of({"num_processes": 8, "num_machines": 2, "machine_rank": 1, "main_process_ip": "10.0.0.1",
                    "main_process_port": 29600}, GPU8)
    args = parsed(launch_command.launch_argv(plan, ["run", "r.yaml"]))
    assert (args.num_processes, args.num_machines, args.machine_rank) == (16, 2, 1)  # accelerate wants the total
    assert (args.main_process_ip, args.main_process_port) == ("10.0.0.1", 29600)
    assert launch_command.describe(plan) == "16 processes, DDP on 2 machines (this is machine 1)"


def test_accelerate_config_file_decides_what_the_recipe_leaves_out() -> None:
    plan = plan_of({"accelerate_config": "team.yaml", "strategy": "fsdp"}, GPU8)
    args = parsed(launch_command.launch_argv(plan, ["run", "r.yaml"]))
    assert args.config_file == "team.yaml"
    assert not args.use_fsdp and args.num_processes is None  # the file says
    written = parsed(launch_command.launch_argv(plan_of({"accelerate_config": "team.yaml", "num_processes": 4}, GPU8), ["run"]))
    assert written.num_processes == 4  # what the recipe writes wins over the file


def test_explain_shows_the_exact_command_with_the_overrides(write_recipe, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recipe(data())
    assert main(["explain", str(path), "launch.num_processes=2", "trainer.max_steps=3"]) == 0
    out = capsys.readouterr().out
    assert "launch: 2 processes, DDP" in out
    command = out.split("launch: 2 processes, DDP\n")[1].splitlines()[0].strip().split()
    assert command[1:] == ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
                           "1", "--dynamo_backend", "no", "--mixed_precision", "no", "-m", "peftrun", "run", str(path),
                           *command[-2:]]
    assert sorted(command[-2:]) == ["launch.num_processes=2", "trainer.max_steps=3"]  # from the source map
    assert main(["explain", str(path), "launch.num_processes=2", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["launch"]
    assert shown["argv"][-3:] == ["run", str(path), "launch.num_processes=2"]


def test_dry_run_shows_the_command_and_launches_nothing(in_tmp: Path, write_recipe,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recipe(data())
    assert main(["run", str(path), "launch.num_processes=2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-m accelerate.commands.launch --multi_gpu --num_processes 2" in out
    assert not (in_tmp / "runs").exists()


# --- the resolver: rules with provenance ------------------------------------------------------------

def test_auto_is_every_visible_gpu_and_one_process_without_a_gpu() -> None:
    gpu = plan_of({"num_processes": "auto"}, GPU8)
    assert gpu.recipe.launch.num_processes == 8
    assert gpu.source("launch.num_processes").endswith("-> 8 (8 GPUs visible)")
    cpu = plan_of({"num_processes": "auto"}, CPU)
    assert cpu.recipe.launch.num_processes == 1
    assert cpu.source("launch.num_processes").endswith("-> 1 (no GPU visible)")
    assert not launch.needs_launch(cpu)


def test_mixed_precision_follows_the_trainer() -> None:
    assert plan_of({"num_processes": 2}, GPU8).recipe.launch.mixed_precision == "bf16"
    plan = plan_of({"num_processes": 2}, CPU)
    assert plan.recipe.launch.mixed_precision == "no"
    assert plan.source("launch.mixed_precision").startswith("rule launch-precision")
    problems = refusals({"num_processes": 2, "mixed_precision": "fp16"}, GPU8)
    assert "disagrees with the trainer's precision (bf16" in problems["launch.mixed_precision"]


def test_sharded_4bit_storage_follows_the_compute_dtype() -> None:
    for section in ({"strategy": "fsdp"}, {"strategy": "deepspeed", "zero_stage": 3}):
        plan = plan_of({**section, "num_processes": 2}, GPU8, quantization={"bits": 4})
        assert plan.recipe.quantization.quant_storage == "bfloat16"
        assert plan.source("quantization.quant_storage").startswith("rule quant-storage")
    ddp = plan_of({"num_processes": 2}, GPU8, quantization={"bits": 4})
    assert ddp.recipe.quantization.quant_storage is None  # DDP: each process loads its own copy, uint8 as usual
    zero2 = plan_of({"strategy": "deepspeed", "num_processes": 2}, GPU8, quantization={"bits": 4})
    assert zero2.recipe.quantization.quant_storage is None


def test_replica_ranks_log_errors_only() -> None:
    plan = plan_of({"num_processes": 2})
    assert plan.training_args["log_level_replica"] == "error"
    assert plan.source("trainer.log_level_replica").startswith("rule launch-logs")
    assert "log_level_replica" not in plan_of().training_args
    mine = plan_of({"num_processes": 2}, trainer={"type": "sft", "log_level_replica": "info"})
    assert mine.training_args["log_level_replica"] == "info"


# --- the resolver: what the libraries cannot do (refused on any machine, so `validate` catches it) -------

def test_8bit_weights_cannot_be_sharded() -> None:
    problems = refusals({"strategy": "fsdp", "num_processes": 2}, GPU8, quantization={"bits": 8})
    assert "8-bit weights cannot be sharded by FSDP" in problems["launch.strategy"]
    problems = refusals({"strategy": "deepspeed", "zero_stage": 3, "num_processes": 2}, GPU8, quantization={"bits": 8})
    assert "cannot be sharded by DeepSpeed ZeRO-3" in problems["launch.zero_stage"]
    plan_of({"strategy": "deepspeed", "zero_stage": 2, "num_processes": 2}, GPU8, quantization={"bits": 8})
    plan_of({"num_processes": 2}, GPU8, quantization={"bits": 8})  # DDP: one copy per process


def test_sharded_4bit_storage_must_be_a_float_of_the_model_dtype() -> None:
    problems = refusals({"strategy": "fsdp", "num_processes": 2}, GPU8, quantization={"bits": 4, "quant_storage": "uint8"})
    assert "floating-point tensors only" in problems["quantization.quant_storage"]
    problems = refusals({"strategy": "fsdp", "num_processes": 2}, GPU8,
                        quantization={"bits": 4, "compute_dtype": "float32"})
    assert "set model.dtype: float32" in problems["quantization.quant_storage"]


def test_sharded_runs_save_the_adapter_only() -> None:
    for section in ({"strategy": "fsdp"}, {"strategy": "deepspeed", "zero_stage": 3}):
        problems = refusals({**section, "num_processes": 2}, GPU8, output={"save": "merged"})
        assert "peftrun merge RUN_DIR" in problems["output.save"]
        problems = refusals({**section, "num_processes": 2}, GPU8,
                            output={"push_to_hub": True, "hub_model_id": "me/x"})
        assert "pushes from rank 0 alone" in problems["output.push_to_hub"]
    plan_of({"num_processes": 2}, GPU8, output={"save": "both"})  # DDP: rank 0 merges from the saved adapter


def test_multi_node_needs_the_main_address_and_a_rank_in_range() -> None:
    problems = refusals({"num_processes": 8, "num_machines": 2, "machine_rank": 2}, GPU8)
    assert "set launch.main_process_ip" in problems["launch.main_process_ip"]
    assert "out of range for num_machines 2" in problems["launch.machine_rank"]


def test_other_launch_refusals() -> None:
    assert "at least 1" in refusals({"num_processes": 0})["launch.num_processes"]
    problems = refusals({"strategy": "deepspeed", "zero_stage": 2, "offload_params": True}, GPU8)
    assert "ZeRO-3 only" in problems["launch.offload_params"]
    problems = refusals({"strategy": "fsdp", "accelerate_config": "team.yaml", "offload_params": True}, GPU8)
    assert "the file decides" in problems["launch.offload_params"]


# --- checks on the machine the run starts on --------------------------------------------------------

def preflight_problems(plan: Plan) -> dict[str, str]:
    with pytest.raises(RecipeError) as caught:
        preflight(plan)
    found: dict[str, str] = {}
    for problem in caught.value.problems:
        found[problem.path] = "\n".join(filter(None, (found.get(problem.path), problem.message)))
    return found


def test_gpu_strategies_are_refused_on_a_cpu_only_machine_when_the_run_starts() -> None:
    for section in ({"strategy": "fsdp"}, {"strategy": "deepspeed", "zero_stage": 3}):
        plan = plan_of({**section, "num_processes": 2}, CPU, quantization={"bits": 4})  # validate accepts it
        assert "needs CUDA GPUs and this machine has none" in preflight_problems(plan)["launch.strategy"]
    preflight(plan_of({"num_processes": 2}, CPU))  # DDP runs on CPUs (gloo)


def test_more_processes_than_gpus_is_refused() -> None:
    problems = preflight_problems(plan_of({"num_processes": 4}, GPU2))
    assert "has 2 visible GPUs (A100)" in problems["launch.num_processes"]
    preflight(plan_of({"num_processes": 8}, GPU8))


def test_deepspeed_must_be_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    problems = preflight_problems(plan_of({"strategy": "deepspeed", "num_processes": 2}, GPU8))
    assert "pip install deepspeed" in problems["launch.strategy"]


def test_accelerate_config_file_must_exist_and_agree(in_tmp: Path) -> None:
    problems = preflight_problems(plan_of({"accelerate_config": "team.yaml", "num_processes": 2}, GPU8))
    assert "accelerate config file team.yaml not found" in problems["launch.accelerate_config"]
    (in_tmp / "team.yaml").write_text("distributed_type: DEEPSPEED\ndeepspeed_config: {zero_stage: 3}\nnum_machines: 2\n")
    problems = preflight_problems(plan_of({"accelerate_config": "team.yaml", "num_processes": 2}, GPU8))
    assert "disagrees with team.yaml (distributed_type DEEPSPEED)" in problems["launch.strategy"]
    assert "set launch.num_machines: 2" in problems["launch.num_machines"]
    problems = preflight_problems(plan_of({"accelerate_config": "team.yaml", "strategy": "deepspeed", "num_machines": 2,
                                           "main_process_ip": "h"}, GPU8))
    assert "set launch.zero_stage: 3" in problems["launch.zero_stage"]
    (in_tmp / "team.yaml").write_text("distributed_type: FSDP\nnum_processes: 4\n")
    plan = plan_of({"accelerate_config": "team.yaml", "strategy": "fsdp"}, GPU8)
    preflight(plan)
    assert launch.expected_world_size(plan) == 4


DORA_8BIT = {"peft": {"method": "lora", "use_dora": True}, "quantization": {"bits": 8}}


def test_dora_on_an_8bit_base_is_refused_when_a_cpu_run_starts(write_recipe, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_of(None, CPU, **DORA_8BIT)  # resolves: validate accepts it on a laptop
    assert preflight_problems(plan) == {"peft.use_dora": (
        "DoRA on an 8-bit base fails on the CPU (bitsandbytes' CPU 8-bit matmul loses its scales when DoRA "
        "dequantizes the weight): use bits: 4 or plain LoRA, or run on a CUDA GPU")}
    preflight(plan_of(None, GPU2, **DORA_8BIT))
    path = write_recipe(data(**DORA_8BIT))
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "--dry-run"]) == 2
    assert f"{path}:6:3: peft.use_dora: DoRA on an 8-bit base fails on the CPU" in capsys.readouterr().err


def test_the_launching_process_refuses_before_starting_anything(in_tmp: Path, write_recipe,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recipe(data())
    assert main(["run", str(path), "launch.num_processes=2", "launch.strategy=fsdp"]) == 2
    assert "FSDP needs CUDA GPUs" in capsys.readouterr().err
    (in_tmp / "runs" / "t").mkdir(parents=True)
    (in_tmp / "runs" / "t" / "notes.txt").write_text("mine")
    assert main(["run", str(path), "launch.num_processes=2"]) == 5  # occupied run directory, exit 5 as in one process
    assert "runs/t is not empty" in capsys.readouterr().err


# --- inside a launched process ------------------------------------------------------------------------

def test_worker_detection() -> None:
    assert ranks.is_worker({"WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert ranks.is_worker({"LOCAL_RANK": "0"})
    assert not ranks.is_worker({"PATH": "/bin"})
    plan = plan_of({"num_processes": 2})
    assert launch.needs_launch(plan, {})
    assert not launch.needs_launch(plan, {"WORLD_SIZE": "2", "LOCAL_RANK": "0", "RANK": "0"})  # never launches twice


def test_a_worker_fails_loudly_when_the_launcher_did_not_start_what_was_asked() -> None:
    plan = plan_of({"num_processes": 2})
    with pytest.raises(LaunchError, match="without torch.distributed"):  # the `accelerate launch --cpu` trap
        ranks.check_worker(plan, {ranks.EXPECTED_WORLD_SIZE: "2"})
    with pytest.raises(LaunchError, match="asked the launcher for 2 processes but this process is one of 1"):
        ranks.check_worker(plan, {ranks.EXPECTED_WORLD_SIZE: "2", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
    with pytest.raises(LaunchError, match="launcher runs fsdp"):
        ranks.check_worker(plan, {"WORLD_SIZE": "2", "LOCAL_RANK": "0", "ACCELERATE_USE_FSDP": "true"})
    ranks.check_worker(plan, {ranks.EXPECTED_WORLD_SIZE: "2", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    ranks.check_worker(plan_of(), {"WORLD_SIZE": "4", "LOCAL_RANK": "0"})  # launched by the user: their world


def test_the_launching_process_checks_the_manifest(tmp_path: Path) -> None:
    import time

    started = time.time()
    with pytest.raises(LaunchError, match="holds no new manifest.json"):
        launch.check_manifest(tmp_path / "manifest.json", 2, started)
    (tmp_path / "manifest.json").write_text(json.dumps({"world_size": 1}))
    with pytest.raises(LaunchError, match="asked for 2 processes but the run reports world size 1"):
        launch.check_manifest(tmp_path / "manifest.json", 2, started)
    (tmp_path / "manifest.json").write_text(json.dumps({"world_size": 2}))
    launch.check_manifest(tmp_path / "manifest.json", 2, started)


# --- the shipped multi-GPU recipes -------------------------------------------------------------------------

MULTI_GPU = sorted((ROOT / "recipes" / "multi-gpu").glob("*.yaml"))


@pytest.mark.parametrize("path", MULTI_GPU, ids=lambda p: p.stem)
def test_multi_gpu_recipes_resolve_here_and_on_a_gpu_node(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert path.read_text().startswith("# yaml-language-server: $schema=../../schemas/recipe.schema.json\n")
    monkeypatch.chdir(ROOT)
    recipe = load_recipe(path.relative_to(ROOT))
    resolve(recipe, CPU)  # `peftrun validate recipes/` on a CPU-only machine
    plan = resolve(recipe, GPU8)
    assert launch.needs_launch(plan)
    args = parsed(launch_command.launch_argv(plan, launch_command.script_args_for(plan)))
    if plan.recipe.launch.strategy == "deepspeed":
        from importlib.util import find_spec

        if find_spec("deepspeed") is None:
            assert "pip install deepspeed" in preflight_problems(plan)["launch.strategy"]
            return
    preflight(plan)
    assert args.num_processes == 8 * plan.recipe.launch.num_machines
    if plan.recipe.quantization is not None:
        assert plan.recipe.quantization.quant_storage == plan.recipe.model.dtype == "bfloat16"


# --- two real processes on this machine -------------------------------------------------------------------

def test_two_processes_train_one_qlora_adapter(in_tmp: Path, tiny_model_dir: Path, data_dir: Path, write_recipe) -> None:
    """`peftrun RECIPE launch.num_processes=2` on a CPU-only machine: two gloo processes, one run directory."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    path = write_recipe({
        "name": "t",
        "model": {"name_or_path": str(tiny_model_dir)},
        "quantization": {"bits": 4},
        "peft": {"method": "lora", "r": 4, "lora_alpha": 8},
        "trainer": {"type": "sft", "max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1,
                    "report_to": "none", "activation_checkpointing": False},
        "dataset": {"path": str(data_dir / "sft.jsonl")},
        "output": {"dir": "runs/t"},
    })
    env = {k: v for k, v in os.environ.items() if k not in WORKER_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "peftrun", str(path), "launch.num_processes=2"], cwd=in_tmp, env=env,
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = in_tmp / "runs" / "t"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert manifest["launch"]["num_processes"] == 2 and manifest["launch"]["strategy"] == "ddp"
    assert manifest["training"]["steps"] == 2
    # one run, one output: written once, summary printed once, no per-rank leftovers
    assert result.stdout.count("done: t") == 1
    assert sorted(p.name for p in run_dir.glob("adapter_model*")) == ["adapter_model.safetensors"]
    assert (run_dir / "checkpoint-2" / "peftrun-checkpoint.json").is_file()  # complete: marked after both ranks saved
    assert not list(run_dir.glob("*rank*")) and not list(in_tmp.glob("runs/t?*"))
    assert "--multi_gpu --num_processes 2" in result.stderr  # the command it ran, shown
    # the adapter reloads with plain PEFT onto the full-precision base and changes its output
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    with torch.no_grad():
        before = base(ids).logits
        after = PeftModel.from_pretrained(base, str(run_dir))(ids).logits
    assert not before.allclose(after)


def _rank_pid(mark: str, rank: int) -> int:
    """The pid of the launched process of `rank` among those started with PEFTRUN_TEST_MARK=`mark`."""
    wanted = {f"PEFTRUN_TEST_MARK={mark}".encode(), f"RANK={rank}".encode()}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= env:
            return int(proc.name)
    raise AssertionError(f"no process of rank {rank}")


def test_a_stop_signal_on_one_rank_stops_every_rank_at_the_same_step(in_tmp: Path, tiny_model_dir: Path,
                                                                     data_dir: Path, write_recipe) -> None:
    """A scheduler may signal one task before the others: the run still stops as one, at one step, with one
    complete checkpoint (a rank stopping alone left the other waiting in its next all-reduce)."""
    path = write_recipe({
        "name": "t", "model": {"name_or_path": str(tiny_model_dir)}, "peft": {"method": "lora", "r": 4},
        "trainer": {"type": "sft", "max_steps": 100000, "per_device_train_batch_size": 2, "logging_steps": 1,
                    "report_to": "none", "activation_checkpointing": False},
        "dataset": {"path": str(data_dir / "sft.jsonl")}, "output": {"dir": "runs/t"},
    })
    mark = f"{os.getpid()}-{in_tmp.name}"
    env = {**{k: v for k, v in os.environ.items() if k not in WORKER_ENV}, "PEFTRUN_TEST_MARK": mark}
    process = subprocess.Popen([sys.executable, "-m", "peftrun", str(path), "launch.num_processes=2"], cwd=in_tmp,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log, deadline = in_tmp / "runs/t/train.log", time.monotonic() + 300
    while not (log.is_file() and re.search(r"^step +\d+/", log.read_text(), re.MULTILINE)):  # both ranks train
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:] if process.stderr else ""
        time.sleep(0.5)
    os.kill(_rank_pid(mark, 1), signal.SIGUSR1)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the ranks did not stop together: one waits for the other")
    stopped = re.search(r"stopped at step (\d+)", err)
    assert process.returncode != 0 and stopped, err[-3000:]
    assert (in_tmp / f"runs/t/checkpoint-{stopped.group(1)}" / "peftrun-checkpoint.json").is_file()
    assert not (in_tmp / "runs/t/manifest.json").exists()


def test_the_python_api_refuses_to_train_a_multi_process_plan_alone(in_tmp: Path, tiny_model_dir: Path,
                                                                    data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import peftrun
    from tests.train.test_runner import LORA, recipe

    for key in WORKER_ENV:
        monkeypatch.delenv(key, raising=False)
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA, launch={"num_processes": 2})
    with pytest.raises(LaunchError, match=r"the recipe asks for 2 processes, DDP, which this one Python process cannot run"):
        peftrun.run(data)
    assert not (in_tmp / "runs").exists()
