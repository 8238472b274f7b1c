"""A thread's whole conversation, one JSON line per turn, beside its checkpoints.

The graph state keeps only the recent messages (``agent.state.KEEP_MESSAGES``):
every turn reads and writes the state, so a state that grew with the thread
made each turn slower than the one before. What was said stays here instead,
for a front end that shows a thread again from its beginning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tools.workspace import safe_id

MAX_LINE_CHARS = 200_000
"""A turn longer than this (a huge rendered document) is clipped in the transcript, never in the state."""


class Transcript:
    """The transcript file of one thread under the app home."""

    def __init__(self, home: Path | str, thread_id: str) -> None:
        """The file for ``thread_id`` (``home/transcripts/<safe id>.jsonl``); nothing is created yet."""
        self.path = Path(home) / "transcripts" / f"{safe_id(thread_id)}.jsonl"

    def append(self, user: str, replies: list[str], question: str | None) -> None:
        """Add one turn: what the user said, what the role said, the question it left waiting."""
        record = {"user": user, "replies": replies, "question": question}
        line = json.dumps(record, ensure_ascii=False)
        if len(line) > MAX_LINE_CHARS:
            clipped = [r[: MAX_LINE_CHARS // max(1, len(replies))] for r in replies]
            line = json.dumps({**record, "replies": clipped}, ensure_ascii=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line in append mode: turns of the same thread from two processes never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)

    def turns(self) -> list[dict[str, Any]] | None:
        """Every recorded turn, oldest first; ``None`` when the thread has no transcript."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        out = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: the turns around it still show
            if isinstance(record, dict):
                out.append(record)
        return out

    def delete(self) -> None:
        """Remove the transcript."""
        self.path.unlink(missing_ok=True)
