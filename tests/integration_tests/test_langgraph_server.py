"""The graph under ``langgraph dev`` (LangGraph Server's API), driven like agent-chat-ui drives it.

A task starts from standard ``messages`` input, its questions arrive as interrupts, ``Command(resume=...)``
answers them, and the replies stream as messages; once with the server's in-memory store, once with the
PostgreSQL checkpointer the app itself uses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration_tests.test_postgres_checkpoint import postgres_url  # noqa: F401 - the fixture

langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="the test extra installs langgraph-cli[inmem]")
GRAPH = "streaming_engineer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LanggraphDev:
    """``langgraph dev`` on 127.0.0.1: no browser, no tunnel, no reload, no telemetry or tracing."""

    def __init__(self, workdir: Path, home: Path, checkpointer: bool = False, env: dict[str, str] | None = None) -> None:
        config: dict = {"dependencies": [str(ROOT)], "graphs": {GRAPH: f"{ROOT / 'agent' / 'graph.py'}:graph"}}
        if checkpointer:
            config["checkpointer"] = {"path": f"{ROOT / 'agent' / 'server_checkpointer.py'}:postgres"}
        (workdir / "langgraph.json").write_text(json.dumps(config), encoding="utf-8")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
        self.log = (workdir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "langgraph"), "dev", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-browser", "--no-reload", "--config", str(workdir / "langgraph.json")],
            cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT,
            env={**base, **(env or {}), "STREAMING_ENGINEER_HOME": str(home), "HF_HUB_OFFLINE": "1",
                 "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "PYTHONPATH": str(ROOT)})
        self.logfile = workdir / "server.log"
        deadline = time.monotonic() + 180
        import httpx

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("langgraph dev exited:\n" + self.logfile.read_text(errors="replace")[-4000:])
            try:
                if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError("langgraph dev did not start:\n" + self.logfile.read_text(errors="replace")[-4000:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _interrupt_values(state: dict) -> list:
    return [i["value"] for i in state.get("interrupts") or []] or [
        i["value"] for task in state.get("tasks") or [] for i in task.get("interrupts") or []]


def _streamed_ai_text(client, thread_id: str, **run: object) -> str:
    """Run one turn, streaming ``messages-tuple``; the AI text that streamed."""
    text = []
    for part in client.runs.stream(thread_id, GRAPH, stream_mode=["messages-tuple", "updates"], **run):
        if part.event == "error":
            raise AssertionError(f"the run failed: {part.data}")
        if part.event == "messages":
            message, _meta = part.data
            if message.get("type") in ("ai", "AIMessageChunk"):
                text.append(str(message.get("content") or ""))
    return "\n".join(text)


def drive_a_task(url: str, home: Path) -> str:
    """Run ``*watermark-lateness`` with messages input and resumes; returns the thread id."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=url)
    thread_id = client.threads.create()["thread_id"]

    streamed = _streamed_ai_text(client, thread_id, input={"messages": [
        {"role": "user", "content": [{"type": "text", "text": "*watermark-lateness"}]}]})
    state = client.threads.get_state(thread_id)
    questions = _interrupt_values(state)
    assert questions, f"the task's first question should be an interrupt; streamed: {streamed[:500]}"
    assert "[1/" in questions[0]["question"]
    humans = [m for m in state["values"]["messages"] if m["type"] == "human"]
    assert [m["content"] for m in humans] == ["*watermark-lateness"]

    _streamed_ai_text(client, thread_id, command={"resume": "10 minutes"})
    questions = _interrupt_values(client.threads.get_state(thread_id))
    assert questions and "[2/" in questions[0]["question"]

    streamed = _streamed_ai_text(client, thread_id, command={"resume": "#yolo"})
    state = client.threads.get_state(thread_id)
    assert not _interrupt_values(state)
    assert "Done: **Watermarks" in streamed, streamed[-1500:]
    final = [m for m in state["values"]["messages"] if m["type"] == "ai"]
    assert "Done: **Watermarks" in final[-1]["content"]
    artifacts = state["values"]["artifacts"]
    assert artifacts and all((home / "workspace").rglob(Path(a).name) for a in artifacts)

    # The next chat message after the task is a new turn (the standard clients send only messages).
    _streamed_ai_text(client, thread_id, input={"messages": [{"role": "user", "content": "*help"}]})
    last = client.threads.get_state(thread_id)["values"]["messages"][-1]
    assert last["type"] == "ai" and "*kafka-connector" in last["content"]
    return thread_id


def test_langgraph_dev_runs_a_task_from_messages_input(indexed_home: Path, tmp_path: Path) -> None:
    server = LanggraphDev(tmp_path, indexed_home)
    try:
        drive_a_task(server.url, indexed_home)
    finally:
        server.stop()
    assert "Traceback" not in server.logfile.read_text(errors="replace")


@pytest.mark.postgres
def test_langgraph_dev_with_the_postgres_checkpointer(indexed_home: Path, tmp_path: Path,
                                                      postgres_url: str) -> None:  # noqa: F811
    server = LanggraphDev(tmp_path, indexed_home, checkpointer=True,
                          env={"STREAMING_ENGINEER_CHECKPOINT": postgres_url})
    try:
        thread_id = drive_a_task(server.url, indexed_home)
    finally:
        server.stop()
    log = server.logfile.read_text(errors="replace")
    assert "custom checkpointer" in log and "Traceback" not in log

    # The thread lives in PostgreSQL: the app's own engine, on the same database, reads where the server left it.
    from agent.session import Engine

    os.environ["STREAMING_ENGINEER_CHECKPOINT"] = postgres_url
    try:
        engine = Engine(home=indexed_home)
        values = engine.graph.get_state(engine.config(thread_id)).values
    finally:
        os.environ.pop("STREAMING_ENGINEER_CHECKPOINT")
    humans = [str(m.content) for m in values["messages"] if m.type == "human"]
    assert humans[0] == "*watermark-lateness" and humans[-1] == "*help"
    assert values["artifacts"]
