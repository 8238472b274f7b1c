"""Checkpointers: SQLite under the app home by default, PostgreSQL when configured."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver


class CheckpointError(RuntimeError):
    """The checkpoint store cannot be opened (the message says why, never with a password)."""


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

    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(home / "checkpoints.sqlite"), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver
