"""One bounded model call: a token limit, a time limit, streamed, and cut when it loops.

Every call the app makes goes through ``complete``:

- an output-token limit for its kind (answer, extraction, judge, probe) and,
  where they help, stop sequences;
- the reply is streamed, so the client reads it as it comes and can stop
  early; stopping closes the generator, which closes the HTTP response and
  its connection. Servers that notice a closed stream stop generating
  (llama.cpp's server, llama-cpp-python's, vLLM, Ollama: see the README);
  one that does not is still bounded by the token limit;
- a wall-clock limit (``STREAMING_ENGINEER_CALL_SECONDS``) on top of the
  client's own timeout, which only bounds the wait for the next chunk;
- a reply that falls into a loop (the same stretch of text over and over, as
  small models do at temperature 0) is cut as soon as the loop is clear.

A cut or overlong reply raises ``IncompleteReply`` (or ``ReplyCut``); the
caller answers that turn offline with a plain notice, and because the
connection was closed, the next turn finds the server free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.runnables import RunnableConfig

from agent.llm.backend import DEFAULT_MODEL, BackendConfig, CallKind, load_config
from agent.llm.failures import IncompleteReply

STOP_SEQUENCES: dict[str, tuple[str, ...]] = {"extract": ("\n",)}
"""Stop sequences per kind of call: a form value is one line, so the first line break ends it."""
REPEAT_WINDOW = 1200
"""Characters at the end of a reply searched for a loop."""
REPEAT_MIN_CHARS = 240
"""A loop is cut once its repeats cover this many characters..."""
REPEAT_MIN_TIMES = 3
"""...and the repeated stretch came at least this many times in a row."""
CHECK_EVERY_CHARS = 24
"""Look for a loop after this much new text (not after every token)."""


class ReplyCut(IncompleteReply):
    """The client stopped reading the reply (a loop, or the call's time limit)."""


class TokenLimitReached(IncompleteReply):
    """The server stopped the reply at its output-token limit (``finish_reason`` ``length``)."""


@dataclass(frozen=True)
class Limits:
    """The bounds of one call.

    Attributes:
        max_tokens: output tokens the server may generate.
        seconds: wall-clock limit of the whole call.
        stop: stop sequences.

    """

    max_tokens: int
    seconds: float
    stop: tuple[str, ...] = ()


def limits_for(kind: CallKind, config: BackendConfig | None = None) -> Limits:
    """The limits of a ``kind`` call under ``config`` (default: the environment's)."""
    config = config or load_config() or BackendConfig("openai", DEFAULT_MODEL)
    return Limits(config.token_limit(kind), config.call_seconds, STOP_SEQUENCES.get(kind, ()))


def limit_kwargs(model: BaseChatModel, limits: Limits) -> dict[str, Any]:
    """Request arguments that carry ``limits`` to ``model``'s server.

    A client built for an OpenAI-compatible server carries its limit as
    ``max_tokens`` in the request body (see ``backend.build_chat_model``);
    the per-call limit replaces it there, otherwise it is the model's own
    ``max_tokens`` parameter.
    """
    extra_body = getattr(model, "extra_body", None)
    if isinstance(extra_body, dict) and "max_tokens" in extra_body:
        kwargs: dict[str, Any] = {"extra_body": {**extra_body, "max_tokens": limits.max_tokens}}
    else:
        kwargs = {"max_tokens": limits.max_tokens}
    if limits.stop:
        kwargs["stop"] = list(limits.stop)
    return kwargs


def repeating(text: str, window: int = REPEAT_WINDOW, min_chars: int = REPEAT_MIN_CHARS,
              min_times: int = REPEAT_MIN_TIMES) -> bool:
    """Whether ``text`` ends in a loop: one stretch repeated ``min_times`` times or more, ``min_chars`` in all.

    The end of a periodic text equals the stretch one period before it, so
    for each candidate period the repeats are counted backwards from the end;
    where the stream stopped inside the loop does not matter.
    """
    tail = text[-window:]
    size = len(tail)
    if size < min_chars:
        return False
    for period in range(1, size // min_times + 1):
        unit = tail[size - period:]
        times, start = 1, size - 2 * period
        while start >= 0 and tail[start:start + period] == unit:
            times += 1
            start -= period
        if times >= min_times and times * period >= min_chars:
            return True
    return False


def _text(message: AIMessageChunk) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def complete(model: BaseChatModel, messages: Sequence[BaseMessage], *, kind: CallKind = "answer",
             tools: Sequence[dict[str, Any]] = (), tool_choice: str | dict[str, Any] | None = None,
             config: RunnableConfig | None = None, limits: Limits | None = None) -> AIMessage:
    """Call ``model`` within the limits of a ``kind`` call and return its whole reply.

    Args:
        model: the chat model.
        messages: the prompt.
        kind: what the call is for (sets the token limit and stop sequences).
        tools: OpenAI tool definitions to offer, if any.
        tool_choice: the tool choice to ask for (``"none"``, a forced function...).
        config: the runnable config (tags, callbacks); tokens stream to LangGraph's
            ``messages`` mode as they arrive.
        limits: explicit limits (default: ``limits_for(kind)``).

    Returns:
        The reply as one ``AIMessage`` (text and tool calls).

    Raises:
        ReplyCut: the reply looped or ran past the time limit (the stream was closed).
        TokenLimitReached: the server stopped at the token limit.
        IncompleteReply: the stream ended without a finish.
        Exception: whatever the client raised (after its retries).

    """
    limits = limits or limits_for(kind)
    runnable: Any = model
    if tools:
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        runnable = model.bind_tools(list(tools), **extra)
    runnable = runnable.bind(**limit_kwargs(model, limits))
    started = time.monotonic()
    merged: AIMessageChunk | None = None
    checked_at = 0
    stream = runnable.stream(list(messages), config=config)
    try:
        for chunk in stream:
            merged = chunk if merged is None else merged + chunk
            if time.monotonic() - started > limits.seconds:
                raise ReplyCut(f"it was still answering after {limits.seconds:g} seconds, so the answer was cut")
            text = _text(merged)
            if len(text) - checked_at >= CHECK_EVERY_CHARS:
                checked_at = len(text)
                if repeating(text):
                    raise ReplyCut("it kept repeating itself, so the answer was cut")
    finally:
        stream.close()  # closes the HTTP response: a server that notices stops generating
    if merged is None:
        raise IncompleteReply("the reply was empty")
    finish = (merged.response_metadata or {}).get("finish_reason")
    if not finish:
        raise IncompleteReply("the reply ended before the model finished it")
    if finish == "length":
        raise TokenLimitReached(f"the answer reached its {limits.max_tokens}-token limit and was cut")
    return message_chunk_to_message(merged)
