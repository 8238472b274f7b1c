"""The PostgreSQL checkpointer for LangGraph Server (``langgraph dev`` / ``langgraph up``).

Name it in a ``langgraph.json`` as ``"checkpointer": {"path": "./agent/server_checkpointer.py:postgres"}``:
the server then keeps every thread in the same PostgreSQL database as the app's
own front ends do (``STREAMING_ENGINEER_CHECKPOINT``), so a thread begun in the
web app can be continued through the server's API, and several server
processes on several machines serve the same threads. The server runs graphs
asynchronously, hence the async saver (``agent.persistence`` opens the sync one).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.persistence import CheckpointError


@asynccontextmanager
async def postgres() -> AsyncIterator[BaseCheckpointSaver]:
    """Open the PostgreSQL checkpointer named by ``$STREAMING_ENGINEER_CHECKPOINT`` for the server's lifetime.

    Raises:
        CheckpointError: when the variable is not a ``postgresql://`` URL or the database cannot be reached
            (the message names the host, never the password).

    """
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection, OperationalError
    from psycopg.rows import dict_row

    url = os.environ.get("STREAMING_ENGINEER_CHECKPOINT", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise CheckpointError("set STREAMING_ENGINEER_CHECKPOINT to a postgresql:// URL to keep the server's threads in "
                              "PostgreSQL (or drop the checkpointer entry from langgraph.json)")
    try:
        conn = await AsyncConnection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except OperationalError as exc:
        host = url.split("@")[-1].split("/")[0]
        raise CheckpointError(f"cannot connect to the PostgreSQL checkpoint store at {host}") from exc
    async with conn:
        saver = AsyncPostgresSaver(conn)
        await saver.setup()
        yield saver
