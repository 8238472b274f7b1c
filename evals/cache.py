"""Cache model calls by request, so rerunning an eval against an endpoint costs nothing.

A small HTTP proxy on 127.0.0.1 stands between the app and the endpoint:
the run points ``OPENAI_BASE_URL`` (or ``AZURE_OPENAI_ENDPOINT``) at it, and
it answers a request it has seen before from the cache folder, keyed by a
hash of the upstream address, the path and the request body (JSON with
sorted keys, so key order does not matter). Only successful answers are
kept; headers — and so the API key — are never stored. Working at the HTTP
level means it caches whatever the app sends (chat, tool rounds, value
extraction, the groundedness judge) without knowing how the app calls it.

A miss is passed through as it arrives (a streamed answer stays a stream,
relayed piece by piece), so the app's bounded calls work as against the
endpoint itself: when the app stops reading a looping or overlong answer, the
proxy closes the upstream connection at once and the server stops
generating. Such a cut answer is not stored (only whole ones are); a stored
stream is replayed in one piece, which the client reads the same way.

The proxy also reads every answer for tool calls (plain JSON or SSE), which
is how a run sees the tools a model called in a turn.

``salt`` separates repeats: ``--repeat 3`` asks the model three times (the
variance is the point), and a rerun reuses all three.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding", "keep-alive"}


class RequestCache:
    """Responses on disk, one JSON file per request hash."""

    def __init__(self, folder: Path | str) -> None:
        """Use (and create) ``folder``."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(upstream: str, method: str, path: str, body: bytes, salt: str = "") -> str:
        """The request's hash: upstream, method, path, canonical body and salt."""
        try:
            canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            canonical = body.decode("utf-8", errors="replace")
        digest = hashlib.sha256(f"{upstream}\n{method} {path}\n{salt}\n{canonical}".encode())
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response, or ``None``."""
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store a response (atomically: a reader never sees half a file)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        temp.replace(path)


def tool_call_names(content_type: str, body: str) -> list[str]:
    """Names of the tool calls in a chat completion answer (plain JSON or an SSE stream)."""
    names: list[str] = []
    payloads: list[Any] = []
    if "event-stream" in content_type:
        for line in body.splitlines():
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                with contextlib.suppress(ValueError):
                    payloads.append(json.loads(line[5:]))
    else:
        with contextlib.suppress(ValueError):
            payloads.append(json.loads(body))
    for payload in payloads:
        for choice in (payload.get("choices") or []) if isinstance(payload, dict) else []:
            part = choice.get("message") or choice.get("delta") or {}
            for call in part.get("tool_calls") or []:
                name = (call.get("function") or {}).get("name")
                if name:
                    names.append(str(name))
    return names


class _QuietServer(ThreadingHTTPServer):
    """The proxy's HTTP server, silent when a client drops its connection.

    The app closes a streamed call it cuts (time or token limit, repetition): that is the point of streaming
    through, not an error worth a traceback in the eval's output.
    """

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore a client that went away; report anything else as usual."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class CachingProxy:
    """The proxy: forwards to ``upstream`` on a miss, answers from the cache on a hit.

    Args:
        upstream: the endpoint's base URL (``https://api.openai.com/v1``, an Azure endpoint...).
        cache: where responses are kept.
        timeout: seconds to wait for the upstream to connect, answer, or send the next piece of a stream.

    """

    def __init__(self, upstream: str, cache: RequestCache, timeout: float = 180.0) -> None:
        parts = urlsplit(upstream)
        self.upstream_origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.upstream_path = parts.path.rstrip("/")
        # The key names the upstream without credentials, so a different endpoint never shares answers.
        port = f":{parts.port}" if parts.port else ""
        self.upstream_id = f"{parts.scheme}://{parts.hostname or ''}{port}{self.upstream_path}"
        self.cache = cache
        self.timeout = timeout
        self.salt = ""
        self.hits = 0
        self.misses = 0
        self._calls: list[str] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="eval-model-cache", daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL, with the upstream's path (what the app is pointed at)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.upstream_path}"

    def start(self) -> CachingProxy:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def stats(self) -> dict[str, int]:
        """Cache hits and misses so far."""
        return {"hits": self.hits, "misses": self.misses}

    def take_tool_calls(self) -> list[str]:
        """The tool calls answered since the last call (and forget them)."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls

    def lookup(self, method: str, path: str, body: bytes) -> tuple[str, dict[str, Any] | None]:
        """The request's cache key and its stored answer (``None`` on a miss); counts the hit or miss."""
        key = self.cache.key(self.upstream_id, method, path, body, self.salt)
        record = self.cache.get(key)
        with self._lock:
            if record is None:
                self.misses += 1
            else:
                self.hits += 1
        return key, record

    def note_tool_calls(self, content_type: str, body: str) -> None:
        """Remember the tool calls in an answer the app got (stored or relayed)."""
        names = tool_call_names(content_type, body)
        if names:
            with self._lock:
                self._calls += names

    @contextlib.contextmanager
    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Iterator[Any]:
        """The upstream answer as an open ``httpx`` stream.

        The caller relays the body piece by piece as it arrives; leaving the
        block closes the upstream connection, so when the app stops reading (a
        cut answer) the server stops generating, as it would without the proxy.
        """
        import httpx

        forward = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        with httpx.Client(timeout=httpx.Timeout(self.timeout, connect=10)) as client, \
                client.stream(method, self.upstream_origin + path, headers=forward, content=body) as response:
            yield response


def _handler(proxy: CachingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            key, record = proxy.lookup(self.command, self.path, body)
            self._sent_headers = False
            if record is not None:
                self._send_whole(int(record["status"]), str(record["content_type"]), record["body"].encode("utf-8"))
                proxy.note_tool_calls(record["content_type"], record["body"])
                return
            try:
                self._relay(key, body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the app stopped reading; the upstream stream is already closed
            except Exception as exc:  # noqa: BLE001 - the app sees a 502 and falls back, as with any endpoint failure
                if self._sent_headers:
                    self.close_connection = True  # mid-stream: the app sees the answer end unfinished
                    return
                data = json.dumps({"error": {"message": f"eval cache proxy: {type(exc).__name__}"}}).encode()
                self._send_whole(502, "application/json", data)

        def _send_whole(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type or "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _relay(self, key: str, body: bytes) -> None:
            """Pass the upstream answer through piece by piece (a stream stays a stream), then store it if whole."""
            received = bytearray()
            with proxy.forward(self.command, self.path, dict(self.headers), body) as upstream:
                content_type = upstream.headers.get("content-type", "")
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._sent_headers = True
                try:
                    for piece in upstream.iter_bytes():
                        if piece:
                            self.wfile.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
                            self.wfile.flush()
                            received += piece
                finally:
                    # Whatever reached the app counts, also when it stopped reading half-way.
                    proxy.note_tool_calls(content_type, received.decode("utf-8", errors="replace"))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            if upstream.status_code == 200:  # only a whole, successful answer is kept
                proxy.cache.put(key, {"status": 200, "content_type": content_type,
                                      "body": received.decode("utf-8", errors="replace")})

        do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
            """Quiet: the eval's own progress is the log."""

    return Handler


@contextlib.contextmanager
def cached_endpoint(cache_dir: Path | str) -> Iterator[CachingProxy]:
    """Point the app's configured endpoint at a caching proxy for the duration.

    Raises:
        RuntimeError: when no endpoint is configured (no key in the environment).

    """
    azure = bool(os.environ.get("AZURE_OPENAI_API_KEY") and os.environ.get("AZURE_OPENAI_ENDPOINT"))
    if not azure and not os.environ.get("OPENAI_API_KEY"):
        raise RuntimeError("no model endpoint is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
                           "compatible server) or AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT")
    variable = "AZURE_OPENAI_ENDPOINT" if azure else "OPENAI_BASE_URL"
    upstream = os.environ.get(variable) or "https://api.openai.com/v1"
    proxy = CachingProxy(upstream, RequestCache(cache_dir)).start()
    saved = os.environ.get(variable)
    os.environ[variable] = proxy.url
    try:
        yield proxy
    finally:
        if saved is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved
        proxy.stop()
