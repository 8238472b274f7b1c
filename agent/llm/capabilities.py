"""Whether an endpoint calls tools, asked once per endpoint and remembered for the session.

Not every OpenAI-compatible server calls tools. llama-cpp-python's server
with a plain chat format (``--chat_format gemma``) ignores ``tools`` and
answers in text; Ollama refuses them for a model without a tool template,
vLLM without ``--enable-auto-tool-choice``, llama.cpp's server without
``--jinja``. Against such a server the in-role answer runs without tools, on
the passages the app retrieves itself (``conversation.respond``).

``STREAMING_ENGINEER_TOOLS=auto`` (the default) asks each endpoint once: one
small call that offers a function with no arguments and asks for it. A server
that calls tools answers with that call; one that ignores tools answers in
text; one that refuses them says so in an error. ``on`` and ``off`` skip the
question. The probe leaves ``tool_choice`` to the server, as the real calls
do: a forced choice proves nothing, since llama-cpp-python answers a forced
function with a grammar-constrained call even in a chat format that ignores
tools otherwise, and vLLM serves a named function without the flags its
automatic tool choice needs.
A real call refused for its tools later also marks the endpoint (see
``refuses_tools``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM

from agent.llm.backend import safe_url
from agent.llm.calls import TokenLimitReached, complete

log = logging.getLogger("streaming_engineer.llm")

PROBE_FUNCTION = "ready"
PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": PROBE_FUNCTION, "description": "Tell the app that you can call functions.",
                 "parameters": {"type": "object", "properties": {}}},
}
PROBE_MESSAGES = (SystemMessage(f"Call the function `{PROBE_FUNCTION}` now."), HumanMessage("Are you ready?"))
REFUSAL_STATUSES = frozenset({400, 422, 500, 501})
"""HTTP statuses with which servers refuse tools (their error text then names tools or functions)."""

_LOCK = threading.Lock()
_KNOWN: dict[str, bool] = {}


def endpoint_key(model: BaseChatModel) -> str:
    """The endpoint and model a chat model talks to (no credentials): capabilities are kept per key."""
    base = getattr(model, "azure_endpoint", None) or getattr(model, "openai_api_base", None)
    name = getattr(model, "deployment_name", None) or getattr(model, "model_name", None)
    if not base and not name:
        return f"{type(model).__name__}@{id(model):x}"
    return f"{safe_url(str(base or 'https://api.openai.com/v1'))} {name or ''}".strip()


def refuses_tools(exc: BaseException) -> bool:
    """Whether ``exc`` is a server refusing a request because it carried tools."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in REFUSAL_STATUSES:
        return False
    said = f"{exc.message} {exc.body}".lower()
    return "tool" in said or "function" in said


def remember(model: BaseChatModel, calls_tools: bool) -> None:
    """Record for the session whether ``model``'s endpoint calls tools."""
    key = endpoint_key(model)
    with _LOCK:
        changed = _KNOWN.get(key) != calls_tools
        _KNOWN[key] = calls_tools
    if changed and not calls_tools:
        log.info("%s does not call tools: answering with passages the app retrieves", key)


def probe(model: BaseChatModel) -> bool:
    """Ask the endpoint once whether it calls tools.

    Returns:
        ``True`` when it answered with the function call, ``False`` when it
        answered in text or refused the tools.

    Raises:
        Exception: the endpoint failed for another reason (the turn falls back, nothing is remembered).

    """
    try:
        reply = complete(model, PROBE_MESSAGES, kind="probe", tools=[PROBE_TOOL], config={"tags": [TAG_NOSTREAM]})
    except TokenLimitReached:
        return False  # it wrote text until the limit: tools were ignored
    except Exception as exc:
        if refuses_tools(exc):
            return False
        raise
    return bool(reply.tool_calls or reply.invalid_tool_calls)


def calls_tools(model: BaseChatModel, mode: str = "auto") -> bool:
    """Whether to offer ``model`` tools: never when ``mode`` is ``off``; else what its endpoint showed, asked once.

    Raises:
        Exception: the probe failed (endpoint down): the caller's turn falls back.

    """
    if mode == "off":
        return False
    key = endpoint_key(model)
    with _LOCK:
        known = _KNOWN.get(key)
    if known is None and mode == "on":
        return True  # told so: not asked (a refusal on a real call is still remembered)
    if known is None:
        known = probe(model)
        remember(model, known)
    return known


def forget_all() -> None:
    """Forget every endpoint's answer (a new session; tests)."""
    with _LOCK:
        _KNOWN.clear()
