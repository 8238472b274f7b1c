"""Offline answers lead with the answer: question kinds, the lead sentence, order, and what is dropped.

Also the two small role fixes of the same issue: ``#yolo`` with no task
waiting, and question hints without a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.runner import first_sentence
from knowledge.answer import arrange_passages, classify_question, compose_answer, leans_back
from knowledge.retrieval import Hit, Retriever
from tests.conftest import run_script
from tests.unit_tests.test_retrieval import make_pack


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    """The small test pack, indexed once for the module."""
    root = tmp_path_factory.mktemp("compose")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("CHROMA_URL", raising=False)
        mp.delenv("STREAMING_ENGINEER_EMBEDDINGS", raising=False)
        yield Retriever(home=root / "home", pack_dir=make_pack(root), progress=False)


@pytest.mark.parametrize(("question", "kind"), [
    ("which option caps how many offsets a micro-batch reads from kafka?", "setting"),
    ("what's the default startingOffsets for a streaming read?", "setting"),
    ("how do I stop my kafka stream from pulling millions of records in one batch?", "setting"),
    ("how should I lay out checkpoints for many queries?", "how"),
    ("why does my restarted query not re-read the topic from earliest?", "troubleshoot"),
    ("stream died with KAFKA_DATA_LOSS, what now?", "troubleshoot"),
    ("auto loader keeps failing with UnknownFieldException", "troubleshoot"),
    ("why is RocksDB recommended for large state?", "why"),
    ("what is a watermark?", "what"),
    ("directory listing vs file notification mode: which is cheaper?", "compare"),
    ("Kafka 每个微批最多读多少条怎么限制？", "setting"),
    ("为什么重启后没有从头读取？", "why"),
    ("流作业报错 KAFKA_DATA_LOSS 怎么办", "fix"),
    ("my stream-stream join state keeps growing, how do I bound it?", "fix"),
    ("if a field has the wrong type does auto loader just drop it?", "yesno"),
    ("目录列举和文件通知有什么区别？", "compare"),
    ("什么是水位线？", "what"),
    ("tell me about kinesis", "other"),
    ("where does auto loader keep the schema it inferred?", "location"),
    ("how much ingress does one event hubs throughput unit allow?", "quantity"),
    ("what happens if I delete the checkpoint and restart?", "consequence"),
    ("can two queries read from the same consumer group?", "yesno"),
    ("Auto Loader 推断出来的 schema 存在哪里？", "location"),
    ("从目录列举迁移到文件事件需要换检查点吗？", "yesno"),
])
def test_questions_are_classified_by_what_they_ask(question: str, kind: str) -> None:
    assert classify_question(question) == kind


def test_a_setting_question_leads_with_the_setting_and_its_citation(small: Retriever) -> None:
    question = "how do I limit how many offsets each kafka micro-batch reads?"
    answer = compose_answer(question, small.search(question, k=5))
    lead = answer.body.splitlines()[0]
    assert "maxOffsetsPerTrigger" in first_sentence(lead)
    assert lead.rstrip().endswith("[1]")
    assert answer.citations[0].id.startswith("article:kafka#kafka-rate-limiting")


def test_a_troubleshooting_question_leads_with_the_cause(small: Retriever) -> None:
    question = "I set startingOffsets to earliest but the restarted query did not re-read the topic, why?"
    answer = compose_answer(question, small.search(question, k=5))
    assert "checkpoint" in first_sentence(answer.body)


def test_units_that_do_not_address_the_question_are_dropped() -> None:
    def hit(pid: str, title: str, text: str) -> Hit:
        return Hit(id=pid, title=title, path="articles/x.md", kind="article", score=1.0, text=text, dense=0.9)

    text = (
        "- `maxOffsetsPerTrigger` caps the offsets each micro-batch reads from Kafka.\n"
        "- Dashboards should show end-to-end latency in minutes.\n"
        "- Run a disaster drill every quarter.\n"
    )
    answer = compose_answer("which kafka option caps the offsets per micro-batch?",
                            [hit("article:k#rate", "Kafka — Rate limiting: maxOffsetsPerTrigger", text)])
    assert answer.body.startswith("- `maxOffsetsPerTrigger`")
    assert "drill" not in answer.body and "Dashboards" not in answer.body


def _article(pid: str, title: str, text: str, score: float = 1.0) -> Hit:
    return Hit(id=pid, title=title, path="articles/x.md", kind="article", score=score, text=text, dense=0.9)


def test_the_sentence_that_answers_leads_and_the_rest_of_its_bullet_follows() -> None:
    text = (
        "- **Fixed interval** – `.trigger(processingTime=\"10 seconds\")`. If a batch finishes early the engine "
        "waits for the boundary; if a batch overruns the interval, the next one starts immediately.\n"
        "- **Available now** – processes what is there, then stops.\n"
    )
    answer = compose_answer("what happens when a micro-batch takes longer than the processingTime interval?",
                            [_article("article:t#fixed", "Triggers — Fixed interval: processingTime", text)])
    lines = answer.body.splitlines()
    assert "starts immediately" in first_sentence(lines[0])
    assert lines[1].startswith("- **Fixed interval** – `.trigger(processingTime=")  # the rest of the bullet, once
    assert answer.body.count("starts immediately") == 1


def test_a_setting_question_leads_with_the_option_its_section_is_about() -> None:
    text = (
        "Databricks Runtime 11.3 LTS added reading Kinesis in enhanced fan-out mode, which gives each consumer "
        "dedicated throughput per shard.\n\n"
        "- `consumerMode`: `polling` (default) or `efo`.\n"
        "- `consumerName`: the name the query registers under.\n"
    )
    answer = compose_answer("how do I turn on enhanced fan-out for a kinesis source?",
                            [_article("article:k#efo", "Kinesis — Kinesis enhanced fan-out: consumerMode, consumerName",
                                      text)])
    assert "`consumerMode`" in first_sentence(answer.body)


def test_a_how_much_question_leads_with_the_amount() -> None:
    text = ("- **Throughput units** (Standard tier) are shared by all event hubs in a namespace. One TU allows "
            "ingress up to 1 MB/s or 1,000 events/s. Ingress above capacity is throttled.\n")
    answer = compose_answer("how much ingress does one event hubs throughput unit allow?",
                            [_article("article:e#tu", "Event Hubs — Throughput units", text)])
    assert "1 MB/s" in first_sentence(answer.body)


def test_the_first_line_names_the_option_of_the_section_it_comes_from() -> None:
    text = ("Cap how much each micro-batch admits, so a query restarted after an outage does not read the whole "
            "backlog at once.\n\n- Set it on the `readStream` options; the value is a number of offsets.\n")
    question = "How do I stop a Kafka stream from taking the whole backlog in one micro-batch after an outage?"
    answer = compose_answer(question, [_article("article:k#rate", "Kafka — Rate limiting with maxOffsetsPerTrigger",
                                                text)])
    lead = first_sentence(answer.body)
    assert lead.startswith("Rate limiting with maxOffsetsPerTrigger** — Cap how much each micro-batch admits")
    assert answer.body.count("Rate limiting with maxOffsetsPerTrigger") == 1


def test_no_heading_label_when_the_lead_sentence_already_names_the_option() -> None:
    text = "`maxFilesPerTrigger` caps how many new files each micro-batch takes (default 1000).\n"
    answer = compose_answer("how many files does auto loader take per micro-batch?",
                            [_article("article:a#rate", "Auto Loader — Rate limiting: maxFilesPerTrigger", text)])
    assert answer.body.startswith("- `maxFilesPerTrigger` caps how many new files")


def test_a_list_announced_by_the_lead_starts_on_its_first_line() -> None:
    text = ("For streaming pipelines these indicators usually cover it:\n\n"
            "- **Freshness**: minutes since the newest row landed.\n- **Completeness**: rows in against rows out.\n")
    answer = compose_answer("which service level indicators should a streaming pipeline have?",
                            [_article("article:m#sli", "Monitoring — Service level indicators for streaming", text)])
    assert "Freshness" in first_sentence(answer.body)


def test_a_task_passage_does_not_lead_when_an_article_answers() -> None:
    task = Hit(id="task:dlt", title="Task dlt", path="tasks/dlt.yaml", kind="task", score=1.0, dense=0.9,
               text="- Which quarantine table receives the rows? (被拒绝的行写入哪个隔离表？) (default main.q)\n")
    article = _article("article:dq#expect", "Data quality — Expectations: expect_or_drop",
                       "- `@dp.expect_or_drop` drops the rows that fail and keeps the pipeline running.\n"
                       "中文要点：expect_or_drop 丢弃不合格的行，管道不失败。", score=0.99)
    answer = compose_answer("DLT 里想丢弃不合格的行，用哪个期望？", [task, article])
    assert answer.citations[0].id == "article:dq#expect"
    assert "expect_or_drop" in first_sentence(answer.body)


def test_a_model_gets_the_passages_in_the_order_the_offline_answer_uses(small: Retriever) -> None:
    question = "how do I cap the number of offsets per micro-batch from kafka?"
    hits = small.search(question, k=5)
    arranged = arrange_passages(question, hits)
    answer = compose_answer(question, hits)
    assert [h.id for h in arranged[: len(answer.citations)]] == [h.id for h in answer.citations]
    assert sorted(h.id for h in arranged) == sorted(h.id for h in hits)
    off_topic = small.search("sourdough hydration ratio", k=3)
    assert arrange_passages("sourdough hydration ratio", off_topic) == off_topic


def test_hash_yolo_with_no_task_waiting_says_so_and_what_star_yolo_does(se_home: Path) -> None:
    turns = run_script(["#yolo"], se_home)
    output = turns[-1]["output"]
    assert "No task is waiting" in output and "`*yolo`" in output
    assert "Sources:" not in output and not re.search(r"\[\d+\]", output)


def test_a_free_text_question_shows_no_placeholder_hint(se_home: Path) -> None:
    turns = run_script(["*dlt-streaming"], se_home)
    question = turns[-1]["output"]
    assert turns[-1]["pending_question"]
    assert "some text" not in question and "\n__" not in question and "_ _" not in question
    assert "[1/" in question


def test_the_eval_reports_how_often_the_first_sentence_holds_a_key_fact() -> None:
    from evals.datasets import Case
    from evals.metrics import knowledge_metrics
    from evals.runner import CaseResult

    assert first_sentence("🌊 - `maxOffsetsPerTrigger` caps offsets. Then more. [1]\n- next") == \
        "`maxOffsetsPerTrigger` caps offsets."
    assert first_sentence("中文要点：限速 maxOffsetsPerTrigger。其他。") == "中文要点：限速 maxOffsetsPerTrigger。"
    results = [CaseResult(Case("knowledge", f"q{n}", "knowledge"), 0, "passed", 0.1,
                          metrics={"answerable": True, "rank": 1, "key_facts": True, "first_sentence_fact": lead})
               for n, lead in enumerate([True, False, True, True])]
    assert knowledge_metrics(results)["first_sentence_fact"] == 0.75


def test_shared_words_do_not_make_a_far_off_request_relevant():
    from knowledge.answer import is_relevant
    from knowledge.retrieval import Hit

    def hit(text: str, dense: float) -> Hit:
        return Hit(id="article:x#y", title="Replay", path="articles/x.md", kind="article", score=1.0, text=text,
                   sources=(), related=(), dense=dense)

    passage = "A replay job must write the passing rows with MERGE so a second run does not duplicate them."
    question = "write a cover letter for a marketing job"
    assert not is_relevant(question, [hit(passage, 0.78)])
    assert is_relevant("how does a replay job write the passing rows", [hit(passage, 0.8)])


def test_question_words_match_the_passages_spelling_of_them() -> None:
    text = ("- Kafka security options are plain Kafka client settings with the `kafka.` prefix.\n"
            "- `kafka.sasl.mechanism` = `PLAIN` for a Kafka login.\n"
            "- Never hard-code Kafka logins in a notebook: read them from a secret scope with `dbutils.secrets.get`.\n")
    answer = compose_answer("how do I avoid hardcoding my kafka credentials?",
                            [_article("article:k#sec", "Kafka — Kafka security: SASL options and Databricks secrets",
                                      text)])
    assert "dbutils.secrets.get" in first_sentence(answer.body)


def test_a_dotted_setting_counts_as_its_sections_subject_by_its_last_two_parts() -> None:
    text = ("- The Kafka login setting is `kafka.sasl.mechanism` = `PLAIN`.\n"
            "- For the Kafka login use `dbutils.secrets.get(scope, key)` = the stored secret.\n")
    answer = compose_answer("which setting do I need for the kafka login?",
                            [_article("article:k#sec", "Kafka — Kafka login with Databricks secrets", text)])
    assert "dbutils.secrets.get" in first_sentence(answer.body)


def test_a_chinese_answer_opens_with_the_summary_line_that_answers_the_question() -> None:
    overview = _article("knowledge:obs", "观测 — Streaming observability",
                        "中文要点：查询异常终止看首个异常；处理落后看处理速率与积压。\n\n"
                        "- When input stays above processing the backlog grows and the watermark lags.\n", score=1.0)
    watermark = _article("article:wm#compute", "Watermarks — How the watermark is computed (withWatermark)",
                         "中文要点：水位线 = 已见最大事件时间 减去 withWatermark 设置的延迟阈值。\n\n"
                         "- The watermark is the largest event time seen minus the delay threshold.\n", score=0.98)
    answer = compose_answer("水位线是怎么计算的？", [overview, watermark])
    assert "withWatermark" in first_sentence(answer.body)
    assert answer.body.count("中文要点") == 2  # the other summary line still closes the answer


def test_a_lead_announcing_a_table_starts_with_its_first_row_not_its_column_names() -> None:
    text = ("For streaming pipelines these indicators usually cover it:\n\n"
            "| Indicator | Definition |\n|---|---|\n"
            "| Freshness | minutes since the newest row landed |\n"
            "| Completeness | rows in against rows out |\n")
    answer = compose_answer("which service level indicators should a streaming pipeline have?",
                            [_article("article:m#sli", "Monitoring — Service level indicators for streaming", text)])
    assert "Freshness" in first_sentence(answer.body)
    assert "Indicator — Definition" not in answer.body
    assert "Completeness" in answer.body  # the rest of the table still follows


@pytest.mark.parametrize(("question", "dense", "found"), [
    ("今天股市行情怎么样？", 0.86, False),  # near in e5's space, but not one word in common: off-topic
    ("今天股市行情怎么样？", 0.90, True),  # very close: a paraphrase with no shared word
    ("非关键流怎么更省钱？", 0.86, True),  # shares a word with the passage
])
def test_similarity_alone_answers_only_when_it_is_very_close(question: str, dense: float, found: bool) -> None:
    text = "中文要点：非关键流改用定时 availableNow（增量批）代替常驻集群。\n\nRun non-critical streams on a schedule.\n"
    hit = Hit(id="article:c#t", title="Cost — Trigger intervals", path="articles/c.md", kind="article", score=1.0,
              text=text, dense=dense)
    assert compose_answer(question, [hit]).found is found


@pytest.mark.parametrize(("sentence", "leans"), [
    ("The default trigger and `processingTime` are not supported there.", True),
    ("The latter keeps state for a day.", True),
    ("There is no limit on the number of files.", False),
    ("On serverless compute, Structured Streaming supports only `Trigger.AvailableNow()`.", False),
])
def test_a_sentence_that_points_back_is_recognised(sentence: str, leans: bool) -> None:
    assert leans_back(sentence) is leans


def test_an_article_section_leads_over_an_overview_that_only_just_outranks_it() -> None:
    overview = Hit(id="knowledge:observability", title="观测 — Streaming observability", path="data/obs.md",
                   kind="knowledge", score=1.0, dense=0.9,
                   text="- Latency: how long a micro-batch takes (`durationMs.triggerExecution`) and the end-to-end "
                        "delay after an outage.\n- Lag: how far the stream is behind its backlog.\n")
    section = ("To absorb a burst or a large backlog, cap how much each micro-batch admits: `maxOffsetsPerTrigger` "
               "for Kafka, `maxFilesPerTrigger` for files.\n")
    question = "How do I stop a Kafka stream from taking the whole backlog in one micro-batch after an outage?"
    rate = _article("article:b#rate", "Backpressure — Rate limiting with admission controls", section, score=0.976)
    answer = compose_answer(question, [overview, rate])
    assert "maxOffsetsPerTrigger" in first_sentence(answer.body)
    assert answer.citations[0] is rate
    far = _article("article:b#rate", "Backpressure — Rate limiting with admission controls", section, score=0.8)
    assert compose_answer(question, [overview, far]).citations[0] is overview  # well below: retrieval's order holds
