"""One retriever per home and pack, even when the warm-up and a first question ask for it at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agent.context import retriever_for
from knowledge.loader import PACK_DIR


def test_a_first_question_racing_the_warm_up_shares_its_retriever(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("CHROMA_URL", raising=False)
    monkeypatch.delenv("STREAMING_ENGINEER_EMBEDDINGS", raising=False)
    home = str(tmp_path / "fresh-home")
    start = threading.Barrier(2)
    got: list[object] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        start.wait()
        try:
            retriever = retriever_for(home, str(PACK_DIR))
            got.append(retriever)
            retriever.search("maxOffsetsPerTrigger", k=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(got) == 2 and got[0] is got[1]
