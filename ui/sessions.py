"""Which threads belong to which browser.

A browser session is identified by an *owner token*: a random secret made on
the server, kept in the session's ``gr.State`` and (so a reload or a restart
finds the threads again) in the browser's encrypted ``gr.BrowserState``. The
registry maps a token to the threads that browser created; every action on a
thread (open, answer, delete, preview, download, upload) checks ownership
here first, so one session can never reach another's threads or workspace,
even by sending a thread id it guessed.

Only a SHA-256 of each token is written to disk: reading the registry
database does not let anyone impersonate a browser.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
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
    """Owner token → that browser's threads, in an SQLite file under the app home.

    One row per thread, so recording a thread or its title writes that row
    only (a JSON file rewritten whole on every change grew slower with every
    thread the app had served), and several app processes can share it.
    A ``threads.json`` beside it, from earlier versions, is imported once.
    """

    def __init__(self, path: Path | str) -> None:
        """Open (or start) the registry database ``path``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS threads (owner TEXT NOT NULL, thread_id TEXT NOT NULL, "
                         "title TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (owner, thread_id))")
        self._import_json(self.path.with_name("threads.json"))

    def _import_json(self, legacy: Path) -> None:
        """Move the threads of an earlier JSON registry into the database (once; the file is renamed)."""
        if not legacy.is_file():
            return
        try:
            raw = json.loads(legacy.read_text(encoding="utf-8"))
            rows = [(key, str(r["thread_id"]), str(r.get("title") or DEFAULT_TITLE), float(r.get("created") or 0.0))
                    for key, records in raw.items() for r in records]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            rows = []  # a damaged registry loses the thread lists, never the threads themselves
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO threads VALUES (?, ?, ?, ?)", rows)
        legacy.replace(legacy.with_name("threads.json.imported"))

    @staticmethod
    def _key(owner: str) -> str:
        return hashlib.sha256(owner.encode("utf-8")).hexdigest()

    def known(self, owner: str) -> bool:
        """Whether ``owner`` is a token this registry has seen."""
        if not is_token(owner):
            return False
        with self._lock:
            row = self._db.execute("SELECT 1 FROM threads WHERE owner = ? LIMIT 1", (self._key(owner),)).fetchone()
        return row is not None

    def threads(self, owner: str) -> list[ThreadRecord]:
        """The owner's threads, most recent first."""
        if not is_token(owner):
            return []
        with self._lock:
            rows = self._db.execute("SELECT thread_id, title, created FROM threads WHERE owner = ? "
                                    "ORDER BY created DESC", (self._key(owner),)).fetchall()
        return [ThreadRecord(*row) for row in rows]

    def count(self, owner: str) -> int:
        """How many threads ``owner`` has."""
        if not is_token(owner):
            return 0
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM threads WHERE owner = ?", (self._key(owner),)).fetchone()[0])

    def owns(self, owner: str, thread_id: str) -> bool:
        """Whether ``thread_id`` was created by ``owner``."""
        if not is_token(owner):
            return False
        with self._lock:
            row = self._db.execute("SELECT 1 FROM threads WHERE owner = ? AND thread_id = ?",
                                   (self._key(owner), str(thread_id))).fetchone()
        return row is not None

    def add(self, owner: str, thread_id: str) -> ThreadRecord:
        """Record a new thread of ``owner``."""
        if not is_token(owner):
            raise ValueError("not an owner token")
        record = ThreadRecord(thread_id, DEFAULT_TITLE, time.time())
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO threads VALUES (?, ?, ?, ?)",
                             (self._key(owner), record.thread_id, record.title, record.created))
        return record

    def retitle(self, owner: str, thread_id: str, text: str) -> None:
        """Name a thread after its first message (only while it has the default title)."""
        title = title_from(text)
        if not title or not is_token(owner):
            return
        with self._lock:
            self._db.execute("UPDATE threads SET title = ? WHERE owner = ? AND thread_id = ? AND title = ?",
                             (title, self._key(owner), thread_id, DEFAULT_TITLE))

    def remove(self, owner: str, thread_id: str) -> bool:
        """Forget ``thread_id`` for ``owner``; False when it was not theirs."""
        if not is_token(owner):
            return False
        with self._lock:
            cursor = self._db.execute("DELETE FROM threads WHERE owner = ? AND thread_id = ?",
                                      (self._key(owner), thread_id))
        return cursor.rowcount > 0
