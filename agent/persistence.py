"""Checkpointers: SQLite under the app home by default, PostgreSQL when configured."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver

_T = TypeVar("_T")
BUSY_ATTEMPTS = 40
"""How often opening the SQLite store is tried while another process holds it (about 10 s in all)."""


class CheckpointError(RuntimeError):
    """The checkpoint store cannot be opened (the message says why, never with a password)."""


def _when_free(action: Callable[[], _T]) -> _T:
    """Run ``action``, retrying while another process holds the database.

    Switching to WAL takes an exclusive lock and SQLite does not wait on its busy
    timeout for it, so several processes opening a fresh home at once fail with
    "database is locked" unless they retry.
    """
    for attempt in range(BUSY_ATTEMPTS):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == BUSY_ATTEMPTS - 1:
                raise
            time.sleep(0.05 + random.random() * 0.2)
    raise AssertionError("unreachable")


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (or make an existing one so).

    An existing file is never opened: closing any descriptor of a database file drops every
    POSIX lock this process holds on it, so another connection's SQLite locks would be lost
    and concurrent writers could corrupt the store. Only a file that did not exist is created.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass  # not ours to change (a shared file): leave it


def open_checkpointer(home: Path, url: str | None = None) -> BaseCheckpointSaver:
    """Open the checkpointer every thread is kept in.

    Args:
        home: the app home; the SQLite file is ``home/checkpoints.sqlite``.
        url: a ``postgresql://`` URL (default: ``$STREAMING_ENGINEER_CHECKPOINT``)
            so several app processes can serve the same threads.

    """
    url = url if url is not None else os.environ.get("STREAMING_ENGINEER_CHECKPOINT", "")
    if url.startswith(("postgres://", "postgresql://")):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection, OperationalError
        from psycopg.rows import dict_row

        try:
            conn = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        except OperationalError as exc:
            host = url.split("@")[-1].split("/")[0]
            raise CheckpointError(f"cannot connect to the PostgreSQL checkpoint store at {host}") from exc
        saver = PostgresSaver(conn)
        saver.setup()
        return saver
    if url:
        raise CheckpointError("STREAMING_ENGINEER_CHECKPOINT must be a postgresql:// URL (or unset for SQLite)")
    from langgraph.checkpoint.sqlite import SqliteSaver

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / "checkpoints.sqlite"
    try:
        private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        _when_free(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        saver = SqliteSaver(conn)
        _when_free(saver.setup)
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(
            f"the checkpoint store {path} cannot be used ({exc}); if it is damaged, move it aside "
            "(its threads are lost) and start again"
        ) from exc
    except OSError as exc:
        raise CheckpointError(f"cannot open the checkpoint store {path}: {exc.strerror}") from exc
    return saver
