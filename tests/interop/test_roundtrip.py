"""Export to TRL, import back: every shipped recipe resolves to the same LoRA, quantization and trainer values
(light: neither direction imports TRL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun import load_recipe, resolve
from peftrun.errors import RecipeError
from peftrun.interop.export_trl import export_trl
from peftrun.recipe.trainer_types import TRAINERS
from peftrun.interop.importer import import_config
from peftrun.recipe.objects import quantization_kwargs
from peftrun.recipe.shipped import shipped_recipes

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = list(shipped_recipes())


@pytest.mark.parametrize("name", SHIPPED)
def test_a_recipe_comes_back_from_trl_unchanged(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plan = resolve(load_recipe(f"recipes/{name}.yaml"))
    if plan.peft_method not in (None, "lora") or not TRAINERS[plan.trainer_type].trl_command:
        with pytest.raises(RecipeError, match="cannot be exported"):  # TRL's CLI builds LoRA only
            export_trl(plan)
        return
    exported = export_trl(plan)
    (tmp_path / "trl.yaml").write_text(exported.text(name))
    (tmp_path / "run.sh").write_text(f"trl {exported.command} --config trl.yaml\n")
    back = import_config(tmp_path / "run.sh")[0].plan
    listed = set(exported.not_expressible)  # what TRL's CLI cannot say does not come back, and is listed
    if not any(key.startswith("peft.") for key in listed):
        assert back.recipe.peft == plan.recipe.peft
    if "quantization.compute_dtype" not in exported.not_expressible:
        assert quantization_kwargs(back) == quantization_kwargs(plan)
    skipped = {"output_dir", "seed"} | ({"eval_strategy"} if "dataset.eval" in listed else set())
    assert {k: getattr(back.recipe.trainer, k) for k in plan.training_args if k not in skipped} == \
        {k: v for k, v in plan.training_args.items() if k not in skipped}
    assert (back.recipe.output.dir, back.recipe.seed) == (plan.recipe.output.dir, plan.recipe.seed)
    assert back.recipe.model.name_or_path == plan.recipe.model.name_or_path
    if not any(key.startswith("launch.") for key in listed) and plan.recipe.launch.accelerate_config is None:
        keep = ("strategy", "num_processes", "zero_stage", "offload_params")
        assert [getattr(back.recipe.launch, k, None) for k in keep] == [getattr(plan.recipe.launch, k, None)
                                                                         for k in keep]
    if "dataset.eval" in listed:  # evaluation is off in the TRL config
        assert back.recipe.dataset.eval is None and back.recipe.trainer.eval_strategy == "no"
    elif not any(key.startswith("dataset.") for key in listed):
        assert back.recipe.dataset == plan.recipe.dataset
