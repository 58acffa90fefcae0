"""Pins that pin: a commit is a commit, a tag is resolved once, the cache is checked against the commit."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from tests.git_repos import Repo, git, git_cache  # noqa: F401 - fixture
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture


def problem(path: str) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return str(info.value.problems[0])


@pytest.fixture
def team(tmp_path: Path, git_cache: Path) -> tuple[Repo, str, str]:  # noqa: F811
    repo = Repo(tmp_path / "team")
    good = repo.commit({"base.yaml": MINIMAL + "seed: 1\n"}, tag="v1")
    evil = repo.commit({"base.yaml": MINIMAL + "seed: 666\n"})
    return repo, good, evil


def test_a_tag_named_like_the_pinned_commit_is_ignored(team, write) -> None:  # noqa: F811
    repo, good, evil = team
    git(repo.path, "tag", good, evil)  # a tag whose name is the full hash of the pinned commit
    write("r.yaml", f"extends: git+{repo.url}@{good}#base.yaml\n")
    assert load_recipe("r.yaml").seed == 1


def test_a_tag_named_like_a_short_hash_is_refused(team, write) -> None:  # noqa: F811
    repo, good, evil = team
    git(repo.path, "tag", good[:10], evil)
    write("r.yaml", f"extends: git+{repo.url}@{good[:10]}#base.yaml\n")
    assert "names both a ref and (perhaps) a commit: pin the full 40-character commit" in problem("r.yaml")


def test_an_edited_cache_is_refused(team, write, git_cache: Path) -> None:  # noqa: F811
    repo, good, _ = team
    write("r.yaml", f"extends: git+{repo.url}@v1#base.yaml\n")
    assert load_recipe("r.yaml").seed == 1
    [cached] = git_cache.glob(f"git/*/trees/{good}/base.yaml")
    cached.write_text(MINIMAL + "seed: 666\n")
    assert f"base.yaml in the cache ({cached.parent}) differs from commit {good[:12]}: the cache was edited" in problem("r.yaml")


def test_an_absolute_symlink_in_a_git_base_is_a_located_error(tmp_path: Path, git_cache: Path, write) -> None:  # noqa: F811
    repo = Repo(tmp_path / "links")
    (repo.path / "base.yaml").symlink_to("/etc/passwd")
    repo.commit({}, tag="v1")
    write("r.yaml", f"extends: git+{repo.url}@v1#base.yaml\n")
    assert problem("r.yaml").startswith("r.yaml:1:1: extends: commit ")


@pytest.mark.parametrize("url", ["fd::17", "ext::sh -c touch% /tmp/pwned", "-upload-pack=x"])
def test_transport_helpers_are_refused_at_once(write, git_cache: Path, url: str) -> None:  # noqa: F811
    """`fd::17` hung for 300 s; `ext::` and option-like URLs were already refused (held, kept as guards)."""
    write("r.yaml", f"extends: 'git+{url}@v1#x.yaml'\n")
    started = time.monotonic()
    found = problem("r.yaml")
    assert time.monotonic() - started < 5 and found.startswith("r.yaml:1:1: extends: ")


def test_credentials_in_a_git_url_are_never_recorded(team, write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    repo, good, _ = team
    url = f"file://user:s3cr3t-token@{repo.path}"  # git ignores the credentials of a file URL
    write("r.yaml", f"extends: git+{url}@v1#base.yaml\n")
    recipe = load_recipe("r.yaml")
    assert "s3cr3t" not in repr(recipe.bases) and "s3cr3t" not in repr(recipe.sources)
    write("missing.yaml", f"extends: git+{url}@v9#base.yaml\n")
    assert "s3cr3t" not in problem("missing.yaml")


def test_hooks_of_a_fetched_repository_never_run(team, write, tmp_path: Path) -> None:  # noqa: F811
    """Held before this issue (git copies no hooks or configuration when it fetches): kept as a guard that
    peftrun never runs git inside the shared repository itself, where its hooks, fsmonitor and filters apply."""
    repo, _, _ = team
    command = f"#!/bin/sh\ntouch {tmp_path}/pwned\ncat\n"
    for hook in ("post-checkout", "fsmonitor", "filter"):
        (repo.path / ".git" / "hooks" / hook).write_text(command)
        os.chmod(repo.path / ".git" / "hooks" / hook, 0o755)
    git(repo.path, "config", "core.fsmonitor", str(repo.path / ".git" / "hooks" / "fsmonitor"))
    for key in ("clean", "smudge"):
        git(repo.path, "config", f"filter.x.{key}", str(repo.path / ".git" / "hooks" / "filter"))
    (repo.path / ".git" / "info" / "attributes").write_text("* filter=x\n")
    write("r.yaml", f"extends: git+{repo.url}@v1#base.yaml\n")
    load_recipe("r.yaml")
    assert not (tmp_path / "pwned").exists()
    os.utime(repo.path / "base.yaml", (1e9, 1e9))
    subprocess.run(["git", "-C", str(repo.path), "status"], capture_output=True, check=False, timeout=30)
    assert (tmp_path / "pwned").exists(), "git run inside the repository runs them: the plant is live"
