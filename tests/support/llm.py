"""Helpers for the model-backend tests: environment for the local server, stub retrieval, a recording proxy."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from knowledge.retrieval import Hit
from tests.support.openai_server import FakeOpenAI

TEST_KEY = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
"""A key-shaped secret that must never show up anywhere."""

PASSAGES = [
    Hit(id="article:kafka#kafka-rate-limiting", title="Kafka — Rate limiting", path="articles/kafka.md", kind="article",
        score=1.0, dense=0.9,
        text="Set maxOffsetsPerTrigger to cap how many offsets one micro-batch reads from Kafka. Without it a restarted "
             "query reads everything since its last checkpoint in one huge batch. minPartitions splits large "
             "partitions into more Spark tasks."),
    Hit(id="article:watermarks#watermark", title="Watermarks — Choosing the delay", path="articles/watermarks.md",
        kind="article", score=0.8, dense=0.9,
        text="withWatermark sets how late events may arrive before state for a window is dropped. Choose the delay "
             "from the observed disorder, such as the 99th percentile of lateness."),
]


def model_env(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAI, *, timeout: float = 5, retries: int = 2,
              key: str = TEST_KEY, tools: str = "on") -> None:
    """Point the app at ``server`` through the environment, as a user would.

    ``tools`` is ``STREAMING_ENGINEER_TOOLS``: ``on`` by default, so a test's
    scripted replies answer its own calls and not the one-off tool-calling
    probe (``auto``, tested on its own).
    """
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("STREAMING_ENGINEER_MODEL", "local-test-model")
    monkeypatch.setenv("STREAMING_ENGINEER_TIMEOUT", str(timeout))
    monkeypatch.setenv("STREAMING_ENGINEER_MAX_RETRIES", str(retries))
    monkeypatch.setenv("STREAMING_ENGINEER_TOOLS", tools)


class StubRetriever:
    """Keyword retrieval over a few passages (the real index is not the point of most tests)."""

    def __init__(self, passages: list[Hit] | None = None) -> None:
        """Serve ``passages`` (default ``PASSAGES``)."""
        self.passages = list(PASSAGES if passages is None else passages)
        self.queries: list[str] = []
        self.prefetched: list[str] = []

    def prefetch(self, query: str) -> None:
        """Remember what the engine asked to embed ahead of its search."""
        self.prefetched.append(query)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Passages sharing a word of four letters or more with the query."""
        self.queries.append(query)
        words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", query)}
        found = [p for p in self.passages if words & {w.lower() for w in re.findall(r"[A-Za-z]{4,}", p.title + " " + p.text)}]
        return found[:k]


def stub_retrieval(monkeypatch: pytest.MonkeyPatch, retriever: StubRetriever | None = None) -> StubRetriever:
    """Make every node (offline and model paths) search ``retriever``."""
    retriever = retriever or StubRetriever()
    monkeypatch.setattr("agent.context.retriever_for", lambda home, pack_dir: retriever)
    return retriever


def messages_of(request_body: dict) -> list[dict]:
    """The chat messages of a recorded request."""
    return list(request_body.get("messages") or [])


def system_of(request_body: dict) -> str:
    """The system prompt of a recorded request."""
    return "\n".join(str(m.get("content")) for m in messages_of(request_body) if m.get("role") == "system")


def tool_names(request_body: dict) -> set[str]:
    """The names of the tools a request offered."""
    return {t["function"]["name"] for t in request_body.get("tools") or []}


# ---------------------------------------------------------------------------
# A recording pass-through to a real server


@dataclass
class Forwarded:
    """One request passed to the real server, and what came back."""

    body: dict
    status: int = 0
    chunks: int = 0
    """Server-sent events relayed (llama.cpp's servers send one per generated token)."""
    content: str = ""
    finish_reason: str | None = None
    client_closed: bool = False
    """The app closed the stream before the server had finished."""
    started: float = 0.0
    seconds: float = 0.0
    usage: dict = field(default_factory=dict)


class RecordingProxy:
    """Stands between the app and a real OpenAI-compatible server, streaming through and recording each call.

    A stream is relayed chunk by chunk; when the app closes its connection, the
    proxy closes the upstream one at once, so the server sees the disconnect
    just as it would without the proxy.
    """

    def __init__(self, upstream: str) -> None:
        """Forward to ``upstream`` (a base URL such as ``http://127.0.0.1:8080/v1``)."""
        parts = urlsplit(upstream)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.calls: list[Forwarded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._path = parts.path.rstrip("/")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give the app."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._path}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

            def _relay(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                call = Forwarded(body=body if isinstance(body, dict) else {}, started=time.monotonic())
                if self.command == "POST":
                    with proxy._lock:
                        proxy.calls.append(call)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as client, client.stream(
                        self.command, proxy.origin + self.path, content=raw, headers=headers) as upstream:
                    call.status = upstream.status_code
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type", upstream.headers.get("content-type", "application/json"))
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    buffer = b""
                    try:
                        for piece in upstream.iter_raw():
                            self.wfile.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
                            self.wfile.flush()
                            buffer += piece
                            call.chunks += piece.count(b"data: {")
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        call.client_closed = True  # leaving the block closes the upstream connection
                        self.close_connection = True
                call.seconds = time.monotonic() - call.started
                _read_answer(call, buffer.decode("utf-8", errors="replace"))

            do_GET = do_POST = _relay  # noqa: N815

        return Handler


def _read_answer(call: Forwarded, text: str) -> None:
    """Fill ``call``'s content, finish reason and usage from a JSON or SSE answer."""
    payloads = []
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            payloads.append(json.loads(text))
    else:
        for line in text.splitlines():
            if line.startswith("data: {"):
                with contextlib.suppress(ValueError):
                    payloads.append(json.loads(line[6:]))
    for payload in payloads:
        call.usage = payload.get("usage") or call.usage
        for choice in payload.get("choices") or []:
            part = choice.get("message") or choice.get("delta") or {}
            call.content += part.get("content") or ""
            call.finish_reason = choice.get("finish_reason") or call.finish_reason
