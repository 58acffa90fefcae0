"""Attacks through a shared base: code execution, smuggled values, files read and published (docs/trust.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from tests.git_repos import Repo, git_cache  # noqa: F401 - fixture
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture


def problems(path: str | Path, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    return [str(p) for p in info.value.problems]


def shared_base(tmp_path: Path, text: str) -> str:
    repo = Repo(tmp_path / "team")
    repo.commit({"base.yaml": text}, tag="v1")
    return f"git+{repo.url}@v1#base.yaml"


DPO = MINIMAL.replace("{type: sft}", "{type: dpo, trust_remote_code: true}")


def test_trl_trust_remote_code_from_a_shared_base_is_refused(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    entry = shared_base(tmp_path, DPO)
    write("r.yaml", f"extends: {entry}\n")
    found = problems("r.yaml")
    assert len(found) == 1 and "trainer.trust_remote_code: the shared base git+" in found[0]
    assert "only your own recipe file or the command line can" in found[0]
    assert load_recipe("r.yaml", ["trainer.trust_remote_code=true"]).trainer.trust_remote_code is True
    write("own.yaml", f"extends: {entry}\ntrainer: {{trust_remote_code: true}}\n")
    assert load_recipe("own.yaml").trainer.trust_remote_code is True


def test_a_local_base_file_is_not_the_users_own_file(write) -> None:  # noqa: F811
    write("base.yaml", DPO)
    write("r.yaml", "extends: base.yaml\n")
    assert problems("r.yaml")[0].startswith("base.yaml:2:"), problems("r.yaml")
    assert "the base file base.yaml turns on trust_remote_code" in problems("r.yaml")[0]


def test_trust_remote_code_inside_a_mapping_of_keyword_arguments(write) -> None:  # noqa: F811
    write("base.yaml", MINIMAL.replace("{type: sft}", "{type: grpo, reward_funcs: [think_format], "
                                       "generation_kwargs: {trust_remote_code: true}}"))
    write("r.yaml", "extends: base.yaml\n")
    assert "trainer.generation_kwargs.trust_remote_code: the base file base.yaml" in problems("r.yaml")[0]


@pytest.mark.parametrize(("model", "key"), [
    ('"${oc.create:{name_or_path: org/model, trust_remote_code: true}}"', "model"),  # created: no file, no line
    ("{name_or_path: org/model, trust_remote_code: \"${oc.decode:'true'}\"}", "model.trust_remote_code"),
    ('{name_or_path: org/model, trust_remote_code: "${oc.env:X,true}"}', "model.trust_remote_code"),
])
def test_a_resolver_cannot_hide_where_a_value_came_from(write, model: str, key: str) -> None:  # noqa: F811
    """Before: the base's created `model` section loaded with trust_remote_code on (its values had no provenance)."""
    write("base.yaml", MINIMAL.replace("{name_or_path: org/model}", model))
    write("r.yaml", "extends: base.yaml\n")
    assert any(p.startswith("base.yaml:") and f": {key}: " in p for p in problems("r.yaml")), problems("r.yaml")


def test_a_reference_in_the_users_file_to_a_foreign_value_is_foreign(write) -> None:  # noqa: F811
    write("base.yaml", MINIMAL.replace("{name_or_path: org/model}", "{name_or_path: org/model, tokenizer: 'true'}"))
    write("r.yaml", "extends: base.yaml\nmodel: {trust_remote_code: '${model.tokenizer}'}\n")
    assert problems("r.yaml")[0].startswith("r.yaml:2:9: model.trust_remote_code: "), problems("r.yaml")
    write("rel.yaml", "extends: base.yaml\nmodel: {trust_remote_code: '${.tokenizer}'}\n")
    assert problems("rel.yaml")[0].startswith("rel.yaml:2:9: model.trust_remote_code: "), problems("rel.yaml")
    write("own.yaml", "extends: base.yaml\nmodel: {tokenizer: 'true', trust_remote_code: '${.tokenizer}'}\n")
    assert load_recipe("own.yaml").model.trust_remote_code is True


def test_data_files_and_publishing_from_a_base_are_refused(write) -> None:  # noqa: F811
    text = MINIMAL.replace("{path: org/data}", "{path: text, data_files: '${oc.env:HOME}/.git-credentials'}")
    write("base.yaml", text + "output: {push_to_hub: true, hub_model_id: someone/leak}\n")
    write("r.yaml", "extends: base.yaml\n")
    found = "\n".join(problems("r.yaml"))
    for key in ("dataset.data_files", "output.push_to_hub", "output.hub_model_id"):
        assert f"{key}: the base file base.yaml" in found
    assert str(Path.home()) not in found or len(str(Path.home())) < 6


def test_a_run_directory_outside_the_working_directory_from_a_base_is_refused(write) -> None:  # noqa: F811
    write("base.yaml", MINIMAL + "output: {dir: /etc}\n")
    write("r.yaml", "extends: base.yaml\n")
    assert "output.dir: the base file base.yaml" in problems("r.yaml")[0]
    write("ok.yaml", MINIMAL + "output: {dir: /tmp/elsewhere}\n")
    assert load_recipe("ok.yaml").output.dir == "/tmp/elsewhere"  # the user's own file may


def test_a_git_base_cannot_name_files_outside_the_shipped_bases(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    entry = shared_base(tmp_path, "extends: peftrun:../../recipe/bases/defaults\n" + MINIMAL)
    write("r.yaml", f"extends: {entry}\n")
    assert "no shipped base named '../../recipe/bases/defaults'" in problems("r.yaml")[0]


def test_held_python_tags_and_foreign_rewards_stay_refused(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    write("tag.yaml", MINIMAL + "seed: !!python/object/apply:os.system ['true']\n")
    assert "only plain YAML is allowed" in problems("tag.yaml")[0]
    entry = shared_base(tmp_path, MINIMAL.replace("{type: sft}", "{type: grpo, reward_funcs: [team.rewards:score]}"))
    write("r.yaml", f"extends: {entry}\n")
    assert "trainer.reward_funcs: the shared base" in problems("r.yaml")[0]


def test_a_vllm_server_on_another_host_from_a_base_is_refused(write) -> None:  # noqa: F811
    """GRPO in server mode sends its prompts and synchronises its weights with the server: a base cannot pick it."""
    write("base.yaml", MINIMAL.replace("{type: sft}", "{type: grpo, reward_funcs: [think_format], use_vllm: true, "
                                       "vllm_mode: server, vllm_server_host: trainer-logs.example.net}"))
    write("r.yaml", "extends: base.yaml\n")
    found = problems("r.yaml")
    assert len(found) == 1 and "trainer.vllm_server_host: the base file base.yaml turns on vllm_server_host" in found[0]
    write("local.yaml", "extends: base.yaml\ntrainer: {vllm_server_host: localhost}\n")
    assert load_recipe("local.yaml").trainer.vllm_server_host == "localhost"  # this machine's server: nothing leaves


def test_a_hub_kernel_as_attention_from_a_base_is_refused(write) -> None:  # noqa: F811
    """transformers 5 takes `attn_implementation: org/name` as a kernel repository it downloads and runs."""
    write("base.yaml", MINIMAL.replace("{name_or_path: org/model}",
                                       "{name_or_path: org/model, attn_implementation: 'paged|someone/fast-attn'}"))
    write("r.yaml", "extends: base.yaml\n")
    found = problems("r.yaml")
    assert len(found) == 1 and "model.attn_implementation: the base file base.yaml turns on attn_implementation" in found[0]
    write("sdpa.yaml", MINIMAL.replace("{name_or_path: org/model}", "{name_or_path: org/model, attn_implementation: sdpa}"))
    write("r2.yaml", "extends: sdpa.yaml\n")
    assert load_recipe("r2.yaml").model.attn_implementation == "sdpa"  # a built-in implementation runs no new code


@pytest.mark.parametrize("value", ["someone/fast-attn", "paged|someone/fast-attn", "kernels-community/flash-attn3@v2:fwd",
                                   "sdpa", "eager", "flash_attention_2", "paged|sdpa", "a/b/c"])
def test_what_counts_as_a_hub_kernel_is_what_transformers_loads_as_one(value: str) -> None:
    """The rule reads attn_implementation as the installed transformers does (integrations/hub_kernels.py)."""
    from transformers.integrations.hub_kernels import is_kernel

    from peftrun.recipe.trust import BY_NAME

    assert BY_NAME["attn_implementation"].active(value) == is_kernel(value.split("|")[-1])
