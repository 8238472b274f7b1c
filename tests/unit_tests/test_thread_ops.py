"""Operations commands in a thread that started with a source of its own (not the pack's example names).

A senior engineer's thread: Kafka orders into ``acme.bronze.orders_raw`` (payload event time ``order_ts``,
id ``order_id``, checkpoints under ``/Volumes/acme/stream_ops/checkpoints``), then *dlq-ops,
*latency-slo, *replay-recovery, *workflows-triggers, *cost-guardrails, *blue-green, *streaming-runbook
taking the offered defaults. Every default must point at tables and columns the thread really has.
"""

from __future__ import annotations

import re

import sqlglot
import yaml
from sqlglot import exp

from tests.unit_tests.test_artifact_contracts import PACK, defaults
from tools.artifacts import generate
from tools.design import Design

KAFKA = {"checkpoint_root": "/Volumes/acme/stream_ops/checkpoints/orders_bronze",
         "target_table": "acme.bronze.orders_raw", "event_id_field": "order_id",
         "payload_schema": "order_id STRING, order_ts TIMESTAMP, customer_id STRING, amount DECIMAL(12,2), "
                           "status STRING",
         "topic": "orders.v2", "runtime": "15.4 LTS"}


def thread(tasks: list[str], first: dict[str, str] = KAFKA) -> tuple[Design, dict[str, dict[str, str]]]:
    """Kafka with the custom answers, then ``tasks`` each with the defaults the thread offers."""
    design = Design()
    files: dict[str, dict[str, str]] = {}
    for task_id, extra in [("kafka-connector-setup", first), *[(t, {}) for t in tasks]]:
        answers = {**defaults(task_id, design), **extra}
        doc = PACK.tasks[task_id].doc_output_location
        files[task_id] = {a.path: a.content for a in generate(task_id, answers, {}, doc, None, design)
                          if isinstance(a.content, str)}
    return design, files


def constant(source: str, name: str) -> str:
    found = re.search(rf'^{name} = "([^"]*)"', source, re.M)
    assert found, name
    return found.group(1)


def test_dlq_defaults_name_the_bronze_tables_columns() -> None:
    design, _ = thread([])
    offered = defaults("dlq-quarantine-ops", design)
    assert offered["source_table"] == "acme.bronze.orders_raw"
    assert offered["event_time_column"] == "order_ts"  # the payload's event time, not the example's event_time
    assert offered["id_column"] == "order_id"
    assert offered["validation_rule"] == "order_id IS NOT NULL AND order_ts IS NOT NULL"


def test_an_answer_renames_the_column_in_later_defaults() -> None:
    design, _ = thread([])
    later = [{"key": "event_time_column", "default": "order_ts"},
             {"key": "validation_rule", "default": "order_id IS NOT NULL AND order_ts IS NOT NULL"}]
    design.follow("id_column", "order_id", "customer_id", later)
    assert later[1]["default"] == "customer_id IS NOT NULL AND order_ts IS NOT NULL"
    assert later[0]["default"] == "order_ts"
    # A table answer sets the column defaults to that table's own columns.
    later = [{"key": "event_time_column", "default": "event_time"}]
    design.follow("source_table", "main.bronze.events", "acme.bronze.orders_raw", later)
    assert later[0]["default"] == "order_ts"


def test_the_dlq_router_and_the_slo_read_only_columns_the_thread_writes() -> None:
    design, files = thread(["dlq-quarantine-ops", "latency-slo-and-alerts", "replay-and-recovery",
                            "streaming-runbook"])
    bronze = set(design.tables["acme.bronze.orders_raw"].columns)
    router = files["dlq-quarantine-ops"]["docs/streaming/dlq-ops/dlq_router.py"]
    assert constant(router, "EVENT_TIME") in bronze
    rule = sqlglot.parse_one(constant(router, "VALIDATION_RULE"), read="databricks")
    assert {c.name for c in rule.find_all(exp.Column)} <= bronze
    replay = files["replay-and-recovery"]["docs/streaming/replay-recovery/replay_backfill.py"]
    assert constant(replay, "EVENT_TIME") in bronze
    silver = design.table_by_role("silver")
    assert silver is not None and silver.name.startswith("acme.") and "order_ts" in silver.columns
    slo = files["latency-slo-and-alerts"]["docs/streaming/latency-slo/slo_alerts.sql"]
    assert "max(order_ts)" in slo and f"FROM {silver.name}" in slo
    runbook = files["streaming-runbook"]["docs/streaming/runbook/oncall_queries.sql"]
    assert f"FROM {silver.name}" in runbook and "max(order_ts)" in runbook


def test_later_table_defaults_stay_in_the_threads_catalog() -> None:
    design, _ = thread(["dlq-quarantine-ops"])
    offered = defaults("blue-green-deploy", design)
    assert offered["blue_table"].startswith("acme.") and offered["audit_table"].startswith("acme.")
    assert defaults("canary-and-shadow", design)["shadow_target"].startswith("acme.")


def test_job_bundles_deploy_into_the_threads_catalog_and_checkpoint_root() -> None:
    _, files = thread(["jobs-continuous-triggers", "cost-guardrails-streaming"])
    for task_id, folder in (("jobs-continuous-triggers", "jobs-triggers"), ("cost-guardrails-streaming",
                                                                            "cost-guardrails")):
        config = yaml.safe_load(files[task_id][f"docs/streaming/{folder}/databricks.yml"])
        prod = config["targets"]["prod"]["variables"]
        assert prod["catalog"] == "acme", (task_id, prod)
        assert prod["checkpoint_root"] == "/Volumes/acme/stream_ops/checkpoints", (task_id, prod)
        assert config["targets"]["dev"]["variables"]["catalog"] == "acme_dev"


def test_a_thread_started_by_the_standards_and_the_dlq_keeps_their_root_and_bronze() -> None:
    standards = {**defaults("init-streaming-standards"), "catalog_schema": "retail.streaming",
                 "checkpoint_root": "/Volumes/retail/ops/chk", "path": "/Volumes/retail/ops/chk/pos_sales",
                 "source_table": "retail.bronze.pos_events", "table": "retail.silver.pos_sales"}
    design = Design()
    generate("init-streaming-standards", standards, {}, PACK.tasks["init-streaming-standards"].doc_output_location,
             None, design)
    assert design.checkpoint_root == "/Volumes/retail/ops/chk"  # the root itself, not its parent
    answers = {**defaults("dlq-quarantine-ops", design), "source_table": "retail.bronze.pos_events",
               "id_column": "txn_id", "event_time_column": "sold_at"}
    generate("dlq-quarantine-ops", answers, {}, PACK.tasks["dlq-quarantine-ops"].doc_output_location, None, design)
    offered = defaults("replay-and-recovery", design)
    assert offered["source_table"] == "retail.bronze.pos_events"  # the Bronze the router reads, not an example
    assert offered["checkpoint"].startswith("/Volumes/retail/ops/chk/")


def test_a_second_bundle_of_the_same_command_moves_as_a_whole(tmp_path) -> None:
    from agent.nodes.tasks import bundle_moves
    from tools.workspace import Workspace

    workspace = Workspace(tmp_path)
    doc = PACK.tasks["jobs-continuous-triggers"].doc_output_location

    def bundle(answers: dict[str, str]) -> list[dict[str, str]]:
        full = {**defaults("jobs-continuous-triggers"), **answers}
        return [{"path": a.path, "content": a.content} for a in generate("jobs-continuous-triggers", full, {}, doc)
                if isinstance(a.content, str)]

    first = bundle({"trigger_type": "scheduled (periodic)", "name": "retail-pos-ingest"})
    assert bundle_moves(workspace, first) == {}
    for artifact in first:
        workspace.write(artifact["path"], artifact["content"])
    assert bundle_moves(workspace, first) == {}  # the same bundle again: nothing to move
    second = bundle({"trigger_type": "continuous", "name": "retail-pos-live"})
    moves = bundle_moves(workspace, second)
    assert moves == {"docs/streaming/jobs-triggers": "docs/streaming/jobs-triggers.v2"}
    # The moved bundle is complete: its databricks.yml and the entry point it names sit in one folder.
    home = moves["docs/streaming/jobs-triggers"]
    config = next(yaml.safe_load(a["content"]) for a in second if a["path"].endswith("/databricks.yml"))
    entry = config["resources"]["jobs"]["retail_pos_live"]["tasks"][0]["spark_python_task"]["python_file"]
    moved = {home + a["path"][len("docs/streaming/jobs-triggers"):] for a in second}
    assert f"{home}/databricks.yml" in moved and f"{home}/{entry}" in moved


def test_blue_green_jobs_run_on_the_compute_their_stream_was_written_for() -> None:
    from pathlib import PurePosixPath

    from tests.unit_tests.test_bundles_deploy import bundle_problems

    for compute in ("serverless", "classic"):
        answers = {**defaults("blue-green-deploy"), "compute_kind": compute}
        files = {a.path: a.content for a in generate("blue-green-deploy", answers, {},
                                                     PACK.tasks["blue-green-deploy"].doc_output_location)}
        stream = files["docs/streaming/blue-green/blue_green_stream.py"]
        config = yaml.safe_load(files["docs/streaming/blue-green/databricks.yml"])
        assert bundle_problems(config, PurePosixPath("docs/streaming/blue-green"), files) == [], compute
        for job in config["resources"]["jobs"].values():
            if compute == "serverless":
                assert "trigger(availableNow=True)" in stream
                assert "job_clusters" not in job and job["environments"], job
                assert all(t.get("environment_key") == "default" for t in job["tasks"])
            else:
                assert "processingTime" in stream and job["job_clusters"] and "environments" not in job


def test_the_runbooks_files_pass_the_runbook_checklist_so_the_gate_can_say_go() -> None:
    from tools.release_gate import GO, decide

    answers = {**defaults("streaming-runbook"), "pipelines_covered": "acme-orders-ingest", "drill_interval": "60 days"}
    doc = PACK.tasks["streaming-runbook"].doc_output_location
    files = {a.path: a.content for a in generate("streaming-runbook", answers, {}, doc) if isinstance(a.content, str)}
    # Both pack templates are written from the answers (no heading-only shells beside the runbook).
    for name in ("docs/streaming/runbook-streaming.md", "docs/streaming/oncall-playbook-streaming.md"):
        assert "acme-orders-ingest" in files[name] and "SEV1" in files[name]
    decision = decide(PACK, files, [], ("runbook-completeness-checklist",))
    statuses = {item["status"] for r in decision.results for item in r.get("items", [])}
    assert decision.verdict == GO, (decision.verdict, decision.results)
    assert statuses <= {"PASS", "N/A"}


def test_the_standards_pipeline_spec_has_every_field_the_standards_require() -> None:
    design, _ = thread([])  # after Kafka: the reference stream reads its Bronze
    answers = {**defaults("init-streaming-standards", design), "source_table": "acme.bronze.orders_raw",
               "table": "acme.silver.orders_ref", "path": "/Volumes/acme/stream_ops/checkpoints/orders_ref_v1"}
    doc = PACK.tasks["init-streaming-standards"].doc_output_location
    files = {a.path: a.content for a in generate("init-streaming-standards", answers, {}, doc, None, design)}
    standards = yaml.safe_load(files["docs/streaming/init-standards/streaming_standards.yaml"])
    spec = yaml.safe_load(files["docs/streaming/streaming-pipeline-spec.yaml"])["pipeline"]
    required = [field.split(" ")[0] for field in standards["pipeline_spec_required"]]
    assert [f for f in required if not spec.get(f)] == []
    stream = files["docs/streaming/init-standards/reference_stream.py"]
    assert constant(stream, "EVENT_TIME") == spec["event_time_column"] == "order_ts"  # the Bronze's own column
    assert constant(stream, "ID_COLUMN") == spec["idempotency_key"] == "order_id"
    assert constant(stream, "QUERY_NAME") == spec["query_name"]
    assert constant(stream, "CHECKPOINT") == spec["checkpoint_location"]


def test_backpressure_verdict_follows_the_threads_compute() -> None:
    from tools.artifacts import step_notes

    answers = {**defaults("backpressure-and-throughput"), "peak_input_rate": "8000", "trigger_interval": "30 seconds",
               "max_offsets_per_trigger": "100000", "target_batch_duration": "20 seconds"}
    classic = step_notes("backpressure-and-throughput", answers, Design(compute="classic"))[0]
    assert "BELOW the 240000 records one 30 seconds trigger" in classic
    serverless = step_notes("backpressure-and-throughput", answers, Design(compute="serverless"))[0]
    # availableNow has no trigger interval: the schedule brings 240000 records, drained in 3 batches of 100000.
    assert "trigger brings" not in serverless and "3 batch(es) of at most 100000" in serverless
