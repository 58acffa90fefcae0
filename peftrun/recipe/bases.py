"""What an `extends:` entry names, and the rule for bases that are someone else's files.

An entry is one of:

- a path relative to the file that names it (`base/common.yaml`);
- `peftrun:NAME`, a base shipped in the package (peftrun/recipe/bases/NAME.yaml);
- `git+URL@REV#path/in/repo.yaml`, a file of a git repository at a tag or commit (recipe/gitcache.py).

No base can switch on a setting that runs code, reads a local file, writes outside the run directory or
publishes: only the user's own recipe file or the command line can (recipe/trust.py, docs/trust.md).
Package and git bases are *shared* (errors name them with their commit). Every base file read is recorded
(commit or content hash) for recipe.resolved.yaml and the manifest.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.gitcache import MOVING_KEY, checkout, public_url, verify
from peftrun.recipe.shipped import PACKAGE_DIR, PACKAGE_PREFIX

GIT_PREFIX = "git+"
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][\w-]*$")  # a file of PACKAGE_DIR, never a path out of it


@dataclass(frozen=True)
class Root:
    """A tree of files read under another name: the package bases, a git checkout, a revision."""

    path: Path
    prefix: str  # the label of a file is prefix + its path below the root
    suffix: str = ""  # appended to every source of the tree, e.g. "commit 1a2b3c4d5e6f"
    shared: bool = True
    record: Mapping[str, str] = field(default_factory=dict)
    check: Callable[[Path, str], None] | None = None  # refuses a file that is not the one the tree should hold


@dataclass
class Context:
    """What one load knows about bases: the trees read under other names, every base file read, and
    whether the user accepts bases that move (a branch)."""

    allow_moving: bool = False
    top: str | None = None  # how sources name the user's own top recipe file
    own_files: frozenset[Path] = frozenset()  # other files the user says are their own (a sweep's swept recipe)
    own: set[str] = field(default_factory=set)  # how sources name those files
    roots: list[Root] = field(default_factory=list)
    records: list[dict[str, str]] = field(default_factory=list)
    stand_ins: dict[Path, tuple[Path, str]] = field(default_factory=dict)  # path -> (file read instead, label)

    def file_to_read(self, path: Path) -> Path:
        """The file holding `path`'s text (another file when it stands in, e.g. an old version from git)."""
        return self.stand_ins[path][0] if path in self.stand_ins else path

    def root_of(self, path: Path) -> Root | None:
        return next((r for r in self.roots if path.is_relative_to(r.path)), None)

    def label(self, path: Path) -> str | None:
        """How sources name `path`: peftrun:NAME, git+URL@REV#file, REV:file; None for a plain file."""
        if path in self.stand_ins:
            return self.stand_ins[path][1]
        root = self.root_of(path)
        if root is None:
            return None
        rel = path.relative_to(root.path).as_posix()
        return f"{PACKAGE_PREFIX}{rel.removesuffix('.yaml')}" if root.path == PACKAGE_DIR else f"{root.prefix}{rel}"

    def suffix(self, path: Path) -> str:
        root = self.root_of(path)
        return root.suffix if root else ""

    def shared_base(self, source: str) -> str | None:
        """The shared base file a source ("label:line:col (commit ...)") points into, if any."""
        for root in self.roots:
            if root.shared and source.startswith(root.prefix):
                file = source.removesuffix(f" ({root.suffix})").rsplit(":", 2)[0]
                return f"{file} ({root.suffix})" if root.suffix else file
        return None

    def verify(self, path: Path, where: str) -> None:
        """Before a base file is read: a file of a git tree must be the one its commit holds."""
        root = self.root_of(path)
        if root is not None and root.check is not None:
            root.check(path, where)

    def describe(self, source: str) -> str:
        """Who wrote a value that is not the user's own: a shared base, another file, or no one known."""
        base = self.shared_base(source)
        if base:
            return f"the shared base {base}"
        return f"the base file {source.rsplit(':', 2)[0]}" if source else "a value of unknown origin"

    def record(self, path: Path, display: str) -> None:
        """Remember a base file read: its name and commit (git) or content hash."""
        root = self.root_of(path)
        digest = hashlib.sha256(self.file_to_read(path).read_bytes()).hexdigest()
        entry = {"base": self.label(path) or display, "sha256": digest}
        entry.update(root.record if root else {})
        if entry not in self.records:
            self.records.append(entry)


def _package_base(name: str, where: str) -> Path:
    path = PACKAGE_DIR / f"{name}.yaml"
    if not PACKAGE_NAME.match(name) or not path.is_file():
        names = sorted(p.stem for p in PACKAGE_DIR.glob("*.yaml"))
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean `{PACKAGE_PREFIX}{close[0]}`?" if close else ""
        raise RecipeError(Problem(where, "extends", f"no shipped base named {name!r}{hint} (shipped: {', '.join(names)})"))
    return path


def parse_git(entry: str, where: str) -> tuple[str, str, str]:
    """`git+URL@REV#path` -> (URL, REV, path), or a located error saying which part is missing."""
    spec, _, file = entry.removeprefix(GIT_PREFIX).partition("#")
    url, _, rev = spec.rpartition("@")
    if url.startswith("-"):  # git would read it as an option
        raise RecipeError(Problem(where, "extends", f"{entry!r}: a repository URL cannot start with '-'"))
    if not url or not rev or ":" in rev:
        raise RecipeError(Problem(where, "extends", f"{entry!r}: name a tag or commit: git+URL@REV#path/to/base.yaml"))
    if not file:
        raise RecipeError(Problem(where, "extends", f"{entry!r}: name the file after `#`: git+URL@REV#path/to/base.yaml"))
    return url, rev, file


def _git_base(entry: str, where: str, ctx: Context) -> Path:
    url, rev, file = parse_git(entry, where)
    shown = public_url(url, where)  # what sources, records and messages name: no credentials
    tree, commit = checkout(url, rev, where, ctx.allow_moving)
    prefix = f"{GIT_PREFIX}{shown}@{rev}#"
    if not any(r.path == tree and r.prefix == prefix for r in ctx.roots):
        record = {"url": shown, "rev": rev, "commit": commit}
        check = partial(verify, url, commit, tree)
        ctx.roots.append(Root(tree, prefix, f"commit {commit[:12]}", record=record, check=check))
    path = (tree / file).resolve()
    if not path.is_relative_to(tree) or not path.is_file():
        raise RecipeError(Problem(where, "extends", f"no file {file} in {shown} at {rev} (commit {commit[:12]})"))
    return path


def locate(entry: str, parent: Path, where: str, ctx: Context) -> Path:
    """The local file an `extends` entry names (fetched into the git cache when it is a git base)."""
    if entry.startswith(PACKAGE_PREFIX):
        if not any(r.path == PACKAGE_DIR for r in ctx.roots):
            ctx.roots.append(Root(PACKAGE_DIR, PACKAGE_PREFIX))
        return _package_base(entry.removeprefix(PACKAGE_PREFIX), where)
    if entry.startswith(GIT_PREFIX):
        return _git_base(entry, where, ctx)
    path = (parent / entry).resolve()
    root = ctx.root_of(parent)
    if root is not None and not path.is_relative_to(root.path):
        raise RecipeError(Problem(where, "extends", f"{entry!r} leaves {root.prefix.rstrip('#:')}: a base names files of its own tree only"))
    return path


def accepts_moving(data: Mapping[str, Any]) -> bool:
    return data.get(MOVING_KEY) is True
