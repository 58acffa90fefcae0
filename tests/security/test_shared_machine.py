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
from tests.git_repos import GIT_ENV
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


def test_a_pushed_repository_is_private_unless_the_recipe_says_otherwise(write, tmp_path: Path,  # noqa: F811
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    created: list[dict] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: created.append({"repo_id": repo_id, **kw}))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: None)  # the hub is offline here
    publish.push_run(tmp_path, "me/run", load_recipe(write("r.yaml", MINIMAL)).output.private)
    publish.push_run(tmp_path, "me/run", load_recipe(write("p.yaml", MINIMAL + "output: {private: false}\n")).output.private)
    assert [c["private"] for c in created] == [True, False]
