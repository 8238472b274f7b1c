"""The pack index shipped with the package: a new home uses it, an edited pack embeds only its changes.

These run against the real shipped pack and the real e5 model (offline);
passage embeddings are counted by wrapping the embedding function, so "no
pack passage was embedded" is observed, not assumed.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from knowledge import cli
from knowledge.documents import DEFAULT_PACK_DIR, load_pack_passages
from knowledge.embeddings import E5EmbeddingFunction, embedding_key
from knowledge.index import TOKENIZER_VERSION, KnowledgeIndex, build_status, tokenize
from knowledge.prebuilt import PREBUILT_FILE, load_prebuilt, write_prebuilt


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh home and an empty vector cache: a new user's machine."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("STREAMING_ENGINEER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAMING_ENGINEER_EMBED_CACHE", str(tmp_path / "vector-cache"))
    monkeypatch.delenv("CHROMA_URL", raising=False)
    monkeypatch.delenv("STREAMING_ENGINEER_EMBEDDINGS", raising=False)
    monkeypatch.delenv("STREAMING_ENGINEER_PREBUILT", raising=False)


@pytest.fixture
def embedded_texts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every passage text the e5 model is asked to embed in this test."""
    seen: list[str] = []
    original = E5EmbeddingFunction.__call__

    def counting(self: E5EmbeddingFunction, input: list[str]) -> list:  # noqa: A002 - Chroma's name
        seen.extend(input)
        return original(self, input)

    monkeypatch.setattr(E5EmbeddingFunction, "__call__", counting)
    yield seen


def test_the_shipped_index_covers_every_pack_passage() -> None:
    shipped = load_prebuilt()
    assert shipped is not None, f"{PREBUILT_FILE} is missing: run `python scripts/build_pack_index.py`"
    model = embedding_key(E5EmbeddingFunction())
    lacking = [
        p.id for p in load_pack_passages()
        if shipped.vector(p.embed_text, model) is None or shipped.vector(p.summary_text, model) is None
        or shipped.tokens_of(p.embed_text, TOKENIZER_VERSION) is None
    ]
    assert not lacking, f"the shipped index lacks {lacking[:5]}: run `python scripts/build_pack_index.py`"
    # Modest size: half-precision vectors, compressed.
    assert PREBUILT_FILE.stat().st_size < 1_500_000


def test_a_fresh_home_answers_ask_without_embedding_any_pack_passage(
    embedded_texts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "How do I stop a Kafka stream from taking the whole backlog in one micro-batch after an outage?"
    assert cli.main(["ask", question, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert embedded_texts == []
    assert not list((tmp_path / "vector-cache").rglob("*.npy"))
    assert "maxOffsetsPerTrigger" in payload["answer"]
    assert payload["sources"]
    # The index now in the home holds the whole pack, searchable like one built locally.
    report = KnowledgeIndex().sync(progress=False)
    assert (report.embedded, report.unchanged) == (0, report.total)


def test_shipped_vectors_rank_like_locally_computed_ones(tmp_path: Path) -> None:
    shipped = load_prebuilt()
    assert shipped is not None
    function = E5EmbeddingFunction()
    model = embedding_key(function)
    passages = load_pack_passages()[:6]
    local = np.asarray(function([p.embed_text for p in passages]), dtype=np.float32)
    prebuilt = np.stack([shipped.vector(p.embed_text, model) for p in passages])
    cosine = (local * prebuilt).sum(axis=1) / (np.linalg.norm(local, axis=1) * np.linalg.norm(prebuilt, axis=1))
    assert cosine.min() > 0.999  # float16 keeps the direction
    assert shipped.vector(passages[0].embed_text, "another-model") is None  # never used for another model


def test_an_edited_pack_embeds_only_the_changed_passage_with_a_progress_bar(
    embedded_texts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, pack)
    article = pack / "articles" / "kafka.md"
    article.write_text(article.read_text(encoding="utf-8").replace(
        "## Kafka rate limiting", "## Kafka rate limiting (edited by the team)", 1), encoding="utf-8")
    edited = [p for p in load_pack_passages(pack) if "(edited by the team)" in p.title]
    assert len(edited) == 1

    report = KnowledgeIndex(pack_dir=pack).sync(progress=True)
    assert report.embedded == 1 and report.shipped == report.total - 1
    assert set(embedded_texts) <= {edited[0].embed_text, edited[0].summary_text} and embedded_texts
    assert "Embedding passages" in capsys.readouterr().err


def test_build_status_says_what_the_index_is_doing_while_it_embeds(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, pack)
    article = pack / "articles" / "triggers.md"
    article.write_text(article.read_text(encoding="utf-8") + "\n## A section the team added\n\nIt is new text.\n",
                       encoding="utf-8")
    started, release = threading.Event(), threading.Event()
    original = E5EmbeddingFunction.__call__

    def slow(self: E5EmbeddingFunction, input: list[str]) -> list:  # noqa: A002
        started.set()
        release.wait(30)
        return original(self, input)

    monkeypatch.setattr(E5EmbeddingFunction, "__call__", slow)
    assert build_status() is None
    worker = threading.Thread(target=lambda: KnowledgeIndex(pack_dir=pack).sync(progress=False))
    worker.start()
    try:
        assert started.wait(60)
        message = build_status()
        assert message is not None and message.startswith("Preparing the knowledge index")
        assert "embedding 0 of 1 new or changed passages" in message
    finally:
        release.set()
        worker.join(120)
    assert build_status() is None


def test_a_damaged_or_foreign_prebuilt_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "pack-index.npz"
    texts = ["alpha text", "beta text"]
    stats = write_prebuilt(target, model="m", tokenizer=TOKENIZER_VERSION, fingerprint="f", texts=texts,
                           embed=lambda batch: [np.full(4, len(t), dtype=np.float32) for t in batch],
                           token_texts=texts, tokenize=tokenize)
    assert stats["vectors"] == 2
    good = load_prebuilt(target)
    assert good is not None and good.vector("alpha text", "m") is not None
    assert good.vector("gamma text", "m") is None and good.tokens_of("beta text", TOKENIZER_VERSION) == ["beta", "text"]

    data = dict(np.load(target))
    data["vectors"] = data["vectors"] * 2  # tampered: the checksum no longer matches
    damaged = tmp_path / "damaged.npz"
    np.savez_compressed(damaged, **data)
    assert load_prebuilt(damaged) is None
    assert "checksum" in caplog.text
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    assert load_prebuilt(garbage) is None


def test_the_prebuilt_index_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_ENGINEER_PREBUILT", "0")
    load_prebuilt.cache_clear()
    try:
        assert load_prebuilt() is None
    finally:
        monkeypatch.delenv("STREAMING_ENGINEER_PREBUILT")
        load_prebuilt.cache_clear()
    assert load_prebuilt() is not None  # used again once turned back on
