"""What a user installs: the wheel carries the shipped recipes and schemas, every third-party import is a
declared dependency or extra, the optional extras are refused by name, and `make test-min` installs the
lower bounds pyproject.toml states."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.test_layers import imports, modules

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# import name -> distribution name, where they differ
# (pydantic_core is part of pydantic: each pydantic release pins its own pydantic-core)
DISTRIBUTION = {"yaml": "pyyaml", "ruamel": "ruamel.yaml", "sklearn": "scikit-learn", "pydantic_core": "pydantic"}


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!\[ ;]", spec, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> set[str]:
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    for extra, deps in project["optional-dependencies"].items():
        if extra != "test":
            specs += deps
    return {requirement_name(s) for s in specs}


def third_party_imports() -> dict[str, str]:
    """top-level module -> first place it is imported, for every non-stdlib, non-peftrun import."""
    found: dict[str, str] = {}
    for path in modules():
        for line, name in imports(path):
            top = name.split(".")[0]
            if top != "peftrun" and top not in sys.stdlib_module_names:
                found.setdefault(top, f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_third_party_import_is_declared() -> None:
    known = declared()
    undeclared = {module: where for module, where in third_party_imports().items()
                  if DISTRIBUTION.get(module, module).lower().replace("_", "-") not in known}
    assert undeclared == {}


def test_every_core_dependency_is_imported() -> None:
    """A declared dependency nothing imports is a dependency users install for nothing."""
    used = {DISTRIBUTION.get(m, m).lower().replace("_", "-") for m in third_party_imports()}
    unused = [requirement_name(s) for s in PYPROJECT["project"]["dependencies"] if requirement_name(s) not in used]
    assert unused == []


def test_test_min_installs_the_stated_lower_bounds() -> None:
    script = (ROOT / "scripts" / "test_min.sh").read_text()
    pins = dict(re.findall(r'"([A-Za-z][A-Za-z0-9_.]*)==([0-9.]+)"', script))
    bounds = {requirement_name(s): re.search(r">=([0-9.]+)", s).group(1) for s in PYPROJECT["project"]["dependencies"]
              if ">=" in s and not s.startswith("torch")}
    assert {requirement_name(k): v.rstrip(".0") for k, v in pins.items() if requirement_name(k) in bounds} == \
        {k: v.rstrip(".0") for k, v in bounds.items()}


@pytest.mark.slow
def test_the_wheel_carries_the_shipped_recipes_and_schemas(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(tmp_path)], check=True, capture_output=True)
    names = set(zipfile.ZipFile(next(tmp_path.glob("peftrun-*.whl"))).namelist())
    shipped = [f"peftrun/_shipped/{p.relative_to(ROOT).as_posix()}"
               for folder in ("recipes", "schemas") for p in (ROOT / folder).rglob("*") if p.is_file()]
    assert shipped and [name for name in shipped if name not in names] == []


def test_a_recipe_whose_extra_is_missing_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from peftrun.errors import RecipeError
    from peftrun.launch.preflight import preflight
    from peftrun.recipe.hardware import CPU
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.resolver import resolve

    recipe = tmp_path / "q.yaml"
    recipe.write_text("model: {name_or_path: m}\npeft: {method: lora}\nquantization: {bits: 4}\n"
                      "trainer: {type: sft}\ndataset: {path: d.jsonl}\n")
    plan = resolve(load_recipe(recipe), CPU)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(RecipeError) as caught:
        preflight(plan)
    assert str(caught.value).splitlines()[-1].strip() == (
        f"{recipe}:3:1: quantization: 4-bit and 8-bit quantization (the `quantization` section) needs bitsandbytes, "
        "which is not installed: pip install 'peftrun[quant]'")


def test_setup_maps_the_shipped_folders_it_packages() -> None:
    """setup.py names the packages pyproject.toml maps to recipes/ and schemas/."""
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    listed = ast.literal_eval(re.search(r'"peftrun\._shipped\.recipes", "peftrun\._shipped\.schemas"',
                                        (ROOT / "setup.py").read_text()).group(0).join("[]"))
    assert sorted(mapped) == sorted(listed) and all((ROOT / folder).is_dir() for folder in mapped.values())
