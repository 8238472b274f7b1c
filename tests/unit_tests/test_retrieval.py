"""Retrieval layer: passages, embeddings, hybrid search, offline answers, CLI.

Everything runs on a small pack written to a temporary folder, with its own
STREAMING_ENGINEER_HOME, offline (HF_HUB_OFFLINE=1) and with the real
embedding model from the installed wheel.
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge import cli
from knowledge.answer import NO_ANSWER, compose_answer, split_units
from knowledge.documents import load_pack_passages, split_markdown
from knowledge.embeddings import E5_NAME, E5EmbeddingFunction, default_embedding_function
from knowledge.index import KnowledgeIndex, tokenize
from knowledge.retrieval import MAX_QUERY_CHARS, QueryError, Retriever

KAFKA_ARTICLE = """\
---
id: kafka
title: "Apache Kafka with Structured Streaming: offsets, rate limits and security"
title_zh: Kafka 与结构化流
topics: [kafka, backpressure]
related: [watermarks, checkpoints]
sources:
  - {title: "Structured Streaming + Kafka Integration Guide", url: "https://spark.apache.org/docs/latest/structured-streaming-kafka-integration.html"}
  - {title: "Kafka security on Databricks", url: "https://docs.databricks.com/connect/streaming/kafka.html"}
---
# Apache Kafka with Structured Streaming

Kafka is read with `format("kafka")`.

## Kafka starting offsets (startingOffsets)

中文要点：起始位点 startingOffsets 流式默认 latest，只在新查询首次启动时生效，之后从检查点恢复。

`startingOffsets` defaults to `latest` for streaming queries. It applies only when a query starts
for the first time; a restarted query resumes from the offsets in its checkpoint.

## Kafka rate limiting: maxOffsetsPerTrigger and minPartitions

中文要点：限速 maxOffsetsPerTrigger（每个微批最多读取的偏移量）、minPartitions 提高并行度、背压。

- `maxOffsetsPerTrigger` (default none) caps the number of offsets read per micro-batch, split across partitions.
- `minPartitions` splits large Kafka partitions into more Spark tasks.

```python
# ## this is a comment in code, not a heading
df = spark.readStream.format("kafka").option("maxOffsetsPerTrigger", 100000).load()
```

## Kafka security with SASL_SSL and secrets

中文要点：SASL_SSL 认证，用 dbutils.secrets.get 从密钥范围读取密码。

Read the SASL password with `dbutils.secrets.get` and set `kafka.security.protocol` to `SASL_SSL`.
"""

WATERMARK_ARTICLE = """\
---
id: watermarks
title: Watermarks and late data
related: [kafka]
sources:
  - {title: "Structured Streaming Programming Guide", url: "https://spark.apache.org/docs/latest/structured-streaming-programming-guide.html"}
---
# Watermarks and late data

## How a watermark is computed (withWatermark)

中文要点：水位 watermark = 已见最大事件时间 − 延迟阈值，用 withWatermark 定义。

`withWatermark("event_time", "10 minutes")` sets the watermark to the maximum event time seen minus the threshold.
State older than the watermark is dropped.

## Multiple watermark policy

中文要点：多个流各自水位，全局水位默认取最小值 min。

`spark.sql.streaming.multipleWatermarkPolicy` is `min` by default: the global watermark follows the slowest stream.
"""

CONNECTORS_KB = """\
---
id: connectors-kb
title: Connectors
title_zh: 连接器
---
# Connectors

Kafka, Event Hubs and Kinesis sources all track progress in the checkpoint, not in the broker.
"""

CHECKLIST = """\
id: source-connector-checklist
title: Source Connector Checklist
title_zh: 源连接器检查清单
sections:
  - title: {zh: "源连接器", en: "Source connector"}
    items:
      - id: auth
        zh: 认证/加密/密钥轮换
        en: Authentication, encryption in transit and key rotation
        topic: security
        recommendation: "Read credentials from a secret scope (dbutils.secrets.get) and use SASL_SSL."
"""

TASK = """\
id: kafka-connector-setup
command: kafka-connector
title: Kafka Connector Setup
title_zh: Kafka 连接器配置
doc_output_location: docs/streaming/kafka-connector.md
purpose: {zh: "配置 Kafka 读取。", en: "Configure the Kafka source."}
inputs: {templates: [kafka-connector-config-tmpl.json], data: [connectors-kb], other: []}
steps:
  - {zh: "安全与认证参数", en: "Security and authentication options"}
checklists: [source-connector-checklist]
"""

TEMPLATE = '{\n  "kafka.bootstrap.servers": "{{servers}}",\n  "subscribe": "{{topic}}"\n}\n'
TEMPLATE_META = """\
title: Kafka connector config
title_zh: Kafka 连接器配置
placeholders:
  servers: {ask: {zh: "Kafka 地址", en: "Kafka bootstrap servers"}, kind: text}
"""


def make_pack(root: Path) -> Path:
    """Write the small test pack under ``root`` and return its folder."""
    pack = root / "pack"
    for folder in ("articles", "data", "templates", "checklists", "tasks"):
        (pack / folder).mkdir(parents=True, exist_ok=True)
    (pack / "articles" / "kafka.md").write_text(KAFKA_ARTICLE, encoding="utf-8")
    (pack / "articles" / "watermarks.md").write_text(WATERMARK_ARTICLE, encoding="utf-8")
    (pack / "data" / "connectors-kb.md").write_text(CONNECTORS_KB, encoding="utf-8")
    (pack / "checklists" / "source-connector-checklist.yaml").write_text(CHECKLIST, encoding="utf-8")
    (pack / "tasks" / "kafka-connector-setup.yaml").write_text(TASK, encoding="utf-8")
    (pack / "templates" / "kafka-connector-config-tmpl.json").write_text(TEMPLATE, encoding="utf-8")
    (pack / "templates" / "kafka-connector-config-tmpl.json.meta.yaml").write_text(TEMPLATE_META, encoding="utf-8")
    return pack


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network, no server, no OpenAI: the default, local path."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("STREAMING_ENGINEER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CHROMA_URL", raising=False)
    monkeypatch.delenv("STREAMING_ENGINEER_EMBEDDINGS", raising=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Retriever]]:
    """One index of the small pack for the module: (home, pack, retriever)."""
    root = tmp_path_factory.mktemp("kb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("CHROMA_URL", raising=False)
        mp.delenv("STREAMING_ENGINEER_EMBEDDINGS", raising=False)
        home, pack = root / "home", make_pack(root)
        retriever = Retriever(home=home, pack_dir=pack, progress=False)
        retriever.search("warm up", k=1)
        yield home, pack, retriever


# ---------------------------------------------------------------------------
# passages


def test_split_markdown_ignores_headings_inside_code_fences() -> None:
    title, preamble, sections = split_markdown(KAFKA_ARTICLE.split("---\n", 2)[2])
    assert title == "Apache Kafka with Structured Streaming"
    assert 'format("kafka")' in preamble
    assert [s.slug for s in sections] == [
        "kafka-starting-offsets-startingoffsets",
        "kafka-rate-limiting-maxoffsetspertrigger-and-minpartitions",
        "kafka-security-with-sasl-ssl-and-secrets",
    ]
    assert "## this is a comment in code" in sections[1].text


def test_pack_passages_have_stable_ids_paths_kinds_and_sources(tmp_path: Path) -> None:
    pack = make_pack(tmp_path)
    first, second = load_pack_passages(pack), load_pack_passages(pack)
    assert [p.id for p in first] == [p.id for p in second]
    assert [p.content_hash for p in first] == [p.content_hash for p in second]
    by_id = {p.id: p for p in first}
    section = by_id["article:kafka#kafka-rate-limiting-maxoffsetspertrigger-and-minpartitions"]
    assert section.path == "articles/kafka.md"
    assert section.kind == "article"
    assert section.title == "Apache Kafka with Structured Streaming — Kafka rate limiting: maxOffsetsPerTrigger and minPartitions"
    assert section.sources[0]["url"].startswith("https://spark.apache.org/")
    assert section.related == ("watermarks", "checkpoints")
    assert by_id["knowledge:connectors-kb"].kind == "knowledge"
    assert by_id["template:kafka-connector-config-tmpl.json"].title == "Kafka connector config template"
    assert by_id["checklist:source-connector-checklist#source-connector"].kind == "checklist"
    assert "Security and authentication" in by_id["task:kafka-connector-setup"].text
    assert {p.kind for p in first} == {"article", "knowledge", "template", "checklist", "task"}


def test_a_broken_pack_file_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pack = make_pack(tmp_path)
    (pack / "tasks" / "broken.yaml").write_text("id: [unclosed\n  : :", encoding="utf-8")
    (pack / "articles" / "latin1.md").write_bytes("## Caf\xe9\n".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        passages = load_pack_passages(pack)
    assert any(p.id == "task:kafka-connector-setup" for p in passages)
    assert "broken.yaml" in caplog.text and "latin1.md" in caplog.text


def test_tokenize_splits_option_names_and_segments_chinese() -> None:
    tokens = tokenize("cloudFiles.schemaLocation and maxOffsetsPerTrigger")
    assert {"cloudfiles.schemalocation", "schema", "location", "maxoffsetspertrigger", "offset", "trigger"} <= set(tokens)
    assert "and" not in tokens
    chinese = tokenize("水位线怎么设置？Kafka 每个微批")
    assert "水位线" in chinese and "微批" in chinese and "kafka" in chinese
    assert "怎么" not in chinese


def test_split_units_keeps_bullets_rows_code_and_summary_line() -> None:
    section = "## Kafka rate limiting" + KAFKA_ARTICLE.split("## Kafka rate limiting", 1)[1].split("## Kafka security")[0]
    assert [kind for kind, _ in split_units(section)] == ["zh", "bullet", "bullet", "code"]
    table = "| Option | Default |\n|---|---|\n| `maxFetchRate` | `1.0` |\n\nFirst sentence. Second one."
    assert split_units(table) == [
        ("head", "Option — Default"),  # the column names: kept for term statistics, never shown
        ("row", "`maxFetchRate` — `1.0`"),
        ("sentence", "First sentence."),
        ("sentence", "Second one."),
    ]


# ---------------------------------------------------------------------------
# embeddings


def test_default_embedding_is_the_bundled_multilingual_e5() -> None:
    function = default_embedding_function()
    assert isinstance(function, E5EmbeddingFunction)
    assert function.name() == E5_NAME
    rebuilt = E5EmbeddingFunction.build_from_config(function.get_config())
    assert rebuilt.get_config() == function.get_config()
    vectors = function(["Kafka maxOffsetsPerTrigger", "水位线"])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert not function.is_legacy()


def test_embedding_function_is_registered_with_chroma() -> None:
    from chromadb.utils.embedding_functions import known_embedding_functions

    assert known_embedding_functions[E5_NAME] is E5EmbeddingFunction


def test_passage_vectors_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setenv("STREAMING_ENGINEER_EMBED_CACHE", str(tmp_path / "cache"))
    function = E5EmbeddingFunction()
    first = function(["Kafka maxOffsetsPerTrigger caps offsets per micro-batch"])
    files = list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 1
    assert np.array_equal(function(["Kafka maxOffsetsPerTrigger caps offsets per micro-batch"])[0], first[0])
    files[0].write_bytes(b"not a numpy file")  # a damaged entry is recomputed, not trusted
    assert np.allclose(function(["Kafka maxOffsetsPerTrigger caps offsets per micro-batch"])[0], first[0])
    monkeypatch.setenv("STREAMING_ENGINEER_EMBED_CACHE", "0")
    function(["something else entirely"])
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1


def test_openai_embeddings_only_when_asked_and_keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_ENGINEER_EMBEDDINGS", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert isinstance(default_embedding_function(), E5EmbeddingFunction)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    function = default_embedding_function()
    assert function.name() == "openai"


# ---------------------------------------------------------------------------
# search


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_finds_the_section_in_every_mode(built: tuple[Path, Path, Retriever], mode: str) -> None:
    _, _, retriever = built
    hits = retriever.search("how do I limit how many kafka offsets are read per micro-batch?", k=3, mode=mode)
    assert hits[0].id == "article:kafka#kafka-rate-limiting-maxoffsetspertrigger-and-minpartitions"
    assert hits[0].path == "articles/kafka.md"
    assert 0 < hits[0].score <= 1.0
    assert hits[0].sources


def test_chinese_questions_find_the_english_section(built: tuple[Path, Path, Retriever]) -> None:
    _, _, retriever = built
    hits = retriever.search("多个流合并时全局水位取哪个？", k=3)
    assert hits[0].id == "article:watermarks#multiple-watermark-policy"
    hits = retriever.search("Kafka 每个微批最多读多少条？", k=3)
    assert hits[0].id.startswith("article:kafka#kafka-rate-limiting")


def test_kinds_filter(built: tuple[Path, Path, Retriever]) -> None:
    _, _, retriever = built
    for mode in ("hybrid", "dense", "bm25"):
        hits = retriever.search("kafka connector", k=5, kinds=["task", "template"], mode=mode)
        assert hits and {h.kind for h in hits} <= {"task", "template"}


def test_dense_ranking_is_the_same_in_memory_and_through_chroma(built: tuple[Path, Path, Retriever],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge.retrieval as retrieval

    _, _, retriever = built
    questions = ["how do I limit how many kafka offsets are read per micro-batch?", "多个流合并时全局水位取哪个？",
                 "where should the checkpoint live"]
    in_memory = [[(h.id, round(h.score, 3)) for h in retriever.search(q, k=5, mode="dense")] for q in questions]
    filtered = [h.kind for h in retriever.search("kafka connector", k=5, mode="dense", kinds=["task"])]
    monkeypatch.setattr(retrieval, "MEMORY_VECTORS", 0)
    retriever.refresh()
    try:
        assert [[(h.id, round(h.score, 3)) for h in retriever.search(q, k=5, mode="dense")] for q in questions] == in_memory
        assert [h.kind for h in retriever.search("kafka connector", k=5, mode="dense", kinds=["task"])] == filtered
        assert filtered and set(filtered) == {"task"}
    finally:
        retriever.refresh()


def test_hit_json_shape_is_the_cli_contract(built: tuple[Path, Path, Retriever]) -> None:
    _, _, retriever = built
    assert set(retriever.search("watermark", k=1)[0].to_dict()) == {"id", "title", "path", "kind", "score", "text"}


@pytest.mark.parametrize("query", ["", "   \n", "x" * (1024 * 1024)])
def test_empty_and_huge_queries_get_a_clear_error(built: tuple[Path, Path, Retriever], query: str) -> None:
    _, _, retriever = built
    with pytest.raises(QueryError) as info:
        retriever.search(query)
    message = str(info.value)
    assert ("Empty query" in message) if not query.strip() else (f"{MAX_QUERY_CHARS:,}" in message)


def test_index_is_reused_and_only_changes_are_embedded(tmp_path: Path) -> None:
    home, pack = tmp_path / "home", make_pack(tmp_path)
    index = KnowledgeIndex(home=home, pack_dir=pack)
    first = index.sync(progress=False)
    assert first.embedded == first.total > 0
    again = KnowledgeIndex(home=home, pack_dir=pack).sync(progress=False)
    assert (again.embedded, again.deleted, again.unchanged) == (0, 0, first.total)

    article = pack / "articles" / "watermarks.md"
    text = article.read_text(encoding="utf-8")
    text = text.replace("State older than the watermark is dropped.", "State older than the watermark is removed.")
    text = text.split("## Multiple watermark policy")[0]  # the section disappears
    article.write_text(text, encoding="utf-8")
    update = KnowledgeIndex(home=home, pack_dir=pack).sync(progress=False)
    assert (update.embedded, update.deleted, update.total) == (1, 2, first.total - 1)  # 2 = passage + summary vector

    retriever = Retriever(home=home, pack_dir=pack)
    ids = {p.id for p in retriever.passages()}
    assert "article:watermarks#multiple-watermark-policy" not in ids
    assert "removed" in retriever.search("how is the watermark computed", k=1)[0].text


def test_retriever_builds_on_first_use_then_reuses(tmp_path: Path) -> None:
    home, pack = tmp_path / "home", make_pack(tmp_path)
    assert Retriever(home=home, pack_dir=pack).search("kafka security", k=1)
    lexical = home / "index"
    assert any(p.name.startswith("lexical-") for p in lexical.iterdir())
    second = Retriever(home=home, pack_dir=pack)
    # Same fingerprint: the saved BM25 state is loaded, nothing is re-embedded.
    assert second.index.sync(progress=False).embedded == 0


# ---------------------------------------------------------------------------
# offline answers


def test_composed_answer_is_short_cited_and_has_the_key_fact(built: tuple[Path, Path, Retriever]) -> None:
    _, _, retriever = built
    question = "how do I cap the number of records per micro-batch when reading kafka?"
    answer = compose_answer(question, retriever.search(question, k=5))
    assert answer.found
    assert "maxOffsetsPerTrigger" in answer.body
    assert "[1]" in answer.body
    assert answer.citations[0].id.startswith("article:kafka#kafka-rate-limiting")
    assert "Sources:" in answer.text and "[1] " in answer.text
    assert "https://" in answer.text  # the official page is cited
    assert len(answer.body) < 1500
    assert "Related topics:" in answer.text and answer.related


def test_chinese_answer_includes_the_chinese_summary(built: tuple[Path, Path, Retriever]) -> None:
    _, _, retriever = built
    question = "水位线是怎么计算的？"
    answer = compose_answer(question, retriever.search(question, k=5))
    assert answer.found
    assert "中文要点" in answer.body and "withWatermark" in answer.body


def test_no_answer_is_said_plainly(built: tuple[Path, Path, Retriever]) -> None:
    _, _, retriever = built
    question = "what is a good hydration ratio for sourdough bread?"
    answer = compose_answer(question, retriever.search(question, k=5))
    assert not answer.found
    assert answer.text.startswith(NO_ANSWER[:40])
    assert answer.citations == []
    assert not compose_answer("anything", []).found


# ---------------------------------------------------------------------------
# command line


def test_cli_search_and_ask_json(built: tuple[Path, Path, Retriever], capsys: pytest.CaptureFixture[str]) -> None:
    home, pack, _ = built
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAMING_ENGINEER_HOME", str(home))
        assert cli.main(["search", "kafka", "starting", "offsets", "--json", "-k", "2", "--pack", str(pack)]) == 0
        results = json.loads(capsys.readouterr().out)["results"]
        assert len(results) == 2
        assert set(results[0]) == {"id", "title", "path", "kind", "score", "text"}
        assert results[0]["id"] == "article:kafka#kafka-starting-offsets-startingoffsets"

        assert cli.main(["ask", "what is the default startingOffsets?", "--json", "--pack", str(pack)]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert "latest" in payload["answer"]
        assert payload["sources"] and set(payload["sources"][0]) == {"id", "title", "path", "score"}

        assert cli.main(["ask", "水位线怎么计算？", "--pack", str(pack)]) == 0
        assert "中文要点" in capsys.readouterr().out


def test_cli_bad_queries_exit_2_with_a_message(built: tuple[Path, Path, Retriever], capsys: pytest.CaptureFixture[str]) -> None:
    home, pack, _ = built
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAMING_ENGINEER_HOME", str(home))
        assert cli.main(["search", " ", "--json", "--pack", str(pack)]) == 2
        err = capsys.readouterr().err
        assert "Empty query" in err and "Traceback" not in err
        assert cli.main(["ask", "y" * (1024 * 1024), "--pack", str(pack)]) == 2
        assert "too long" in capsys.readouterr().err


def test_cli_index_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = make_pack(tmp_path)
    assert cli.main(["index", "--pack", str(pack)]) == 0
    out = capsys.readouterr().out
    assert "Indexed" in out and "article" in out and "Embedded" in out
    assert cli.main(["index", "--json", "--pack", str(pack)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedded"] == 0 and report["total"] > 0


def test_help_texts_render() -> None:
    parser = cli.build_parser()
    text = textwrap.dedent(parser.format_help())
    assert "search" in text and "ingest" in text


def test_query_vectors_are_memoised_and_a_prefetch_is_the_same_vector() -> None:
    import numpy as np

    from knowledge.embeddings import QueryVectors, _e5_model

    vectors = QueryVectors("original")
    vectors.prefetch("how does maxOffsetsPerTrigger work?")
    first = vectors.get("how does maxOffsetsPerTrigger work?")
    direct = np.asarray(_e5_model("original").query("how does maxOffsetsPerTrigger work?"), dtype=np.float32)
    assert first.shape == (384,) and float(np.dot(first, direct)) > 0.999
    assert vectors.get("how does maxOffsetsPerTrigger work?") is first  # computed once
    assert float(np.dot(vectors.get("水位线"), first)) < 0.99  # a different text is a different vector


def test_a_failed_query_embedding_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledge.embeddings import QueryVectors

    vectors = QueryVectors("original")
    calls = []

    def flaky(text: str):
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("engine failed")
        return [1.0] * 384

    monkeypatch.setattr(vectors, "_embed", flaky)
    with pytest.raises(RuntimeError):
        vectors.get("watermark")
    assert len(vectors.get("watermark")) == 384 and calls == ["watermark", "watermark"]
