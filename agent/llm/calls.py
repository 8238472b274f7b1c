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
  client's own timeout, which only bounds the wait for the next piece of
  the response (a keep-alive ping counts): the reply is read in a thread of
  its own and the caller stops waiting at the deadline, even while a server
  is still reading a long prompt and has sent no token yet;
- a reply that falls into a loop (the same stretch of text over and over, as
  small models do at temperature 0) is cut as soon as the loop is clear;
- a reply that copies its prompt back (a stretch of its instructions, or the
  user's message as its opening: what a small or base model does when it
  does not follow the chat turns) is cut as soon as that is clear.

A cut or overlong reply raises ``IncompleteReply`` (or ``ReplyCut``); the
caller answers that turn offline with a plain notice, and because the
connection was closed, the next turn finds the server free.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Iterator, Sequence
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
ECHO_CHARS = 80
"""A reply whose last this-many characters (spaces collapsed) stand word for word in its instructions is copying
them: with the check every ``CHECK_EVERY_CHARS``, any copied stretch of about 100 characters is caught."""
ECHO_MIN_QUESTION = 20
"""A reply that opens with the user's message and says it again, when it is at least this long, is repeating it
instead of answering (small models do that); shorter messages are left to the loop check. Opening with the
question once is how some models restate it, so that alone is not cut."""


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


@dataclass(frozen=True)
class Prompt:
    """The parts of a call's prompt a reply must not copy back.

    Attributes:
        instructions: the role's and the app's instructions (not the passages, which a reply may quote).
        question: the user's message.

    """

    instructions: str = ""
    question: str = ""


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def echoing(text: str, prompt: Prompt) -> str:
    """What ``text`` copies back from ``prompt``: ``"instructions"``, ``"question"``, or ``""``.

    Copying the instructions is a leak of the prompt (or a model lost in it);
    opening with the user's message word for word and saying it again is a
    small model echoing its input instead of answering. Either way the reply
    is no answer.
    """
    reply = _collapsed(text)
    question = _collapsed(prompt.question).casefold()
    folded = reply.lstrip("\"'>*_ ").casefold()
    if len(question) >= ECHO_MIN_QUESTION and folded.startswith(question) and folded.count(question) >= 2:
        return "question"
    tail = reply[-ECHO_CHARS:]
    if prompt.instructions and len(tail) == ECHO_CHARS and tail in _collapsed(prompt.instructions):
        return "instructions"
    return ""


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


class _DeadlinePassed(Exception):
    """The call's deadline passed before its reply ended."""


class _Reader:
    """Reads a reply stream in a thread of its own, so its time limit holds whatever the server sends.

    A server still reading a long prompt sends no token, only keep-alive
    pings that the HTTP client takes as progress: a check between chunks
    would wait for the first token, minutes on a busy CPU. Here the caller
    waits for each chunk only until the call's deadline. Closing stops the
    thread at its next chunk (or the client's read timeout), which closes the
    stream and its connection; the thread alone ever touches the generator.
    """

    def __init__(self, stream: Iterator[AIMessageChunk]) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._closed = threading.Event()
        # The stream runs in the caller's context (LangGraph's config and stream writers live in contextvars).
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._pump,), name="model-call", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for chunk in self._stream:
                if self._closed.is_set():
                    break
                self._queue.put(("chunk", chunk))
            self._queue.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
            self._queue.put(("error", exc))
        finally:
            self._stream.close()  # type: ignore[attr-defined]

    def chunks(self, deadline: float) -> Iterator[AIMessageChunk]:
        """The reply's chunks as they come.

        Raises:
            _DeadlinePassed: ``deadline`` (``time.monotonic``) passed before the reply ended.
            Exception: whatever the stream raised.

        """
        while True:
            try:
                kind, item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise _DeadlinePassed from None
            if kind == "end":
                return
            if kind == "error":
                raise item
            if time.monotonic() > deadline:
                raise _DeadlinePassed
            yield item

    def close(self) -> None:
        """Stop reading: the thread closes the stream when its next chunk (or error) comes."""
        self._closed.set()


def _check_echo(text: str, prompt: Prompt | None) -> None:
    copied = echoing(text, prompt) if prompt else ""
    if copied:
        what = "its instructions" if copied == "instructions" else "the question instead of answering"
        raise ReplyCut(f"it repeated {what}, so the answer was cut")


def _text(message: AIMessageChunk) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def complete(model: BaseChatModel, messages: Sequence[BaseMessage], *, kind: CallKind = "answer",
             tools: Sequence[dict[str, Any]] = (), tool_choice: str | dict[str, Any] | None = None,
             config: RunnableConfig | None = None, limits: Limits | None = None,
             prompt: Prompt | None = None) -> AIMessage:
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
        prompt: what the reply must not copy back (its instructions, the user's message).

    Returns:
        The reply as one ``AIMessage`` (text and tool calls).

    Raises:
        ReplyCut: the reply looped, copied its prompt back, or ran past the time limit (the stream was closed).
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
    deadline = time.monotonic() + limits.seconds
    merged: AIMessageChunk | None = None
    checked_at = 0
    reader = _Reader(runnable.stream(list(messages), config=config))
    try:
        for chunk in reader.chunks(deadline):
            merged = chunk if merged is None else merged + chunk
            text = _text(merged)
            if len(text) - checked_at >= CHECK_EVERY_CHARS:
                checked_at = len(text)
                if repeating(text):
                    raise ReplyCut("it kept repeating itself, so the answer was cut")
                _check_echo(text, prompt)
    except _DeadlinePassed:
        raise ReplyCut(f"it was still answering after {limits.seconds:g} seconds, so the answer was cut") from None
    finally:
        reader.close()  # closes the HTTP response: a server that notices stops generating
    if merged is None:
        raise IncompleteReply("the reply was empty")
    _check_echo(_text(merged), prompt)  # a short reply may end between two checks
    finish = (merged.response_metadata or {}).get("finish_reason")
    if not finish:
        raise IncompleteReply("the reply ended before the model finished it")
    if finish == "length":
        raise TokenLimitReached(f"the answer reached its {limits.max_tokens}-token limit and was cut")
    return message_chunk_to_message(merged)
