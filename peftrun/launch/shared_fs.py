"""Is a path on a filesystem every node of a job sees, and does the run directory's lock work there?

The filesystem of a path is the longest mount point above it in /proc/mounts. Network and parallel filesystems
are shared; a disk, tmpfs or a container's overlay is one machine's own. flock works on NFS (Linux maps it to
NFS byte-range locks), CephFS and GPFS; Lustre honours it only when mounted with `-o flock` (`localflock` locks
one node only, the default refuses it). Elsewhere a real flock on a file there is the test.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

SHARED = frozenset({"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs", "fuse.glusterfs",
                    "cifs", "smb3", "9p", "virtiofs", "fuse.juicefs", "fuse.weka", "wekafs", "panfs", "fuse.sshfs"})
LOCAL = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "aufs", "zfs", "vfat",
                   "f2fs", "devtmpfs"})


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    options: frozenset[str]

    @property
    def shared(self) -> bool | None:
        """True shared, False one machine's own, None unknown (a FUSE filesystem, say)."""
        return True if self.fstype in SHARED else False if self.fstype in LOCAL else None


def _unescape(field: str) -> str:
    """/proc/mounts writes spaces, tabs and newlines in paths as octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def read_mounts(text: str | None = None) -> list[Mount]:
    if text is None:
        text = Path("/proc/mounts").read_text()
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mounts.append(Mount(_unescape(fields[1]), fields[2], frozenset(fields[3].split(","))))
    return mounts


def existing_parent(path: Path) -> Path:
    """The path itself, or its nearest parent that exists (a run directory may not exist yet)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The filesystem holding `path`: the longest mount point above it (the last one mounted wins)."""
    target = str(path.resolve())  # symbolic links of the part that exists resolved
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        if target == point or target.startswith(point + "/") or point == "/":
            if best is None or len(point) >= len(best.point.rstrip("/") or "/"):
                best = mount
    return best


def not_shared(path: Path, what: str, mounts: list[Mount]) -> str | None:
    """Why the nodes of a job cannot share `path` (None: they can, or the filesystem is not known)."""
    mount = mount_of(path, mounts)
    if mount is None or mount.shared is not False:
        return None
    return (f"{what} {path} is on {mount.fstype} ({mount.point}), a filesystem of this machine only: the other nodes "
            "do not see it. Put it on a filesystem every node mounts (NFS, Lustre, GPFS, BeeGFS, CephFS)")


def lock_problem(path: Path, mounts: list[Mount]) -> str | None:
    """Why the run directory's lock (flock) would not keep out a second job there; None when it works."""
    mount = mount_of(path, mounts)
    if mount is not None and mount.fstype == "lustre" and "flock" not in mount.options:
        how = "locks one node only (localflock)" if "localflock" in mount.options else "refuses it (no flock option)"
        return (f"the run directory's lock is a flock, which Lustre at {mount.point} {how}: mount it with -o flock, "
                "or put output.dir on a filesystem with working locks")
    folder = existing_parent(path)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".peftrun-lock-test-") as probe:
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
    except PermissionError:
        return f"cannot write in {folder}: the run directory needs a writable filesystem"
    except OSError as exc:
        return (f"flock does not work on {folder} ({os.strerror(exc.errno) if exc.errno else exc}): the run directory's "
                "lock cannot keep a second run out; put output.dir on a filesystem with working locks")
    return None
