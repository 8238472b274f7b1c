"""Checklists judged from behaviour: artefact kinds, facts, and what a file can and cannot show."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.loader import load_pack
from tools.checklist import Target, run_checklist
from tools.evidence import classify, facts_of
from tools.evidence.facts import markdown_facts, python_facts, sql_facts

PACK = load_pack()
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "review" / "orders_bronze_kafka.py"


def _item(report, prefix: str):
    return next(i for i in report.items if i.text.startswith(prefix))


def _all_checklists(targets: list[Target]):
    return {cid: run_checklist(checklist, targets) for cid, checklist in PACK.checklists.items()}


def test_a_kafka_bronze_file_against_every_checklist_fails_nothing_it_cannot_show() -> None:
    reports = _all_checklists([Target(FIXTURE.name, FIXTURE.read_text(encoding="utf-8"), FIXTURE)])
    totals = {s: sum(r.counts()[s] for r in reports.values()) for s in ("PASS", "FAIL", "PARTIAL", "N/A", "REVIEW")}
    # Before: 22 FAIL and a 25% pass rate, from "no evidence of: budget, instance pool, replication, drill...".
    assert totals["FAIL"] == 0 and totals["PARTIAL"] == 0, totals
    assert totals["PASS"] >= 3 and totals["N/A"] >= 10 and totals["REVIEW"] >= 10, totals
    budget = _item(reports["cost-guardrails-streaming-checklist"], "预算")
    assert budget.status == "N/A" and "not something a code file can show" in budget.reason
    assert "job/bundle config" in budget.reason  # says where the evidence would be
    drill = _item(reports["disaster-recovery-streaming-checklist"], "跨域")
    assert drill.status == "N/A"
    assert _item(reports["runbook-completeness-checklist"], "升级").status == "N/A"
    # What the file shows is PASS with file:line evidence of the real option, not a comment.
    sink = _item(reports["exactly-once-checklist"], "接入")
    assert sink.status == "PASS"
    assert any("orders_bronze_kafka.py:56" in e and "checkpointLocation" in e for e in sink.evidence), sink.evidence
    offsets = _item(reports["source-connector-checklist"], "起始位点")
    assert offsets.status == "PASS" and any("startingOffsets=earliest" in e for e in offsets.evidence)
    # Partly shown: auth and TLS are in the code, key rotation is not something a code file shows.
    auth = _item(reports["source-connector-checklist"], "认证")
    assert auth.status == "REVIEW" and "evidenced: authentication, encryption" in auth.reason
    assert "key rotation" in auth.reason
    # No aggregation, no schema change: not what the file does.
    assert _item(reports["watermarking-lateness-checklist"], "水位").status == "N/A"
    assert _item(reports["schema-evolution-live-checklist"], "可空").status == "N/A"
    # The report says why items are N/A or REVIEW.
    markdown = reports["cost-guardrails-streaming-checklist"].to_markdown()
    assert "not something a code file can show" in markdown and "- Kinds: `orders_bronze_kafka.py` code" in markdown
    assert "N/A: not something a code file can show" in reports["observability-sli-slo-checklist"].scope()


def test_a_defect_in_the_same_file_still_fails() -> None:
    text = FIXTURE.read_text(encoding="utf-8").replace('            .option("checkpointLocation", CHECKPOINT)\n', "")
    report = run_checklist(PACK.checklists["exactly-once-checklist"], [Target("orders_bronze_kafka.py", text)])
    sink = _item(report, "接入")
    assert sink.status == "FAIL" and any("SE201" in e for e in sink.evidence)


def test_comments_docstrings_and_log_messages_are_no_evidence() -> None:
    code = '''"""Sets maxOffsetsPerTrigger, a checkpointLocation and retries with backoff."""
# checkpointLocation is configured by the platform; startingOffsets earliest
import logging
LOG = logging.getLogger(__name__)
LOG.info("retry with backoff and timeout; maxOffsetsPerTrigger=1000")
df = spark.readStream.table("main.bronze.orders")
'''
    facts = python_facts(code, "job.py")
    texts = " ".join(f.text for f in facts)
    assert "maxOffsetsPerTrigger" not in texts and "checkpointLocation" not in texts and "backoff" not in texts
    assert ".table('main.bronze.orders')" in texts
    report = run_checklist(PACK.checklists["backpressure-retries-checklist"], [Target("job.py", code)])
    assert all(i.status != "PASS" for i in report.items)


def test_sql_comments_are_no_evidence_but_statements_are() -> None:
    text = "-- SELECT count(DISTINCT event_id) reconciles duplicates\n/* retention 7 days */\nSELECT count(*) FROM t;\n"
    facts = sql_facts(text, "q.sql")
    assert [f.text for f in facts] == ["SELECT count(*) FROM t"] and facts[0].where == "q.sql:3"


def test_headings_and_empty_sections_are_no_evidence() -> None:
    doc = ("# Cost guardrails\n\n## Budget and thresholds\n\n## Instance pools and cluster policies\n\n"
           "We will set a budget and a cluster policy with thresholds.\n\n## Throttling and degradation\n\nTBD\n")
    assert markdown_facts(doc, "cost.md", "doc") == []
    report = run_checklist(PACK.checklists["cost-guardrails-streaming-checklist"], [Target("docs/cost.md", doc)])
    assert {i.status for i in report.items} == {"REVIEW"}
    assert "not evidenced by these files: budget, thresholds, instance pool, cluster policy" in report.items[0].reason


def test_a_runbook_with_only_headings_fails_and_a_concrete_one_passes() -> None:
    empty = "# On-call Playbook (Streaming)\n\n## 响应级别与升级路径\n\n## 诊断与旁路脚本\n\n## 复盘\n"
    checklist = PACK.checklists["runbook-completeness-checklist"]
    report = run_checklist(checklist, [Target("docs/oncall-playbook.md", empty)])
    assert [i.status for i in report.items] == ["FAIL", "FAIL"]
    assert "missing from the runbook, which must show it" in report.items[0].reason
    concrete = (
        "# Orders stream runbook\n\n## Severity\n\n| Level | When | Respond |\n|---|---|---|\n"
        "| SEV1 | data loss or freshness SLO breached | 15 min |\n\n## Diagnosis\n\n"
        "1. Check `query.lastProgress` for `numInputRows` and `durationMs.triggerExecution`.\n\n"
        "## Bypass\n\n- Route bad rows to `main.ops.orders_quarantine` and pause the `orders_gold` job.\n\n"
        "## Escalation\n\n- Escalate to pagerduty:streaming-oncall after 30 minutes.\n\n## Post-mortem\n\n"
        "- Post-mortem within 5 business days for SEV1/SEV2.\n")
    report = run_checklist(checklist, [Target("docs/runbook.md", concrete)])
    assert [i.status for i in report.items] == ["PASS", "PASS"], [(i.status, i.reason) for i in report.items]
    assert any("docs/runbook.md:7" in e for e in report.items[0].evidence)


def test_guidance_and_checklist_results_in_a_task_document_are_no_evidence() -> None:
    doc = ("# Cost\n\n## Steps · 步骤\n\n### 1. Budget\n\nGuidance from the knowledge base:\n\n"
           "- Set the budget and its thresholds (warn at 80%, limit at 100%) [1]\n\nSources:\n  - [1] cost (`x.md`)\n\n"
           "## Checklist results · 检查结果\n\n| PASS | Budget, thresholds, instance pools | budget — x:1 |\n")
    assert markdown_facts(doc, "cost.md", "doc") == []
    decided = doc.replace("Guidance from the knowledge base:", "**For your inputs · 本次决定:** Budget 150 USD/day, "
                          "warn at 120 USD (80%).\n\nGuidance from the knowledge base:")
    assert [f.text for f in markdown_facts(decided, "cost.md", "doc")] == [
        "For your inputs · 本次决定: Budget 150 USD/day", "warn at 120 USD (80%)."]
    # A clause counts only with its own value: intentions listed beside a number are no evidence.
    listed = "- Budget 150 USD/day, instance pools, cluster policies and thresholds to be decided.\n"
    assert [f.text for f in markdown_facts(listed, "cost.md", "doc")] == ["Budget 150 USD/day"]


def test_answers_evidence_what_code_cannot_show() -> None:
    code = FIXTURE.read_text(encoding="utf-8")
    answers = "rotation_period: 90 days\npartitions: 24\nthroughput: 20000 rows/s\ninstance_pool: none\n"
    facts = facts_of("inputs", answers, "answers")
    assert [f.text for f in facts] == ["rotation_period=90 days", "partitions=24", "throughput=20000 rows/s"]
    report = run_checklist(PACK.checklists["source-connector-checklist"],
                           [Target(FIXTURE.name, code), Target("inputs", answers)])
    assert [i.status for i in report.items] == ["PASS", "PASS", "PASS"], [(i.status, i.reason) for i in report.items]


@pytest.mark.parametrize(("name", "text", "kind"), [
    ("src/job.py", "x = 1\n", "code"),
    ("q.sql", "SELECT 1", "sql"),
    ("bundle/databricks.yml", "bundle:\n  name: x\nresources: {}\n", "job"),
    ("cluster_policy.json", '{"dbus_per_hour": {"type": "range", "maxValue": 40}}', "config"),
    ("kafka.json", '{"kafka.bootstrap.servers": "b:9093"}', "config"),
    ("docs/streaming/runbook.md", "# Streaming Runbook\n", "runbook"),
    ("docs/streaming/kafka-connector.md", "# Kafka Connector Setup\n", "doc"),
    ("docs/checklists/exactly-once-checklist-report.md", "# Checklist report\n", "report"),
    ("docs/gates/streaming-release.md", "# Release Gate\n", "report"),
    ("inputs", "a: b\n", "answers"),
    ("deploy.sh", "databricks bundle deploy\n", "script"),
])
def test_kinds(name: str, text: str, kind: str) -> None:
    assert classify(name, text) == kind


def test_reports_are_never_evidence() -> None:
    report_text = "# Checklist report\n\n| PASS | Budget | budget — cost.sql:4: `SELECT 150 AS budget_usd` |\n"
    report = run_checklist(PACK.checklists["cost-guardrails-streaming-checklist"],
                           [Target("docs/checklists/cost-guardrails-streaming-checklist-report.md", report_text)])
    assert all(i.status == "N/A" for i in report.items)


def test_every_file_of_a_required_kind_must_show_it() -> None:
    triggered_pipeline = ("bundle:\n  name: orders\nresources:\n  pipelines:\n    orders:\n      name: orders\n"
                          "      continuous: false\n      libraries:\n        - file: {path: ./dlt_pipeline.py}\n")
    scheduled_job = ("resources:\n  jobs:\n    orders:\n      name: orders\n      schedule:\n"
                     "        quartz_cron_expression: 0 0/15 * * * ?\n        timezone_id: UTC\n")
    checklist = PACK.checklists["jobs-triggers-checklist"]
    alone = run_checklist(checklist, [Target("dlt/databricks.yml", triggered_pipeline)])
    item = _item(alone, "连续")
    # A triggered pipeline that nothing schedules: the bundle must show its trigger, and `continuous: false` is none.
    assert item.status == "FAIL" and "`dlt/databricks.yml` lacks job trigger" in item.reason
    both = run_checklist(checklist, [Target("dlt/databricks.yml", triggered_pipeline),
                                     Target("jobs/databricks.yml", scheduled_job)])
    item = _item(both, "连续")
    assert item.status == "PARTIAL" and "`dlt/databricks.yml` lacks job trigger" in item.reason
    with_job = triggered_pipeline + "  jobs:\n    refresh:\n      schedule: {quartz_cron_expression: 0 0 * * * ?}\n"
    fixed = run_checklist(checklist, [Target("dlt/databricks.yml", with_job)])
    assert _item(fixed, "连续").status == "REVIEW"  # the job trigger is there; the query trigger is the code's


def test_every_pack_facet_names_known_kinds_and_a_code_file_is_never_required_to_show_plans() -> None:
    from tools.evidence.kinds import KINDS

    for checklist in PACK.checklists.values():
        for item in checklist.items:
            assert item.facets, (checklist.id, item.id)
            assert set(item.required_in) <= set(KINDS), (checklist.id, item.id)
            assert "code" not in item.required_in  # what code must do is the linter's to say, with a rule
            for facet in item.facets:
                assert facet.kinds and set(facet.kinds) <= set(KINDS), (checklist.id, item.id, facet.name)


def test_a_facet_no_required_file_can_show_is_still_judged() -> None:
    job = ("resources:\n  jobs:\n    orders:\n      name: orders\n      continuous: {pause_status: UNPAUSED}\n"
           "      tasks:\n        - task_key: s\n          spark_python_task: {python_file: src/s.py}\n")
    code = 'spark.readStream.table("main.bronze.orders").writeStream.toTable("main.silver.orders")\n'
    report = run_checklist(PACK.checklists["jobs-triggers-checklist"],
                           [Target("databricks.yml", job), Target("s.py", code)])
    item = _item(report, "连续")
    # The job shows its trigger; the code sets none, which the code could show: not a PASS.
    assert item.status == "REVIEW" and "not evidenced by these files: query trigger" in item.reason


def test_notebook_cells_give_facts_at_their_file_lines() -> None:
    notebook = ('# Databricks notebook source\nx = spark.readStream.table("a")\n\n# COMMAND ----------\n\n'
                "# MAGIC %sql\n# MAGIC SELECT count(DISTINCT id) FROM t -- reconcile\n")
    assert [f.cite() for f in facts_of("n.py", notebook, "code")] == [
        "n.py:2: `.table('a')`", "n.py:7: `SELECT count(DISTINCT id) FROM t`"]
