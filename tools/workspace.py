"""A thread's workspace: every file the role writes lives inside it.

Paths from users and models are untrusted. They are normalised, and anything
that would land outside the workspace (``..``, absolute paths, symlinks that
lead out) is refused. Writes are atomic: a reader never sees half a file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path, PurePosixPath

MAX_DOC_BYTES = 5 * 1024 * 1024
MAX_NAME_CHARS = 200
"""Longest file or folder name the workspace takes (file systems allow 255 bytes; UTF-8 needs room)."""
MAX_PATH_CHARS = 1024
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_SAFE_ID_MAX = 80
_HASHED = re.compile(r"~[0-9a-f]{16}$")


class WorkspaceError(ValueError):
    """A path or write the workspace refuses (the message says why)."""


def safe_id(value: str) -> str:
    """A file-system-safe form of a thread id, distinct for distinct ids.

    An id that is already safe (letters, digits, ``_.-``, at most 80 characters,
    not starting with ``.`` or ``-``) is its own form, so existing threads keep
    their folders. Any other id gets a readable prefix and ``~`` plus a hash of
    the whole id: ``team/alpha`` and ``team-alpha`` no longer share a workspace,
    and neither do two long ids with the same first 80 characters. ``~`` never
    occurs in a safe id, so a hashed form cannot equal one.
    """
    value = str(value)
    if value and len(value) <= _SAFE_ID_MAX and not _SAFE_ID.search(value) and value[0] not in ".-" \
            and not value.endswith("."):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    cleaned = _SAFE_ID.sub("-", value).strip(".-")[:48]
    return f"{cleaned}~{digest}"


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
        if len(text) > MAX_PATH_CHARS or any(len(part.encode("utf-8")) > MAX_NAME_CHARS for part in text.split("/")):
            raise WorkspaceError(f"{text[:60]!r}… is too long a path (at most {MAX_NAME_CHARS} bytes per name, "
                                 f"{MAX_PATH_CHARS} characters in all)")
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
        for parent in reversed(target.parents):
            if parent in self.root.parents or parent == self.root:
                continue
            if parent.exists() and not parent.is_dir():
                raise WorkspaceError(f"{relative!r} cannot be written: {self.relative(parent)!r} is a file, not a folder")
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
            return read_regular(target, MAX_DOC_BYTES).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WorkspaceError(f"{relative!r} is not UTF-8 text") from exc

    def files(self) -> list[str]:
        """Every regular file of the workspace, relative, sorted.

        Symlinks are left out (one leading outside must not be listed, zipped or
        read), and so are special files and half-written ``.tmp-`` files.
        """
        out = []
        for folder, dirs, names in os.walk(self.root):  # os.walk does not follow symlinked folders
            base = Path(folder)
            dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
            for name in names:
                path = base / name
                if name.startswith(".tmp-"):
                    continue
                try:
                    mode = path.lstat().st_mode
                except OSError:
                    continue
                if stat.S_ISREG(mode):
                    out.append(path.relative_to(self.root).as_posix())
        return sorted(out)


def read_regular(path: Path | str, limit: int) -> bytes:
    """Read at most ``limit`` bytes of a regular file, refusing devices, pipes and folders.

    ``/dev/zero`` reports size 0 and never ends, so the size check alone is not enough:
    the file type is checked on the opened descriptor, and the read itself is bounded.

    Raises:
        WorkspaceError: for a file that is not regular or is over ``limit`` bytes.
        OSError: when the file cannot be opened.

    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise WorkspaceError(f"{name[:60]!r}… is too long a path") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise WorkspaceError(f"{Path(name).name} is not a regular file (a device, pipe or folder); I read files only")
        if info.st_size > limit:
            raise WorkspaceError(f"{Path(name).name} is {info.st_size} bytes, over the {limit}-byte limit")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while being read
            raise WorkspaceError(f"{Path(name).name} is over the {limit}-byte limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def regular_files(folder: Path | str, max_files: int, max_bytes: int) -> list[Path]:
    """The regular files under ``folder`` (symlinks not followed, hidden folders skipped), sorted.

    Raises:
        WorkspaceError: when there are more than ``max_files`` of them or they
            hold more than ``max_bytes`` in all: the caller names fewer.

    """
    found: list[Path] = []
    total = 0
    root = Path(folder)
    for base, dirs, names in os.walk(root):
        here = Path(base)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(names):
            path = here / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode) or name.startswith(".tmp-"):
                continue
            found.append(path)
            total += info.st_size
            if len(found) > max_files or total > max_bytes:
                raise WorkspaceError(
                    f"that folder holds more than {max_files} files or {max_bytes // (1024 * 1024)} MB; "
                    "name a smaller folder or the files themselves"
                )
    return sorted(found)
