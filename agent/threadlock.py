"""One turn at a time per thread, across processes, with a record of a turn that never finished.

A thread's turn holds an exclusive ``flock`` on ``home/locks/<safe id>.lock``
(released by the kernel if the process dies), so a second process — or a
second browser tab — driving the same thread is told it is busy instead of
interleaving its answers with the first one's questions.

While the turn runs, the lock file holds the time it started; a turn that ends
empties it. A lock file found non-empty therefore names a turn that was killed
before its state was saved: the files its workspace received since then are
on disk, but the thread's state does not know them, and the next turn says so.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.workspace import Workspace, safe_id


class ThreadBusyError(RuntimeError):
    """Another turn of the same thread is running."""


@dataclass
class ThreadLock:
    """The held lock of one thread's turn (use as a context manager)."""

    home: Path
    thread_id: str
    unfinished_since: float | None = field(default=None, init=False)
    """When the previous turn that never finished had started (``None``: it finished)."""
    _fd: int | None = field(default=None, init=False, repr=False)

    @property
    def path(self) -> Path:
        """The lock file."""
        return Path(self.home) / "locks" / f"{safe_id(self.thread_id)}.lock"

    def __enter__(self) -> ThreadLock:
        """Take the lock or raise :class:`ThreadBusyError`; note an unfinished previous turn."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ThreadBusyError(self.thread_id) from exc
        self._fd = fd
        previous = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        try:
            self.unfinished_since = float(previous) if previous else None
        except ValueError:
            self.unfinished_since = None
        os.ftruncate(fd, 0)
        # No fsync: what this guards against is a killed process, and the kernel keeps its writes.
        os.pwrite(fd, f"{time.time():.6f}".encode("ascii"), 0)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Mark the turn finished and release the lock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def files_since(workspace: Workspace, since: float, known: list[str]) -> list[str]:
    """The workspace files changed at or after ``since`` that the thread's state does not list."""
    out = []
    for relative in workspace.files():
        try:
            changed = (workspace.root / relative).stat().st_mtime
        except OSError:
            continue
        if changed >= since - 1 and relative not in known:  # a second of slack for coarse file-system clocks
            out.append(relative)
    return out
