"""Shared machines: the run directory's lock cannot be turned against its user; git runs nothing of a work
tree's; what is published is private unless the recipe says otherwise."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from peftrun.errors import RunDirError
from peftrun.recipe.loader import load_recipe
from peftrun.train import lock, publish
from peftrun.train.rundir import git_state
from tests.git_repos import GIT_ENV, Repo, git
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture


def test_a_planted_symlink_lock_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("alias ls=ls\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / lock.LOCK_FILE).symlink_to(victim)
    with pytest.raises(RunDirError, match="is a symbolic link: refusing to use it as the run's lock"):
        with lock.holding(run_dir):
            pass
    assert victim.read_text() == "alias ls=ls\n"


def test_a_fifo_lock_is_refused_without_blocking(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.mkfifo(run_dir / lock.LOCK_FILE)
    outcome: list[str] = []

    def start() -> None:
        try:
            with lock.holding(run_dir):
                outcome.append("held")
        except RunDirError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome and "is not a regular file of yours" in outcome[0]


def test_a_dangling_symlink_run_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").symlink_to(tmp_path / "missing")
    with pytest.raises(RunDirError, match="exists and is not a folder"):
        with lock.holding(tmp_path / "run"):
            pass


def test_a_refused_start_leaves_no_lock_behind(tmp_path: Path) -> None:
    run_dir = tmp_path / "occupied"
    run_dir.mkdir()
    (run_dir / "someone-elses-file").write_text("x")
    with pytest.raises(RunDirError):
        with lock.holding(run_dir):
            raise RunDirError("refused")
    assert sorted(p.name for p in run_dir.iterdir()) == ["someone-elses-file"]


def test_the_end_of_run_git_status_runs_no_fsmonitor(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "r.yaml").write_text(MINIMAL)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True, env=env)
    hook = tmp_path / "monitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path}/pwned\n")
    hook.chmod(0o755)
    subprocess.run(["git", "-C", str(repo), "config", "core.fsmonitor", str(hook)], check=True, env=env)
    state = git_state(repo / "r.yaml")
    assert state["commit"] and state["dirty"] is False
    assert not (tmp_path / "pwned").exists()


def _planted_work_tree(tmp_path: Path, attack: str) -> tuple[Repo, Path]:
    """A recipe's work tree whose own configuration names a command (it creates tmp_path/pwned), and the file whose
    stale index entry makes `git status` read it through that command. Returns (repository, that file)."""
    command = f"touch {tmp_path}/pwned; cat"
    repo = Repo(tmp_path / "repo")
    driver = "a.b=c" if attack == "included filter with an odd name" else "x"
    files = {"r.yaml": MINIMAL, ".gitattributes": f"* filter={driver}\n"}
    if attack == "filter in a nested repository":
        nested = Repo(repo.path / "sub")
        nested.commit({"f": "x\n", ".gitattributes": "* filter=x\n"})
        git(nested.path, "config", "filter.x.clean", command)
        files, stale = {"r.yaml": MINIMAL}, nested.path / "f"
    else:
        stale = repo.path / "r.yaml"
    repo.commit(files)
    if attack == "clean filter":
        git(repo.path, "config", "filter.x.clean", command)
    elif attack == "required process filter":
        git(repo.path, "config", "filter.x.process", f"touch {tmp_path}/pwned")
        git(repo.path, "config", "filter.x.required", "true")
    elif attack == "included filter with an odd name":
        (tmp_path / "included.cfg").write_text(f'[filter "{driver}"]\n\tclean = {command}\n')
        git(repo.path, "config", "include.path", str(tmp_path / "included.cfg"))
    os.utime(stale, (1e9, 1e9))  # its stat no longer matches the index: git compares the content
    return repo, stale


@pytest.mark.parametrize("attack", ["clean filter", "required process filter", "included filter with an odd name",
                                    "filter in a nested repository"])
def test_the_end_of_run_git_status_runs_no_filter_of_the_work_tree(tmp_path: Path, attack: str) -> None:
    repo, stale = _planted_work_tree(tmp_path, attack)
    state = git_state(repo.path / "r.yaml")
    assert not (tmp_path / "pwned").exists()
    assert state == {"commit": git(repo.path, "rev-parse", "HEAD"), "dirty": False}
    subprocess.run(["git", "-C", str(stale.parent), "status", "--porcelain"], capture_output=True, check=False,
                   env={**os.environ, **GIT_ENV}, timeout=30)
    assert (tmp_path / "pwned").exists(), "a plain `git status` runs the planted command: the attack is real"


def test_a_pushed_repository_is_private_unless_the_recipe_says_otherwise(write, tmp_path: Path,  # noqa: F811
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    created: list[dict] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: created.append({"repo_id": repo_id, **kw}))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: None)  # the hub is offline here
    publish.push_run(tmp_path, "me/run", load_recipe(write("r.yaml", MINIMAL)).output.private)
    publish.push_run(tmp_path, "me/run", load_recipe(write("p.yaml", MINIMAL + "output: {private: false}\n")).output.private)
    assert [c["private"] for c in created] == [True, False]


@pytest.mark.parametrize(("output", "private"), [("{push_to_hub: true, hub_model_id: me/run}", True),
                                                 ("{push_to_hub: true, hub_model_id: me/run, private: false}", False)])
def test_an_exported_trl_config_pushes_privately_unless_the_recipe_says_otherwise(
        write, tmp_path: Path, output: str, private: bool) -> None:  # noqa: F811
    """TRL's trainer creates a public repository unless `hub_private_repo` is true (transformers' TrainingArguments);
    the exported config says what peftrun's own push does. Read back by the TRL script's own parser."""
    from peftrun import resolve
    from peftrun.recipe.gpus import target_hardware
    from tests.interop.test_export_trl import parsed

    plan = resolve(load_recipe(write("r.yaml", MINIMAL + f"output: {output}\n")), target_hardware(None, None))
    exported, (_, config, *_) = parsed(tmp_path, plan)
    assert "hub_private_repo: " + str(private).lower() in exported.text("test")
    assert (config.push_to_hub, config.hub_model_id, config.hub_private_repo) == (True, "me/run", private)
