"""Read a form value out of a free-text answer ("about ten minutes, I think").

Used by ``ask_input`` only after the answer failed validation and only when a
model is configured. What comes back is validated by ``tools.values.check_value``
like any typed answer, and names, paths and keys must appear in what the user
wrote, so the model can reformat an answer but not invent one.

Never sent: an answer to a secret question (``secret_ref``: a refused answer
there may be the secret itself, typed by mistake) and any answer that looks
like it holds a secret. The call is bounded like every other
(``agent.llm.calls``: one line, a few tokens).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM

from agent.llm import prompts
from agent.llm.backend import chat_model
from agent.llm.calls import complete
from agent.llm.failures import describe_failure, is_graph_signal
from tools.templates import find_secret
from tools.values import KIND_HINTS

log = logging.getLogger("streaming_engineer.llm")

MAX_TEXT_CHARS = 1000
"""Longer answers are not sent: a form value is short."""
_LITERAL_KINDS = frozenset({"table", "topic", "url", "path", "secret_ref", "choice"})
"""Kinds whose value must be copied from the answer, not composed."""
NEVER_SENT_KINDS = frozenset({"secret_ref"})
"""Kinds whose answers never go to the model: what fails there may be the secret itself."""


def _grounded(value: str, text: str, kind: str, choices: Sequence[str]) -> bool:
    if kind == "choice":
        return value.lower() in {str(c).lower() for c in choices}
    if kind not in _LITERAL_KINDS:
        return True
    haystack = text.lower().replace("`", "")
    parts = [p for p in re.split(r"[\s,/.]+", value.lower().replace("`", "")) if p]
    return all(part in haystack for part in parts)


def extract_value(question: str, kind: str, text: str, choices: Sequence[str] = ()) -> str | None:
    """The value the user's free text gives for a question, or ``None``.

    Args:
        question: the question as asked.
        kind: the expected kind (``tools.values.KIND_HINTS``).
        text: what the user wrote.
        choices: the allowed answers of a ``choice`` question.

    Returns:
        The extracted value (still to be validated), or ``None`` offline, on
        any model failure, when the answer states no such value, and without
        asking the model for a secret question or an answer that looks secret.

    """
    if kind in NEVER_SENT_KINDS or not text.strip() or len(text) > MAX_TEXT_CHARS or find_secret(text):
        return None
    model = chat_model()
    if model is None:
        return None
    listed = f" — one of: {', '.join(choices)}" if choices else ""
    system = prompts.EXTRACT_SYSTEM.format(question=question, hint=KIND_HINTS.get(kind, KIND_HINTS["text"]),
                                           choices=listed)
    try:
        # nostream: the extraction is bookkeeping, not an answer, so its tokens are not streamed to the user.
        reply = complete(model, [SystemMessage(system), HumanMessage(text)], kind="extract",
                         config={"tags": [TAG_NOSTREAM]})
    except Exception as exc:
        if is_graph_signal(exc):
            raise
        log.warning("value extraction failed: %s", describe_failure(exc))
        return None
    value = str(reply.text).strip().strip("\"'").strip()
    if not value or value.upper() == prompts.EXTRACT_NONE or "\n" in value:
        return None
    return value if _grounded(value, text, kind, choices) else None
