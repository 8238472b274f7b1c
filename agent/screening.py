"""Screen what a user types before anything keeps or sends it: size, binary data, secrets.

One place for the rules every entry point applies: the session driver screens
a typed turn, ``agent.graph`` screens a turn sent as chat ``messages``, and
``agent.nodes.common.read_answer`` screens an answer resumed straight into the
graph (LangGraph Server clients send ``Command(resume=...)`` without a driver).
"""

from __future__ import annotations

from tools.secrets import redact
from tools.values import check_value

MAX_INPUT_CHARS = 20_000
SECRET_VALUE_ERROR = "secret_value"
"""The input error of an answer that is not a ``scope/key`` where one was asked: it is never stored."""
ACCEPT_DEFAULT = frozenset({"default", "d", "ok", "y", "yes", ".", "默认", "好"})
"""Answers that take a question's default."""
_KEEP_AT_SECRET_QUESTION = ("*", "#yolo")


def screen(text: str, size: int | None = None) -> tuple[str, str, str]:
    """Screen raw user text.

    Args:
        text: what the user sent (or its start).
        size: the whole message's length, when ``text`` is only its start.

    Returns:
        ``(clean text, error, secret reason)``: ``error`` is ``too_long:N/LIMIT``
        or ``binary`` when the text must not be used; ``secret reason`` says what
        was removed when the text carried something that looks like a secret.

    """
    size = len(text) if size is None else max(size, len(text))
    if size > MAX_INPUT_CHARS:
        return "", f"too_long:{size}/{MAX_INPUT_CHARS}", ""
    bad = sum(1 for c in text if (ord(c) < 32 and c not in "\t\n\r") or c == "\ufffd")
    if text and bad / len(text) > 0.1:
        return "", "binary", ""
    clean = "".join(c for c in text if ord(c) >= 32 or c in "\t\n").replace("\ufffd", "")
    clean, reasons = redact(clean)
    return clean, "", " and ".join(reasons)


def refused_secret(kind: str | None, text: str) -> bool:
    """Whether ``text`` answers a question of ``kind`` ``secret_ref`` with something other than ``scope/key``.

    Such an answer is most likely the secret itself, so it must go nowhere: not into
    the state, the transcript or a model request. Commands, ``#yolo`` and the words
    that take the default are let through.
    """
    if kind != "secret_ref":
        return False
    stripped = text.strip()
    if not stripped or stripped.lower().startswith(_KEEP_AT_SECRET_QUESTION) or stripped.lower() in ACCEPT_DEFAULT:
        return False
    return not check_value("secret_ref", stripped).ok


__all__ = ["ACCEPT_DEFAULT", "MAX_INPUT_CHARS", "SECRET_VALUE_ERROR", "refused_secret", "screen"]
