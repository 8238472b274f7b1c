"""Run-scoped configuration passed to every node as ``context=``."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.loader import PACK_DIR, Pack, cached_pack


def default_home() -> Path:
    """``$STREAMING_ENGINEER_HOME`` or ``~/.streaming-engineer``."""
    return Path(os.environ.get("STREAMING_ENGINEER_HOME") or Path.home() / ".streaming-engineer").expanduser()


def make_private(home: Path) -> None:
    """Create the app home readable by its owner only; an existing app home is made so too.

    A folder that is not (yet) an app home — say ``--home /tmp`` — keeps its mode:
    only what the app creates in it is private.
    """
    created = not home.exists()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if created or any((home / name).exists() for name in _APP_HOME_MARKS):
        _owner_only(home)
    for name in ("workspace", "transcripts", "locks"):
        (home / name).mkdir(exist_ok=True, mode=0o700)
        _owner_only(home / name)
    for name in ("index", "ingested"):  # the team's ingested documents live here: private too
        if (home / name).is_dir():
            _owner_only(home / name)


def _owner_only(folder: Path) -> None:
    """``chmod 700``, where the file system allows it (a mounted or foreign folder may not)."""
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)


_APP_HOME_MARKS = ("checkpoints.sqlite", "index", "ingested", "transcripts")
"""What only an app home holds: a folder with one of these is made private even if the app did not create it."""


@dataclass(frozen=True)
class Context:
    """What a run needs besides the thread's state.

    Attributes:
        home: the app folder (index, checkpoints, workspaces).
        pack_dir: the knowledge pack folder the role is defined by.
        allow_local_files: let checklist targets name files relative to the
            current folder (terminal front ends); the web UI keeps this off.

    """

    home: str = field(default_factory=lambda: str(default_home()))
    pack_dir: str = str(PACK_DIR)
    allow_local_files: bool = False

    @property
    def pack(self) -> Pack:
        """The loaded pack (cached per folder)."""
        return cached_pack(self.pack_dir)


_retriever_lock = threading.Lock()


def retriever_for(home: str, pack_dir: str):
    """One retriever per (home, pack): the index is opened once per process.

    Opened under a lock: the web app's warm-up and a first question arriving
    meanwhile would otherwise open two embedded Chroma clients on a fresh home
    at once, and one of them fails ("Could not connect to tenant"), so the
    warm-up was lost and the question did all its work again.
    """
    with _retriever_lock:
        return _open_retriever(home, pack_dir)


@functools.lru_cache(maxsize=8)
def _open_retriever(home: str, pack_dir: str):
    from knowledge.retrieval import Retriever

    return Retriever(home=Path(home), pack_dir=Path(pack_dir))
