"""Shared bases: `peftrun:NAME` from the package, `git+URL@REV#path` pinned and cached, and the trust rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe import explain
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from tests.git_repos import Repo, git_cache  # noqa: F401 - fixture
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture

BASE_V1 = """\
# the team's LoRA base
extends: common.yaml
model: {name_or_path: team/model}
peft:
  method: lora
  r: 8
trainer: {type: sft}
dataset: {path: team/data}
"""
COMMON = "trainer: {logging_steps: 5}\n"


@pytest.fixture
def shared(tmp_path: Path, git_cache: Path) -> Repo:  # noqa: F811
    repo = Repo(tmp_path / "shared")
    repo.commit({"bases/lora.yaml": BASE_V1, "bases/common.yaml": COMMON}, tag="v1")
    repo.commit({"bases/lora.yaml": BASE_V1.replace("r: 8", "r: 32")}, tag="v2")
    return repo


def problem(path: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    return "\n".join(str(p) for p in info.value.problems)


def test_package_base(write) -> None:  # noqa: F811
    write("r.yaml", "extends: peftrun:sft-lora\npeft: {r: 4}\n")
    recipe = load_recipe("r.yaml")
    assert (recipe.peft.r, recipe.model.name_or_path) == (4, "Qwen/Qwen2-0.5B")
    assert recipe.sources["model.name_or_path"] == "peftrun:sft-lora:5:3"
    assert recipe.sources["seed"] == "peftrun:defaults:3:1"
    assert [b["base"] for b in recipe.bases] == ["peftrun:defaults", "peftrun:sft-lora"]
    assert all(len(b["sha256"]) == 64 for b in recipe.bases)


def test_unknown_package_base(write) -> None:  # noqa: F811
    write("r.yaml", "extends: peftrun:sft-lor\n" + MINIMAL)
    assert problem("r.yaml") == (
        "r.yaml:1:1: extends: no shipped base named 'sft-lor'; did you mean `peftrun:sft-lora`? (shipped: defaults, sft-lora)"
    )


def test_git_base_at_a_tag_with_its_own_relative_base(shared: Repo, write) -> None:  # noqa: F811
    write("r.yaml", f"extends: git+{shared.url}@v1#bases/lora.yaml\npeft: {{lora_alpha: 16}}\n")
    recipe = load_recipe("r.yaml")
    commit = recipe.bases[-1]["commit"]
    assert (recipe.peft.r, recipe.peft.lora_alpha, recipe.trainer.logging_steps) == (8, 16, 5)
    assert recipe.sources["peft.r"] == f"git+{shared.url}@v1#bases/lora.yaml:6:3 (commit {commit[:12]})"
    assert recipe.sources["trainer.logging_steps"] == f"git+{shared.url}@v1#bases/common.yaml:1:11 (commit {commit[:12]})"
    assert recipe.bases[-1] == {"base": f"git+{shared.url}@v1#bases/lora.yaml", "url": shared.url, "rev": "v1",
                                "commit": commit, "sha256": recipe.bases[-1]["sha256"]}
    rows = {key: source for key, _, source in explain.rows(resolve(recipe))}
    assert rows["peft.r"].endswith(f"@v1#bases/lora.yaml:6:3 (commit {commit[:12]})")
    table = explain.as_table(resolve(recipe)).splitlines()
    assert table[2:4] == [f"base:     git+{shared.url}@v1#bases/common.yaml commit {commit}",
                          f"base:     git+{shared.url}@v1#bases/lora.yaml commit {commit}"]
    write("r2.yaml", f"extends: git+{shared.url}@v2#bases/lora.yaml\n")
    assert load_recipe("r2.yaml").peft.r == 32


def test_git_base_at_a_commit(shared: Repo, write) -> None:  # noqa: F811
    from tests.git_repos import git
    first = git(shared.path, "rev-list", "--max-parents=0", "HEAD")
    write("r.yaml", f"extends: git+{shared.url}@{first[:10]}#bases/lora.yaml\n")
    assert load_recipe("r.yaml").peft.r == 8


def test_a_branch_is_refused_unless_the_recipe_accepts_a_moving_base(shared: Repo, write) -> None:  # noqa: F811
    from tests.git_repos import git
    head = git(shared.path, "rev-parse", "HEAD")
    write("r.yaml", f"extends: git+{shared.url}@main#bases/lora.yaml\n")
    assert problem("r.yaml") == (
        f"r.yaml:1:1: extends: 'main' is a branch of {shared.url}: a base that moves makes the run irreproducible; "
        f"pin a tag or a commit (branch main is at {head}), or set `allow_moving_bases: true` in your recipe"
    )
    assert load_recipe("r.yaml", ["allow_moving_bases=true"]).peft.r == 32
    write("r.yaml", f"extends: git+{shared.url}@main#bases/lora.yaml\nallow_moving_bases: true\n")
    assert load_recipe("r.yaml").peft.r == 32
    shutil.rmtree(shared.path)
    assert load_recipe("r.yaml").peft.r == 32  # offline: the branch's last commit seen


def test_the_cache_serves_a_pinned_base_when_the_origin_is_gone(shared: Repo, write, git_cache: Path) -> None:  # noqa: F811
    write("r.yaml", f"extends: git+{shared.url}@v1#bases/lora.yaml\n")
    assert load_recipe("r.yaml").peft.r == 8
    shutil.rmtree(shared.path)
    assert load_recipe("r.yaml").peft.r == 8  # no network: pins.json and trees/<commit> answer
    write("r3.yaml", f"extends: git+{shared.url}@v3#bases/lora.yaml\n")
    assert problem("r3.yaml").startswith(f"r3.yaml:1:1: extends: cannot reach git repository {shared.url}: ")
    assert list((next((git_cache / "git").iterdir()) / "trees").iterdir())  # one tree per commit


def test_git_base_errors_are_located(shared: Repo, write) -> None:  # noqa: F811
    write("a.yaml", f"extends: git+{shared.url}@v9#bases/lora.yaml\n")
    assert problem("a.yaml") == f"a.yaml:1:1: extends: no tag, branch or commit named 'v9' in {shared.url}"
    write("b.yaml", f"extends: git+{shared.url}@v1#bases/none.yaml\n")
    assert problem("b.yaml").startswith(f"b.yaml:1:1: extends: no file bases/none.yaml in {shared.url} at v1 (commit ")
    write("c.yaml", f"extends: git+{shared.url}#bases/lora.yaml\n")
    assert problem("c.yaml") == (
        f"c.yaml:1:1: extends: 'git+{shared.url}#bases/lora.yaml': name a tag or commit: git+URL@REV#path/to/base.yaml"
    )
    write("e.yaml", "extends: git+--upload-pack=touch@v1#x.yaml\n")
    assert problem("e.yaml") == "e.yaml:1:1: extends: 'git+--upload-pack=touch@v1#x.yaml': a repository URL cannot start with '-'"
    missing = shared.path.with_name("nowhere").as_uri()
    write("d.yaml", f"extends: git+{missing}@v1#x.yaml\n")
    assert problem("d.yaml").startswith(f"d.yaml:1:1: extends: cannot reach git repository {missing}: ")


def test_a_cycle_through_a_git_base(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    repo = Repo(tmp_path / "loop")
    repo.commit({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, tag="v1")
    write("r.yaml", f"extends: git+{repo.url}@v1#a.yaml\n")
    assert f"extends cycle: r.yaml -> git+{repo.url}@v1#a.yaml -> git+{repo.url}@v1#b.yaml -> git+{repo.url}@v1#a.yaml" in problem("r.yaml")


def test_trust_remote_code_from_a_shared_base_is_refused(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    repo = Repo(tmp_path / "risky")
    base = BASE_V1.replace("extends: common.yaml\n", "").replace("{name_or_path: team/model}",
                                                                 "{name_or_path: team/model, trust_remote_code: true}")
    commit = repo.commit({"base.yaml": base}, tag="v1")
    write("r.yaml", f"extends: git+{repo.url}@v1#base.yaml\n")
    assert problem("r.yaml") == (
        f"git+{repo.url}@v1#base.yaml:2:35 (commit {commit[:12]}): model.trust_remote_code: the shared base "
        f"git+{repo.url}@v1#base.yaml (commit {commit[:12]}) turns on trust_remote_code (it runs the Python code "
        "of a model repository: runs code on this machine); only your own recipe file or the command line can: "
        "write `trust_remote_code: true` in your own recipe "
        "(or pass model.trust_remote_code=true) to accept it"
    )
    assert load_recipe("r.yaml", ["model.trust_remote_code=true"]).model.trust_remote_code is True
    write("own.yaml", f"extends: git+{repo.url}@v1#base.yaml\nmodel: {{trust_remote_code: true}}\n")
    assert load_recipe("own.yaml").model.trust_remote_code is True
    sneaky = Repo(tmp_path / "sneaky")  # an interpolation that yields true is caught too
    sneaky.commit({"base.yaml": base.replace("trust_remote_code: true", "trust_remote_code: '${oc.env:UNSET_X,true}'")}, tag="v1")
    write("s.yaml", f"extends: git+{sneaky.url}@v1#base.yaml\n")
    assert "model.trust_remote_code: the shared base git+" in problem("s.yaml")


def test_foreign_reward_functions_from_a_shared_base_are_refused(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    repo = Repo(tmp_path / "grpo")
    base = MINIMAL.replace("{type: sft}", "{type: grpo, reward_funcs: [think_format, team.rewards:score]}")
    repo.commit({"grpo.yaml": base}, tag="v1")
    write("r.yaml", f"extends: git+{repo.url}@v1#grpo.yaml\n")
    message = problem("r.yaml")
    assert f"trainer.reward_funcs: the shared base git+{repo.url}@v1#grpo.yaml (commit " in message
    assert "turns on reward_funcs (it imports and calls the named Python functions: runs code on this machine)" in message
    write("own.yaml", f"extends: git+{repo.url}@v1#grpo.yaml\ntrainer: {{reward_funcs: [think_format, team.rewards:score]}}\n")
    assert load_recipe("own.yaml").trainer.reward_funcs == ["think_format", "team.rewards:score"]
    write("shipped.yaml", f"extends: git+{repo.url}@v1#grpo.yaml\ntrainer: {{reward_funcs: [think_format]}}\n")
    assert load_recipe("shipped.yaml").trainer.reward_funcs == ["think_format"]


def test_local_and_package_bases_need_no_git(write, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    write("base.yaml", "trainer: {logging_steps: 3}\n")
    write("r.yaml", "extends: [peftrun:sft-lora, base.yaml]\n")
    monkeypatch.setenv("PATH", "")  # no git to run: a local recipe must not need it
    assert load_recipe("r.yaml").trainer.logging_steps == 3


def test_an_entry_of_a_list_is_located_at_the_entry(write) -> None:  # noqa: F811
    write("r.yaml", "extends:\n  - peftrun:sft-lora\n  - peftrun:nothing\n")
    assert problem("r.yaml").startswith("r.yaml:3:5: extends: no shipped base named 'nothing'")
