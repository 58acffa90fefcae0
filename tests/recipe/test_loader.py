"""peftrun.recipe.loader: safe YAML, extends, overrides, interpolation, and the source map."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe, parse_overrides, read_yaml
from tests.recipe_files import MINIMAL, write  # noqa: F401 (write is a fixture)


def problems(exc: pytest.ExceptionInfo[RecipeError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


# --- safe YAML -------------------------------------------------------------------------


def test_python_tag_is_an_error_and_never_runs(write, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(
        "recipe.yaml",
        f"""
        model: {{name_or_path: org/model}}
        hook: !!python/object/apply:os.system ["touch {marker}"]
        trainer: {{type: sft}}
        dataset: {{path: org/data}}
        """,
    )
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert problems(exc) == [
        "recipe.yaml:2:7: hook: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system': only plain YAML is allowed (safe loader; no Python tags)"
    ]
    assert exc.value.exit_code == 2
    assert not marker.exists()


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/name:os.system", "python/name:os.system"),
        ("!!python/object:os.PathLike {a: 1}", "python/object:os.PathLike"),
        ("!!python/object/new:os.system [echo]", "python/object/new:os.system"),
    ],
)
def test_every_python_tag_is_refused(write, value: str, tag: str) -> None:
    path = write("recipe.yaml", f"x: {value}\n")
    with pytest.raises(RecipeError) as exc:
        read_yaml(path)
    assert problems(exc) == [
        f"recipe.yaml:1:4: x: could not determine a constructor for the tag 'tag:yaml.org,2002:{tag}': "
        "only plain YAML is allowed (safe loader; no Python tags)"
    ]


def test_duplicate_keys_name_both_positions(write) -> None:
    path = write(
        "recipe.yaml",
        """
        model:
          name_or_path: a
          name_or_path: b
        trainer: {type: sft}
        trainer: {type: dpo}
        """,
    )
    with pytest.raises(RecipeError) as exc:
        read_yaml(path)
    assert problems(exc) == [
        "recipe.yaml:3:3: model.name_or_path: duplicate key (first defined at recipe.yaml:2:3)",
        "recipe.yaml:5:1: trainer: duplicate key (first defined at recipe.yaml:4:1)",
    ]


def test_invalid_yaml_is_located(write) -> None:
    path = write("recipe.yaml", "model: {name_or_path: a\ntrainer: x\n")
    with pytest.raises(RecipeError) as exc:
        read_yaml(path)
    assert problems(exc) == ["recipe.yaml:2:8: invalid YAML: expected ',' or '}', but got ':'"]


def test_a_recipe_must_be_a_mapping(write) -> None:
    path = write("recipe.yaml", "- a\n- b\n")
    with pytest.raises(RecipeError) as exc:
        read_yaml(path)
    assert problems(exc) == ["recipe.yaml:1:1: a recipe must be a mapping of sections"]


def test_missing_recipe_file(tmp_path) -> None:
    with pytest.raises(RecipeError) as exc:
        load_recipe("nope.yaml")
    assert problems(exc) == ["nope.yaml: cannot read recipe: No such file or directory"]


@pytest.mark.parametrize(("text", "value"), [("2e-4", 2e-4), ("2.0e-4", 2e-4), ("1E5", 1e5), ("-3e+2", -300.0)])
def test_exponent_floats_are_floats(write, text: str, value: float) -> None:
    data, _ = read_yaml(write("recipe.yaml", f"lr: {text}\n"))
    assert data["lr"] == value
    assert isinstance(data["lr"], float)


def test_scalars_keep_their_yaml_types(write) -> None:
    data, _ = read_yaml(write("recipe.yaml", "a: 8\nb: '2e-4'\nc: true\nd: null\ne: 1.5\n"))
    assert data == {"a": 8, "b": "2e-4", "c": True, "d": None, "e": 1.5}


def test_exponent_float_reaches_the_trainer(write) -> None:
    path = write("recipe.yaml", MINIMAL.replace("{type: sft}", "{type: sft, learning_rate: 3e-4}"))
    assert load_recipe(path).trainer.learning_rate == 3e-4


# --- extends ---------------------------------------------------------------------------


def test_extends_deep_merges_with_this_file_winning(write) -> None:
    write(
        "base/common.yaml",
        """
        seed: 7
        model: {name_or_path: org/base, trust_remote_code: false}
        peft: {method: lora, r: 8, lora_alpha: 16, target_modules: [q_proj, k_proj, v_proj]}
        trainer: {type: sft, logging_steps: 5, num_train_epochs: 2}
        dataset: {path: org/data}
        """,
    )
    path = write(
        "recipes/child.yaml",
        """
        extends: ../base/common.yaml
        model: {name_or_path: org/child}
        peft: {r: 32, target_modules: [o_proj]}
        trainer: {num_train_epochs: 3}
        """,
    )
    recipe = load_recipe(path)
    assert recipe.seed == 7
    assert recipe.model.name_or_path == "org/child"
    assert recipe.peft.r == 32 and recipe.peft.lora_alpha == 16
    assert recipe.peft.target_modules == ["o_proj"]  # a list is replaced, not merged
    assert recipe.trainer.logging_steps == 5 and recipe.trainer.num_train_epochs == 3
    assert recipe.extends is None  # consumed by the loader


def test_extends_list_merges_in_order(write) -> None:
    write("a.yaml", "seed: 1\nmodel: {name_or_path: org/a}\ntrainer: {type: sft, logging_steps: 1}\n")
    write("b.yaml", "seed: 2\ntrainer: {type: sft, max_steps: 9}\ndataset: {path: org/data}\n")
    path = write("child.yaml", "extends: [a.yaml, b.yaml]\n")
    recipe = load_recipe(path)
    assert recipe.seed == 2  # the later base wins
    assert recipe.model.name_or_path == "org/a"
    assert (recipe.trainer.logging_steps, recipe.trainer.max_steps) == (1, 9)


def test_extends_chains_relative_to_each_file(write) -> None:
    write("bases/deep/root.yaml", MINIMAL)
    write("bases/mid.yaml", "extends: deep/root.yaml\nseed: 3\n")
    recipe = load_recipe(write("r.yaml", "extends: bases/mid.yaml\n"))
    assert (recipe.seed, recipe.model.name_or_path) == (3, "org/model")


def test_source_map_points_into_base_files(write) -> None:
    write("base.yaml", MINIMAL + "seed: 5\n")
    path = write(
        "child.yaml",
        """
        extends: base.yaml
        model:
          name_or_path: org/child
        """,
    )
    sources = load_recipe(path).sources
    assert sources["model.name_or_path"] == "child.yaml:3:3"
    assert sources["trainer.type"] == "base.yaml:2:11"
    assert sources["dataset.path"] == "base.yaml:3:11"
    assert sources["seed"] == "base.yaml:4:1"
    assert "extends" not in sources


def test_replaced_value_drops_the_base_sources(write) -> None:
    write("base.yaml", MINIMAL + "peft: {method: lora, target_modules: [q_proj, k_proj, v_proj]}\n")
    path = write("child.yaml", "extends: base.yaml\npeft: {target_modules: [o_proj]}\n")
    sources = load_recipe(path).sources
    assert sources["peft.target_modules"] == "child.yaml:2:8"
    assert sources["peft.target_modules.0"] == "child.yaml:2:25"
    assert "peft.target_modules.1" not in sources and "peft.target_modules.2" not in sources
    assert sources["peft.method"] == "base.yaml:4:8"


def test_empty_mapping_merges_into_the_base(write) -> None:
    write("base.yaml", MINIMAL.replace("{path: org/data}", "{path: org/data, columns: {prompt: q}}"))
    recipe = load_recipe(write("child.yaml", "extends: base.yaml\ndataset: {columns: {}}\n"))
    assert recipe.dataset.columns == {"prompt": "q"}


def test_extends_cycle_names_the_files(write) -> None:
    write("a.yaml", "extends: b.yaml\n")
    write("b.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("a.yaml")
    assert problems(exc) == ["b.yaml:1:1: extends: extends cycle: a.yaml -> b.yaml -> a.yaml"]


def test_extends_itself_is_a_cycle(write) -> None:
    write("a.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("a.yaml")
    assert problems(exc) == ["a.yaml:1:1: extends: extends cycle: a.yaml -> a.yaml"]


def test_missing_base_names_the_file(write, tmp_path: Path) -> None:
    write("sub/r.yaml", "extends: ../base/missing.yaml\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("sub/r.yaml")
    assert problems(exc) == [
        f"sub/r.yaml:1:1: extends: base recipe not found: ../base/missing.yaml (looked for {tmp_path / 'base/missing.yaml'})"
    ]


def test_extends_must_be_paths(write) -> None:
    write("r.yaml", "extends: {a: 1}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("r.yaml")
    assert problems(exc) == ["r.yaml:1:1: extends: must be a path or a list of paths"]


def test_a_problem_in_a_base_names_the_base(write) -> None:
    write("base.yaml", MINIMAL + "model: {name_or_path: again}\n")
    write("r.yaml", "extends: base.yaml\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("r.yaml")
    assert problems(exc) == ["base.yaml:4:1: model: duplicate key (first defined at base.yaml:1:1)"]


def test_a_validation_error_from_a_base_points_into_the_base(write) -> None:
    write("base.yaml", MINIMAL + "output: {sav: adapter}\n")
    write("r.yaml", "extends: base.yaml\nseed: 1\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("r.yaml")
    assert problems(exc) == ["base.yaml:4:10: output.sav: unknown key `sav`; did you mean `save`?"]


# --- overrides --------------------------------------------------------------------------


def test_overrides_win_over_files_and_are_their_own_source(write) -> None:
    write("base.yaml", MINIMAL + "peft: {method: lora, r: 8}\n")
    path = write("r.yaml", "extends: base.yaml\npeft: {r: 16}\n")
    recipe = load_recipe(path, ["peft.r=64", "trainer.learning_rate=1e-3", "model.dtype=bfloat16"])
    assert recipe.peft.r == 64
    assert recipe.trainer.learning_rate == 1e-3
    assert recipe.model.dtype == "bfloat16"
    assert recipe.sources["peft.r"] == "command line: peft.r=64"
    assert recipe.sources["trainer.learning_rate"] == "command line: trainer.learning_rate=1e-3"
    assert recipe.sources["peft.method"] == "base.yaml:4:8"


def test_override_can_add_a_section(write) -> None:
    recipe = load_recipe(write("r.yaml", MINIMAL), ["quantization.bits=4", "peft.method=lora"])
    assert recipe.quantization.bits == 4
    assert recipe.sources["quantization.bits"] == "command line: quantization.bits=4"


def test_override_with_a_list(write) -> None:
    recipe = load_recipe(write("r.yaml", MINIMAL), ["peft={method: lora, target_modules: [q_proj, v_proj]}"])
    assert recipe.peft.target_modules == ["q_proj", "v_proj"]
    assert recipe.sources["peft.target_modules"] == "command line: peft={method: lora, target_modules: [q_proj, v_proj]}"


def test_unknown_override_key_is_located_on_the_command_line(write) -> None:
    with pytest.raises(RecipeError) as exc:
        load_recipe(write("r.yaml", MINIMAL), ["peft.method=lora", "peft.rr=4"])
    assert problems(exc) == ["command line: peft.rr=4: peft.rr: unknown key `rr`; did you mean `r`?"]


@pytest.mark.parametrize("item", ["peft.r", "=4"])
def test_malformed_override(item: str) -> None:
    with pytest.raises(RecipeError) as exc:
        parse_overrides([item])
    assert problems(exc) == [f"command line: {item}: an override must look like key.path=value"]


# --- interpolation and the name ------------------------------------------------------------


def test_name_defaults_to_the_file_stem(write) -> None:
    recipe = load_recipe(write("my-run.yaml", MINIMAL))
    assert recipe.name == "my-run"
    assert recipe.sources["name"] == "default: the recipe file's stem"


def test_name_interpolates_everywhere(write) -> None:
    path = write("my-run.yaml", MINIMAL + "output: {dir: 'out/${name}-${seed}'}\nseed: 3\n")
    assert load_recipe(path).output.dir == "out/my-run-3"


def test_child_name_is_used_in_a_base_interpolation(write) -> None:
    write("base.yaml", MINIMAL + "output: {dir: 'runs/${name}'}\n")
    assert load_recipe(write("child.yaml", "extends: base.yaml\n")).output.dir == "runs/child"
    assert load_recipe("child.yaml", ["name=renamed"]).output.dir == "runs/renamed"


def test_env_interpolation_with_default(write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("r.yaml", MINIMAL + "output: {dir: '${oc.env:PEFTRUN_TEST_OUT,fallback}/x'}\n")
    monkeypatch.delenv("PEFTRUN_TEST_OUT", raising=False)
    assert load_recipe(path).output.dir == "fallback/x"
    monkeypatch.setenv("PEFTRUN_TEST_OUT", "/scratch")
    assert load_recipe(path).output.dir == "/scratch/x"


def test_interpolation_of_a_missing_key_is_located(write) -> None:
    write("r.yaml", MINIMAL + "output: {dir: '${nope}'}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe("r.yaml")
    [problem] = exc.value.problems
    assert (problem.where, problem.path) == ("r.yaml:4:10", "output.dir")
    assert problem.message.startswith("interpolation failed: Interpolation key 'nope' not found")


def test_mapping_input_is_validated_like_a_file() -> None:
    recipe = load_recipe({"model": {"name_or_path": "m"}, "trainer": {"type": "dpo"}, "dataset": {"path": "d"}})
    assert recipe.name == "recipe"
    assert recipe.sources["trainer.type"] == "python mapping"
    with pytest.raises(RecipeError) as exc:
        load_recipe({"model": {"name_or_path": "m", "dtpye": "auto"}, "trainer": {"type": "dpo"}, "dataset": {"path": "d"}})
    assert problems(exc) == ["python mapping: model.dtpye: unknown key `dtpye`; did you mean `dtype`?"]


@pytest.mark.parametrize("word", ["yes", "No", "on", "OFF"])
def test_yaml11_booleans_are_refused_as_editors_read_them_as_strings(write, word: str) -> None:
    with pytest.raises(RecipeError) as caught:
        read_yaml(write("recipe.yaml", f"model:\n  trust_remote_code: {word}\n"))
    assert [str(p) for p in caught.value.problems] == [
        f"recipe.yaml:2:22: model.trust_remote_code: `{word}` is a boolean in YAML 1.1 and a string in YAML 1.2 "
        "(what editors read): write true or false; quote it for the text"]


def test_true_false_and_quoted_words_stay_as_written(write) -> None:
    data, _ = read_yaml(write("recipe.yaml", "a: true\nb: False\nc: 'yes'\n"))
    assert data == {"a": True, "b": False, "c": "yes"}
