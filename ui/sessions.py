"""Which threads belong to which browser.

A browser session is identified by an *owner token*: a random secret made on
the server, kept in the session's ``gr.State`` and (so a reload or a restart
finds the threads again) in the browser's encrypted ``gr.BrowserState``. The
registry maps a token to the threads that browser created; every action on a
thread (open, answer, delete, preview, download, upload) checks ownership
here first, so one session can never reach another's threads or workspace,
even by sending a thread id it guessed.

Only a SHA-256 of each token is written to disk: reading the registry file
does not let anyone impersonate a browser.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
DEFAULT_TITLE = "New conversation"
MAX_TITLE_CHARS = 48


@dataclass
class ThreadRecord:
    """One thread of a browser: id, a readable title and when it was made."""

    thread_id: str
    title: str = DEFAULT_TITLE
    created: float = 0.0


def new_owner() -> str:
    """A fresh owner token (192 random bits)."""
    return secrets.token_urlsafe(24)


def is_token(value: object) -> bool:
    """Whether ``value`` has the shape of an owner token (never trust it further than that)."""
    return isinstance(value, str) and bool(_TOKEN_RE.match(value))


_NOT_A_TITLE = re.compile(r"^(\d+|default|d|ok|y|yes|#yolo|\*yolo|\*help)$", re.IGNORECASE)


def title_from(text: str) -> str:
    """A short thread title from what the user typed ("" for a bare number, ``default`` or ``*help``)."""
    words = " ".join(str(text).split())
    if _NOT_A_TITLE.match(words):
        return ""
    return words if len(words) <= MAX_TITLE_CHARS else words[: MAX_TITLE_CHARS - 1] + "…"


class ThreadRegistry:
    """Owner token → that browser's threads, persisted as JSON under the app home."""

    def __init__(self, path: Path | str) -> None:
        """Open (or start) the registry file ``path``."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._owners: dict[str, list[ThreadRecord]] = {}
        if self.path.is_file():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self._owners = {key: [ThreadRecord(**r) for r in records] for key, records in raw.items()}
            except (OSError, ValueError, TypeError):
                # A damaged registry loses the thread lists, never the threads themselves.
                self._owners = {}

    @staticmethod
    def _key(owner: str) -> str:
        return hashlib.sha256(owner.encode("utf-8")).hexdigest()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {key: [asdict(r) for r in records] for key, records in self._owners.items()}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def known(self, owner: str) -> bool:
        """Whether ``owner`` is a token this registry has seen."""
        with self._lock:
            return is_token(owner) and self._key(owner) in self._owners

    def threads(self, owner: str) -> list[ThreadRecord]:
        """The owner's threads, most recent first."""
        if not is_token(owner):
            return []
        with self._lock:
            records = list(self._owners.get(self._key(owner), []))
        return sorted(records, key=lambda r: r.created, reverse=True)

    def owns(self, owner: str, thread_id: str) -> bool:
        """Whether ``thread_id`` was created by ``owner``."""
        return any(r.thread_id == thread_id for r in self.threads(owner))

    def add(self, owner: str, thread_id: str) -> ThreadRecord:
        """Record a new thread of ``owner``."""
        if not is_token(owner):
            raise ValueError("not an owner token")
        record = ThreadRecord(thread_id, DEFAULT_TITLE, time.time())
        with self._lock:
            self._owners.setdefault(self._key(owner), []).append(record)
            self._save()
        return record

    def retitle(self, owner: str, thread_id: str, text: str) -> None:
        """Name a thread after its first message (only while it has the default title)."""
        title = title_from(text)
        if not title or not is_token(owner):
            return
        with self._lock:
            for record in self._owners.get(self._key(owner), []):
                if record.thread_id == thread_id and record.title == DEFAULT_TITLE:
                    record.title = title
                    self._save()

    def remove(self, owner: str, thread_id: str) -> bool:
        """Forget ``thread_id`` for ``owner``; False when it was not theirs."""
        if not is_token(owner):
            return False
        with self._lock:
            records = self._owners.get(self._key(owner), [])
            kept = [r for r in records if r.thread_id != thread_id]
            if len(kept) == len(records):
                return False
            self._owners[self._key(owner)] = kept
            self._save()
            return True
