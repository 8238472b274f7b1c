"""A request body limit for the web app (Gradio sets none for its JSON endpoints).

Without one, a single request can carry a message of any size into memory
before the app ever sees it. The limit is checked against ``Content-Length``
and again while the body streams in (a chunked request has no length).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH_PART = "/upload"


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes (``upload_limit`` for file uploads)."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        """Wrap ``app``."""
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 413 once its body is over the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if UPLOAD_PATH_PART in scope.get("path", "") else self.limit
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send, limit)
            return
        received = 0
        started = responded = False

        async def bounded_receive() -> Message:
            nonlocal received, responded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now: the app may turn the error below into its own (a 400 "cannot parse").
                    if not started and not responded:
                        responded = True
                        await _too_large(send, limit)
                    raise _TooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if responded:
                return  # the 413 is already on its way; whatever the app says after it is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _TooLargeError:
            pass


class _TooLargeError(Exception):
    """The body passed the limit while streaming in."""


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"error": "request body over {limit} bytes"}}'.encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
