"""Operations: latency SLOs and alerts, Jobs triggers as a bundle, cost guardrails.

The SLO listener reads ``StreamingQueryProgress`` as JSON (the field names are
the same across Spark versions) and turns each micro-batch into one metrics
row; thresholds are derived from the latency and freshness objectives in the
same ratios as the pack's latency-SLO template (warn at 4/3 and critical at 2×
the latency objective, 1.5× and 3× the freshness objective).
"""

from __future__ import annotations

import posixpath

import yaml

from tools.artifacts.base import (
    Artifact,
    Duration,
    Inputs,
    artifact_dir,
    channels,
    config_path,
    dump_json,
    dump_yaml,
    format_percent,
    py,
    register,
    slug,
    sql_ident,
    sql_str,
    table_name,
)
from tools.artifacts.bundles import (
    SERVERLESS,
    TARGET_PARAMETERS,
    JobSpec,
    Targets,
    bundle,
    bundle_variables,
    compute_kind,
    entry_point_path,
    job_resource,
    other_channels,
    target_header,
    volume_catalog,
)
from tools.artifacts.entrypoint import EntryStream, entry_module
from tools.artifacts.skeleton import constants, header, join
from tools.design import current, record_table

# The metrics table the SLO listener writes (one place: the listener code and the SQL both follow it).
METRICS_COLUMNS: dict[str, str] = {
    "ts": "STRING", "query_name": "STRING", "query_id": "STRING", "batch_id": "BIGINT", "num_input_rows": "BIGINT",
    "input_rows_per_second": "DOUBLE", "processed_rows_per_second": "DOUBLE", "batch_duration_ms": "DOUBLE",
    "event_latency_ms": "DOUBLE", "watermark_lag_ms": "DOUBLE", "backlog": "STRING", "state_rows": "BIGINT",
    "state_memory_bytes": "BIGINT", "rows_dropped_by_watermark": "BIGINT", "failed": "BOOLEAN", "status": "STRING",
    "error": "STRING",
}


def metrics_schema_literal() -> str:
    """METRICS_COLUMNS as the lines of a parenthesised Python string literal (a DDL schema)."""
    pairs = [f"{name} {kind}" for name, kind in METRICS_COLUMNS.items()]
    lines, line = [], ""
    for pair in pairs:
        piece = pair + ", " if pair != pairs[-1] else pair
        if len(line) + len(piece) > 100:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return "\n".join(f"    {py(text)}" for text in lines)


LATENCY_WARN, LATENCY_CRITICAL = 4 / 3, 2.0
FRESHNESS_WARN, FRESHNESS_CRITICAL = 1.5, 3.0


def thresholds(latency: Duration, freshness: Duration) -> dict[str, dict[str, float]]:
    """Warn and critical thresholds from the objectives (milliseconds and minutes)."""
    return {
        "warn": {"latency_ms": round(latency.seconds * 1000 * LATENCY_WARN),
                 "freshness_min": round(freshness.minutes * FRESHNESS_WARN, 2)},
        "critical": {"latency_ms": round(latency.seconds * 1000 * LATENCY_CRITICAL),
                     "freshness_min": round(freshness.minutes * FRESHNESS_CRITICAL, 2)},
    }


def listener_module(a: Inputs, command: str, metrics_table: str, latency: Duration, freshness: Duration) -> str:
    """A support module: the StreamingQueryListener that emits the SLO metrics of every micro-batch."""
    limits = thresholds(latency, freshness)
    rows = [
        ("METRICS_TABLE", py(metrics_table), "Delta table the metrics rows are appended to"),
        ("LATENCY_OBJECTIVE_MS", str(round(latency.seconds * 1000)), f"p95 event latency objective ({latency.spark})"),
        ("WARN_LATENCY_MS", str(limits["warn"]["latency_ms"]), "warning threshold"),
        ("CRITICAL_LATENCY_MS", str(limits["critical"]["latency_ms"]), "critical threshold"),
        ("FLUSH_SECONDS", "60", "the buffered rows are appended this often, from the driver (not the listener bus)"),
    ]
    body = '''LOG = logging.getLogger("streaming.slo")


def _ms(value: str | None) -> float | None:
    """Milliseconds since the epoch of an ISO-8601 progress timestamp (``...Z``)."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


def slo_record(progress: dict[str, Any]) -> dict[str, Any]:
    """One metrics row from a StreamingQueryProgress (as JSON): the SLIs of the micro-batch."""
    durations = progress.get("durationMs") or {}
    event_time = progress.get("eventTime") or {}
    batch_ms = durations.get("triggerExecution")
    started = _ms(progress.get("timestamp"))
    newest, watermark = _ms(event_time.get("max")), _ms(event_time.get("watermark"))
    committed = started + batch_ms if started is not None and batch_ms is not None else None
    backlog = {}
    for source in progress.get("sources") or []:
        for key, value in (source.get("metrics") or {}).items():
            # Source-specific backlog metrics: Auto Loader numFilesOutstanding / numBytesOutstanding,
            # Kafka ...OffsetsBehindLatest. Names differ per source, so they are kept as reported.
            if key.endswith(("Outstanding", "BehindLatest")):
                try:
                    backlog[key] = float(value)
                except (TypeError, ValueError):
                    continue
    operators = progress.get("stateOperators") or []
    latency = committed - newest if committed is not None and newest is not None else None
    status = "ok"
    if latency is not None and latency > CRITICAL_LATENCY_MS:
        status = "critical"
    elif latency is not None and latency > WARN_LATENCY_MS:
        status = "warn"
    return {
        "ts": progress.get("timestamp"),
        "query_name": progress.get("name"),
        "query_id": progress.get("id"),
        "batch_id": progress.get("batchId"),
        "num_input_rows": progress.get("numInputRows"),
        "input_rows_per_second": progress.get("inputRowsPerSecond"),
        "processed_rows_per_second": progress.get("processedRowsPerSecond"),
        "batch_duration_ms": batch_ms,
        "event_latency_ms": latency,  # newest event in the batch: event time to commit (approximate)
        "watermark_lag_ms": committed - watermark if committed is not None and watermark is not None else None,
        "backlog": json.dumps(backlog),
        "state_rows": sum(op.get("numRowsTotal", 0) for op in operators),
        "state_memory_bytes": sum(op.get("memoryUsedBytes", 0) for op in operators),
        "rows_dropped_by_watermark": sum(op.get("numRowsDroppedByWatermark", 0) for op in operators),
        "failed": False,
        "status": status,
    }


METRICS_SCHEMA = (
@@METRICS_SCHEMA@@
)
METRICS_COLUMNS = @@METRICS_COLUMNS@@
METRICS_TYPES = @@METRICS_TYPES@@


def typed_row(row: dict[str, Any]) -> tuple[Any, ...]:
    """The row as a tuple in METRICS_SCHEMA order, each value cast to its column's type (None stays None)."""
    return tuple(None if row.get(c) is None else cast(row[c]) for c, cast in zip(METRICS_COLUMNS, METRICS_TYPES))


class SloListener(StreamingQueryListener):
    """Collects one SLO metrics row per micro-batch (and one per failed query); never writes from a callback.

    Listener callbacks run on the listener bus: a Spark write there would block the bus (and, on a failing
    query, may never run). Rows are buffered; ``flush(spark)`` writes them from the driver's own thread
    (``start_flusher`` runs it periodically), and keeps them when the write fails.
    """

    def __init__(self, max_buffer: int = 100_000) -> None:
        """Buffer at most ``max_buffer`` rows (the oldest are dropped first, and counted)."""
        super().__init__()
        self.buffer: deque[dict[str, Any]] = deque(maxlen=max_buffer)
        self.lock = threading.Lock()

    def onQueryStarted(self, event: Any) -> None:
        """Log the start: the first batch's metrics follow."""
        LOG.info("query %s started (run %s)", event.name, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        """One row per micro-batch."""
        self.emit(slo_record(json.loads(event.progress.json)))

    def onQueryIdle(self, event: Any) -> None:
        """No new data: nothing to measure (the no-progress alert covers stalls)."""

    def onQueryTerminated(self, event: Any) -> None:
        """A failed query counts against the failure-rate SLI."""
        if event.exception:
            self.emit({"ts": dt.datetime.now(dt.timezone.utc).isoformat(), "query_id": str(event.id),
                       "failed": True, "status": "critical", "error": str(event.exception)[:2000]})

    def emit(self, row: dict[str, Any]) -> None:
        """Log the row now and buffer it for the next flush."""
        LOG.info(json.dumps(row, default=str))
        with self.lock:
            self.buffer.append(row)

    def flush(self, spark: SparkSession) -> int:
        """Append the buffered rows to METRICS_TABLE with the explicit schema; on failure they stay buffered."""
        with self.lock:
            rows = list(self.buffer)
        if not rows:
            return 0
        frame = spark.createDataFrame([typed_row(row) for row in rows], METRICS_SCHEMA)
        frame.write.mode("append").saveAsTable(METRICS_TABLE)  # raises: the buffer is kept for the next flush
        with self.lock:
            for _ in rows:
                self.buffer.popleft()
        return len(rows)


def start_flusher(spark: SparkSession, listener: SloListener, every_seconds: int = FLUSH_SECONDS) -> threading.Thread:
    """Flush the listener every ``every_seconds`` from a daemon thread of this driver (not the listener bus)."""

    def loop() -> None:
        while True:
            time.sleep(every_seconds)
            try:
                listener.flush(spark)
            except Exception:  # the rows stay buffered; the next flush retries them
                LOG.exception("could not append SLO metrics to %s; kept %d rows", METRICS_TABLE, len(listener.buffer))

    thread = threading.Thread(target=loop, name="slo-metrics-flush", daemon=True)
    thread.start()
    return thread


def attach(spark: SparkSession) -> SloListener:
    """Register the listener on this session and start its flusher; call it before starting the queries.

    A listener sees only the queries of the session it is registered on, so attach it in the job that
    starts the streams (``from slo_listener import attach; attach(spark)``), never in a separate script.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    listener = SloListener()
    spark.streams.addListener(listener)
    start_flusher(spark, listener)
    return listener


def main() -> None:
    """Create METRICS_TABLE with the metrics schema (run once before the first stream attaches the listener)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spark = SparkSession.builder.getOrCreate()
    spark.sql(f"CREATE TABLE IF NOT EXISTS {METRICS_TABLE} ({METRICS_SCHEMA})")
    LOG.info("metrics table %s is ready; call attach(spark) where the streams start", METRICS_TABLE)


if __name__ == "__main__":
    main()
'''
    casts = {"BIGINT": "int", "DOUBLE": "float", "BOOLEAN": "bool", "STRING": "str"}
    body = (body.replace("@@METRICS_SCHEMA@@", metrics_schema_literal())
            .replace("@@METRICS_COLUMNS@@", "[" + ", ".join(py(c) for c in METRICS_COLUMNS) + "]")
            .replace("@@METRICS_TYPES@@", "[" + ", ".join(casts[t] for t in METRICS_COLUMNS.values()) + "]"))
    doc = [f"Import it where the streams start: `from slo_listener import attach; attach(spark)`. Objectives: p95 "
           f"event latency {latency.spark}, freshness {freshness.spark}.",
           "Listener callbacks are asynchronous; the work here is a JSON line and a buffered append. Name every query "
           "(.queryName) so rows can be told apart. Support module: no stream, just main()."]
    imports = "from pyspark.sql import SparkSession\nfrom pyspark.sql.streaming import StreamingQueryListener"
    return join(header("StreamingQueryListener emitting the SLO metrics of every micro-batch.", command, doc,
                       imports=imports,
                       extra_imports=("import datetime as dt", "import json", "import logging", "import threading",
                                      "import time", "from collections import deque", "from typing import Any")),
                constants(rows), body)


# -- latency SLO and alerts -------------------------------------------------------------

SLO_DEFAULTS = {
    "slo_target": "99",
    "observation_window": "28 days",
    "alert_channels": "slack:#streaming-alerts, pagerduty:streaming-oncall",
    "metrics_sink": "StreamingQueryListener to a Delta table",
    "latency_objective": "30 seconds",
    "freshness_objective": "10 minutes",
    "metrics_table": "main.ops.streaming_metrics",
    "target_table": "main.gold.events_agg",
    "event_time_column": "event_time",
}


def error_budget_minutes(a: Inputs) -> float:
    """Minutes per observation window the SLO may be missed."""
    return round(a.duration("observation_window").minutes * (100 - a.percent("slo_target")) / 100, 1)


def slo_thresholds_yaml(a: Inputs) -> str:
    """SLIs, objectives, thresholds, routing, suppression, drills and the error-budget policy."""
    latency, freshness = a.duration("latency_objective"), a.duration("freshness_objective")
    limits = thresholds(latency, freshness)
    routes = [f"{kind}:{target}" for kind, target in channels(a.text("alert_channels"))]
    data = {
        "version": 1,
        "target_table": table_name(a.text("target_table")),
        "metrics_source": a.text("metrics_sink"),
        "sli": {
            "event_latency_p95_ms": {"objective": round(latency.seconds * 1000),
                                     "measured_by": "SloListener.event_latency_ms (newest event to commit)"},
            "freshness_p95_min": {"objective": round(freshness.minutes, 2),
                                  "measured_by": "now - max(event time) in the target (slo_alerts.sql query 2)"},
            "backlog": {"objective": "not rising for 3 consecutive batches",
                        "measured_by": "source backlog metrics in query progress"},
            "failure_rate": {"objective": "0 failed queries per day", "measured_by": "onQueryTerminated with error"},
        },
        "slo": {"target_pct": a.percent("slo_target"), "window": a.duration("observation_window").spark,
                "error_budget_minutes": error_budget_minutes(a)},
        "thresholds": limits,
        "routing": {"warn": routes[:1], "critical": routes},
        "suppression": {"deduplicate_for": "30 minutes", "maintenance_windows": "silence during announced deploys",
                        "min_duration": "fire only after 3 consecutive breaching batches"},
        "drills": {"every": "90 days", "how": "pause the source or lower the trigger and confirm the alert reaches "
                                              "every route"},
        "error_budget_policy": {
            "burn_alerts": [{"burn_rate": 14.4, "over": "1 hour", "severity": "critical"},
                            {"burn_rate": 6, "over": "6 hours", "severity": "warn"}],
            "when_spent": "freeze non-urgent releases of this pipeline; reliability work first until the budget "
                          "recovers",
        },
    }
    return dump_yaml(data, ["Latency and freshness SLO: thresholds derived from the objectives "
                            "(latency warn 4/3×, critical 2×; freshness warn 1.5×, critical 3×)."])


def freshness_column(a: Inputs) -> str:
    """The time column freshness is measured on: one the target table really has (Gold has ``window_end``)."""
    return current().time_column(a.text("target_table"), a.text("event_time_column"))


def slo_alerts_sql(a: Inputs) -> str:
    """Databricks SQL alert queries over the metrics table and the target."""
    latency, freshness = a.duration("latency_objective"), a.duration("freshness_objective")
    limits = thresholds(latency, freshness)
    metrics, target = table_name(a.text("metrics_table")), table_name(a.text("target_table"))
    ts = sql_ident(freshness_column(a))
    window = a.duration("observation_window")
    return f"""-- SLO alerts. Each query is one Databricks SQL alert; routes are in alert_thresholds.yaml.
-- The listener writes typed columns (slo_listener.METRICS_SCHEMA); ts is the ISO-8601 progress timestamp.

-- 1. p95 event latency over the last 15 minutes.
--    Alert: p95_latency_ms > {limits['warn']['latency_ms']} (warn), > {limits['critical']['latency_ms']} (critical).
SELECT query_name,
       percentile_approx(event_latency_ms, 0.95) AS p95_latency_ms,
       max(batch_duration_ms) AS max_batch_ms
FROM {metrics}
WHERE CAST(ts AS TIMESTAMP) >= current_timestamp() - INTERVAL 15 MINUTES AND NOT failed
GROUP BY query_name;

-- 2. Freshness of {target}. Alert: staleness_minutes > {limits['warn']['freshness_min']:g} (warn),
--    > {limits['critical']['freshness_min']:g} (critical).
SELECT (unix_timestamp(current_timestamp()) - unix_timestamp(max({ts}))) / 60.0 AS staleness_minutes
FROM {target};

-- 3. Failure rate: failed queries in the last 24 hours. Alert: failures > 0.
SELECT count(*) AS failures
FROM {metrics}
WHERE failed AND CAST(ts AS TIMESTAMP) >= current_timestamp() - INTERVAL 24 HOURS;

-- 4. Backlog trend and no-progress: minutes since the last batch per query. Alert: minutes_since_batch > 10.
SELECT query_name, (unix_timestamp(current_timestamp()) - unix_timestamp(max(CAST(ts AS TIMESTAMP)))) / 60.0
       AS minutes_since_batch
FROM {metrics}
GROUP BY query_name;

-- 5. Error budget over {window.spark}: share of batches that missed the latency objective.
--    Alert when budget_used_pct > 100 (the SLO of {format_percent(a.percent('slo_target'))} is broken).
--    Budget used = share of bad batches / (1 - target): at a {format_percent(a.percent('slo_target'))} target the
--    budget is {max(100 - a.percent('slo_target'), 0.001):g}% of batches.
SELECT 100.0 * avg(CASE WHEN event_latency_ms > {round(latency.seconds * 1000)} THEN 1 ELSE 0 END)
       / {max(1 - a.percent('slo_target') / 100, 0.00001):g} AS budget_used_pct
FROM {metrics}
WHERE CAST(ts AS TIMESTAMP) >= current_timestamp() - {window.sql_interval} AND NOT failed;
"""


def pipeline_slo_sql(a: Inputs) -> str:
    """Event-log queries for declarative pipelines (backlog and failures per flow)."""
    return """-- Declarative pipeline SLIs from the event log (replace <pipeline-id>; check field paths against the
-- pipeline event log schema page, and avoid fields whose maturity_level is EVOLVING or DEPRECATED).

-- Backlog per flow over the last hour (bytes not yet processed).
SELECT origin.flow_name, max(timestamp) AS last_seen,
       max(CAST(details:flow_progress.metrics.backlog_bytes AS DOUBLE)) AS backlog_bytes
FROM event_log('<pipeline-id>')
WHERE event_type = 'flow_progress' AND timestamp >= current_timestamp() - INTERVAL 1 HOURS
GROUP BY origin.flow_name;

-- Errors in the last 24 hours (failure-rate SLI).
SELECT timestamp, origin.flow_name, message
FROM event_log('<pipeline-id>')
WHERE level = 'ERROR' AND timestamp >= current_timestamp() - INTERVAL 24 HOURS
ORDER BY timestamp DESC;
"""


def slo_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                 workspace: object = None) -> list[Artifact]:
    """Artefacts of ``latency-slo-and-alerts``."""
    a = Inputs(answers, SLO_DEFAULTS)
    folder = artifact_dir(doc_location)
    record_table(a.text("metrics_table"), "metrics", METRICS_COLUMNS, writer=str(folder / "slo_listener.py"))
    latency, freshness = a.duration("latency_objective"), a.duration("freshness_objective")
    limits = thresholds(latency, freshness)
    slo = {"sli": {"pipeline_latency_p95_ms": round(latency.seconds * 1000),
                   "end_to_end_freshness_p95_min": round(freshness.minutes, 2)},
           "thresholds": limits,
           "routing": [{"channel": kind, "target": target} for kind, target in channels(a.text("alert_channels"))]}
    out = [Artifact(config_path(doc_location, "latency-slo-tmpl.yaml"),
                    dump_yaml(slo, ["Latency & Freshness SLO (the objectives you gave; thresholds as in "
                                    "alert_thresholds.yaml)"]), "yaml",
                    "The SLO in the pack's shape, from the same objectives as the listener and the alerts.")]
    out += [
        Artifact(str(folder / "slo_listener.py"),
                 listener_module(a, "latency-slo", a.text("metrics_table"), a.duration("latency_objective"),
                                 a.duration("freshness_objective")),
                 "python", "StreamingQueryListener emitting latency, throughput, backlog, state and failures per "
                           "micro-batch, classified against the thresholds."),
        Artifact(str(folder / "alert_thresholds.yaml"), slo_thresholds_yaml(a), "yaml",
                 "SLIs, objectives, warn/critical thresholds from the latency SLO, routing, suppression, drills, "
                 "error-budget policy."),
        Artifact(str(folder / "slo_alerts.sql"), slo_alerts_sql(a), "sql",
                 "Databricks SQL alert queries: p95 latency, freshness, failures, no-progress, error budget."),
    ]
    if "event log" in a.choice("metrics_sink"):
        out.append(Artifact(str(folder / "pipeline_slo.sql"), pipeline_slo_sql(a), "sql",
                            "Event-log queries for declarative pipelines: backlog and errors per flow."))
    return out


def slo_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``latency-slo-and-alerts``."""
    a = Inputs(answers, SLO_DEFAULTS)
    latency, freshness = a.duration("latency_objective"), a.duration("freshness_objective")
    limits = thresholds(latency, freshness)
    first = (f"SLIs: p95 event latency (objective {latency.spark}), freshness of `{a.text('target_table')}` "
             f"(objective {freshness.spark}), backlog trend and failure rate — measured by the SloListener into "
             f"`{a.text('metrics_table')}` (source: {a.text('metrics_sink')}).")
    second = (f"Thresholds: latency warn {limits['warn']['latency_ms']} ms / critical "
              f"{limits['critical']['latency_ms']} ms; freshness warn {limits['warn']['freshness_min']:g} min / "
              f"critical {limits['critical']['freshness_min']:g} min; routed to {a.text('alert_channels')} with "
              f"30-minute deduplication and maintenance-window silences, drilled every 90 days. SLO "
              f"{format_percent(a.percent('slo_target'))} over {a.duration('observation_window').spark} leaves an "
              f"error budget of {error_budget_minutes(a):g} minutes; when it is spent, releases freeze.")
    return [first, second]


# -- jobs and continuous triggers -------------------------------------------------------

JOBS_DEFAULTS = {
    "trigger_type": "continuous",
    "max_retries": "3",
    "notification_targets": "email:streaming-oncall@example.com",
    "deploy_tool": "Databricks Asset Bundles",
    "entry_point": "src/ingest_stream.py",
    "cluster_policy": "streaming-jobs-policy",
    "backlog_threshold": "10 minutes",
    "schedule_interval": "15 minutes",
    "file_arrival_path": "/Volumes/main/landing/events/",
    "name": "orders-events-streaming",
    "task": "ingest_orders_events",
    "cluster": "streaming_job_cluster",
}


def thread_targets(table_name: str, catalog: str) -> Targets:
    """Targets of a job's Bronze stream: in the thread's catalog and checkpoint root when the design has them.

    A bundle that writes ``main.bronze...`` with checkpoints under ``/Volumes/main/...`` in a thread whose
    tables and checkpoints live elsewhere deploys into a catalog the rest of the thread never uses.
    """
    design = current()
    catalog = (design.targets.get("prod") or {}).get("catalog") or catalog
    root = design.checkpoint_root or f"/Volumes/{catalog}/streaming/checkpoints"
    return Targets.for_output(f"{catalog}.bronze.{table_name}", root)


def jobs_targets(a: Inputs) -> Targets:
    """Where the job's stream writes in prod (the thread's catalog, else the landing volume's) and in dev."""
    return thread_targets(slug(a.text("name")), volume_catalog(a.text("file_arrival_path")))


def jobs_entry(a: Inputs) -> EntryStream:
    """The stream the job runs: Auto Loader from the landing path into the target's Bronze table."""
    targets = jobs_targets(a)
    table = f"{targets.prod.catalog}.{targets.prod.schema}.{slug(a.text('name'))}"
    return EntryStream(command="workflows-triggers", source_path=a.text("file_arrival_path"), target_table=table,
                       checkpoint=f"{targets.prod.checkpoint_root}/{slug(a.text('name'))}")


def jobs_spec(a: Inputs) -> JobSpec:
    """The job the ``jobs-continuous-triggers`` answers describe."""
    trigger = a.choice("trigger_type")
    trigger = "continuous" if trigger.startswith("continuous") else "file arrival" if trigger.startswith("file") \
        else "scheduled"
    every = a.duration("schedule_interval")
    compute = compute_kind(a.answers)
    bounded = trigger != "continuous" or compute == SERVERLESS  # serverless has no processingTime trigger
    return JobSpec(
        name=a.text("name"), task_key=slug(a.text("task")), python_file=entry_point_path(a.text("entry_point")),
        cluster_key=slug(a.text("cluster")), trigger=trigger, notify=a.text("notification_targets"),
        parameters=[*TARGET_PARAMETERS, *(["--available-now"] if bounded else [])],
        max_retries=a.int("max_retries"), backlog_threshold=a.duration("backlog_threshold"),
        run_duration_warning=every if trigger == "scheduled" else a.duration("backlog_threshold"),
        schedule_every=every, file_arrival_url=a.text("file_arrival_path"),
        tags={"pipeline": a.text("name")}, compute=compute,
    )


def jobs_bundle_yaml(a: Inputs) -> str:
    """The ``databricks.yml`` of the job."""
    spec = jobs_spec(a)
    targets = jobs_targets(a)
    data = bundle(spec.name, {"jobs": {slug(spec.name): job_resource(spec)}},
                  bundle_variables(a.text("cluster_policy"), compute=spec.compute), targets)
    header_lines = [f"Databricks Asset Bundle: job {spec.name} ({spec.trigger} trigger, {spec.compute} compute).",
                    "Deploy: databricks bundle validate -t prod && databricks bundle deploy -t prod "
                    "(deploy_with_gate.sh runs the checks first).",
                    *target_header(targets),
                    "Rollback: check out the previous release tag and deploy it again; the checkpoint is unchanged, so "
                    "the stream resumes where it stopped.",
                    "Rate limits (maxOffsetsPerTrigger / maxFilesPerTrigger) stay in the stream code; the trigger "
                    "follows the job: --available-now for bounded runs, processingTime for a continuous classic job."]
    if spec.trigger == "continuous":
        header_lines.append("No timeout_seconds on a continuous task: it runs until cancelled.")
        header_lines.append("Continuous jobs retry failed runs automatically with exponential backoff "
                            "(task_retry_mode ON_FAILURE); max_retries does not apply, and task dependencies "
                            "(depends_on) are not supported: one streaming task per job.")
    else:
        header_lines.append("Scheduled and file-arrival runs pass --available-now: the stream drains, then stops.")
    extra = other_channels(a.text("notification_targets"))
    if extra:
        header_lines.append("Create notification destinations for " + ", ".join(extra) +
                            " and add their ids as webhook:<id> targets.")
    return dump_yaml(data, header_lines)


def jobs_api_json(a: Inputs) -> str:
    """The same job as a Jobs API 2.2 ``create`` payload for prod (variables resolved to the prod values)."""
    spec = jobs_spec(a)
    targets = jobs_targets(a)
    job = job_resource(spec)
    values = {"${var.catalog}": targets.prod.catalog, "${var.schema}": targets.prod.schema,
              "${var.checkpoint_root}": targets.prod.checkpoint_root}
    for task in job["tasks"]:
        python = task.get("spark_python_task") or {}
        if "parameters" in python:
            python["parameters"] = [values.get(p, p) for p in python["parameters"]]
        python["python_file"] = f"<workspace folder of the deployed files>/{spec.python_file}"
    for block in ("continuous", "schedule", "trigger"):
        if block in job:
            job[block].setdefault("pause_status", "UNPAUSED")
    job["run_as"] = {"service_principal_name": f"<application id of service principal {targets.service_principal}>"}
    for cluster in job.get("job_clusters", []):
        cluster["new_cluster"].update(spark_version="15.4.x-scala2.12", num_workers=2, node_type_id="i3.xlarge",
                                      policy_id=f"<id of cluster policy {a.text('cluster_policy')}>")
    return dump_json(job)


GATE_DOC = "docs/gates/streaming-release.md"  # the release-gate task's document


def deploy_script(a: Inputs, bundle_dir: str) -> str:
    """Deployment linked to the release gate: lint, gate decision, validate, deploy (from the bundle folder)."""
    gate = posixpath.relpath(GATE_DOC, bundle_dir)
    return f"""#!/usr/bin/env bash
# Deploy {a.text('name')} only when the code passes `streaming-engineer check` and the release gate says Go.
# Usage: ./deploy_with_gate.sh [target]   (default: prod; run from anywhere: it works in the bundle folder)
set -euo pipefail
TARGET="${{1:-prod}}"
cd "$(dirname "${{BASH_SOURCE[0]}}")"                   # the bundle root: databricks.yml is here
GATE="${{GATE:-{gate}}}"

streaming-engineer check . --format text               # exit 1 on any FAIL
if ! grep -Eq '^Decision: \\*\\*Go\\*\\*' "$GATE"; then  # Conditional Go and No-Go do not deploy
  echo "release gate $GATE is not Go: clear its conditions and run *release-gate again" >&2
  exit 1
fi
databricks bundle validate -t "$TARGET"
databricks bundle deploy -t "$TARGET"
git tag -f "deployed-$TARGET-$(date -u +%Y%m%dT%H%M%SZ)"   # audit: what was deployed, when
"""


def jobs_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                  workspace: object = None) -> list[Artifact]:
    """Artefacts of ``jobs-continuous-triggers``."""
    a = Inputs(answers, JOBS_DEFAULTS)
    folder = artifact_dir(doc_location)
    spec = jobs_spec(a)
    workflow = {"version": 1, "workflow": {"name": spec.name, "trigger": spec.trigger.replace(" ", "_"),
                                           "task": spec.task_key, "job_cluster": spec.cluster_key,
                                           "entry_point": spec.python_file}}
    if spec.trigger == "scheduled":
        workflow["workflow"]["every"] = spec.schedule_every.spark if spec.schedule_every else None
    elif spec.trigger == "file arrival":
        workflow["workflow"]["file_arrival_url"] = spec.file_arrival_url
    out = [Artifact(config_path(doc_location, "jobs-continuous-workflow-tmpl.yaml"),
                    dump_yaml(workflow, ["The job's workflow summary, from the same answers as databricks.yml."]), "yaml",
                    "Workflow summary: name, trigger and task (the same values as the bundle).")]
    out += [Artifact(str(folder / "databricks.yml"), jobs_bundle_yaml(a), "yaml",
                    "Asset Bundle job: trigger, one run at a time, retries or continuous backoff, failure and "
                    "backlog/duration notifications, health rule, compute; dev and prod targets with their own "
                    "catalog and checkpoints, prod run as a service principal."),
           Artifact(str(folder / entry_point_path(a.text("entry_point"))), entry_module(jobs_entry(a), jobs_targets(a)),
                    "python", "The job's entry point: Auto Loader → Bronze in the bundle target's catalog, with "
                    "--available-now for bounded runs (replace the body with your stream, keep the parameters).")]
    if "api" in a.choice("deploy_tool") or "terraform" in a.choice("deploy_tool"):
        out.append(Artifact(str(folder / "job.json"), jobs_api_json(a), "json",
                            "The same job as a Jobs API create payload (fill in the policy id)."))
    out.append(Artifact(str(folder / "deploy_with_gate.sh"), deploy_script(a, str(folder)), "shell",
                        "Deployment gated on `streaming-engineer check` and the release-gate decision."))
    return out


def jobs_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``jobs-continuous-triggers``."""
    a = Inputs(answers, JOBS_DEFAULTS)
    spec = jobs_spec(a)
    if spec.trigger == "continuous":
        trig = (f"continuous (unpaused by the prod target, paused in dev by development mode; `task_retry_mode: "
                f"ON_FAILURE`: retries with exponential backoff, so max_retries={spec.max_retries} is not used); "
                f"health rule STREAMING_BACKLOG_SECONDS > {spec.backlog_threshold.whole_seconds}")
    elif spec.trigger == "file arrival":
        trig = (f"file arrival on `{spec.file_arrival_url}` with max_retries={spec.max_retries} and a 60 s retry "
                "interval")
    else:
        trig = f"scheduled every {spec.schedule_every.spark} with max_retries={spec.max_retries}"
    compute = (f"job cluster `{spec.cluster_key}` (policy `{a.text('cluster_policy')}`)" if spec.compute != SERVERLESS
               else "serverless jobs compute (the stream runs with availableNow)")
    first = (f"Job `{spec.name}`, task `{spec.task_key}` on {compute}: {trig}; `max_concurrent_runs: 1`; notifications to "
             f"{a.text('notification_targets')}. Task dependencies: none (no `depends_on`: one streaming task per job, "
             "its upstream read as a stream; continuous jobs allow none). Rollback: redeploy the previous release; "
             "gradual rollout through blue-green or canary.")
    targets = jobs_targets(a)
    second = (f"Versioned with {a.text('deploy_tool')}: `databricks.yml` (dev in development mode writing "
              f"`{targets.dev.catalog}`, prod in production mode writing `{targets.prod.catalog}`, run as service "
              f"principal `{targets.service_principal}` from `workspace.root_path` in its home) runs "
              f"`{spec.python_file}`; `deploy_with_gate.sh` refuses to deploy unless `streaming-engineer check` passes "
              "and the release gate is Go, and tags each deployment for audit.")
    return [first, second]


# -- cost guardrails --------------------------------------------------------------------

COST_DEFAULTS = {
    "cluster_policy": "streaming-jobs-policy",
    "instance_pool": "streaming-pool",
    "criticality": "standard",
    "degraded_trigger_interval": "15 minutes",
    "alert_channels": "email:finops@example.com, slack:#streaming-cost",
    "max_dbus_per_hour": "40",
    "cost_center": "1234",
    "team": "data-platform",
    "entry_point": "src/ingest_stream.py",
    "pipeline_name": "orders-events-streaming",
    "daily_budget": "150",
}


def budget_thresholds(rendered: dict[str, str]) -> tuple[float, float]:
    """Warn and limit ratios from the rendered cost-budget template (0.8 / 1.0 by default)."""
    text = rendered.get("cost-budget-streaming-tmpl.yaml")
    try:
        data = (yaml.safe_load(text) or {}) if text else {}
        found = (data.get("streaming_budget") or {}).get("thresholds") or {}
        return float(found.get("warn", 0.8)), float(found.get("limit", 1.0))
    except (yaml.YAMLError, TypeError, ValueError, AttributeError):
        return 0.8, 1.0


def cluster_policy_json(a: Inputs) -> str:
    """A compute policy for streaming jobs: job clusters only, DBU cap, fixed size, pool and cost tags."""
    policy = {
        "cluster_type": {"type": "fixed", "value": "job"},
        "dbus_per_hour": {"type": "range", "maxValue": a.int("max_dbus_per_hour")},
        "autoscale.max_workers": {"type": "forbidden", "hidden": True},
        "custom_tags.team": {"type": "fixed", "value": a.text("team")},
        "custom_tags.cost_center": {"type": "fixed", "value": a.text("cost_center")},
    }
    return dump_json(policy)


def cost_targets(a: Inputs) -> Targets:
    """Where the guarded stream writes in prod and in dev."""
    return thread_targets(slug(a.text("pipeline_name")), "main")


def cost_entry(a: Inputs) -> EntryStream:
    """The stream both jobs run (continuous, or availableNow when degraded)."""
    targets = cost_targets(a)
    name = slug(a.text("pipeline_name"))
    return EntryStream(command="cost-guardrails", source_path=f"/Volumes/{targets.prod.catalog}/landing/{name}/",
                       target_table=f"{targets.prod.catalog}.{targets.prod.schema}.{name}",
                       checkpoint=f"{targets.prod.checkpoint_root}/{name}")


def cost_bundle_yaml(a: Inputs) -> str:
    """Jobs under the policy and pool; critical streams never degrade, others have a scheduled fallback."""
    name = a.text("pipeline_name")
    criticality = a.choice("criticality")
    tags = {"pipeline": name, "team": a.text("team"), "cost_center": a.text("cost_center")}
    degraded = a.duration("degraded_trigger_interval")
    entry = entry_point_path(a.text("entry_point"))
    targets = cost_targets(a)
    jobs = {}
    if not criticality.startswith("best"):
        jobs[slug(name)] = job_resource(JobSpec(
            name=name, task_key="stream", python_file=entry, cluster_key="streaming", trigger="continuous",
            parameters=list(TARGET_PARAMETERS), notify=a.text("alert_channels"),
            backlog_threshold=Duration(10, "minutes"), tags=tags, use_pool=True))
    if not criticality.startswith("critical"):
        # A bounded run: --available-now drains the backlog and stops, so the schedule, not a timeout, ends it.
        jobs[slug(name) + "_degraded"] = job_resource(JobSpec(
            name=f"{name}-degraded", task_key="stream", python_file=entry, cluster_key="streaming",
            trigger="scheduled", parameters=[*TARGET_PARAMETERS, "--available-now"], schedule_every=degraded,
            run_duration_warning=degraded, notify=a.text("alert_channels"), tags=tags, use_pool=True,
            pause_status="PAUSED" if not criticality.startswith("best") else ""))
    header_lines = [f"Cost guardrails for {name} ({a.text('criticality')}): job clusters from pool "
                    f"{a.text('instance_pool')} under policy {a.text('cluster_policy')}, cost tags on every run.",
                    *target_header(targets),
                    "Throttle first: lower the stream's rate limits (maxOffsetsPerTrigger / maxFilesPerTrigger) before "
                    "degrading the trigger."]
    if len(jobs) == 2:
        header_lines.append("Degrade: pause the continuous job and unpause the _degraded job (availableNow every "
                            f"{degraded.spark}); restore by doing the opposite. Both share one checkpoint, so never "
                            "run them at the same time.")
    if not criticality.startswith("critical"):
        header_lines.append("The scheduled job passes --available-now: the stream drains the backlog, then stops.")
    return dump_yaml(bundle(name, {"jobs": jobs}, bundle_variables(a.text("cluster_policy"), a.text("instance_pool")),
                            targets), header_lines)


def budget_sql(a: Inputs, warn: float, limit: float) -> str:
    """Daily DBUs and list-price cost per pipeline tag against the budget."""
    budget = a.int("daily_budget")
    name = a.text("pipeline_name")
    return f"""-- Daily budget for {name}: {budget} USD; warn at {warn:.0%}, limit at {limit:.0%}.
-- system.billing.usage is typically complete within 12 hours: a daily guardrail, not a real-time alert.
-- Use as a Databricks SQL alert on status <> 'ok', routed to {a.text('alert_channels')}.
WITH usage AS (
  SELECT u.usage_date,
         sum(u.usage_quantity) AS dbus,
         sum(u.usage_quantity * p.pricing.default) AS list_cost_usd
  FROM system.billing.usage u
  JOIN system.billing.list_prices p
    ON u.sku_name = p.sku_name
   AND u.usage_start_time >= p.price_start_time
   AND (p.price_end_time IS NULL OR u.usage_start_time < p.price_end_time)
  WHERE u.custom_tags['pipeline'] = {sql_str(name)}
    AND u.usage_date >= current_date() - INTERVAL 14 DAYS
  GROUP BY u.usage_date
)
SELECT usage_date, dbus, list_cost_usd,
       list_cost_usd / {budget} AS budget_used,
       CASE WHEN list_cost_usd >= {budget} * {limit} THEN 'limit'
            WHEN list_cost_usd >= {budget} * {warn} THEN 'warn'
            ELSE 'ok' END AS status
FROM usage
ORDER BY usage_date DESC;
"""


def cost_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                  workspace: object = None) -> list[Artifact]:
    """Artefacts of ``cost-guardrails-streaming``."""
    a = Inputs(answers, COST_DEFAULTS)
    warn, limit = budget_thresholds(rendered)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "cluster_policy.json"), cluster_policy_json(a), "json",
                 "Compute policy: job clusters only, DBU/hour cap, fixed size, enforced cost tags."),
        Artifact(str(folder / "databricks.yml"), cost_bundle_yaml(a), "yaml",
                 "Jobs under the policy and pool (looked up by name), cost tags, and the degraded fallback; dev and "
                 "prod targets with their own catalog and checkpoints."),
        Artifact(str(folder / entry_point_path(a.text("entry_point"))), entry_module(cost_entry(a), cost_targets(a)),
                 "python", "The jobs' entry point: Auto Loader → Bronze in the bundle target's catalog; the degraded "
                 "job runs it with --available-now."),
        Artifact(str(folder / "budget_monitor.sql"), budget_sql(a, warn, limit), "sql",
                 "Daily DBUs and list-price cost per pipeline tag vs the budget thresholds."),
    ]


def cost_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``cost-guardrails-streaming``."""
    a = Inputs(answers, COST_DEFAULTS)
    budget = a.int("daily_budget")
    first = (f"Budget {budget} USD/day for `{a.text('pipeline_name')}`: warn at {round(budget * 0.8)} USD (80%), "
             f"limit at {budget} USD (100%) from `system.billing.usage` × list prices; alerts to "
             f"{a.text('alert_channels')}. Policy `{a.text('cluster_policy')}` caps {a.int('max_dbus_per_hour')} "
             f"DBU/h and forces tags team={a.text('team')}, cost_center={a.text('cost_center')}; clusters come from "
             f"pool `{a.text('instance_pool')}`. Correction: the owner of the tag acts within a day.")
    criticality = a.choice("criticality")
    if criticality.startswith("critical"):
        second = "Critical: never degraded; over budget means a review, not a throttle."
    elif criticality.startswith("best"):
        second = (f"Best-effort: runs only as availableNow every {a.duration('degraded_trigger_interval').spark} "
                  "(compute only while draining the backlog) and may be paused when the limit is hit.")
    else:
        second = (f"Standard: continuous normally; at the limit, switch to the `_degraded` job (availableNow every "
                  f"{a.duration('degraded_trigger_interval').spark}, rate limits unchanged) until spend recovers.")
    return [first, second]


register("latency-slo-and-alerts", slo_generate, notes=slo_notes)
register("jobs-continuous-triggers", jobs_generate, notes=jobs_notes)
register("cost-guardrails-streaming", cost_generate, notes=cost_notes)
