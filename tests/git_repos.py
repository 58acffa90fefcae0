"""Temporary git repositories for the tests of shared bases, `diff` and revisions (file:// URLs, no network)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, check=True)
    return done.stdout.strip()


class Repo:
    """A work tree with a `main` branch; `commit` writes files and commits them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "--quiet", "--initial-branch=main")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def commit(self, files: dict[str, str], message: str = "change", tag: str | None = None) -> str:
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "-m", message)
        if tag:
            git(self.path, "tag", "-a", tag, "-m", tag)
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def git_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PEFTRUN_CACHE in a fresh directory, git without the user's configuration."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PEFTRUN_CACHE", str(cache))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return cache
