"""Artefact generators: every domain task's files compile or parse, pass the linter, follow the
edge convention and carry the user's values where they belong (in-process, no Spark)."""

from __future__ import annotations

import ast
import json
from pathlib import PurePosixPath

import pytest
import yaml

from agent.nodes.tasks import task_questions
from knowledge.loader import load_pack
from tools.artifacts import (
    DIAGRAMS,
    GENERATORS,
    diagram,
    generate,
    operations,
    pipelines,
    recovery,
    releases,
    sources,
    standards,
    stateful,
    step_notes,
    tuning,
)
from tools.artifacts.base import Duration, Inputs, artifact_dir, channels, config_path, parse_percent, py, sql_ident
from tools.artifacts.bundles import quartz_every
from tools.artifacts.diagrams import label
from tools.design import EXTRA_QUESTIONS, SUPERSEDED_QUESTIONS
from tools.lint import check_text
from tools.values import check_value

PACK = load_pack()
NOT_DOMAIN = {"create-doc", "execute-checklist", "shard-doc", "release-gate-streaming"}
DOMAIN = sorted(t for t in PACK.tasks if t not in NOT_DOMAIN)
NO_FLOW = {"cost-guardrails-streaming", "streaming-runbook"}  # budgets and on-call: no data flow to draw
LINT_KINDS = {"python": "python", "yaml": "yaml", "json": "json", "sql": "sql"}
STREAM_FUNCTIONS = ("read_stream", "transform", "start", "main")

GENERATOR_DEFAULTS = {
    "autoloader-streaming-ingest": sources.AUTOLOADER_DEFAULTS,
    "kafka-connector-setup": sources.KAFKA_DEFAULTS,
    "eventhubs-connector-setup": sources.EVENTHUBS_DEFAULTS,
    "kinesis-connector-setup": sources.KINESIS_DEFAULTS,
    "dlt-streaming-pipeline": pipelines.DLT_DEFAULTS,
    "streaming-dq-expectations": pipelines.DQ_DEFAULTS,
    "watermarks-and-lateness": stateful.WATERMARK_DEFAULTS,
    "dedup-and-idempotency": stateful.DEDUP_DEFAULTS,
    "state-store-management": stateful.STATE_DEFAULTS,
    "dlq-quarantine-ops": recovery.DLQ_DEFAULTS,
    "replay-and-recovery": recovery.REPLAY_DEFAULTS,
    "schema-evolution-live": recovery.SCHEMA_DEFAULTS,
    "latency-slo-and-alerts": operations.SLO_DEFAULTS,
    "jobs-continuous-triggers": operations.JOBS_DEFAULTS,
    "cost-guardrails-streaming": operations.COST_DEFAULTS,
    "canary-and-shadow": releases.CANARY_DEFAULTS,
    "blue-green-deploy": releases.BLUE_GREEN_DEFAULTS,
    "init-streaming-standards": standards.STANDARDS_DEFAULTS,
    "source-inventory-streaming": standards.INVENTORY_DEFAULTS,
    "streaming-runbook": standards.RUNBOOK_DEFAULTS,
    "backpressure-and-throughput": tuning.BACKPRESSURE_DEFAULTS,
}

# Custom answers per task, and (artefact file name, text) pairs that must appear in that file.
CUSTOM: dict[str, tuple[dict[str, str], list[tuple[str, str]]]] = {
    "init-streaming-standards": (
        {"catalog_schema": "acme.rt", "checkpoint_root": "/Volumes/acme/rt/chk", "default_trigger": "availableNow",
         "replay_window": "3 days", "trigger_interval": "2 minutes", "alert_owner": "team-rt",
         "source_table": "acme.rt.bronze_clicks", "name": "clicks_stream", "path": "/Volumes/acme/rt/chk/clicks_v1",
         "table": "acme.rt.silver_clicks"},
        [("streaming_standards.yaml", "acme.rt"),
         ("streaming_standards.yaml", "/Volumes/acme/rt/chk/<table or query name>[_v<N>]"),
         ("streaming_standards.yaml", "3 days"), ("streaming_standards.yaml", "team-rt"),
         ("reference_stream.py", 'TARGET_TABLE = "acme.rt.silver_clicks"'),
         ("reference_stream.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/clicks_v1"'),
         ("reference_stream.py", 'SOURCE_TABLE = "acme.rt.bronze_clicks"'), ("reference_stream.py", "availableNow=True")],
    ),
    "source-inventory-streaming": (
        {"source_systems": "kafka, kinesis", "retention": "3 days", "event_time_column": "evt_ts",
         "source_timezone": "Asia/Shanghai", "max_disorder": "20 minutes", "source_name": "clicks.v2", "partitions": "48",
         "security": "mTLS, certificates in secret scope rt", "bronze_table": "acme.bronze.clicks",
         "arrival_column": "arrived_at"},
        [("source_inventory.yaml", "clicks.v2"), ("source_inventory.yaml", "partitions: 48"),
         ("source_inventory.yaml", "Asia/Shanghai"), ("source_inventory.yaml", "20 minutes"),
         ("source_inventory.yaml", "system: kinesis"), ("measure_disorder.sql", "FROM acme.bronze.clicks"),
         ("measure_disorder.sql", "unix_timestamp(arrived_at) - unix_timestamp(evt_ts)")],
    ),
    "autoloader-streaming-ingest": (
        {"source_path": "s3://acme-landing/clicks/", "file_format": "csv",
         "schema_location": "/Volumes/acme/rt/chk/clicks/_schema", "checkpoint_root": "/Volumes/acme/rt/chk/clicks",
         "target_table": "acme.bronze.clicks", "dlq_table": "acme.dlq.clicks", "id_column": "click_id",
         "schema_hints": "click_id STRING, ts TIMESTAMP", "schema_evolution_mode": "addNewColumns",
         "max_files_per_trigger": "250", "file_discovery": "file events", "trigger_mode": "availableNow",
         "trigger_interval": "5 minutes"},
        [("autoloader_ingest.py", 'SOURCE_PATH = "s3://acme-landing/clicks/"'),
         ("autoloader_ingest.py", 'FILE_FORMAT = "csv"'), ("autoloader_ingest.py", 'DLQ_TABLE = "acme.dlq.clicks"'),
         ("autoloader_ingest.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/clicks"'),
         ("autoloader_ingest.py", 'SCHEMA_LOCATION = "/Volumes/acme/rt/chk/clicks/_schema"'),
         ("autoloader_ingest.py", "MAX_FILES_PER_TRIGGER = 250"), ("autoloader_ingest.py", "cloudFiles.useManagedFileEvents"),
         ("autoloader_ingest.py", "trigger(availableNow=True)"), ("autoloader_ingest.py", '.option("mergeSchema", "true")'),
         ("autoloader_ingest.py", 'ID_COLUMN = "click_id"')],
    ),
    "kafka-connector-setup": (
        {"partitions": "24", "max_offsets_per_trigger": "50000", "fail_on_data_loss": "true",
         "checkpoint_root": "/Volumes/acme/rt/chk/clicks_kafka", "target_table": "acme.bronze.clicks_kafka",
         "starting_offsets": "earliest", "event_id_field": "click_id", "dedup_window": "30 minutes",
         "trigger_interval": "30 seconds", "servers": "kafka-1.acme.io:9093", "topic": "clicks.v2",
         "sasl_username_secret": "prod-kafka/sasl-user", "sasl_password_secret": "prod-kafka/sasl-pass",
         "sasl_mechanism": "SCRAM-SHA-512"},
        [("kafka_source.py", 'BOOTSTRAP_SERVERS = "kafka-1.acme.io:9093"'),
         ("kafka_source.py", 'SASL_MECHANISM = "SCRAM-SHA-512"'), ("kafka_source.py", ".scram.ScramLoginModule"),
         ("kafka-connector-config.json", '"kafka.sasl.mechanism": "SCRAM-SHA-512"'), ("kafka_source.py", 'TOPIC = "clicks.v2"'),
         ("kafka_source.py", 'SECRET_SCOPE = "prod-kafka"'), ("kafka_source.py", 'SECRET_KEY_NAME = "sasl-user"'),
         ("kafka_source.py", 'PASSWORD_SECRET_KEY_NAME = "sasl-pass"'),
         ("kafka_source.py", "dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)"),
         ("kafka_source.py", "MAX_OFFSETS_PER_TRIGGER = 50000"), ("kafka_source.py", 'STARTING_OFFSETS = "earliest"'),
         ("kafka_source.py", 'DEDUP_WINDOW = "30 minutes"'), ("kafka_source.py", 'EVENT_ID = "click_id"'),
         ("kafka_source.py", 'TRIGGER_INTERVAL = "30 seconds"'), ("verify_ingest.sql", "acme.bronze.clicks_kafka")],
    ),
    "eventhubs-connector-setup": (
        {"partitions": "32", "throughput_units": "4", "max_events_per_trigger": "20000", "rotation_period": "30 days",
         "checkpoint_root": "/Volumes/acme/rt/chk/eh", "namespace": "acme-eh", "event_hub": "payments",
         "target_table": "acme.bronze.payments", "starting_offsets": "earliest", "trigger_interval": "10 seconds",
         "connection_string": "eh-scope/payments-listen", "consumer_group": "dbx-payments"},
        [("eventhubs_source.py", '"acme-eh.servicebus.windows.net:9093"'), ("eventhubs_source.py", 'EVENT_HUB = "payments"'),
         ("eventhubs_source.py", 'GROUP_ID_PREFIX = "dbx-payments"'), ("eventhubs_source.py", 'SECRET_SCOPE = "eh-scope"'),
         ("eventhubs_source.py", 'SECRET_KEY_NAME = "payments-listen"'),
         ("eventhubs_source.py", "MAX_EVENTS_PER_TRIGGER = 20000"), ("eventhubs_source.py", "every 30 days"),
         ("eventhubs_source.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/eh"'), ("verify_ingest.sql", "acme.bronze.payments")],
    ),
    "kinesis-connector-setup": (
        {"shards": "16", "iam_role": "arn:aws:iam::999999999999:role/rt-reader", "stream_readers": "1",
         "checkpoint_root": "/Volumes/acme/rt/chk/kin", "target_table": "acme.bronze.kin_clicks",
         "initial_position": "trim_horizon", "trigger_interval": "20 seconds", "region": "eu-west-1",
         "stream": "clickstream"},
        [("kinesis_source.py", 'STREAM_NAME = "clickstream"'), ("kinesis_source.py", 'REGION = "eu-west-1"'),
         ("kinesis_source.py", 'AWS_AUTH = "arn:aws:iam::999999999999:role/rt-reader"'),
         ("kinesis_source.py", '.option("roleArn", AWS_AUTH)'), ("kinesis_source.py", 'CONSUMER_MODE = "polling"'),
         ("kinesis_source.py", "maxFetchRate"), ("kinesis_source.py", 'INITIAL_POSITION = "trim_horizon"'),
         ("kinesis_source.py", "SHARDS = 16"), ("verify_ingest.sql", "acme.bronze.kin_clicks")],
    ),
    "dlt-streaming-pipeline": (
        {"source": "acme.raw.clicks", "source_format": "delta", "event_time_column": "evt_ts",
         "allowed_lateness": "15 minutes", "target_table": "acme.gold.clicks_per_window", "pipeline_mode": "continuous",
         "bronze_table": "acme.bronze.clicks", "table": "acme.silver.clicks", "quarantine_table": "acme.quarantine.clicks",
         "window_duration": "10 minutes", "notification_email": "rt-oncall@acme.io",
         "streaming-pipeline-spec-tmpl:name": "clicks_pipeline",
         "expectations-streaming-tmpl:name": "positive_amount", "expr": "amount > 0", "action": "FAIL"},
        [("dlt_pipeline.py", 'SOURCE = "acme.raw.clicks"'), ("dlt_pipeline.py", 'GOLD_TABLE = "acme.gold.clicks_per_window"'),
         ("dlt_pipeline.py", 'SILVER_TABLE = "acme.silver.clicks"'),
         ("dlt_pipeline.py", 'QUARANTINE_TABLE = "acme.quarantine.clicks"'),
         ("dlt_pipeline.py", '"positive_amount": "amount > 0"'), ("dlt_pipeline.py", "@dp.expect_all_or_fail(FAIL_RULES)"),
         ("dlt_pipeline.py", 'ALLOWED_LATENESS = "15 minutes"'), ("dlt_pipeline.py", 'EVENT_TIME = "evt_ts"'),
         ("dlt_pipeline.py", 'WINDOW_DURATION = "10 minutes"'), ("databricks.yml", "continuous: true"),
         ("databricks.yml", "rt-oncall@acme.io"), ("databricks.yml", "name: clicks_pipeline"),
         ("databricks.yml", "catalog: acme"), ("reconciliation.sql", "FROM acme.quarantine.clicks")],
    ),
    "watermarks-and-lateness": (
        {"observed_p99_lateness": "12 minutes", "window_type": "sliding", "window_duration": "10 minutes",
         "output_mode": "update", "late_data_handling": "widen the watermark", "source_table": "acme.silver.clicks",
         "target_table": "acme.gold.clicks_10m", "checkpoint": "/Volumes/acme/rt/chk/clicks_10m", "group_key": "country",
         "ts_col": "evt_ts", "delay": "5 minutes"},
        [("watermark_window.py", 'EVENT_TIME = "evt_ts"'), ("watermark_window.py", 'GROUP_KEY = "country"'),
         ("watermark_window.py", 'SLIDE_DURATION = "5 minutes"'), ("watermark_window.py", 'OUTPUT_MODE = "update"'),
         ("watermark_window.py", 'WATERMARK_DELAY = "24 minutes"'), ("watermark_window.py", "foreachBatch(write_batch)"),
         ("watermark_window.py", 'TARGET_TABLE = "acme.gold.clicks_10m"'),
         ("watermark_window.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/clicks_10m"')],
    ),
    "dedup-and-idempotency": (
        {"sink_write_mode": "append with txnAppId/txnVersion", "target_table": "acme.silver.orders",
         "expected_duplicate_rate": "2.5", "source_table": "acme.bronze.orders",
         "checkpoint": "/Volumes/acme/rt/chk/orders_dedup", "id_key": "order_id", "time_field": "updated_at",
         "window_minutes": "90", "strategy": "first version wins"},
        [("dedup_idempotent_sink.py", 'ID_KEY = "order_id"'), ("dedup_idempotent_sink.py", 'TIME_FIELD = "updated_at"'),
         ("dedup_idempotent_sink.py", 'DEDUP_WINDOW = "90 minutes"'),
         ("dedup_idempotent_sink.py", '.option("txnVersion", batch_id)'),
         ("dedup_idempotent_sink.py", 'SOURCE_TABLE = "acme.bronze.orders"'),
         ("dedup_verification.sql", "2.5%"), ("dedup_verification.sql", "FROM acme.silver.orders")],
    ),
    "state-store-management": (
        {"stateful_operators": "dropDuplicates only", "state_store_provider": "HDFS-backed (in-memory)",
         "expected_state_keys": "500000", "checkpoint_root": "/Volumes/acme/rt/chk/state",
         "source_table": "acme.silver.clicks", "target_table": "acme.gold.clicks_dedup", "id_column": "click_id",
         "event_time_column": "evt_ts", "window_duration": "10 minutes", "shuffle_partitions": "64",
         "job_principal": "rt-jobs", "ttl_hours": "6", "compact_interval_min": "30", "steps": "stop; back up; redeploy"},
        [("stateful_query.py", 'WATERMARK_DELAY = "6 hours"'), ("stateful_query.py", "HDFSBackedStateStoreProvider"),
         ("stateful_query.py", 'SHUFFLE_PARTITIONS = "64"'), ("stateful_query.py", "dropDuplicatesWithinWatermark"),
         ("inspect_state.py", "EXPECTED_STATE_KEYS = 500000"), ("protect_checkpoint.sql", "ON VOLUME acme.rt.chk"),
         ("protect_checkpoint.sql", "`rt-jobs`")],
    ),
    "streaming-dq-expectations": (
        {"freshness_threshold": "5 minutes", "max_drop_rate": "2", "alert_channels": "slack:#rt-dq",
         "quarantine_table": "acme.quarantine.orders", "source_table": "acme.bronze.orders",
         "target_table": "acme.silver.orders", "id_column": "order_id", "event_time_column": "created_at",
         "dedup_window": "2 hours", "name": "valid_amount", "expr": "amount >= 0", "action": "WARN"},
        [("dq_expectations_pipeline.py", '"valid_amount": "amount >= 0"'),
         ("dq_expectations_pipeline.py", 'QUARANTINE_TABLE = "acme.quarantine.orders"'),
         ("dq_expectations_pipeline.py", 'DEDUP_KEY = "order_id"'),
         ("dq_expectations_pipeline.py", "INTERVAL 5 MINUTES"), ("dq_alerts.sql", "> 2"),
         ("dq_alerts.sql", "FROM acme.silver.orders"), ("dq_alert_routing.yaml", "slack:#rt-dq")],
    ),
    "dlq-quarantine-ops": (
        {"dlq_table": "acme.dlq.orders", "max_dlq_ratio": "2", "reprocess_mode": "scheduled job",
         "dlq_owner": "orders-team", "source_table": "acme.bronze.orders", "target_table": "acme.silver.orders",
         "id_column": "order_id", "event_time_column": "created_at",
         "validation_rule": "order_id IS NOT NULL AND amount >= 0", "checkpoint": "/Volumes/acme/rt/chk/orders_dlq"},
        [("dlq_router.py", 'DLQ_TABLE = "acme.dlq.orders"'),
         ("dlq_router.py", 'VALIDATION_RULE = "order_id IS NOT NULL AND amount >= 0"'),
         ("dlq_router.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/orders_dlq"'),
         ("dlq_reprocess.py", 'REPROCESS_MODE = "scheduled job"'), ("dlq_reprocess.py", 'OWNER = "orders-team"'),
         ("dlq_table.sql", "CREATE TABLE IF NOT EXISTS acme.dlq.orders"), ("dlq_table.sql", "dlq_ratio_pct > 2")],
    ),
    "backpressure-and-throughput": (
        {"peak_input_rate": "20000", "trigger_interval": "30 seconds", "max_offsets_per_trigger": "1000000",
         "shuffle_partitions": "96", "target_batch_duration": "20 seconds", "source_kind": "auto loader",
         "baseline_table": "acme.ops.tput"},
        [("backpressure_tuning.py", "PEAK_INPUT_ROWS_PER_SECOND = 20000"),
         ("backpressure_tuning.py", "MAX_RECORDS_PER_TRIGGER = 1000000"),
         ("backpressure_tuning.py", 'SHUFFLE_PARTITIONS = "96"'), ("backpressure_tuning.py", 'SOURCE_KIND = "auto loader"'),
         ("backpressure_tuning.py", 'BASELINE_TABLE = "acme.ops.tput"'),
         ("backpressure_tuning.py", 'TRIGGER_INTERVAL = "30 seconds"')],
    ),
    "latency-slo-and-alerts": (
        {"slo_target": "99.9", "observation_window": "30 days", "alert_channels": "pagerduty:rt-oncall",
         "metrics_sink": "DLT pipeline event log", "latency_objective": "2 minutes", "freshness_objective": "20 minutes",
         "metrics_table": "acme.ops.stream_metrics", "target_table": "acme.gold.orders", "event_time_column": "created_at"},
        [("slo_listener.py", 'METRICS_TABLE = "acme.ops.stream_metrics"'), ("slo_listener.py", "WARN_LATENCY_MS = 160000"),
         ("slo_listener.py", "CRITICAL_LATENCY_MS = 240000"), ("alert_thresholds.yaml", "pagerduty:rt-oncall"),
         ("alert_thresholds.yaml", "error_budget_minutes: 43.2"), ("slo_alerts.sql", "FROM acme.gold.orders"),
         ("slo_alerts.sql", "max(created_at)"), ("pipeline_slo.sql", "backlog_bytes")],
    ),
    "replay-and-recovery": (
        {"replay_window": "48 hours", "replay_source": "source retention (Kafka/Event Hubs/Kinesis)",
         "batch_slice": "4 hours", "target_table": "acme.silver.orders", "rto": "2 hours",
         "source_table": "acme.bronze.orders", "id_column": "order_id", "event_time_column": "created_at",
         "checkpoint": "/Volumes/acme/rt/chk/orders_replay_v2"},
        [("replay_backfill.py", "REPLAY_WINDOW_SECONDS = 172800"), ("replay_backfill.py", "SLICE_SECONDS = 14400"),
         ("replay_backfill.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/orders_replay_v2"'),
         ("replay_backfill.py", 'TARGET_TABLE = "acme.silver.orders"'), ("replay_backfill.py", "trigger(availableNow=True)"),
         ("replay_checks.sql", "acme.silver.orders_reconciliation"), ("replay_checks.sql", "INTERVAL 48 HOURS")],
    ),
    "schema-evolution-live": (
        {"change_summary": "add nullable column loyalty_tier STRING", "target_table": "acme.silver.customers",
         "shadow_duration": "12 hours", "source_table": "acme.bronze.customers",
         "shadow_checkpoint": "/Volumes/acme/rt/chk/cust_shadow", "id_column": "customer_id",
         "event_time_column": "updated_at"},
        [("schema_change.sql", "ALTER TABLE acme.silver.customers ADD COLUMNS (loyalty_tier STRING"),
         ("shadow_schema_stream.py", 'NEW_COLUMN = "loyalty_tier"'),
         ("shadow_schema_stream.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/cust_shadow"'),
         ("compare_shadow.sql", "INTERVAL 12 HOURS"), ("compare_shadow.sql", "acme.silver.customers_schema_shadow"),
         ("CHANGELOG.md", "loyalty_tier")],
    ),
    "cost-guardrails-streaming": (
        {"cluster_policy": "rt-policy", "instance_pool": "rt-pool", "criticality": "best-effort (may pause or degrade)",
         "degraded_trigger_interval": "30 minutes", "alert_channels": "email:finops@acme.io", "max_dbus_per_hour": "12",
         "cost_center": "cc-42", "team": "realtime", "entry_point": "src/orders.py", "pipeline_name": "orders-rt",
         "daily_budget": "80"},
        [("cluster_policy.json", '"maxValue": 12'), ("cluster_policy.json", '"cc-42"'), ("databricks.yml", "rt-policy"),
         ("databricks.yml", "instance_pool: rt-pool"), ("databricks.yml", "0 0/30 * * * ?"),
         ("databricks.yml", "src/orders.py"), ("databricks.yml", "finops@acme.io"), ("budget_monitor.sql", "'orders-rt'"),
         ("budget_monitor.sql", "/ 80")],
    ),
    "jobs-continuous-triggers": (
        {"trigger_type": "file arrival", "max_retries": "5", "notification_targets": "email:rt@acme.io, webhook:1234-abcd",
         "deploy_tool": "Jobs API / CLI", "entry_point": "src/clicks.py", "cluster_policy": "rt-policy",
         "file_arrival_path": "/Volumes/acme/landing/clicks/", "name": "clicks-ingest", "task": "ingest_clicks",
         "cluster": "rt_cluster"},
        [("databricks.yml", "file_arrival"), ("databricks.yml", "url: /Volumes/acme/landing/clicks/"),
         ("databricks.yml", "max_retries: 5"), ("databricks.yml", "rt@acme.io"), ("databricks.yml", "id: 1234-abcd"),
         ("databricks.yml", "name: clicks-ingest"), ("databricks.yml", "task_key: ingest_clicks"),
         ("databricks.yml", "job_cluster_key: rt_cluster"), ("databricks.yml", "cluster_policy: rt-policy"),
         ("databricks.yml", "python_file: src/clicks.py"), ("job.json", '"max_retries": 5')],
    ),
    "canary-and-shadow": (
        {"shadow_target": "acme.shadow.orders", "comparison_window": "48 hours", "max_mismatch_rate": "0.5",
         "approver": "Ana (tech lead)", "source_table": "acme.silver.orders", "production_table": "acme.gold.orders",
         "id_column": "order_id", "event_time_column": "created_at",
         "shadow_checkpoint": "/Volumes/acme/rt/chk/orders_shadow", "ratio": "25"},
        [("shadow_stream.py", "SAMPLE_PERCENT = 25"), ("shadow_stream.py", 'SHADOW_TABLE = "acme.shadow.orders"'),
         ("shadow_stream.py", 'CHECKPOINT = "/Volumes/acme/rt/chk/orders_shadow"'), ("compare_outputs.sql", "<= 0.5"),
         ("compare_outputs.sql", "INTERVAL 48 HOURS"), ("promotion_criteria.yaml", "Ana (tech lead)")],
    ),
    "blue-green-deploy": (
        {"blue_checkpoint": "/Volumes/acme/rt/chk/orders_blue_v3", "green_checkpoint": "/Volumes/acme/rt/chk/orders_green_v4",
         "switch_mechanism": "consumer configuration flip", "health_window": "45 minutes",
         "source_table": "acme.silver.orders", "blue_table": "acme.gold.orders_v3", "green_table": "acme.gold.orders_v4",
         "consumer_view": "acme.gold.orders", "event_time_column": "created_at", "audit_table": "acme.ops.audit",
         "notification_targets": "email:rt@acme.io", "freshness_limit": "15 minutes"},
        [("blue_green_stream.py", '"blue": "/Volumes/acme/rt/chk/orders_blue_v3"'),
         ("blue_green_stream.py", '"green": "/Volumes/acme/rt/chk/orders_green_v4"'),
         ("blue_green_stream.py", '"green": "acme.gold.orders_v4"'), ("cutover.py", "HEALTH_WINDOW_SECONDS = 2700"),
         ("cutover.py", '"acme.ops.active_paths"'), ("cutover.py", 'AUDIT_TABLE = "acme.ops.audit"'),
         ("cutover.py", "FRESHNESS_LIMIT_MINUTES = 15"), ("databricks.yml", "- --color"), ("databricks.yml", "rt@acme.io")],
    ),
    "streaming-runbook": (
        {"pipelines_covered": "orders-rt, clicks-rt", "oncall_rotation": "daily", "escalation_channel": "pagerduty:rt",
         "dashboard_url": "https://acme.cloud.databricks.com/dash/rt", "drill_interval": "30 days",
         "target_table": "acme.gold.orders", "event_time_column": "created_at"},
        [("escalation_policy.yaml", "orders-rt"), ("escalation_policy.yaml", "30 days"),
         ("escalation_policy.yaml", "pagerduty:rt"), ("triage.py", '"https://acme.cloud.databricks.com/dash/rt"'),
         ("oncall_queries.sql", "FROM acme.gold.orders"), ("postmortem_template.md", "orders-rt, clicks-rt")],
    ),
}


def defaults_for(task_id: str) -> dict[str, str]:
    """What #yolo gives the task: every question's default, unvalidated (the extra questions the code asks too)."""
    questions = [q for q in task_questions(PACK, PACK.tasks[task_id]) if (task_id, q["key"]) not in SUPERSEDED_QUESTIONS]
    return {q["key"]: q["default"] for q in [*questions, *EXTRA_QUESTIONS.get(task_id, [])] if q["default"] is not None}


def artefacts(task_id: str, answers: dict[str, str]) -> dict[str, object]:
    """The task's artefacts by file name."""
    doc = PACK.tasks[task_id].doc_output_location
    out = {}
    configs = {config_path(doc, name) for name in PACK.tasks[task_id].templates}
    for artifact in generate(task_id, answers, {}, doc):
        # Beside the document in its folder (a bundle may have src/), or a config rendered at the path of the
        # task's template output.
        assert artifact_dir(doc) in PurePosixPath(artifact.path).parents or artifact.path in configs, artifact.path
        name = PurePosixPath(artifact.path).name
        assert name not in out, f"{task_id}: two artefacts named {name}"
        out[name] = artifact
    return out


def review(artifact: object, allow_partial: bool) -> None:
    """Compile or parse the artefact, and run our own linter on it."""
    text, language = artifact.content, artifact.language  # type: ignore[attr-defined]
    if language == "python":
        compile(text, artifact.path, "exec")  # type: ignore[attr-defined]
    elif language == "yaml":
        assert list(yaml.safe_load_all(text))
    elif language == "json":
        json.loads(text)
    if language in LINT_KINDS:
        result = check_text(text, LINT_KINDS[language], artifact.path)  # type: ignore[attr-defined]
        assert result.error is None, (artifact.path, result.error)  # type: ignore[attr-defined]
        bad = {"FAIL"} if allow_partial else {"FAIL", "PARTIAL"}
        findings = [(f.rule, f.status, f.line, f.message) for f in result.findings if f.status in bad]
        assert not findings, (artifact.path, findings)  # type: ignore[attr-defined]


def test_every_domain_task_has_artefacts_notes_and_a_diagram() -> None:
    assert len(DOMAIN) == 21 and set(GENERATORS) == set(DOMAIN)
    assert set(DIAGRAMS) == set(DOMAIN) - NO_FLOW
    assert set(CUSTOM) == set(DOMAIN) and set(GENERATOR_DEFAULTS) == set(DOMAIN)
    for task_id in DOMAIN:
        notes = step_notes(task_id, defaults_for(task_id))
        assert len(notes) == len(PACK.tasks[task_id].steps), task_id
        assert all(len(n) > 40 for n in notes), task_id
        assert step_notes("release-gate-streaming", {}) == []
        flow = diagram(task_id, defaults_for(task_id))
        assert (flow is None) == (task_id in NO_FLOW), task_id


def test_domain_question_defaults_are_valid_answers() -> None:
    for task_id in DOMAIN:
        for question in PACK.tasks[task_id].questions:
            checked = check_value(question.kind, question.default or "", question.choices)
            assert checked.ok, (task_id, question.key, checked.error)


def test_generator_fallbacks_match_the_pack_defaults() -> None:
    for task_id, fallbacks in GENERATOR_DEFAULTS.items():
        asked = defaults_for(task_id)
        for key, value in fallbacks.items():
            assert key in asked, f"{task_id}: the generator reads {key!r}, which the task never asks"
            assert str(asked[key]) == str(value), (task_id, key, asked[key], value)


@pytest.mark.parametrize("task_id", DOMAIN)
def test_defaults_produce_clean_artefacts(task_id: str) -> None:
    files = artefacts(task_id, defaults_for(task_id))
    assert files, task_id
    for artifact in files.values():
        review(artifact, allow_partial=False)


@pytest.mark.parametrize("task_id", DOMAIN)
def test_custom_values_land_where_they_belong(task_id: str) -> None:
    answers, expected = CUSTOM[task_id]
    asked = defaults_for(task_id)
    assert set(answers) <= set(asked), (task_id, set(answers) - set(asked))
    files = artefacts(task_id, {**asked, **answers})
    for artifact in files.values():
        review(artifact, allow_partial=True)
    for name, needle in expected:
        assert name in files, (task_id, name, sorted(files))
        assert needle in files[name].content, (task_id, name, needle)
    notes = " ".join(step_notes(task_id, {**asked, **answers}))
    flow = diagram(task_id, {**asked, **answers}) or ""
    shown = [v for k, v in answers.items() if PACK and k.endswith(("table", "_table")) and "." in v]
    for value in shown[:2]:
        assert value in notes or value in flow or any(value in f.content for f in files.values()), (task_id, value)


def test_stream_modules_follow_the_edge_convention() -> None:
    checked = 0
    for task_id in DOMAIN:
        for name, artifact in artefacts(task_id, defaults_for(task_id)).items():
            if artifact.language != "python" or "pipelines as dp" in artifact.content:
                continue
            tree = ast.parse(artifact.content)
            functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
            assert "main" in functions, (task_id, name)
            # Module level: imports, constants, definitions and the __main__ guard only (nothing runs on import).
            for node in tree.body:
                allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.If)
                assert isinstance(node, allowed) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)), \
                    (task_id, name, ast.dump(node)[:80])
                if isinstance(node, ast.If):
                    assert "__name__" in ast.unparse(node.test), (task_id, name)
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    calls = [c for c in ast.walk(node.value) if isinstance(c, ast.Call)]
                    assert all(ast.unparse(c.func) in ("logging.getLogger", "str") for c in calls), \
                        (task_id, name, ast.unparse(node))
            top_names = {n.id for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.ClassDef))
                         for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert "dbutils" not in top_names and "spark" not in top_names, (task_id, name)
            if "read_stream" not in functions:
                continue  # a support module
            checked += 1
            assert all(f in functions for f in STREAM_FUNCTIONS), (task_id, name)
            start = functions["start"]
            assert [a.arg for a in start.args.args][:2] == ["df", "checkpoint"], (task_id, name)
            assert ast.unparse(start.args.defaults[0]) == "CHECKPOINT", (task_id, name)
            transform = ast.unparse(functions["transform"])
            assert not any(word in transform for word in ("readStream", "writeStream", ".write", "dbutils", "saveAsTable")), \
                (task_id, name)
            if "foreachBatch(write_batch)" in artifact.content:
                assert [a.arg for a in functions["write_batch"].args.args] == ["batch_df", "batch_id"], (task_id, name)
            assert "dbutils" not in ast.unparse(functions["transform"]) + ast.unparse(start), (task_id, name)
    assert checked >= 13


def test_secrets_are_read_from_a_scope_never_written() -> None:
    for task_id, key in (("kafka-connector-setup", "sasl_username_secret"),
                         ("eventhubs-connector-setup", "connection_string")):
        answers = {**defaults_for(task_id), key: "vault-scope/the-key"}
        code = next(a.content for a in generate(task_id, answers, {}, "docs/x.md") if a.language == "python")
        assert 'SECRET_SCOPE = "vault-scope"' in code and 'SECRET_KEY_NAME = "the-key"' in code
        assert "dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)" in code
        assert not [f for f in check_text(code, "python").findings if f.rule.startswith("SE80") and f.status == "FAIL"]
    dlt = {**defaults_for("dlt-streaming-pipeline"), "source_format": "kafka", "source": "clicks.v2",
           "kafka_username_secret": "rt/user"}
    code = artefacts("dlt-streaming-pipeline", dlt)["dlt_pipeline.py"].content
    assert 'SECRET_SCOPE = "rt"' in code and "spark.readStream.format(\"kafka\")" in code
    review(artefacts("dlt-streaming-pipeline", dlt)["dlt_pipeline.py"], allow_partial=False)


HOSTILE = 'we"ird \\N{x} """ | `name` -- ; DROP\nnext # {{x}}'


@pytest.mark.parametrize("task_id", DOMAIN)
def test_hostile_free_text_cannot_break_a_file(task_id: str) -> None:
    answers = defaults_for(task_id)
    for question in task_questions(PACK, PACK.tasks[task_id]):
        if question["kind"] == "text":
            answers[question["key"]] = HOSTILE
    for artifact in artefacts(task_id, answers).values():
        if artifact.language == "python":
            compile(artifact.content, artifact.path, "exec")
        elif artifact.language == "yaml":
            yaml.safe_load(artifact.content)
        elif artifact.language == "json":
            json.loads(artifact.content)
        if artifact.language == "sql":
            # A value may sit in a comment or a literal, never on a line of its own.
            assert all(not line.startswith("next #") for line in artifact.content.splitlines()), artifact.path
    assert "\n" not in " ".join(step_notes(task_id, answers))


def test_variants_of_choices_stay_clean() -> None:
    variants = {
        "watermarks-and-lateness": [{"output_mode": "complete"}, {"window_type": "session"},
                                    {"window_type": "none (dedup or join only)"},
                                    {"late_data_handling": "capture raw in Bronze and reprocess in batch"}],
        "dedup-and-idempotency": [{"sink_write_mode": "plain append"}, {"sink_write_mode": "MERGE in foreachBatch"}],
        "autoloader-streaming-ingest": [{"file_format": "orc"}, {"file_format": "binaryFile"},
                                        {"trigger_mode": "availableNow"}],
        "schema-evolution-live": [{"change_type": "type widening", "change_summary": "widen column qty to BIGINT"},
                                  {"change_type": "rename or drop (breaking)",
                                   "change_summary": "rename column cust_id to customer_id"},
                                  {"change_type": "enum or value-set extension"}],
        "jobs-continuous-triggers": [{"trigger_type": "scheduled (periodic)"}, {"deploy_tool": "Terraform"}],
        "cost-guardrails-streaming": [{"criticality": "critical (never degrade)"}],
        "blue-green-deploy": [{"switch_mechanism": "table rename"}],
        "state-store-management": [{"stateful_operators": "windowed aggregation only"}],
        "dlt-streaming-pipeline": [{"source_format": "csv"}, {"action": "WARN"}],
        "latency-slo-and-alerts": [{"metrics_sink": "system tables with SQL alerts"}],
    }
    for task_id, cases in variants.items():
        for case in cases:
            for artifact in artefacts(task_id, {**defaults_for(task_id), **case}).values():
                review(artifact, allow_partial=False)
    complete = artefacts("watermarks-and-lateness", {**defaults_for("watermarks-and-lateness"), "output_mode": "complete"})
    assert 'OUTPUT_MODE = "update"' in complete["watermark_window.py"].content
    assert "SE104" in step_notes("watermarks-and-lateness", {"output_mode": "complete"})[1]
    rename = artefacts("schema-evolution-live", {**defaults_for("schema-evolution-live"),
                                                 "change_type": "rename or drop (breaking)",
                                                 "change_summary": "rename column cust_id to customer_id"})
    assert "RENAME COLUMN cust_id TO customer_id" in rename["schema_change.sql"].content
    assert "delta.columnMapping.mode" in rename["schema_change.sql"].content


def test_rendered_templates_feed_the_generators() -> None:
    policy = "# DLQ Policy\nreprocess:\n  retries: 7\n  backoff_seconds: 120\naudit:\n  retention_days: 45\n"
    files = {PurePosixPath(a.path).name: a.content for a in generate(
        "dlq-quarantine-ops", {}, {"dlq-policy-tmpl.yaml": policy}, "docs/streaming/dlq-ops.md")}
    assert "MAX_ATTEMPTS = 7" in files["dlq_reprocess.py"] and "BACKOFF_SECONDS = 120" in files["dlq_reprocess.py"]
    assert "INTERVAL 45 DAYS" in files["dlq_table.sql"]
    budget = "version: 1\nstreaming_budget:\n  thresholds:\n    warn: 0.7\n    limit: 0.95\n"
    sql = next(a.content for a in generate("cost-guardrails-streaming", {}, {"cost-budget-streaming-tmpl.yaml": budget},
                                           "docs/x.md") if a.path.endswith(".sql"))
    assert "* 0.7" in sql and "* 0.95" in sql


def test_diagrams_escape_labels_and_draw_the_users_tables() -> None:
    assert label('a"b|c<d>#e\nf') == "a#quot;b#124;c#lt;d#gt;#35;e<br/>f"
    for task_id in sorted(DIAGRAMS):
        flow = diagram(task_id, defaults_for(task_id))
        assert flow.startswith("flowchart LR\n"), task_id
        for line in flow.splitlines()[1:]:
            assert line.startswith("    "), (task_id, line)
    answers, _ = CUSTOM["dlt-streaming-pipeline"]
    flow = diagram("dlt-streaming-pipeline", {**defaults_for("dlt-streaming-pipeline"), **answers})
    for table in ("acme.bronze.clicks", "acme.silver.clicks", "acme.quarantine.clicks", "acme.gold.clicks_per_window"):
        assert table in flow
    blue_green = diagram("blue-green-deploy", CUSTOM["blue-green-deploy"][0])
    assert "orders_blue_v3" in blue_green and "orders_green_v4" in blue_green and "classDef blue" in blue_green


def test_value_helpers() -> None:
    assert Duration.parse("10 minutes").spark == "10 minutes" and Duration.parse("1 minutes").spark == "1 minute"
    assert Duration.parse("90s").seconds == 90 and Duration.parse("2 小时").unit == "hours"
    assert Duration.parse("36 hours").sql_interval == "INTERVAL 36 HOURS"
    assert Duration.parse("5 minutes").scaled(2).spark == "10 minutes"
    assert Duration.of_seconds(7200).spark == "2 hours"
    assert parse_percent("0.5%") == 0.5 and parse_percent("12") == 12
    assert quartz_every(Duration.parse("15 minutes")) == "0 0/15 * * * ?"
    assert quartz_every(Duration.parse("2 hours")) == "0 0 0/2 * * ?"
    assert channels("email:a@x.io, slack:#c, b@y.io, webhook:1") == [
        ("email", "a@x.io"), ("slack", "#c"), ("email", "b@y.io"), ("webhook", "1")]
    assert py('a"b') == '"a\\"b"' and sql_ident("event time") == "`event time`" and sql_ident("ts") == "ts"
    inputs = Inputs({"n": "not a number", "d": "soon"}, {"n": "5", "d": "1 hour"})
    assert inputs.int("n") == 5 and inputs.duration("d").spark == "1 hour"
    assert Inputs({"t": "a\n b\tc"}, {}).text("t") == "a b c"
