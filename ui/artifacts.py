"""Previews and downloads of a thread's files.

Workspaces are never exposed to the web server (no ``allowed_paths``): a file
the user asks for is resolved inside its own thread's workspace, copied into
a private temporary folder and handed to Gradio, which serves that copy from
its cache. A request naming another thread's file therefore has nothing to
resolve against (ownership is checked by the caller).
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tools.workspace import Workspace, WorkspaceError

LANGUAGES = {
    ".py": "python",
    ".sql": "sql",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".sh": "shell",
    ".html": "html",
    ".js": "javascript",
    ".dockerfile": "dockerfile",
}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
MAX_PREVIEW_BYTES = 512 * 1024
_lock = threading.Lock()
_root: Path | None = None


@dataclass
class Preview:
    """How to show one file: rendered Markdown, highlighted code, or plain text."""

    name: str
    markdown: str | None = None
    code: str | None = None
    language: str | None = None
    note: str = ""


def _download_root() -> Path:
    global _root
    with _lock:
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix="se-downloads-"))
            atexit.register(shutil.rmtree, _root, True)
        return _root


def private_copy(path: Path, name: str | None = None) -> str:
    """Copy ``path`` into a fresh private temp folder and return the copy's path (for ``gr.File``)."""
    folder = _download_root() / secrets.token_hex(8)
    folder.mkdir(parents=True)
    target = folder / (name or path.name)
    shutil.copyfile(path, target)
    return str(target)


def preview(workspace: Workspace, relative: str) -> Preview:
    """Read ``relative`` inside ``workspace`` and decide how to show it.

    Raises:
        WorkspaceError: for paths outside the workspace or missing files.

    """
    path = workspace.resolve(relative)
    if not path.is_file():
        raise WorkspaceError(f"{relative!r} is not a file of this thread")
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if size > MAX_PREVIEW_BYTES:
        return Preview(relative, note=f"{relative} is {size // 1024} KB — too big to preview; download it instead.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Preview(relative, note=f"{relative} is not text; download it instead.")
    if suffix in MARKDOWN_SUFFIXES:
        return Preview(relative, markdown=text)
    return Preview(relative, code=text, language=LANGUAGES.get(suffix))


def download(workspace: Workspace, relative: str) -> str:
    """A private copy of one workspace file, ready to hand to ``gr.File``."""
    path = workspace.resolve(relative)
    if not path.is_file():
        raise WorkspaceError(f"{relative!r} is not a file of this thread")
    return private_copy(path)


def download_all(workspace: Workspace, thread_id: str) -> str | None:
    """A zip of every file of the workspace (``None`` when it is empty)."""
    files = workspace.files()
    if not files:
        return None
    folder = _download_root() / secrets.token_hex(8)
    folder.mkdir(parents=True)
    target = folder / f"streaming-engineer-{thread_id}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.write(workspace.resolve(relative), relative)
    return str(target)
