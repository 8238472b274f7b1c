"""Name what went wrong with a model call, plainly and without secrets.

The reason shown to the user is built from the error's kind and HTTP status
only, never from its message: an endpoint's error text can echo a request
header or part of a key.
"""

from __future__ import annotations


class IncompleteReply(RuntimeError):
    """The model's reply was cut off or empty."""


def is_graph_signal(exc: BaseException) -> bool:
    """Whether ``exc`` is LangGraph control flow (an interrupt) that must pass through."""
    from langgraph.errors import GraphBubbleUp

    return isinstance(exc, GraphBubbleUp)


def describe_failure(exc: BaseException) -> str:
    """A short plain reason for a failed model call (status and kind, never the error text)."""
    import httpx
    import openai

    if isinstance(exc, IncompleteReply):
        return str(exc)
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        # httpx's own timeout is what a stream raises when the next chunk is late.
        return "it did not answer in time"
    if isinstance(exc, openai.RateLimitError):
        return "it kept answering HTTP 429, rate limited"
    if isinstance(exc, openai.AuthenticationError):
        return "it refused the API key, HTTP 401"
    if isinstance(exc, openai.APIStatusError):
        return f"it answered HTTP {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        # Covers a stream cut off mid-reply (the client wraps the transport error).
        return "the connection failed or was cut off"
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return "its reply could not be read"
    return f"unexpected error {type(exc).__name__}"
