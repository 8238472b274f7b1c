"""A thread's workspace: every file the role writes lives inside it.

Paths from users and models are untrusted. They are normalised, and anything
that would land outside the workspace (``..``, absolute paths, symlinks that
lead out) is refused. Writes are atomic: a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path, PurePosixPath

MAX_DOC_BYTES = 5 * 1024 * 1024
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


class WorkspaceError(ValueError):
    """A path or write the workspace refuses (the message says why)."""


def safe_id(value: str) -> str:
    """A file-system-safe form of a thread id."""
    cleaned = _SAFE_ID.sub("-", value).strip(".-")[:80]
    return cleaned or "default"


class Workspace:
    """The folder one thread writes into."""

    def __init__(self, root: Path | str) -> None:
        """Create (if needed) the workspace folder ``root``."""
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_thread(cls, home: Path | str, thread_id: str) -> Workspace:
        """The workspace of ``thread_id`` under the app home."""
        return cls(Path(home) / "workspace" / safe_id(thread_id))

    def resolve(self, relative: str) -> Path:
        """Map a user-given relative path to a path inside the workspace.

        Raises:
            WorkspaceError: for empty, absolute or escaping paths.

        """
        text = str(relative or "").strip().replace("\\", "/")
        if not text or "\x00" in text:
            raise WorkspaceError("a document path is needed")
        if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or text.startswith("~"):
            raise WorkspaceError(f"{relative!r} is an absolute path; give a path inside the workspace, such as docs/plan.md")
        parts = PurePosixPath(text).parts
        if any(part == ".." for part in parts):
            raise WorkspaceError(f"{relative!r} leads outside the workspace ('..' is not allowed)")
        target = self.root.joinpath(*[p for p in parts if p not in ("", ".")])
        # resolve() follows symlinks, so a link inside that points out is caught here.
        resolved = target.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise WorkspaceError(f"{relative!r} resolves outside the workspace (a symlink?)")
        return resolved

    def relative(self, path: Path) -> str:
        """The workspace-relative form of an absolute path inside it."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def write(self, relative: str, content: str | bytes) -> Path:
        """Write a file atomically inside the workspace.

        Returns:
            The absolute path written.

        """
        data = content.encode("utf-8") if isinstance(content, str) else content
        if len(data) > MAX_DOC_BYTES:
            raise WorkspaceError(f"{relative}: {len(data)} bytes is over the {MAX_DOC_BYTES}-byte document limit")
        target = self.resolve(relative)
        if target == self.root or target.is_dir():
            raise WorkspaceError(f"{relative!r} is a folder, not a file")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Re-check after mkdir: a parent could be a symlink created meanwhile.
        self.resolve(self.relative(target.parent) + "/" + target.name)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def read(self, relative: str) -> str:
        """Read a UTF-8 text file of the workspace."""
        target = self.resolve(relative)
        if not target.is_file():
            raise WorkspaceError(f"{relative!r} is not a file in the workspace")
        try:
            return target.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise WorkspaceError(f"{relative!r} is not UTF-8 text") from exc

    def files(self) -> list[str]:
        """Every file of the workspace, relative, sorted."""
        return sorted(
            self.relative(p) for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
        )
