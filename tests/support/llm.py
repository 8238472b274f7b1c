"""Helpers for the model-backend tests: environment for the local server, stub retrieval."""

from __future__ import annotations

import re

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
