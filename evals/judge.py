"""A model-judged groundedness score: how much of an answer its passages support.

Only with a model configured (``--backend openai``). The judge is the same
endpoint, at temperature 0, asked for a JSON verdict; its calls go through
the run's caching proxy like every other model call. A verdict that cannot
be read scores nothing (``None``) rather than a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

JUDGE_SYSTEM = """You grade answers for groundedness. You get a question, numbered passages and an answer.
Judge only whether each claim of the answer is supported by the passages (not whether it is true elsewhere).
A statement that the knowledge base has no answer is grounded when the passages do not answer the question.
Reply with JSON only: {"score": <number from 0 to 1: the share of the answer's claims the passages support>,
"unsupported": [<short quotes of unsupported claims>]}"""
MAX_PASSAGE_CHARS = 1500
"""Each passage is cut to this: enough to judge, cheap to send."""


class GroundednessJudge:
    """Scores answers with the configured chat model.

    Args:
        model: a LangChain chat model; default the app's configured one.

    """

    def __init__(self, model: Any = None) -> None:
        if model is None:
            from agent.llm import chat_model

            model = chat_model()
        self.model = model
        self.failures = 0

    def score(self, question: str, answer: str, passages: Sequence[str]) -> float | None:
        """The share of the answer's claims the passages support (0..1), or ``None`` when unjudged."""
        if self.model is None or not answer.strip():
            return None
        from langchain_core.messages import HumanMessage, SystemMessage

        from agent.llm.calls import complete

        # The topic menu after an answer is navigation, not a claim.
        body = answer.split("\n\nTopics:\n", 1)[0]
        numbered = "\n\n".join(f"[{n}] {p[:MAX_PASSAGE_CHARS]}" for n, p in enumerate(passages, start=1)) or "(none)"
        prompt = f"Question: {question}\n\nPassages:\n{numbered}\n\nAnswer:\n{body}"
        try:
            # Bounded like every model call: streamed, the judge's token limit, cut if it loops.
            reply = complete(self.model, [SystemMessage(JUDGE_SYSTEM), HumanMessage(prompt)], kind="judge")
        except Exception:  # noqa: BLE001 - an endpoint failure leaves the answer unjudged, not the run broken
            self.failures += 1
            return None
        return parse_score(str(reply.content))


def parse_score(text: str) -> float | None:
    """The ``score`` of a JSON verdict (also inside a code fence or prose), clamped to 0..1."""
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return None
    try:
        value = float(json.loads(match.group(0)).get("score"))
    except (ValueError, TypeError, AttributeError):
        return None
    return min(1.0, max(0.0, value))
