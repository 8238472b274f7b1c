"""Team-level artefacts: streaming standards, the source inventory, the on-call runbook.

These tasks mostly produce documents; their artefacts are the machine-readable
parts (standards and inventory YAML, an escalation policy), a reference stream
that applies the standards, and the queries and diagnostics on-call runs.
"""

from __future__ import annotations

import re

from tools.artifacts.base import (
    Artifact,
    Inputs,
    artifact_dir,
    channels,
    config_path,
    dump_yaml,
    py,
    query_name,
    register,
    slug,
    sql_ident,
    table_name,
)
from tools.artifacts.skeleton import (
    CONVENTION_NOTE,
    MERGE_IMPORTS,
    compute_note,
    constants,
    header,
    job_main,
    join,
    start_block,
    target_section,
)
from tools.artifacts.stateful import merge_write_batch
from tools.design import current, unique_query_name

# -- init standards -------------------------------------------------------------------------

STANDARDS_DEFAULTS = {
    "catalog_schema": "main.streaming",
    "checkpoint_root": "/Volumes/main/streaming/checkpoints",
    "naming_convention": "<layer>_<domain>_<entity>, e.g. silver_orders_events",
    "default_trigger": "processingTime",
    "replay_window": "7 days",
    "trigger_interval": "1 minute",
    "alert_owner": "streaming on-call",
    "source_table": "main.streaming.bronze_orders_events",
    "name": "orders_events_stream",
    "path": "/Volumes/main/streaming/checkpoints/orders_events",
    "table": "main.silver.orders_events",
}


def standards_yaml(a: Inputs) -> str:
    """The standards every stream must follow, machine-readable (CI can check specs against it)."""
    root = a.text("checkpoint_root").rstrip("/")
    owner = a.text("alert_owner")
    data = {
        "version": 1,
        "naming": {"convention": a.text("naming_convention"), "catalog_schema": a.text("catalog_schema"),
                   "query_name": "<layer>_<target table's short name>, mandatory and unique (a suffix such as "
                                 "_reference or _2 when two queries write one table)"},
        "layout": {"layers": ["bronze", "silver", "gold"], "quarantine": f"{a.text('catalog_schema')}.quarantine_<entity>",
                   "checkpoints": f"{root}/<table or query name>[_v<N>]",
                   "checkpoint_rules": ["one checkpoint per query, never shared or copied",
                                        "append or bump _v<N> when a change needs a new checkpoint",
                                        "durable storage only (a Unity Catalog volume), never /tmp",
                                        "writable only by the job's service principal"]},
        "pipeline_spec_required": ["name", "checkpoint_location", "output_table", "event_time_column",
                                   "watermark_delay", "idempotency_key", "sink_write_mode", "owner", "slo",
                                   "data_contract (schema, semantics, owner of the source)"],
        "security": ["credentials only from a secret scope (dbutils.secrets.get), never in code or job parameters",
                     "SASL_SSL / TLS for every message bus; IAM roles or service credentials instead of keys"],
        "triggers": {"default": a.text("default_trigger"),
                     "allowed": {"processingTime": f"always-on streams; default interval "
                                                   f"{a.duration('trigger_interval').spark}",
                                 "availableNow": "scheduled incremental runs (freshness of 15 minutes or more)",
                                 "continuous job": "Jobs continuous schedule for 24/7 streams (not the experimental "
                                                   "continuous processing trigger)"},
                     "forbidden": ["trigger(once=True) (deprecated, ignores rate limits)",
                                   "processingTime of 0 seconds"]},
        "idempotency": {"sinks": ["Delta table sink (exactly-once with the checkpoint)",
                                  "foreachBatch with MERGE on a business key",
                                  "foreachBatch append with txnAppId + txnVersion=batch_id"],
                        "dedup": {"latest_wins": "MERGE on the event id with the sequence column (newer wins)",
                                  "first_wins": "withWatermark + dropDuplicatesWithinWatermark on the event id "
                                                "(keeps the first copy: producer retries)"}},
        "replay": {"window": a.duration("replay_window").spark,
                   "rule": "source retention must exceed the replay window plus the worst outage",
                   "reconciliation_points": ["rows per closed hour source vs target",
                                             "distinct keys vs rows (duplicates)",
                                             "sums of key measures per closed day"]},
        "bypass": "rows failing expectations go to the quarantine table with the failed rule names; never dropped "
                  "silently",
        "observability": {
            "listener": "every job attaches the SLO StreamingQueryListener",
            "metrics": [
                {"metric": "end-to-end latency p95", "source": "listener event_latency_ms", "owner": owner},
                {"metric": "freshness", "source": "now - max(event time) of the target", "owner": owner},
                {"metric": "backlog / lag", "source": "source metrics in query progress", "owner": owner},
                {"metric": "throughput", "source": "inputRowsPerSecond vs processedRowsPerSecond", "owner": owner},
                {"metric": "failure rate", "source": "onQueryTerminated, job run state", "owner": owner},
                {"metric": "rows dropped by watermark", "source": "stateOperators.numRowsDroppedByWatermark",
                 "owner": owner},
            ],
            "alert_hygiene": {"suppression": "deduplicate pages for 30 minutes; silence announced maintenance windows",
                              "drills": "every 90 days", "error_budget": "per SLO; releases freeze when it is spent"},
            "first_alerts": ["latency p95 above the stream's SLO for 15 minutes",
                             "no progress for 10 minutes", "backlog rising for 3 batches",
                             "any failed run (continuous jobs back off exponentially)"],
        },
    }
    return dump_yaml(data, ["Streaming engineering standards (machine-readable). Every new stream fills the pipeline "
                            "spec and follows these rules."])


def reference_columns(a: Inputs) -> tuple[str, str]:
    """The reference stream's event-time and key columns: the thread's (its source's, when known), else examples."""
    design = current()
    source = a.text("source_table")
    return (design.table_column(source, "event_time_column") or design.event_time or "event_time",
            design.table_column(source, "id_column") or design.id_column or "event_id")


def pipeline_spec_yaml(a: Inputs, query: str) -> str:
    """The reference stream's pipeline spec, with every field the standards require (the pack sample had three)."""
    event_time, key = reference_columns(a)
    data = {"version": 1, "pipeline": {
        "name": a.text("name"), "query_name": query, "checkpoint_location": a.text("path"),
        "output_table": a.text("table"), "event_time_column": event_time,
        "watermark_delay": "none: no stateful operator (the MERGE keeps the newer event time per key)",
        "idempotency_key": key, "sink_write_mode": "foreachBatch MERGE on the key, newer event time wins",
        "trigger": a.text("default_trigger"), "owner": a.text("alert_owner"),
        "slo": "latency p95 and freshness as set by *latency-slo; failure rate 0 per day",
        "data_contract": {"source": a.text("source_table"), "key": key, "event_time": event_time,
                          "owner": a.text("alert_owner")}}}
    return dump_yaml(data, ["Pipeline spec of the reference stream (fields required by streaming_standards.yaml)."])


def reference_stream_module(a: Inputs, query: str) -> str:
    """A stream that applies the standards: named query, own versioned checkpoint, MERGE sink, default trigger."""
    table = a.text("table")
    event_time, key = reference_columns(a)
    rows = [
        ("PIPELINE_NAME", py(a.text("name")), "from the pipeline spec"),
        ("SOURCE_TABLE", py(a.text("source_table")), "upstream table"),
        ("TARGET_TABLE", py(table), "output table of the spec"),
        ("CHECKPOINT", py(a.text("path")), "own checkpoint, under the standard root"),
        ("QUERY_NAME", py(query), "mandatory query name"),
        ("EVENT_TIME", py(event_time), "event-time column"),
        ("ID_COLUMN", py(key), "idempotency key"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "standard processingTime interval"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the upstream Delta table."""
    return spark.readStream.table(SOURCE_TABLE)'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Standard dedup is the MERGE (newer event time wins): keep every version with a key and an event time.

    dropDuplicatesWithinWatermark would keep the FIRST copy and contradict "newer wins".
    """
    return df.where(F.col(ID_COLUMN).isNotNull() & F.col(EVENT_TIME).isNotNull())'''
    write = merge_write_batch("TARGET_TABLE", ["ID_COLUMN"], "EVENT_TIME", True,
                              "Standard idempotent sink: MERGE on the key, newer event time wins.")
    start = start_block("The sink edge, as the standards require: named, own checkpoint, standard trigger.",
                        [".foreachBatch(write_batch)", ".queryName(QUERY_NAME)",
                         '.option("checkpointLocation", checkpoint)'], ".start()",
                        always_available_now=a.choice("default_trigger") == "availablenow")
    imports = MERGE_IMPORTS
    doc = [f"Reference implementation of the standards for {a.text('name')}: copy it for new streams.", compute_note(),
           CONVENTION_NOTE]
    prod, helpers = target_section(table, a.text("path"))
    return join(header("Reference stream following the team's streaming standards.", "init-standards", doc,
                       imports=imports, extra_imports=("import argparse",)),
                constants(rows), prod, read, transform, write, start, helpers,
                job_main("reference_stream.py", ["TARGET_TABLE"], ["CHECKPOINT"]))


def standards_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                       workspace: object = None) -> list[Artifact]:
    """Artefacts of ``init-streaming-standards``."""
    a = Inputs(answers, STANDARDS_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "reference_stream.py")
    query = unique_query_name(query_name("silver", a.text("table")) + "_reference", path)
    return [
        Artifact(str(folder / "streaming_standards.yaml"), standards_yaml(a), "yaml",
                 "Naming, checkpoint layout, triggers, idempotency, replay window, bypass and the first metrics and "
                 "alerts with owners."),
        Artifact(path, reference_stream_module(a, query), "python",
                 "Reference stream applying the standards (named query, own checkpoint, dedup, MERGE, trigger)."),
        Artifact(config_path(doc_location, "streaming-pipeline-spec-tmpl.yaml"), pipeline_spec_yaml(a, query), "yaml",
                 "The reference stream's pipeline spec with every field the standards require."),
    ]


def standards_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``init-streaming-standards``."""
    a = Inputs(answers, STANDARDS_DEFAULTS)
    root = a.text("checkpoint_root").rstrip("/")
    return [
        f"Tables in `{a.text('catalog_schema')}` named `{a.text('naming_convention')}`; checkpoints under `{root}/"
        "<table or query name>[_v<N>]`, one per query, never shared; every stream fills the pipeline spec (name, "
        "checkpoint, output table, event time, watermark, key, sink mode, owner, SLO).",
        f"Default trigger {a.text('default_trigger')} ({a.duration('trigger_interval').spark} when processingTime); "
        "idempotency by Delta sink, MERGE on a key, or txnAppId/txnVersion; replay window "
        f"{a.duration('replay_window').spark} with hourly count and key reconciliation.",
        f"First metrics: latency p95, freshness, backlog, throughput, failure rate and rows dropped by the watermark, "
        f"all owned by {a.text('alert_owner')}.",
    ]


# -- source inventory -------------------------------------------------------------------------

INVENTORY_DEFAULTS = {
    "source_systems": "kafka",
    "retention": "7 days",
    "event_time_column": "event_time",
    "source_timezone": "UTC",
    "max_disorder": "10 minutes",
    "source_name": "orders.events.v1",
    "partitions": "12",
    "security": "SASL_SSL; JAAS config in secret scope streaming, key kafka-jaas",
    "bronze_table": "main.bronze.events",
    "arrival_column": "ingest_ts",
}


def systems(a: Inputs) -> list[str]:
    """The source systems named in the answer, normalised."""
    found = []
    for part in re.split(r"[,;/]+|\band\b", a.text("source_systems")):
        word = part.strip().lower()
        if not word:
            continue
        if "kafka" in word or "msk" in word or "confluent" in word:
            found.append("kafka")
        elif "event" in word and "hub" in word:
            found.append("eventhubs")
        elif "kinesis" in word:
            found.append("kinesis")
        elif any(w in word for w in ("auto", "file", "object", "s3", "adls", "gcs", "volume", "directory", "storage")):
            found.append("autoloader")
        else:
            found.append(slug(word))
    return list(dict.fromkeys(found)) or ["kafka"]


def inventory_yaml(a: Inputs) -> str:
    """One entry per source: where it is, capacity, retention, security, time and disorder."""
    kinds = systems(a)
    unit = {"kafka": "partitions", "eventhubs": "partitions", "kinesis": "shards"}
    entries = []
    for index, kind in enumerate(kinds):
        entry = {"system": kind}
        if index == 0:
            entry.update({
                "name": a.text("source_name"),
                unit.get(kind, "parallelism"): a.int("partitions"),
                "retention": a.duration("retention").spark,
                "compression_or_compaction": "to confirm with the owner",
                "security": a.text("security"),
                "event_time": {"column": a.text("event_time_column"), "timezone": a.text("source_timezone"),
                               "p99_disorder": a.duration("max_disorder").spark},
                "bronze_table": table_name(a.text("bronze_table")),
                "data_contract": "schema and semantics agreed with the producer (owner, versioning)",
                "starting_position": "chosen per stream (startingOffsets / initialPosition); progress is tracked in "
                                     "each query's checkpoint",
                "throughput_and_backpressure": "peak rate to measure; every stream caps its micro-batches "
                                               "(maxOffsetsPerTrigger / maxFilesPerTrigger)",
                "idempotency_key": "the event id agreed with the producer",
                "dlq": "unparseable or invalid records go to the quarantine / DLQ table",
                "key_rotation": "owner and rotation period of the credential",
                "metrics_and_slo": "lag (offsets or files behind), freshness SLO set with *latency-slo",
            })
        else:
            entry["status"] = "listed, not yet described: run *source-inventory again for it"
        entries.append(entry)
    data = {"version": 1, "sources": entries,
            "replay_reach": f"{a.duration('retention').spark} (the source retention bounds every replay)",
            "watermark_hint": f"at least {a.duration('max_disorder').spark} (p99 disorder)"}
    return dump_yaml(data, ["Real-time source inventory. Keep it next to the pipeline specs."])


def disorder_sql(a: Inputs) -> str:
    """Lateness distribution measured in Bronze: arrival time minus event time."""
    bronze = table_name(a.text("bronze_table"))
    ts_name, arrival_name = a.text("event_time_column"), a.text("arrival_column")
    design = current()
    writer = design.writer_of(bronze)
    missing = [c for c in (ts_name, arrival_name) if writer is not None and writer.columns and c not in writer.columns]
    if missing:
        # The user's columns are kept (their table may differ), but the document says what the thread's writer has.
        design.notices.append(
            f"`{bronze}` as `{writer.writer}` writes it has no {', '.join(f'`{c}`' for c in missing)}: "
            f"measure_disorder.sql reads them; its event time is `{writer.event_time}` and its arrival column "
            f"`{design.arrival_column(bronze, arrival_name)}`.")
    ts, arrival = sql_ident(ts_name), sql_ident(arrival_name)
    return f"""-- How late and out of order does {a.text('source_name')} deliver? Arrival ({arrival_name})
-- minus event time ({ts_name}), per day, over the last 7 days, in seconds.
SELECT date_trunc('DAY', {arrival}) AS day,
       count(*) AS events,
       percentile_approx(unix_timestamp({arrival}) - unix_timestamp({ts}), 0.5) AS p50_lateness_s,
       percentile_approx(unix_timestamp({arrival}) - unix_timestamp({ts}), 0.99) AS p99_lateness_s,
       max(unix_timestamp({arrival}) - unix_timestamp({ts})) AS max_lateness_s,
       sum(CASE WHEN {ts} > {arrival} THEN 1 ELSE 0 END) AS events_from_the_future
FROM {bronze}
WHERE {arrival} >= current_timestamp() - INTERVAL 7 DAYS
GROUP BY 1
ORDER BY 1 DESC;
-- events_from_the_future > 0 usually means a time-zone problem: timestamps are said to be in
-- {a.text('source_timezone')}; convert with to_utc_timestamp(col, '<zone>') in Bronze if they carry no offset.
"""


def inventory_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                       workspace: object = None) -> list[Artifact]:
    """Artefacts of ``source-inventory-streaming``."""
    a = Inputs(answers, INVENTORY_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "source_inventory.yaml"), inventory_yaml(a), "yaml",
                 "The inventory: name, partitions/shards, retention, compression, security, time zone, disorder."),
        Artifact(str(folder / "measure_disorder.sql"), disorder_sql(a), "sql",
                 "Lateness p50/p99/max per day from Bronze, and a time-zone sanity check."),
    ]


def inventory_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``source-inventory-streaming``."""
    a = Inputs(answers, INVENTORY_DEFAULTS)
    kinds = ", ".join(systems(a))
    return [
        f"Sources: {kinds}. `{a.text('source_name')}`: {a.int('partitions')} partitions/shards, retention "
        f"{a.duration('retention').spark} (the furthest any replay can reach), security: {a.text('security')}.",
        f"Event time `{a.text('event_time_column')}` in {a.text('source_timezone')}; p99 disorder "
        f"{a.duration('max_disorder').spark} — the watermark of stateful steps must be at least that. Measure it "
        f"from `{a.text('bronze_table')}` with measure_disorder.sql.",
    ]


# -- runbook ------------------------------------------------------------------------------------

RUNBOOK_DEFAULTS = {
    "pipelines_covered": "events-streaming",
    "oncall_rotation": "weekly, primary and secondary",
    "escalation_channel": "pagerduty:streaming-oncall, then #data-platform-incidents",
    "dashboard_url": "https://example.cloud.databricks.com/dashboards/streaming",
    "drill_interval": "90 days",
    "target_table": "main.gold.events_agg",
    "event_time_column": "event_time",
}


SEVERITY: dict[str, dict[str, str]] = {
    "SEV1": {"when": "data loss or corruption, or freshness SLO breached for consumers of record",
             "respond_within": "15 minutes", "escalate_after": "30 minutes"},
    "SEV2": {"when": "stream down or falling behind; SLO will breach within the hour",
             "respond_within": "30 minutes", "escalate_after": "1 hour"},
    "SEV3": {"when": "degraded (DLQ ratio up, late rows dropped) without consumer impact yet",
             "respond_within": "4 hours", "escalate_after": "next business day"},
    "SEV4": {"when": "cosmetic or follow-up work", "respond_within": "next business day"},
}


def runbook_streaming_md(a: Inputs) -> str:
    """The pack's runbook template (its one section) written from the answers, not left as a bare heading."""
    levels = "\n".join(f"| {sev} | {spec['when']} | {spec['respond_within']} | {spec.get('escalate_after', '—')} |"
                        for sev, spec in SEVERITY.items())
    dlq = current().dlq_table or "the dead-letter table"
    return f"""# Streaming Runbook

## 事件分级/诊断/绕行/修复/验证/记录/复盘

Covers {a.text('pipelines_covered')}. Dashboard: {a.text('dashboard_url')}.

**Severity levels**

| Severity | When | Respond within | Escalate after |
|---|---|---|---|
{levels}

1. **Diagnosis**: `runbook/triage.py` (per-query rates, batch time, backlog, state, watermark from the SLO metrics
   table), `runbook/oncall_queries.sql` (staleness of {a.text('target_table')}, pipeline errors, recent writes),
   then the Spark UI and driver logs of the failing run.
2. **Bypass**: route bad rows to `{dlq}` (the quarantine); pause a non-critical stream's job (`pause_status: PAUSED`
   in its bundle); never delete or reset a checkpoint without escalating.
3. **Repair**: restart from the checkpoint, lower the rate limits, roll back the release, or replay a range.
4. **Verification**: staleness back under the SLO, reconciliation queries clean, no rows lost or duplicated.
5. **Record**: timeline and actions in the incident channel as they happen.
6. **Escalation**: {a.text('escalation_channel')} (rota: {a.text('oncall_rotation')}), per the times above
   (`runbook/escalation_policy.yaml`).
7. **Post-mortem**: within 5 business days for SEV1/SEV2 (`runbook/postmortem_template.md`).
"""


def oncall_playbook_md(a: Inputs) -> str:
    """The pack's on-call playbook template written from the answers."""
    return f"""# On-call Playbook (Streaming)

## 值班班表

Rota: {a.text('oncall_rotation')}, for {a.text('pipelines_covered')}.

## 响应级别与升级路径

Severity levels SEV1–SEV4 with response and escalation times are in `runbook/escalation_policy.yaml`
(SEV1: respond within {SEVERITY['SEV1']['respond_within']}, escalate after {SEVERITY['SEV1']['escalate_after']}).
Escalation path: {a.text('escalation_channel')}. Post-mortem for SEV1/SEV2 within 5 business days
(`runbook/postmortem_template.md`).

## 诊断与旁路脚本

Diagnosis: `runbook/triage.py` and `runbook/oncall_queries.sql` (freshness of {a.text('target_table')}).
Bypass: quarantine bad rows into `{current().dlq_table or "the dead-letter table"}`; pause non-critical streams’
jobs (`pause_status: PAUSED`); repair by restarting from the checkpoint or rolling back.

## 演练计划

Drills every {a.duration('drill_interval').spark}: query failure and restart, checkpoint incompatibility after a
deploy, Kafka offsets out of retention, backlog after an outage.
"""


def escalation_yaml(a: Inputs) -> str:
    """Severity levels, response times, escalation and drills."""
    routes = [f"{k}:{t}" if k != "other" else t for k, t in channels(a.text("escalation_channel"))]
    data = {
        "pipelines": [p.strip() for p in a.text("pipelines_covered").split(",") if p.strip()],
        "dashboard": a.text("dashboard_url"),
        "oncall_rotation": a.text("oncall_rotation"),
        "severity": SEVERITY,
        "escalation": routes or [a.text("escalation_channel")],
        "alert_hygiene": {"suppression": "one page per incident: duplicates suppressed for 30 minutes",
                          "error_budget": "a fast error-budget burn pages; a slow burn opens a ticket",
                          "failure_rate": "any failed run of a continuous job pages after the third retry"},
        "always_escalate": ["failOnDataLoss=false or any choice that loses data", "deleting or resetting a checkpoint",
                            "full refresh past the source retention", "a production code change during the incident"],
        "drills": {"every": a.duration("drill_interval").spark,
                   "scenarios": ["query failure and restart", "checkpoint incompatibility after a deploy",
                                 "Kafka offsets out of retention", "backlog after an outage"]},
        "postmortem": "within 5 business days for SEV1/SEV2 (postmortem_template.md)",
    }
    return dump_yaml(data, ["On-call escalation policy for the streaming runbook."])


def diagnostics_module(a: Inputs) -> str:
    """A support module: triage of the active queries in this cluster, as on-call reads it."""
    metrics = (current().table_by_role("metrics").name if current().table_by_role("metrics")
               else "main.ops.streaming_metrics")
    rows = [("DASHBOARD_URL", py(a.text("dashboard_url")), "on-call dashboard"),
            ("PIPELINES", py(a.text("pipelines_covered")), "covered by the runbook"),
            ("METRICS_TABLE", py(metrics), "per-batch metrics the SLO listener (*latency-slo) writes from the jobs")]
    functions = '''def triage(query: Any) -> dict[str, Any]:
    """The first-five-minutes facts of one query: is it moving, keeping up, and is state bounded?"""
    recent = [json.loads(p.json) if hasattr(p, "json") else p for p in (query.recentProgress or [])]
    last = recent[-1] if recent else {}
    durations = [p.get("durationMs", {}).get("triggerExecution", 0) for p in recent]
    input_rate = sum(p.get("inputRowsPerSecond") or 0 for p in recent) / max(len(recent), 1)
    processed_rate = sum(p.get("processedRowsPerSecond") or 0 for p in recent) / max(len(recent), 1)
    operators = last.get("stateOperators") or []
    findings = []
    if processed_rate and input_rate > processed_rate:
        findings.append("falling behind: input rate above processing rate (cap batches, scale, fix skew)")
    if any(op.get("numRowsDroppedByWatermark", 0) for op in operators):
        findings.append("rows dropped by the watermark: late upstream data or a watermark too tight")
    if query.exception():
        findings.append(f"terminated: {query.exception()}")
    return {
        "name": query.name,
        "id": str(query.id),
        "active": query.isActive,
        "last_batch": last.get("batchId"),
        "last_progress": last.get("timestamp"),
        "max_batch_ms": max(durations, default=0),
        "input_rows_per_second": round(input_rate, 1),
        "processed_rows_per_second": round(processed_rate, 1),
        "state_rows": sum(op.get("numRowsTotal", 0) for op in operators),
        "watermark": (last.get("eventTime") or {}).get("watermark"),
        "source_backlog": [s.get("metrics") for s in last.get("sources") or []],
        "findings": findings,
    }


def report(queries: list[Any]) -> list[dict[str, Any]]:
    """Triage of the given queries (call it in the job that started them: a session sees only its own)."""
    return [triage(query) for query in queries]


def recent_batches(spark: SparkSession, minutes: int = 60) -> list[dict[str, Any]]:
    """From another cluster or notebook: the last ``minutes`` of per-batch metrics of every query, by name.

    ``spark.streams.active`` here would list only this session's queries (none), so the facts come from the
    metrics table the jobs' SLO listener fills.
    """
    rows = spark.sql(
        f"SELECT query_name, count(*) AS batches, max(ts) AS last_progress, max(batch_duration_ms) AS max_batch_ms, "
        f"avg(input_rows_per_second) AS input_rows_per_second, "
        f"avg(processed_rows_per_second) AS processed_rows_per_second, max(state_rows) AS state_rows, "
        f"max(CASE WHEN failed THEN 1 ELSE 0 END) AS failed "
        f"FROM {METRICS_TABLE} WHERE CAST(ts AS TIMESTAMP) >= current_timestamp() - INTERVAL {int(minutes)} MINUTES "
        f"GROUP BY query_name"
    ).collect()
    out = []
    for row in rows:
        facts = row.asDict()
        behind = (facts["processed_rows_per_second"] or 0) < (facts["input_rows_per_second"] or 0)
        facts["findings"] = (["falling behind: processed < input rate"] if behind else []) + (
            ["a query failed in the window"] if facts["failed"] else [])
        out.append(facts)
    return out'''
    main = '''def main() -> None:
    """Print the triage as JSON (run in a notebook attached to the stream's cluster)."""
    spark = SparkSession.builder.getOrCreate()
    print(json.dumps({"dashboard": DASHBOARD_URL, "pipelines": PIPELINES, "queries": recent_batches(spark)},
                     indent=2, default=str))


if __name__ == "__main__":
    main()
'''
    doc = ["In the job that runs the streams: report(spark.streams.active) reads lastProgress/recentProgress (rates, "
           "batch time, backlog, state, watermark). From anywhere else: main() reads the SLO metrics table.",
           "Support module: no stream, just main()."]
    return join(header("On-call triage of the active streaming queries.", "streaming-runbook", doc,
                       imports="from pyspark.sql import SparkSession", extra_imports=("import json",
                                                                                      "from typing import Any")),
                constants(rows), functions, main)


def runbook_sql(a: Inputs) -> str:
    """The queries on-call runs first."""
    target = table_name(a.text("target_table"))
    ts = sql_ident(current().time_column(a.text("target_table"), a.text("event_time_column")))
    return f"""-- On-call queries for {a.text('pipelines_covered')}. Dashboard: {a.text('dashboard_url')}

-- 1. Impact: how stale is the target?
SELECT max({ts}) AS newest_event,
       (unix_timestamp(current_timestamp()) - unix_timestamp(max({ts}))) / 60.0 AS staleness_minutes
FROM {target};

-- 2. Declarative pipelines: the latest errors (replace <pipeline-id>).
SELECT timestamp, origin.flow_name, message, error
FROM event_log('<pipeline-id>')
WHERE level = 'ERROR'
ORDER BY timestamp DESC
LIMIT 20;

-- 3. What changed: the target's recent writes and DDL.
DESCRIBE HISTORY {target};
"""


def postmortem_md(a: Inputs) -> str:
    """The post-mortem template from the runbook article, pre-filled with the pipelines."""
    return f"""# Post-mortem: {a.text('pipelines_covered')} — <date>

- **Impact**: tables/consumers affected, max staleness vs SLO, rows lost/duplicated
- **Timeline (UTC)**: first signal, alert, ack, mitigation, recovery
- **Detection**: which alert fired (listener, job health rule, event log, user report); gaps
- **Root cause**: technical cause + why safeguards did not stop it
- **Mitigation**: actions taken (restart, rate limits, rollback, new checkpoint, refresh)
- **Data correctness**: reconciliation results, replay/backfill done
- **Follow-ups**: owner + due date (alerts, tests, retention, runbook updates)
- **Escalation used**: {a.text('escalation_channel')}
"""


def runbook_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                     workspace: object = None) -> list[Artifact]:
    """Artefacts of ``streaming-runbook``."""
    a = Inputs(answers, RUNBOOK_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "escalation_policy.yaml"), escalation_yaml(a), "yaml",
                 "Severity levels, response and escalation times, always-escalate cases, drills."),
        Artifact(str(folder / "triage.py"), diagnostics_module(a), "python",
                 "Triage of active queries: rates, batch time, backlog, state, watermark, findings."),
        Artifact(str(folder / "oncall_queries.sql"), runbook_sql(a), "sql",
                 "Impact (staleness), pipeline errors, recent changes."),
        Artifact(str(folder / "postmortem_template.md"), postmortem_md(a), "markdown", "Post-mortem template."),
        # The pack's two templates have headings only: written from the answers, they are runbooks, not shells.
        Artifact(config_path(doc_location, "runbook-streaming-tmpl.md"), runbook_streaming_md(a), "markdown",
                 "The runbook: severity levels, diagnosis, bypass, repair, verification, escalation, post-mortem."),
        Artifact(config_path(doc_location, "oncall-playbook-streaming-tmpl.md"), oncall_playbook_md(a), "markdown",
                 "The on-call playbook: rota, response levels and escalation, diagnosis and bypass, drills."),
    ]


def runbook_notes(answers: dict[str, str]) -> list[str]:
    """One decision line for the runbook's single step."""
    a = Inputs(answers, RUNBOOK_DEFAULTS)
    return [
        f"For {a.text('pipelines_covered')}: detect (listener alerts, job health rules, dashboard "
        f"{a.text('dashboard_url')}) → diagnose (triage.py, oncall_queries.sql, driver logs) → bypass (quarantine, "
        "pause non-critical consumers) → fix (restart from the checkpoint, rate limits, rollback) → verify "
        "(staleness back under the SLO, reconciliation) → record (incident channel) → escalate via "
        f"{a.text('escalation_channel')} ({a.text('oncall_rotation')}) → post-mortem; drills every "
        f"{a.duration('drill_interval').spark}.",
    ]


register("init-streaming-standards", standards_generate, notes=standards_notes)
register("source-inventory-streaming", inventory_generate, notes=inventory_notes)
register("streaming-runbook", runbook_generate, notes=runbook_notes)
