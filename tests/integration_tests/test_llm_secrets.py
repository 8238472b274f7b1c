"""The API key never appears in logs, errors, traces, the checkpoint DB or workspace files."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd

from agent.llm.backend import chat_model
from agent.session import Engine
from tests.conftest import read_elsewhere
from tests.support.llm import TEST_KEY, model_env, stub_retrieval
from tests.support.openai_server import FakeOpenAI, error, text, tool_call


class Recorder(BaseCallbackHandler):
    """What a tracer (LangSmith and the like) is handed for each model call."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: dict, messages: list, **kwargs: Any) -> None:
        self.seen.append(repr(serialized) + repr(messages) + repr(kwargs))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(repr(response) + repr(kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(repr(error) + str(error) + repr(kwargs))


def _files_text(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_key_never_leaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the openai and HTTP client loggers too
    stub_retrieval(monkeypatch)
    with FakeOpenAI(api_key=TEST_KEY) as server:
        model_env(monkeypatch, server, retries=1)
        engine = Engine(home=tmp_path)
        thread = uuid.uuid4().hex[:10]
        outputs = [engine.turn(thread, "").output]
        server.script(tool_call("search_knowledge", {"query": "kafka"}), text("Use maxOffsetsPerTrigger [1]."))
        outputs.append(engine.turn(thread, "how do I limit kafka batches?").output)
        outputs += [str(event) for event in engine.stream_turn(thread, "and for kafka backlog after a restart?")]
        server.script(error(500), error(500))
        outputs.append(engine.turn(thread, "kafka batches again?").output)
        outputs.append(engine.turn(thread, "*kafka-connector").output)
        outputs.append(engine.turn(thread, "#yolo").output)
        # A tracer's view of a model call.
        recorder = Recorder()
        chat_model().invoke("hello", config={"callbacks": [recorder]})
        traces = "".join(recorder.seen) + repr(dumpd(chat_model()))

    # An endpoint that rejects the key and echoes it back in its error, as some do.
    with FakeOpenAI(api_key="the-right-key") as strict:
        model_env(monkeypatch, strict, retries=0)
        engine2 = Engine(home=tmp_path)
        refused = engine2.turn(thread, "how do I limit kafka batches?").output
        assert "it refused the API key, HTTP 401" in refused
        outputs.append(refused)

    secret = TEST_KEY
    assert {"openai", "streaming_engineer.llm"} <= {r.name.split("._")[0] for r in caplog.records}  # the logs were seen
    assert all(secret not in out for out in outputs)
    assert secret not in caplog.text and all(secret not in str(r.args) for r in caplog.records)
    assert secret not in traces
    assert secret.encode() not in _files_text(tmp_path / "workspace")
    stored = b"".join(read_elsewhere(p) for p in tmp_path.glob("checkpoints.sqlite*"))
    assert stored and secret.encode() not in stored
    assert secret not in repr(engine.graph.get_state(engine.config(thread)).values)
    # Sanity: the key did go out, in the Authorization header, where it belongs.
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {secret}"
