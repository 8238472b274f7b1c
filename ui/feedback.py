"""Thumbs up / down on answers, saved with their turn for the eval suite.

The file is ``$STREAMING_ENGINEER_HOME/feedback/feedback.jsonl``, one JSON
object per line (append-only; a reader should skip lines it cannot parse)::

    {
      "schema": 1,
      "ts": "2025-01-01T12:00:00+00:00",   # UTC, ISO 8601
      "thread_id": "3f2a9c1b0d4e",
      "rating": "up",                       # "up" or "down"
      "input": "*kafka-connector",          # the user's message of the rated turn ("" for the greeting)
      "output": "🌊 **Kafka connector** …", # everything the role answered in that turn
      "mode": "task",                       # commands | kb-mode | task | inactive, after the turn
      "message_index": 7,                   # position of the rated bubble in the chat
      "backend": "offline"                  # "offline" or "model"
    }

``evals`` can load it with :func:`read_feedback`.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

SCHEMA = 1
FEEDBACK_FILE = Path("feedback") / "feedback.jsonl"
MAX_FIELD_CHARS = 20_000
_LOCK = threading.Lock()


def feedback_path(home: Path | str) -> Path:
    """Where feedback of the app home ``home`` is kept."""
    return Path(home) / FEEDBACK_FILE


def _text(content: Any) -> str:
    """Plain text of a chat message's content (a string, a file or a component)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("path") or content.get("value") or "")
    if isinstance(content, list):
        return "\n".join(_text(part) for part in content)
    return "" if content is None else str(content)


def _field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def turn_of(history: list[Any], index: int) -> tuple[str, str]:
    """The turn that the bubble at ``index`` belongs to: ``(user input, role output)``.

    Step and tool bubbles (those with a metadata title) are left out of the
    output: feedback rates what the role said, not how it got there.
    """
    if not 0 <= index < len(history):
        return "", ""
    start = index
    while start >= 0 and _field(history[start], "role") != "user":
        start -= 1
    user = _text(_field(history[start], "content")) if start >= 0 else ""
    outputs = []
    for message in history[start + 1:]:
        if _field(message, "role") == "user":
            break
        metadata = _field(message, "metadata") or {}
        if isinstance(metadata, dict) and metadata.get("title"):
            continue
        outputs.append(_text(_field(message, "content")))
    return user, "\n\n".join(o for o in outputs if o)


def record_feedback(home: Path | str, *, thread_id: str, liked: bool, history: list[Any], index: int,
                    mode: str, backend: str) -> dict[str, Any]:
    """Append one rating to the feedback file.

    Args:
        home: the app home (``STREAMING_ENGINEER_HOME``).
        thread_id: the thread the rated turn belongs to.
        liked: True for thumbs up, False for thumbs down.
        history: the chat as shown (messages format).
        index: position of the rated bubble in ``history``.
        mode: the thread's mode after the turn.
        backend: ``"offline"`` or ``"model"``.

    Returns:
        The record written.

    """
    user, output = turn_of(history, index)
    record = {
        "schema": SCHEMA,
        "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "thread_id": thread_id,
        "rating": "up" if liked else "down",
        "input": user[:MAX_FIELD_CHARS],
        "output": output[:MAX_FIELD_CHARS],
        "mode": mode,
        "message_index": index,
        "backend": backend,
    }
    path = feedback_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _LOCK, path.open("a", encoding="utf-8") as handle:
        handle.write(line)
    return record


def read_feedback(home: Path | str) -> list[dict[str, Any]]:
    """Every well-formed feedback record of ``home`` (the eval suite's reader)."""
    path = feedback_path(home)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("rating") in ("up", "down"):
            records.append(record)
    return records
