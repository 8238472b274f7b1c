"""The web app, launched once per test session on 127.0.0.1 (a free port) over the shared indexed home."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The outputs of the app's API endpoints, in order (gradio_client returns them as a tuple;
# session state is not part of it).
TURN = ("text", "browser_owner", "chat", "status", "task", "choice", "threads", "files")
SWITCH = (*TURN, "preview_md", "preview_code", "download", "zip_file")
REVIEW = ("summary", "chart", "items", "findings", "report", *TURN)
PREVIEW = ("preview_md", "preview_code", "download")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    engine: Any
    home: Path


@pytest.fixture(scope="session")
def ui_server(indexed_home: Path) -> Iterator[Server]:
    from agent.session import Engine
    from ui.app import serve

    engine = Engine(home=indexed_home)
    app, url = serve(engine, host="127.0.0.1", port=free_port(), block=False)
    try:
        yield Server(url=url, engine=engine, home=indexed_home)
    finally:
        app.close()


def named(names: tuple[str, ...], values: Any) -> dict[str, Any]:
    """An endpoint's output tuple as a dict."""
    values = values if isinstance(values, (list, tuple)) else (values,)
    assert len(values) == len(names), (names, values)
    return dict(zip(names, values, strict=True))


def text_of(message: dict) -> str:
    """Plain text of a chat message as gradio_client returns it."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text") or part.get("file") or "") if isinstance(part, dict) else str(part)
                         for part in content)
    return str(content or "")


def title_of(message: dict) -> str:
    return str((message.get("metadata") or {}).get("title") or "")


def choices_of(update: dict) -> list[tuple[str, str]]:
    return [tuple(c) for c in (update or {}).get("choices") or []]


def unchanged(value: Any) -> bool:
    """Whether an output is Gradio's "no update" (the app leaves out what did not change)."""
    return isinstance(value, dict) and value.get("__type__") == "update" and set(value) <= {"__type__", "props"} \
        and set(value.get("props") or {}) <= {"__type__"}


class Session:
    """One browser session, driven through the API (one gradio_client.Client = one session)."""

    def __init__(self, url: str) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False)
        self.last: dict[str, Any] = {}

    def _merge(self, out: dict[str, Any]) -> dict[str, Any]:
        """Outputs as the page would show them: what did not change keeps its last value."""
        merged = {k: (self.last.get(k, v) if unchanged(v) else v) for k, v in out.items()}
        self.last = {**self.last, **{k: merged[k] for k in TURN if k in merged}}
        return merged

    def send(self, text: str) -> dict[str, Any]:
        return self._merge(named(TURN, self.client.predict(text, api_name="/send")))

    def choose(self, number: str) -> dict[str, Any]:
        return self._merge(named(TURN, self.client.predict(number, api_name="/choose")))

    def call(self, names: tuple[str, ...], *args: Any, api_name: str) -> dict[str, Any]:
        return self._merge(named(names, self.client.predict(*args, api_name=api_name)))

    @property
    def chat(self) -> list[dict]:
        return self.last["chat"]

    def thread_ids(self) -> list[str]:
        return [value for _label, value in choices_of(self.last["threads"])]

    def files(self) -> list[str]:
        return [c[1] if isinstance(c, (list, tuple)) else c for c in (self.last["files"] or {}).get("choices") or []]

    def close(self) -> None:
        self.client.close()
