"""A local OpenAI-compatible HTTP server for tests and evals (no model inside).

It serves ``GET /v1/models`` and ``POST .../chat/completions`` (any prefix, so
Azure's ``/openai/deployments/{name}/chat/completions`` works too), plain JSON
or SSE streaming (chunked, with ``[DONE]``), with tool calls. Each request
takes the next scripted ``Reply`` from a queue; with the queue empty it
answers heuristically:

- a request with tools and no tool result yet: passages in the system prompt
  are answered from; without passages it calls ``search_knowledge`` with the
  user's message;
- after tool results: it composes an answer from the numbered passages,
  citing them as ``[n]``, or says the knowledge base has no answer;
- a value-extraction request (no tools): it picks the value out by pattern.

Fault modes are scripted replies: an HTTP status with headers (500, 429 with
``Retry-After``), a delay (the client times out), a cut-off body or stream,
invalid tool-call JSON, a call to a tool that does not exist, a reply that
loops (``looping``).

Like a real server it honours ``max_tokens`` (or ``max_completion_tokens``):
a longer reply stops there with ``finish_reason`` ``length`` (a token is
counted as four characters). It records, per request, how many stream
chunks it sent and whether the client closed the connection before the end.

Servers without tool calling: ``tools="ignore"`` drops ``tools`` and
``tool_choice`` before answering (llama-cpp-python with a plain chat format
such as ``--chat_format gemma``); ``tools="reject"`` answers HTTP 400 to a
request that carries tools (Ollama with a model that has no tool template,
vLLM without ``--enable-auto-tool-choice``).

Run it alone for evals: ``python -m tests.support.openai_server --port 8765 [--tools ignore]``
and point the app at it with ``OPENAI_BASE_URL=http://127.0.0.1:8765/v1``
and any ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------
# Scripted replies


@dataclass
class Reply:
    """One scripted answer to a chat completion request.

    Attributes:
        content: the assistant text.
        tool_calls: ``{"name", "arguments"}`` each; ``arguments`` is a dict
            (sent as JSON) or a raw string (sent as is, e.g. invalid JSON).
        status: the HTTP status; not 200 sends ``error_body``.
        headers: extra response headers (``Retry-After``).
        delay: seconds to wait before answering (longer than the client's
            timeout makes it time out).
        truncate: cut the body (or stream) in the middle and close the connection.
        finish_reason: override the finish reason.
        chunk_delay: seconds between streamed chunks.

    """

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False
    finish_reason: str | None = None
    chunk_delay: float = 0.0


def text(content: str, **kw: Any) -> Reply:
    """An assistant message."""
    return Reply(content=content, **kw)


def tool_call(name: str, arguments: dict[str, Any] | str, **kw: Any) -> Reply:
    """One tool call (``arguments`` as a string is sent verbatim)."""
    return Reply(tool_calls=[{"name": name, "arguments": arguments}], **kw)


def error(status: int, retry_after: float | None = None) -> Reply:
    """An HTTP error answer, optionally with ``Retry-After`` (seconds)."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Reply(status=status, headers=headers)


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    """``reply`` (default: a short text) after ``seconds``."""
    reply = reply or text("late answer")
    reply.delay = seconds
    return reply


def truncated(content: str) -> Reply:
    """A reply cut off halfway: the connection closes before the end."""
    return Reply(content=content, truncate=True)


def looping(lead: str, unit: str, times: int = 400, chunk_delay: float = 0.01) -> Reply:
    """A reply that falls into a loop: ``lead`` then ``unit`` ``times`` times, streamed slowly."""
    return Reply(content=lead + unit * times, chunk_delay=chunk_delay)


# ---------------------------------------------------------------------------
# The heuristic model

EXTRACT_MARKER = "You turn a user's free-text answer into the value of one form field."
PLAIN_MARKER = "\n\nThe user's message:\n"
"""Where an app that folds its instructions into the user's turn puts the user's own words."""
NO_ANSWER = "The knowledge base has no answer to that."
_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] (.+?)\s*$", re.M)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.]{2,}|[\u4e00-\u9fff]{2,}")
_STOP = frozenset("""the and for are with what how why when which does did can could should would this that from into
your you our use using about there their then than have has was were not but its it's after before per one all any
will also just get set does doing make made need want like some more most other only such them they very""".split())


def _content(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def parse_passages(text: str) -> dict[int, tuple[str, str]]:
    """Numbered passages in ``text`` (``[n] title`` then the passage): ``{n: (title, body)}``."""
    heads = list(_PASSAGE_HEAD.finditer(text))
    found: dict[int, tuple[str, str]] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = re.split(r"</passages[^>]*>", text[head.end():end])[0].strip()
        found[int(head.group(1))] = (head.group(2), body)
    return found


def _terms(text: str) -> set[str]:
    """Lower-case words, the parts of option names (``maxOffsetsPerTrigger`` -> max, offsets ...), CJK bigrams."""
    terms: set[str] = set()
    for word in _WORD.findall(text):
        if re.match(r"[\u4e00-\u9fff]", word):
            terms.update(word[i:i + 2] for i in range(len(word) - 1))
            continue
        terms.add(word.lower().rstrip("."))
        for part in re.split(r"[._]", word):
            terms.update(p.lower() for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", part) if len(p) > 2)
    return terms - _STOP


def _sentences(body: str) -> list[str]:
    """Sentences, list items and code lines of a passage (wrapped lines joined; headings and table rules skipped)."""
    units: list[str] = []
    current: list[str] = []
    in_code = False

    def flush() -> None:
        if current:
            joined = " ".join(current)
            units.extend(s.strip() for s in re.split(r"(?<=[.!?。])\s+(?=[A-Z`*])", joined) if len(s.strip()) > 15)
            current.clear()

    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            flush()
            in_code = not in_code
            continue
        if in_code:
            if len(line) > 15 and not line.startswith("#"):
                units.append(f"`{line}`")  # a code line is a unit of its own (options are often only there)
            continue
        if line.startswith("#") or re.fullmatch(r"\|?[\s:|-]+\|?", line or "-"):
            flush()
            continue
        if re.match(r"([-*+>]|\d+[.)]|\|)\s", line):
            flush()
            line = re.sub(r"^([-*+>]|\d+[.)])\s+", "", line).strip("| ").replace(" | ", " — ")
        current.append(line)
    flush()
    return units


def compose(question: str, passages: dict[int, tuple[str, str]]) -> str:
    """An extractive answer from the passages most related to the question, citing ``[n]``.

    A sentence scores by the question's terms it shares, plus half the terms
    of its passage's title (the option the section is about), plus a bonus
    for the first sentences of the best passage (the pack states the main
    fact first); better-ranked passages weigh more.
    """
    wanted = _terms(question)
    scored = []
    for rank, (number, (title, body)) in enumerate(sorted(passages.items())):
        keyed = _terms(title.rsplit(" — ", 1)[-1])
        for order, sentence in enumerate(_sentences(body)):
            terms = _terms(sentence)
            overlap = len(wanted & terms)
            if not overlap and rank > 0:
                continue
            lead = 1.0 if rank == 0 and order < 2 else 0.0
            score = (overlap + 0.5 * len(keyed & terms - wanted) + lead) / (1 + 0.3 * rank)
            scored.append((score, overlap, -number, -order, sentence, number))
    if not any(overlap for _s, overlap, *_rest in scored):
        return NO_ANSWER
    scored.sort(reverse=True)
    chosen = [item for item in scored if item[0] > 0][:6]
    chosen.sort(key=lambda item: (-item[2], -item[3]))  # reading order
    return "From the knowledge base:\n" + "\n".join(f"- {item[4]} [{item[5]}]" for item in chosen)


_EXTRACTORS = {
    "duration": re.compile(
        r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b", re.I),
    "table": re.compile(r"\b([A-Za-z_][\w]*\.[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)?)\b"),
    "positive_int": re.compile(r"\b(\d+)\b"),
    "percent": re.compile(r"(\d+(?:\.\d+)?)\s*%"),
    "url": re.compile(r"(https?://\S+)"),
    "path": re.compile(r"((?:/|dbfs:/|abfss://|s3a?://|gs://)\S+)"),
    "secret_ref": re.compile(r"\b([\w.-]+/[\w.-]+)\b"),
}


def extract(system: str, answer: str) -> str:
    """The value-extraction heuristic: the first match of the expected kind's pattern, else NONE."""
    expected = system.split("Expected:", 1)[-1].lower()
    kinds = {
        "duration": "duration", "table name": "table", "whole number": "positive_int", "percentage": "percent",
        "url": "url", "storage path": "path", "scope and key": "secret_ref",
    }
    for marker, kind in kinds.items():
        if marker in expected:
            match = _EXTRACTORS[kind].search(answer)
            if match:
                return " ".join(match.groups()) if kind == "duration" else match.group(1).rstrip(".,;")
            return "NONE"
    return "NONE"


def heuristic(body: dict[str, Any]) -> Reply:
    """What a well-behaved, grounded model would answer to this request."""
    messages = body.get("messages") or []
    tools = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    system = "\n".join(_content(m) for m in messages if m.get("role") in ("system", "developer"))
    if EXTRACT_MARKER in system:
        return text(extract(system, _content(messages[-1]) if messages else ""))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name") in tools:
        return tool_call(choice["function"]["name"], {})  # a forced call is made
    asked = re.search(r"Call the function `(\w+)`", system)
    if asked and asked.group(1) in tools and choice != "none":
        return tool_call(asked.group(1), {})  # asked in so many words, a tool-calling model calls it
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    question = _content(messages[last_user]) if last_user >= 0 else ""
    if PLAIN_MARKER in question:  # instructions folded into the user's turn
        folded, question = question.rsplit(PLAIN_MARKER, 1)
        system += "\n" + folded
    results = [_content(m) for m in messages[last_user + 1:] if m.get("role") == "tool"]
    passages = parse_passages(system)
    for result in results:
        passages.update(parse_passages(result))
    if not passages and not results and "search_knowledge" in tools and body.get("tool_choice") != "none":
        return tool_call("search_knowledge", {"query": question})
    return text(compose(question, passages))


# ---------------------------------------------------------------------------
# The HTTP server


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    at: float
    chunks_sent: int = 0
    disconnected: bool = False
    """The client closed the connection before the whole answer was sent."""


def _usage(body: dict[str, Any], completion: str) -> dict[str, int]:
    prompt = sum(len(json.dumps(m, ensure_ascii=False)) for m in body.get("messages") or []) // 4
    done = max(1, len(completion) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def _output_limit(body: dict[str, Any]) -> int | None:
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    return int(limit) if isinstance(limit, int | float) and limit > 0 else None


def _bounded(body: dict[str, Any], reply: Reply) -> Reply:
    """``reply`` ended at the request's first stop sequence or output limit (four characters a token)."""
    stops = body.get("stop") or []
    content = reply.content
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in content:
            content = content[: content.index(stop)]
    limit = _output_limit(body)
    if limit is not None and len(content) > 4 * limit and not reply.tool_calls:
        return Reply(**{**reply.__dict__, "content": content[: 4 * limit], "finish_reason": "length"})
    return Reply(**{**reply.__dict__, "content": content})


def _pieces(value: str, size: int = 12) -> list[str]:
    return [value[i:i + size] for i in range(0, len(value), size)] or [""]


def _calls(reply: Reply) -> list[dict[str, Any]]:
    out = []
    for n, call in enumerate(reply.tool_calls):
        arguments = call["arguments"]
        out.append({
            "id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}_{n}",
            "type": "function",
            "function": {"name": call["name"],
                         "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
        })
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests read ``requests`` instead."""

    def _record(self, body: dict[str, Any] | None) -> Recorded:
        record = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                          time.monotonic())
        self.server.owner.requests.append(record)
        return record

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None,
                   truncate: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if truncate:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        """``/v1/models``."""
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": self.server.owner.model, "object": "model", "created": 0, "owned_by": "local"}]})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """``.../chat/completions``."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        record = self._record(body)
        owner = self.server.owner
        if body is None or not self.path.split("?")[0].endswith("/chat/completions"):
            self._send_json(404 if body is not None else 400,
                            {"error": {"message": "unsupported request", "type": "invalid_request_error"}})
            return
        if owner.api_key and owner.api_key not in (self.headers.get("Authorization", "").removeprefix("Bearer "),
                                                   self.headers.get("api-key", "")):
            # Echo the key back, as some endpoints do in their error text: the app must not repeat it.
            given = self.headers.get("Authorization", "").removeprefix("Bearer ") or self.headers.get("api-key", "")
            self._send_json(401, {"error": {"message": f"Incorrect API key provided: {given}",
                                            "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        if owner.tools == "reject" and body.get("tools"):
            self._send_json(400, {"error": {"message": f"{owner.model} does not support tools",
                                            "type": "invalid_request_error", "code": None}})
            return
        if owner.tools == "ignore":
            body = {k: v for k, v in body.items() if k not in ("tools", "tool_choice")}
        reply = _bounded(body, owner.next_reply(body))
        if reply.delay and owner.stopping.wait(reply.delay):
            return
        try:
            if reply.status != 200:
                self._send_json(reply.status, {"error": {"message": f"scripted {reply.status}", "type": "server_error",
                                                         "code": str(reply.status)}}, reply.headers)
            elif body.get("stream"):
                self._stream(body, reply, record)
            else:
                self._complete(body, reply)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test, a cut stream)
            record.disconnected = True
            self.close_connection = True

    def _complete(self, body: dict[str, Any], reply: Reply) -> None:
        calls = _calls(reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if calls:
            message["tool_calls"] = calls
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or self.server.owner.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": _usage(body, reply.content),
        }
        self._send_json(200, payload, reply.headers, truncate=reply.truncate)

    def _chunk(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):X}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], reply: Reply, record: Recorded) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model") or self.server.owner.model}

        def event(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return "data: " + json.dumps({**base, "choices": [choice]}) + "\n\n"

        events = [event({"role": "assistant", "content": ""})]
        events += [event({"content": piece}) for piece in _pieces(reply.content)] if reply.content else []
        calls = _calls(reply)
        for index, call in enumerate(calls):
            head = {"index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}
            events.append(event({"tool_calls": [head]}))
            events += [event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                       for piece in _pieces(call["function"]["arguments"])]
        events.append(event({}, reply.finish_reason or ("tool_calls" if calls else "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append("data: " + json.dumps({**base, "choices": [], "usage": _usage(body, reply.content)}) + "\n\n")
        events.append("data: [DONE]\n\n")
        if reply.truncate:
            # Half the content, then the connection drops: no finish, no [DONE], no final chunk.
            events = events[: max(2, len(events) // 2 - 1)]
        for data in events:
            self._chunk(data)
            record.chunks_sent += 1
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
        if reply.truncate:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeOpenAIServer(ThreadingHTTPServer):
    """The ``ThreadingHTTPServer`` with a back reference to its owner."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeOpenAI) -> None:
        super().__init__(address, _Handler)
        self.owner = owner


class FakeOpenAI:
    """The server, started in a thread: script replies, read the requests.

    Use as a context manager, or ``start()`` / ``stop()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, model: str = "local-test-model",
                 api_key: str | None = None, record_to: Path | None = None, tools: str = "call") -> None:
        """Bind (port 0 picks a free one).

        Args:
            host: bind address (loopback).
            port: port; 0 picks a free one.
            model: the model id ``/v1/models`` lists.
            api_key: when set, requests must carry it (as a real endpoint checks).
            record_to: append each chat request body to this file as a JSON line.
            tools: ``call`` (tool calling), ``ignore`` (tools dropped, answers in text)
                or ``reject`` (HTTP 400 to a request with tools).

        """
        if tools not in ("call", "ignore", "reject"):
            raise ValueError(f"tools must be call, ignore or reject, not {tools!r}")
        self.tools = tools
        self.model = model
        self.api_key = api_key
        self.record_to = record_to
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._http = FakeOpenAIServer((host, port), self)
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)

    @property
    def port(self) -> int:
        """The bound port."""
        return self._http.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to use as ``OPENAI_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        """The chat completion requests, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path.split("?")[0].endswith("/chat/completions")]

    def script(self, *replies: Reply) -> FakeOpenAI:
        """Queue replies for the next requests (then the heuristic answers)."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._queue)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        """The next scripted reply, or the heuristic's."""
        if self.record_to is not None:
            with self._lock, self.record_to.open("a", encoding="utf-8") as out:
                out.write(json.dumps(body, ensure_ascii=False) + "\n")
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return heuristic(body)

    def start(self) -> FakeOpenAI:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (a delayed reply is abandoned)."""
        self.stopping.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve the heuristic model until interrupted."""
    parser = argparse.ArgumentParser(description="A local OpenAI-compatible server with a heuristic, grounded model.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (keep it on loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--model", default="local-test-model", help="the model id /v1/models reports")
    parser.add_argument("--record", metavar="FILE", help="append every chat request body to FILE (JSON Lines)")
    parser.add_argument("--tools", choices=("call", "ignore", "reject"), default="call",
                        help="tool calling: call (default), ignore them (a plain chat format), reject them (HTTP 400)")
    args = parser.parse_args(argv)
    server = FakeOpenAI(args.host, args.port, model=args.model, record_to=Path(args.record) if args.record else None,
                        tools=args.tools)
    print(f"serving an OpenAI-compatible API on {server.url} (Ctrl-C stops)", flush=True)
    try:
        server._http.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server._http.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
