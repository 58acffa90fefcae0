"""One writer per run directory: an OS lock (flock) held for the whole life of a run.

The lock lives on `RUN_DIR/.peftrun.lock` and belongs to the process (the kernel drops it when the process
ends, however it ends), so a killed run never leaves a stale lock. The file records who holds it (process
id, host, start time) for the message a second start prints. A start that wrote nothing removes it
again (and the folders it made), so a failed start leaves nothing behind.

Multi-process runs: the launching `peftrun RECIPE` takes the lock before it checks the run directory and
keeps it while the launcher runs (the launcher process inherits it too); it names itself in HOLDER_ENV
for the processes it starts, and their rank 0 accepts a lock held by that process as its own. A rank 0
that was launched some other way (plain `accelerate launch`) takes the lock itself.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from peftrun.errors import RunDirError

LOCK_FILE = ".peftrun.lock"
HOLDER_ENV = "PEFTRUN_RUN_DIR_LOCK_HOLDER"  # process id of the launching process that holds the lock


@dataclass(frozen=True)
class Holder:
    pid: int | None
    host: str
    started: str

    def describe(self) -> str:
        if self.pid is None:
            return "another process (it has not written its name yet)"
        return f"process {self.pid} on {self.host}, started {self.started}"


class RunDirLock:
    """An exclusive, non-blocking flock on the run directory's lock file."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self.fd: int | None = None
        self.created: list[Path] = []  # folders this lock made, outermost first
        self.made_file = False  # this lock created the lock file
        self.refused = False  # the start was refused (RunDirError): what it made goes

    def acquire(self, accept_holder: int | None = None) -> bool:
        """Take the lock (True); or, when `accept_holder` holds it, go on without it (False).
        Anyone else holding it: RunDirError naming them."""
        while True:
            self.created += [p for p in (*reversed(self.run_dir.parents), self.run_dir) if not p.exists()]
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # a file, or a link to nothing (mkdir would never succeed)
                raise RunDirError(f"{self.run_dir} exists and is not a folder (a link to a missing one?): "
                                  "choose another output.dir") from None
            try:
                fd = self._open()
            except FileNotFoundError:  # a holder that wrote nothing removed the folder as it left
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                if accept_holder is not None and holder.pid == accept_holder:
                    return False
                raise RunDirError(
                    f"{self.run_dir} is being written by {holder.describe()}: one run directory has one writer. "
                    "Wait for that run to end (or stop it), or choose another output.dir"
                ) from None
            if _is_the_file(fd, self.path):
                break
            os.close(fd)  # a holder that wrote nothing removed the file as it left: lock the new one
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        _write_record(fd, self.path, record)
        self.fd = fd
        return True

    def _open(self) -> int:
        """The lock file, never through a link, never blocking on a FIFO: created (O_EXCL) or a regular file
        of this user that is already there; anything else is refused. Read-only: flock needs no write access."""
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            self.made_file = True
        except FileExistsError:
            try:
                fd = os.open(self.path, flags)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise RunDirError(f"{self.path} is a symbolic link: refusing to use it as the run's lock "
                                  "(someone may want the run to write elsewhere); remove it") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            os.close(fd)
            raise RunDirError(f"{self.path} is not a regular file of yours: refusing to use it as the run's lock; "
                              "remove it, or choose another output.dir")
        return fd

    def release(self) -> None:
        """Unlock. A start that wrote nothing, or that was refused, leaves nothing: the lock file it made
        (removed while still locked: a process waiting on it sees that and locks a new one) and the folders."""
        if self.fd is None:
            return
        try:
            if self.made_file and self.refused or [p.name for p in self.run_dir.iterdir()] == [LOCK_FILE]:
                self.path.unlink()
                for folder in reversed(self.created):
                    folder.rmdir()
        except OSError:  # a folder someone else wrote to, a read-only file system: leave the rest
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _write_record(fd: int, path: Path, record: str) -> None:
    """Who holds the lock, written into the locked file itself (never through a link put in its place)."""
    out = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if (os.fstat(out).st_dev, os.fstat(out).st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            os.write(out, record.encode())
    finally:
        os.close(out)


def _is_the_file(fd: int, path: Path) -> bool:
    """The locked file is still the one at `path`."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _read_holder(fd: int, attempts: int = 20) -> Holder:
    """Who holds the lock; a holder that has just locked may not have written its name yet: wait a little."""
    for _ in range(attempts):
        text = os.pread(fd, 4096, 0).decode(errors="replace")
        try:
            data = json.loads(text)
            return Holder(int(data["pid"]), str(data["host"]), str(data["started"]))
        except (ValueError, KeyError, TypeError):
            time.sleep(0.01)
    return Holder(None, "", "")


def launcher_holder() -> int | None:
    """The launching process that holds the lock for this one (HOLDER_ENV), if any."""
    value = os.environ.get(HOLDER_ENV, "")
    return int(value) if value.isdigit() else None


@contextmanager
def holding(run_dir: Path, *, main: bool = True) -> Iterator[RunDirLock | None]:
    """Hold the run directory's lock for the block (only the main process of a run takes it)."""
    if not main:
        yield None
        return
    lock = RunDirLock(run_dir)
    lock.acquire(accept_holder=launcher_holder())
    try:
        yield lock
    except RunDirError:
        lock.refused = True
        raise
    finally:
        lock.release()
