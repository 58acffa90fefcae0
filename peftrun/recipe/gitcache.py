"""Files of git repositories at pinned revisions, fetched once with git's own client and kept.

    tree, commit = checkout("https://example.org/team/recipes.git", "v1.2", where, allow_moving=False)

The cache lives in $PEFTRUN_CACHE/git (default ~/.cache/peftrun/git): one bare repository per URL
and one exported tree per commit (`trees/<commit>/`), plus `pins.json` mapping the tags and commits
already resolved to their commit. A pinned revision found there is used without any network call,
so a recipe keeps loading offline, or after its origin disappeared. A branch is a moving revision:
it is refused unless the recipe accepts moving bases, and then resolved again on every load (its
last commit is used when the network is down). Trees are exported to a temporary directory and
renamed into place, so an interrupted fetch never leaves a half-written tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from peftrun.errors import Problem, RecipeError, keep_secret

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Transports a base may use: no transport helpers (`fd::17`, `ext::cmd`), nothing read as an option.
URL = re.compile(r"^((https?|ssh|git|file)://[^\s]+|[\w.-]+@[\w.-]+:[^:\s][^\s]*|/[^\s]*)$")
# git never runs a command named by the repositories it reads or by a work tree's configuration.
SAFE_CONFIG = ("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never",
               "-c", "protocol.fd.allow=never")
SHORT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
TIMEOUT_S = 300
MOVING_KEY = "allow_moving_bases"


def cache_dir() -> Path:
    """$PEFTRUN_CACHE/git (default ~/.cache/peftrun/git)."""
    return Path(os.environ.get("PEFTRUN_CACHE", Path.home() / ".cache" / "peftrun")) / "git"


def _repo_dir(url: str) -> Path:
    return cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:20]


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run git without prompts (a missing credential fails instead of waiting for a password)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        return subprocess.run(["git", *SAFE_CONFIG, *args], cwd=cwd, capture_output=True, env=env, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise RecipeError(Problem("", "extends", "git is not installed: it is needed for git+ bases and REV:path")) from None
    except subprocess.TimeoutExpired:
        raise RecipeError(Problem("", "extends", f"git {args[0]} took more than {TIMEOUT_S} s")) from None


def public_url(url: str, where: str) -> str:
    """`url` without credentials (`https://user:token@host/...` -> `https://host/...`), which are kept as
    secrets (never printed or written); a URL git would read as a transport helper or option is refused."""
    if not URL.match(url) or "::" in url:
        raise RecipeError(Problem(where, "extends", (
            f"{url!r} is not a repository URL peftrun reads: use https://, ssh://, git://, file://, user@host:path "
            "or an absolute path")))
    parts = urlsplit(url)
    if "@" not in parts.netloc or not parts.scheme:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    for secret in (userinfo, *userinfo.split(":")):
        keep_secret(secret)
    return urlunsplit(parts._replace(netloc=host))


def _stderr(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    fatal = [line for line in lines if line.startswith("fatal: ")] or lines
    return fatal[0].removeprefix("fatal: ") if fatal else f"git exited with {done.returncode}"


class _Pins:
    """pins.json: revision -> commit for the revisions of one repository already resolved."""

    def __init__(self, repo: Path) -> None:
        self.path = repo / "pins.json"
        self.data: dict[str, str] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def save(self, rev: str, commit: str) -> None:
        self.data[rev] = commit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def _remote_refs(url: str) -> tuple[dict[str, str] | None, str]:
    """ref name -> commit of the remote (tags peeled), or None and why it cannot be reached."""
    done = git("ls-remote", url)
    if done.returncode != 0:
        return None, _stderr(done)
    refs: dict[str, str] = {}
    for line in done.stdout.decode().splitlines():
        sha, _, name = line.partition("\t")
        refs[name.removesuffix("^{}")] = sha  # a peeled tag (^{}) comes after the tag object: it wins
    return refs, ""


def _kind(rev: str, refs: dict[str, str], where: str) -> str:
    """tag, branch or commit; a full 40-hex name is a commit even when a ref has that name."""
    if FULL_SHA.match(rev):
        return "commit"
    named = f"refs/tags/{rev}" in refs or f"refs/heads/{rev}" in refs
    if named and SHORT_SHA.match(rev):
        raise RecipeError(Problem(where, "extends", (
            f"{rev!r} names both a ref and (perhaps) a commit: pin the full 40-character commit instead")))
    if f"refs/tags/{rev}" in refs:
        return "tag"
    if f"refs/heads/{rev}" in refs:
        return "branch"
    return "commit" if SHORT_SHA.match(rev) else "unknown"


def _fetch(url: str, repo: Path, rev: str, where: str) -> str:
    """Fetch every branch and tag of `url` into the bare cache repository; the commit `rev` names."""
    bare = repo / "repo.git"
    if not bare.is_dir():
        bare.mkdir(parents=True)
        git("init", "--quiet", "--bare", str(bare))
    done = git("--git-dir", str(bare), "fetch", "--quiet", "--force", url,
               "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    if done.returncode != 0:
        raise RecipeError(Problem(where, "extends", f"cannot fetch {public_url(url, where)}: {_stderr(done)}"))
    found = git("--git-dir", str(bare), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    commit = found.stdout.decode().strip()
    if found.returncode != 0 or (FULL_SHA.match(rev) and commit != rev):
        raise RecipeError(Problem(where, "extends", f"no tag or commit {rev!r} in {public_url(url, where)}"))
    return commit


def _export(repo: Path, commit: str, where: str) -> Path:
    """trees/<commit>: the files of `commit`, written once (atomically); links that leave it are refused."""
    tree = repo / "trees" / commit
    if tree.is_dir():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tree.parent) as tmp:
        archive = Path(tmp) / "tree.tar"
        done = git("--git-dir", str(repo / "repo.git"), "archive", "--format=tar", f"--output={archive}", commit)
        if done.returncode != 0:
            raise RecipeError(Problem("", "extends", f"cannot export commit {commit}: {_stderr(done)}"))
        files = Path(tmp) / "files"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(files, filter="data")
        except tarfile.TarError as exc:
            raise RecipeError(Problem(where, "extends", f"commit {commit[:12]} cannot be used as a base: {exc}")) from None
        try:
            os.replace(files, tree)
        except OSError:  # another process exported it meanwhile
            if not tree.is_dir():
                raise
    return tree


def checkout(url: str, rev: str, where: str, allow_moving: bool) -> tuple[Path, str]:
    """The local tree of `url` at `rev` and its commit; from the cache when `rev` was pinned before."""
    repo = _repo_dir(url)
    pins = _Pins(repo)
    pinned = rev if FULL_SHA.match(rev) else pins.data.get(rev)
    if pinned and (repo / "trees" / pinned).is_dir():
        return repo / "trees" / pinned, pinned
    moving = pins.data.get(f"branch:{rev}")
    refs, why = _remote_refs(url)
    if refs is None:
        if moving and allow_moving and (repo / "trees" / moving).is_dir():
            return repo / "trees" / moving, moving
        raise RecipeError(Problem(where, "extends", f"cannot reach git repository {public_url(url, where)}: {why}"))
    kind = _kind(rev, refs, where)
    if kind == "branch" and not allow_moving:
        raise RecipeError(Problem(where, "extends", (
            f"{rev!r} is a branch of {public_url(url, where)}: a base that moves makes the run irreproducible; pin a tag or a "
            f"commit (branch {rev} is at {refs[f'refs/heads/{rev}']}), or set `{MOVING_KEY}: true` in your recipe")))
    if kind == "unknown":
        raise RecipeError(Problem(where, "extends", f"no tag, branch or commit named {rev!r} in {public_url(url, where)}"))
    named = refs.get(f"refs/tags/{rev}") or refs.get(f"refs/heads/{rev}") if kind != "commit" else None
    commit = _fetch(url, repo, named or rev, where)
    pins.save(f"branch:{rev}" if kind == "branch" else rev, commit)
    return _export(repo, commit, where), commit


def verify(url: str, commit: str, tree: Path, path: Path, where: str) -> None:
    """The file of the cached tree `path` is the one `commit` holds (git's own object ids); an edited cache
    is refused."""
    bare = str(_repo_dir(url) / "repo.git")
    rel = path.relative_to(tree).as_posix()
    expected = git("--git-dir", bare, "rev-parse", "--verify", "--quiet", f"{commit}:{rel}").stdout.decode().strip()
    actual = git("--git-dir", bare, "hash-object", "--no-filters", str(path)).stdout.decode().strip()
    if not expected or expected != actual:
        raise RecipeError(Problem(where, "extends", (
            f"{rel} in the cache ({tree}) differs from commit {commit[:12]}: the cache was edited; delete "
            f"{tree} to fetch it again")))
