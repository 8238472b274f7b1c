"""Declarative pipelines: the DLT (Lakeflow) medallion pipeline and streaming DQ expectations.

Both tasks produce a Python pipeline (``from pyspark import pipelines as dp``)
with expectations and a quarantine table built the way the pack's
data-quality article describes (rules in warn mode on a temporary view, an
``is_quarantined`` flag wrapped in ``coalesce(..., true)``, two tables split on
it), plus the bundle that deploys it and the SQL that watches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.artifacts.base import (
    Artifact,
    Duration,
    Inputs,
    artifact_dir,
    dump_yaml,
    emails,
    format_percent,
    py,
    register,
    short_name,
    slug,
    sql_ident,
    sql_str,
    table_name,
)
from tools.artifacts.bundles import (
    SERVERLESS,
    JobSpec,
    Namespace,
    Targets,
    bundle,
    bundle_variables,
    compute_kind,
    job_resource,
    pipeline_resource,
    pipeline_target_block,
    target_header,
)
from tools.artifacts.skeleton import DBUTILS_HELPER, constants, header, join
from tools.artifacts.sources import json_path

FILE_FORMATS = ("json", "csv", "parquet", "avro")
PIPELINE_IMPORTS = """from pyspark import pipelines as dp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F"""


@dataclass
class Rule:
    """One expectation: a name, a SQL condition that is true for a good row, and the action."""

    name: str
    condition: str
    action: str  # WARN | DROP | FAIL


@dataclass
class PipelineSpec:
    """What a generated declarative pipeline reads, checks and publishes."""

    command: str
    summary: str
    source_kind: str  # autoloader | kafka | delta
    source: str
    silver_table: str
    quarantine_table: str
    event_time: str
    rules: list[Rule]
    bronze_table: str | None = None  # declared in the pipeline; None reads ``source`` directly
    file_format: str = "json"
    gold_table: str | None = None
    lateness: Duration | None = None
    window: Duration | None = None
    dedup_key: str | None = None
    kafka_servers: str = ""
    kafka_secret: tuple[str, str] = ("", "")
    notes: list[str] = field(default_factory=list)


def rule_name(text: str) -> str:
    """An expectation name: letters, digits and underscores."""
    return slug(text) or "rule"


def merge_rules(base: list[Rule], extra: list[Rule]) -> list[Rule]:
    """Base rules overridden by name with the user's (the user's come last)."""
    names = {r.name for r in extra}
    return [r for r in base if r.name not in names] + extra


def _rules_dict(rules: list[Rule]) -> str:
    if not rules:
        return "{}"
    body = "".join(f"\n    {py(r.name)}: {py(r.condition)}," for r in rules)
    return "{" + body + "\n}"


def quarantine_condition(rules: list[Rule]) -> str:
    """True when any quarantine rule fails; NULL counts as failing (three-valued logic)."""
    joined = " AND ".join(f"({r.condition})" for r in rules) or "true"
    return f"coalesce(NOT({joined}), true)"


def _bronze_function(spec: PipelineSpec) -> str:
    if spec.bronze_table is None:
        return ""
    if spec.source_kind == "kafka":
        expectation = '@dp.expect("has_value", "value IS NOT NULL")'
        body = '''    spark = _spark()
    dbutils = _dbutils(spark)
    jaas_config = dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP_SERVERS)
        .option("subscribe", SOURCE)
        .option("kafka.security.protocol", "SASL_SSL")
        .option("kafka.sasl.mechanism", "PLAIN")
        .option("kafka.sasl.jaas.config", jaas_config)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 100000)
        .load()
        .select(
            F.col("value").cast("string").alias("value"),
            "topic",
            "partition",
            "offset",
            F.get_json_object(F.col("value").cast("string"), EVENT_TIME_PATH).cast("timestamp").alias(EVENT_TIME),
        )
        .withColumn("_ingest_ts", F.current_timestamp())
    )'''
    elif spec.source_kind == "delta":
        expectation = '@dp.expect("has_event_time", f"{EVENT_TIME} IS NOT NULL")'
        body = '''    return _spark().readStream.table(SOURCE).withColumn("_ingest_ts", F.current_timestamp())'''
    else:
        expectation = '@dp.expect("rescued_data_empty", "_rescued_data IS NULL")'
        body = '''    return (
        _spark()
        .readStream.format("cloudFiles")
        .option("cloudFiles.format", SOURCE_FORMAT)
        .option("cloudFiles.inferColumnTypes", "true")
        .option("cloudFiles.maxFilesPerTrigger", 1000)
        .load(SOURCE)
        .withColumn("_source_file", F.col("_metadata.file_path"))
        .withColumn("_ingest_ts", F.current_timestamp())
    )'''
    return f'''@dp.table(
    name=BRONZE_TABLE,
    comment="Raw events as received; protected from full refresh because the source may not replay them.",
    table_properties={{"pipelines.reset.allowed": "false"}},
)
{expectation}
def bronze() -> DataFrame:
    """Bronze: the source as it arrives (schema location and checkpoints are managed by the pipeline)."""
{body}'''


def declarative_module(spec: PipelineSpec, deployed: Namespace | None = None) -> str:
    """The pipeline source file for ``spec``; ``deployed``: the production namespace of a bundle that deploys it."""
    quarantine = [r for r in spec.rules if r.action == "DROP"]
    warn = [r for r in spec.rules if r.action == "WARN"]
    fail = [r for r in spec.rules if r.action == "FAIL"]
    checked = slug(short_name(spec.silver_table)) + "_checked"
    rows = [("SOURCE", py(spec.source), {"kafka": "Kafka topic", "delta": "table the pipeline reads"}.get(
        spec.source_kind, "directory read with Auto Loader"))]
    if spec.source_kind == "autoloader":
        rows.append(("SOURCE_FORMAT", py(spec.file_format), "cloudFiles.format"))
    if spec.source_kind == "kafka":
        rows += [("BOOTSTRAP_SERVERS", py(spec.kafka_servers), "kafka.bootstrap.servers"),
                 ("SECRET_SCOPE", py(spec.kafka_secret[0]), "secret scope holding the JAAS config ..."),
                 ("SECRET_KEY_NAME", py(spec.kafka_secret[1]), "... under this key"),
                 ("EVENT_TIME_PATH", py(json_path(spec.event_time)), "event time inside the JSON value")]
    rows.append(("EVENT_TIME", py(spec.event_time), "event-time column"))
    if spec.lateness is not None:
        rows.append(("ALLOWED_LATENESS", py(spec.lateness.spark), "watermark delay of the stateful steps"))
    if spec.window is not None:
        rows.append(("WINDOW_DURATION", py(spec.window.spark), "tumbling window of the Gold aggregate"))
    if spec.dedup_key:
        rows.append(("DEDUP_KEY", py(spec.dedup_key), "duplicates of this key within the watermark are dropped"))
    if spec.bronze_table:
        rows.append(("BRONZE_TABLE", py(spec.bronze_table), "Bronze streaming table"))
    rows += [("CHECKED_VIEW", py(checked), "temporary view: every rule evaluated, nothing dropped"),
             ("SILVER_TABLE", py(spec.silver_table), "rows that pass the quarantine rules"),
             ("QUARANTINE_TABLE", py(spec.quarantine_table), "rows that fail them, with the failed rule names")]
    if spec.gold_table:
        rows.append(("GOLD_TABLE", py(spec.gold_table), "published aggregate"))
    rule_block = "\n".join([
        "# Expectations: name -> SQL condition that is true for a good row.",
        "# DROP rules route failing rows to the quarantine table (none are lost).",
        f"QUARANTINE_RULES = {_rules_dict(quarantine)}",
        "# WARN rules keep the row and count the violation in the pipeline event log.",
        f"WARN_RULES = {_rules_dict(warn)}",
        "# FAIL rules stop the flow's update (circuit breaker) until someone fixes the data or the rule.",
        f"FAIL_RULES = {_rules_dict(fail)}",
        f"QUARANTINE_FLAG = {py(quarantine_condition(quarantine))}",
    ])
    spark_helper = '''def _spark() -> SparkSession:
    """The pipeline's session: dataset functions only build DataFrames, they never start queries."""
    return SparkSession.active()'''
    source_read = "_spark().readStream.table(BRONZE_TABLE)" if spec.bronze_table else "_spark().readStream.table(SOURCE)"
    dedup = ""
    if spec.dedup_key:
        dedup = ("\n        .withWatermark(EVENT_TIME, ALLOWED_LATENESS)"
                 "\n        .dropDuplicatesWithinWatermark([DEDUP_KEY])")
    checked_rules = "\n@dp.expect_all({**QUARANTINE_RULES, **WARN_RULES})" if quarantine or warn else ""
    checked_fn = f'''@dp.temporary_view(name=CHECKED_VIEW){checked_rules}
def checked_rows() -> DataFrame:
    """Evaluate every rule in warn mode (metrics for all) and flag the rows to quarantine."""
    return (
        {source_read}{dedup}
        .withColumn("is_quarantined", F.expr(QUARANTINE_FLAG))
    )'''
    silver_decorators = ["@dp.table(name=SILVER_TABLE, comment=\"Rows that passed the quarantine rules.\")"]
    if quarantine:
        silver_decorators.append("@dp.expect_all_or_drop(QUARANTINE_RULES)  # a guard: the split already removed them")
    if fail:
        silver_decorators.append("@dp.expect_all_or_fail(FAIL_RULES)")
    silver_fn = "\n".join(silver_decorators) + '''
def silver() -> DataFrame:
    """Silver: the good rows."""
    return _spark().readStream.table(CHECKED_VIEW).where("NOT is_quarantined").drop("is_quarantined")'''
    quarantine_fn = '''@dp.table(
    name=QUARANTINE_TABLE,
    comment="Audit trail of rejected rows: category, failed rules, raw payload, times and status; replay after a fix.",
)
@dp.expect("has_failed_rules", "size(failed_rules) > 0")
def quarantine() -> DataFrame:
    """Quarantine: the rejected rows, raw payload kept so a corrected parser can re-read them."""
    failed_rules = F.array_compact(
        F.array(*[F.when(F.expr(f"NOT coalesce({rule}, false)"), F.lit(name)) for name, rule in QUARANTINE_RULES.items()])
    )
    return (
        _spark()
        .readStream.table(CHECKED_VIEW)
        .where("is_quarantined")
        .withColumn("failed_rules", failed_rules)
        .select(
            # The category: rows Auto Loader could not parse are schema violations, the rest failed a DQ rule.
            F.when(F.array_contains("failed_rules", "no_rescued_data"), F.lit("schema_violation"))
            .otherwise(F.lit("dq_failure"))
            .alias("dlq_reason"),
            "failed_rules",
            F.to_json(F.struct("*")).alias("payload"),
            F.col(EVENT_TIME).alias("event_ts"),
            F.current_timestamp().alias("ingest_ts"),
            F.lit("NEW").alias("status"),
        )
    )'''
    gold_fn = ""
    if spec.gold_table and spec.window is not None and spec.lateness is not None:
        gold_fn = '''@dp.table(name=GOLD_TABLE, comment="Events per event-time window, final once the watermark passes.")
@dp.expect("window_has_events", "events > 0")
def gold() -> DataFrame:
    """Gold: a windowed aggregate bounded by the watermark (append mode emits each window once)."""
    return (
        _spark()
        .readStream.table(SILVER_TABLE)
        .withWatermark(EVENT_TIME, ALLOWED_LATENESS)
        .groupBy(F.window(EVENT_TIME, WINDOW_DURATION))
        .agg(F.count(F.lit(1)).alias("events"))
        .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), "events")
    )'''
    extra_imports = ("from typing import Any",) if spec.source_kind == "kafka" else ()
    doc = [*spec.notes, "Add this file to a Lakeflow Declarative Pipeline (the bundle beside it does); the module "
           "only declares datasets, so it is evaluated by the pipeline, not run directly.",
           "Streaming tables are exactly-once: the pipeline keeps each flow's checkpoint and commits every micro-batch "
           "to Delta idempotently."]
    parts = [header(spec.summary, spec.command, doc, imports=PIPELINE_IMPORTS, extra_imports=extra_imports),
             constants(rows)]
    if deployed is not None:  # the bundle target moves every dataset this pipeline writes
        written = [name for name, _, _ in rows if name in ("BRONZE_TABLE", "SILVER_TABLE", "QUARANTINE_TABLE",
                                                           "GOLD_TABLE")]
        parts.append(pipeline_target_block(deployed, written))
    parts += [rule_block, spark_helper]
    if spec.source_kind == "kafka" and spec.bronze_table:
        parts.append(DBUTILS_HELPER)
    parts += [_bronze_function(spec), checked_fn, silver_fn, quarantine_fn, gold_fn]
    return join(*parts)


def pipeline_bundle(name: str, library: str, targets: Targets, continuous: bool, recipients: list[str],
                    refresh_every: Duration, compute: str = SERVERLESS) -> str:
    """A ``databricks.yml`` deploying the pipeline; a triggered pipeline also gets a job that schedules its updates."""
    key = slug(name)
    resources: dict[str, dict] = {"pipelines": {key: pipeline_resource(name, library, continuous, recipients, compute)}}
    header_lines = [
        "Databricks Asset Bundle for the pipeline: `databricks bundle validate -t prod`, then `deploy -t prod`.",
        *target_header(targets),
        "Failures of an update or of any flow are e-mailed; development mode marks the dev copy development: true.",
    ]
    if not continuous:
        resources["jobs"] = {f"{key}_refresh": job_resource(JobSpec(
            name=f"{name}-refresh", task_key="refresh", trigger="scheduled", schedule_every=refresh_every,
            run_duration_warning=refresh_every.scaled(2), notify=", ".join(f"email:{r}" for r in recipients), max_retries=2,
            pipeline_key=key))}
        header_lines.append(f"Triggered pipeline: the {key}_refresh job starts an update every {refresh_every.spark} "
                            "(each update processes what arrived, then stops).")
    variables = bundle_variables("streaming-jobs-policy", compute=compute)
    return dump_yaml(bundle(name, resources, variables, targets), header_lines)


# -- DLT streaming pipeline -------------------------------------------------------------

DLT_DEFAULTS = {
    "source": "/Volumes/main/landing/events/",
    "event_time_column": "event_time",
    "allowed_lateness": "10 minutes",
    "target_table": "main.gold.events_agg",
    "pipeline_mode": "triggered",
    "source_format": "json",
    "bronze_table": "main.bronze.events",
    "table": "main.silver.events",
    "quarantine_table": "main.quarantine.events_quarantine",
    "window_duration": "5 minutes",
    "notification_email": "streaming-oncall@example.com",
    "kafka_bootstrap_servers": "broker1:9093,broker2:9093",
    "kafka_jaas": "streaming/kafka-jaas",
    "streaming-pipeline-spec-tmpl:name": "orders_events_stream",
    "expectations-streaming-tmpl:name": "valid_event_time",
    "expr": "event_time IS NOT NULL AND event_time <= current_timestamp()",
    "action": "DROP",
}


def _source_kind(fmt: str) -> str:
    return "kafka" if fmt == "kafka" else "delta" if fmt in ("delta", "delta table") else "autoloader"


def dlt_spec(a: Inputs) -> PipelineSpec:
    """The pipeline the ``dlt-streaming-pipeline`` answers describe."""
    fmt = a.choice("source_format")
    kind = _source_kind(fmt)
    event_time = a.text("event_time_column")
    base = [Rule("has_event_time", f"{sql_ident(event_time)} IS NOT NULL", "DROP")]
    if kind == "autoloader":
        base.append(Rule("no_rescued_data", "_rescued_data IS NULL", "DROP"))
    action = a.text("action").upper() if a.text("action").upper() in ("WARN", "DROP", "FAIL") else "DROP"
    user = [Rule(rule_name(a.text("expectations-streaming-tmpl:name")), a.text("expr"), action)]
    return PipelineSpec(
        command="dlt-streaming", summary="Lakeflow Declarative Pipeline: Bronze → Silver (+ quarantine) → Gold.",
        source_kind=kind, source=a.text("source"), file_format=fmt if kind == "autoloader" else "json",
        bronze_table=a.text("bronze_table"), silver_table=a.text("table"), quarantine_table=a.text("quarantine_table"),
        gold_table=a.text("target_table"), event_time=event_time, lateness=a.duration("allowed_lateness"),
        window=a.duration("window_duration"), rules=merge_rules(base, user),
        kafka_servers=a.text("kafka_bootstrap_servers"), kafka_secret=a.secret("kafka_jaas"),
        notes=[f"Source {a.text('source')} ({fmt}) → {a.text('bronze_table')} → {a.text('table')} "
               f"(rejects: {a.text('quarantine_table')}) → {a.text('target_table')}; "
               f"watermark {a.duration('allowed_lateness').spark} on {event_time}."],
    )


def refresh_interval(spec: PipelineSpec) -> Duration:
    """How often a triggered pipeline updates: once per Gold window (a window is final only after it ends)."""
    return spec.window or Duration(15, "minutes")


def dlt_reconciliation_sql(spec: PipelineSpec) -> str:
    """Counts that must add up after every update, full refresh or backfill."""
    bronze = table_name(spec.bronze_table or spec.source)
    silver, quarantine = table_name(spec.silver_table), table_name(spec.quarantine_table)
    ts = sql_ident(spec.event_time)
    lateness = spec.lateness.sql_interval if spec.lateness else "INTERVAL 1 HOURS"
    freshness = ""
    if spec.gold_table and spec.window is not None and spec.lateness is not None:
        # A Gold window is final one window plus the watermark delay after its start: that is its latency floor.
        floor = Duration.of_seconds(spec.window.seconds + spec.lateness.seconds)
        freshness = f"""
-- Freshness of Gold: minutes since the newest closed window. By design a window lands about
-- {floor.spark} after it starts (window + watermark); alert when the staleness exceeds twice that.
SELECT (unix_timestamp(current_timestamp()) - unix_timestamp(max(window_end))) / 60.0 AS staleness_minutes,
       (unix_timestamp(current_timestamp()) - unix_timestamp(max(window_end))) / 60.0 > {2 * floor.minutes:g}
         AS above_threshold
FROM {table_name(spec.gold_table)};
"""
    return f"""-- Reconciliation for the pipeline: every Bronze row is in Silver or in quarantine.
-- Only closed hours are compared (older than the watermark delay), so late rows do not cause false alarms.
WITH bronze AS (
  SELECT date_trunc('HOUR', {ts}) AS hour, count(*) AS bronze_rows
  FROM {bronze}
  WHERE {ts} < current_timestamp() - {lateness}
  GROUP BY 1
),
silver AS (
  SELECT date_trunc('HOUR', {ts}) AS hour, count(*) AS silver_rows
  FROM {silver}
  WHERE {ts} < current_timestamp() - {lateness}
  GROUP BY 1
),
quarantined AS (
  SELECT date_trunc('HOUR', event_ts) AS hour, count(*) AS quarantined_rows
  FROM {quarantine}
  WHERE event_ts < current_timestamp() - {lateness}
  GROUP BY 1
)
SELECT b.hour, b.bronze_rows, coalesce(s.silver_rows, 0) AS silver_rows,
       coalesce(q.quarantined_rows, 0) AS quarantined_rows,
       b.bronze_rows - coalesce(s.silver_rows, 0) - coalesce(q.quarantined_rows, 0) AS unaccounted_rows
FROM bronze b
LEFT JOIN silver s ON s.hour = b.hour
LEFT JOIN quarantined q ON q.hour = b.hour
ORDER BY b.hour DESC;

-- Rows with a NULL event time land in quarantine with event_ts NULL: count them separately.
SELECT count(*) AS quarantined_without_event_time FROM {quarantine} WHERE event_ts IS NULL;

-- Quarantine by category and rule over the last day (audit, and the cost of what is kept).
SELECT dlq_reason, explode(failed_rules) AS rule, count(*) AS rows
FROM {quarantine}
WHERE ingest_ts >= current_timestamp() - INTERVAL 1 DAYS
GROUP BY ALL
ORDER BY rows DESC;
{freshness}"""


def dlt_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                 workspace: object = None) -> list[Artifact]:
    """Artefacts of ``dlt-streaming-pipeline``."""
    a = Inputs(answers, DLT_DEFAULTS)
    spec = dlt_spec(a)
    folder = artifact_dir(doc_location)
    name = a.text("streaming-pipeline-spec-tmpl:name")
    recipients = emails(a.text("notification_email")) or [a.text("notification_email")]
    targets = Targets.for_output(spec.silver_table)  # the pipeline keeps its own checkpoints
    return [
        Artifact(str(folder / "dlt_pipeline.py"), declarative_module(spec, targets.prod), "python",
                 "The pipeline (pyspark.pipelines): Bronze streaming table, rules in warn mode on a view, Silver and "
                 "quarantine split on the rules, Gold windowed aggregate with a watermark."),
        Artifact(str(folder / "databricks.yml"),
                 pipeline_bundle(name, "dlt_pipeline.py", targets, a.choice("pipeline_mode") == "continuous",
                                 recipients, refresh_interval(spec), compute_kind(answers, SERVERLESS)),
                 "yaml", "Asset Bundle deploying the pipeline with failure notifications (and, when triggered, the "
                 "job that schedules its updates); dev and prod targets with their own catalog."),
        Artifact(str(folder / "reconciliation.sql"), dlt_reconciliation_sql(spec), "sql",
                 "Reconciliation after updates and replays: Bronze = Silver + quarantine per closed hour."),
    ]


def dlt_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``dlt-streaming-pipeline``."""
    a = Inputs(answers, DLT_DEFAULTS)
    spec = dlt_spec(a)
    first = (f"Streaming tables `{spec.bronze_table}` → `{spec.silver_table}` → `{spec.gold_table}`, event time "
             f"`{spec.event_time}`; the Gold aggregate uses `withWatermark({spec.event_time!r}, "
             f"{spec.lateness.spark!r})` over {spec.window.spark} windows, so a window is final "
             f"{spec.lateness.spark} after its end. Mode: {a.text('pipeline_mode')}"
             + ("." if a.choice("pipeline_mode") == "continuous" else
                f"; the bundle's refresh job starts an update every {refresh_interval(spec).spark}."))
    actions = ", ".join(f"`{r.name}` ({r.action})" for r in spec.rules)
    second = (f"Expectations {actions}: DROP rules send rows to `{spec.quarantine_table}` with the failed rule "
              "names, WARN rules only count, FAIL rules stop the flow. Bronze carries "
              "`pipelines.reset.allowed=false`, so a full refresh cannot wipe what the source may not replay; replay "
              "a range with a targeted backfill and check `reconciliation.sql` afterwards.")
    return [first, second]


# -- Streaming DQ expectations --------------------------------------------------------

DQ_DEFAULTS = {
    "freshness_threshold": "15 minutes",
    "max_drop_rate": "1",
    "alert_channels": "slack:#streaming-alerts, pagerduty:streaming-oncall",
    "quarantine_table": "main.quarantine.events",
    "source_table": "main.bronze.events",
    "target_table": "main.silver.events",
    "id_column": "event_id",
    "event_time_column": "event_time",
    "dedup_window": "1 hour",
    "name": "valid_event_time",
    "expr": "event_time IS NOT NULL AND event_time <= current_timestamp()",
    "action": "DROP",
}


def dq_rules(a: Inputs) -> list[Rule]:
    """The DQ dimensions as expectations: completeness, timeliness, freshness-safe range, the user's rule."""
    key, ts = sql_ident(a.text("id_column")), sql_ident(a.text("event_time_column"))
    freshness = a.duration("freshness_threshold")
    base = [
        Rule("complete_id", f"{key} IS NOT NULL", "DROP"),
        Rule("complete_event_time", f"{ts} IS NOT NULL", "DROP"),
        Rule("event_time_not_in_future", f"{ts} <= current_timestamp() + INTERVAL 5 MINUTES", "DROP"),
        Rule("timely", f"{ts} >= current_timestamp() - {freshness.sql_interval}", "WARN"),
    ]
    action = a.text("action").upper() if a.text("action").upper() in ("WARN", "DROP", "FAIL") else "DROP"
    return merge_rules(base, [Rule(rule_name(a.text("name")), a.text("expr"), action)])


def dq_spec(a: Inputs) -> PipelineSpec:
    """The checks pipeline the ``streaming-dq-expectations`` answers describe."""
    return PipelineSpec(
        command="streaming-dq", summary="Streaming data-quality expectations with a quarantine table.",
        source_kind="delta", source=a.text("source_table"), silver_table=a.text("target_table"),
        quarantine_table=a.text("quarantine_table"), event_time=a.text("event_time_column"), rules=dq_rules(a),
        lateness=a.duration("dedup_window"), dedup_key=a.text("id_column"),
        notes=[f"Reads {a.text('source_table')}, publishes {a.text('target_table')}, quarantines to "
               f"{a.text('quarantine_table')}; uniqueness on {a.text('id_column')} within "
               f"{a.duration('dedup_window').spark}."],
    )


def circuit_breaker_sql(a: Inputs, checked_datasets: list[str]) -> str:
    """Event-log queries behind the DQ alerts: drop rate per window and freshness of the target."""
    rate = a.percent("max_drop_rate")
    target = table_name(a.text("target_table"))
    ts = sql_ident(a.text("event_time_column"))
    freshness = a.duration("freshness_threshold")
    datasets = ", ".join(sql_str(d) for d in checked_datasets)
    return f"""-- Streaming DQ alerts. Use each query as a Databricks SQL alert; route per dq_alert_routing.yaml.
-- Expectation results are in the pipeline event log (event_type = 'flow_progress', JSON column details);
-- check the field paths against the pipeline event log schema page for your release.
-- Replace <pipeline-id> with the pipeline's id (or query the published event log table).

-- 1. Circuit breaker: share of rows failing the quarantine rules over the last hour.
--    Alert when failed_pct > {rate:g} (max_drop_rate = {format_percent(rate)}).
WITH expectations AS (
  SELECT timestamp,
         explode(from_json(details:flow_progress.data_quality.expectations,
                           'array<struct<name:string,dataset:string,passed_records:bigint,failed_records:bigint>>')) AS e
  FROM event_log('<pipeline-id>')
  WHERE event_type = 'flow_progress'
    AND timestamp >= current_timestamp() - INTERVAL 1 HOURS
)
SELECT e.dataset,
       e.name AS expectation,
       sum(e.failed_records) AS failed_records,
       sum(e.passed_records) AS passed_records,
       100.0 * sum(e.failed_records) / nullif(sum(e.failed_records) + sum(e.passed_records), 0) AS failed_pct,
       100.0 * sum(e.failed_records) / nullif(sum(e.failed_records) + sum(e.passed_records), 0) > {rate:g}
         AS breaker_tripped
FROM expectations
WHERE e.dataset IN ({datasets})
GROUP BY e.dataset, e.name
ORDER BY failed_pct DESC;

-- 2. Freshness: minutes since the newest event in the target. Alert when staleness_minutes > {freshness.minutes:g}.
SELECT (unix_timestamp(current_timestamp()) - unix_timestamp(max({ts}))) / 60.0 AS staleness_minutes
FROM {target};

-- 3. Uniqueness evidence: duplicate keys that reached the target (should be 0).
SELECT count(*) - count(DISTINCT {sql_ident(a.text('id_column'))}) AS duplicate_rows
FROM {target}
WHERE {ts} >= current_timestamp() - INTERVAL 1 DAYS;
"""


def dq_routing_yaml(a: Inputs, rules: list[Rule]) -> str:
    """Rule → severity → circuit-breaker action → alert route."""
    channels_text = a.text("alert_channels")
    severity = {"FAIL": "critical", "DROP": "major", "WARN": "minor"}
    breaker = {"FAIL": "expect_or_fail: stop the flow's update",
               "DROP": "quarantine the row (expect_or_drop guard on Silver)",
               "WARN": "keep the row, count the violation"}
    data = {
        "version": 1,
        "dataset": table_name(a.text("target_table")),
        "quarantine_table": table_name(a.text("quarantine_table")),
        "alert_channels": [c.strip() for c in channels_text.split(",") if c.strip()],
        "circuit_breaker": {
            "metric": "failed_pct of the quarantine rules over 1 hour (dq_alerts.sql query 1)",
            "threshold_pct": a.percent("max_drop_rate"),
            "action": "page the on-call, pause downstream publication, open a DQ incident",
        },
        "freshness": {"threshold": a.duration("freshness_threshold").spark, "query": "dq_alerts.sql query 2"},
        "rules": [{"name": r.name, "condition": r.condition, "action": r.action, "severity": severity[r.action],
                   "circuit_breaker": breaker[r.action],
                   "route": [c.strip() for c in channels_text.split(",") if c.strip()][:1 if r.action == "WARN" else None]}
                  for r in rules],
        "evidence": "expectation metrics from the pipeline event log (flow_progress.data_quality), kept with the "
                    "event log retention; quarantine rows keep the raw payload and failed rule names",
    }
    return dump_yaml(data, ["Streaming DQ: each rule's severity, circuit-breaker action and alert route."])


def dq_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                workspace: object = None) -> list[Artifact]:
    """Artefacts of ``streaming-dq-expectations``."""
    a = Inputs(answers, DQ_DEFAULTS)
    spec = dq_spec(a)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "dq_expectations_pipeline.py"), declarative_module(spec), "python",
                 "Expectations for completeness, timeliness, range and uniqueness; failing rows quarantined with "
                 "their failed rules."),
        Artifact(str(folder / "dq_alerts.sql"),
                 circuit_breaker_sql(a, [table_name(spec.silver_table), slug(short_name(spec.silver_table)) + "_checked"]),
                 "sql", "Circuit breaker (drop rate from the event log), freshness and uniqueness alert queries."),
        Artifact(str(folder / "dq_alert_routing.yaml"), dq_routing_yaml(a, spec.rules), "yaml",
                 "Rule → severity → circuit breaker → alert route."),
    ]


def dq_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``streaming-dq-expectations``."""
    a = Inputs(answers, DQ_DEFAULTS)
    rules = dq_rules(a)
    listed = "; ".join(f"`{r.name}` → {r.action}" for r in rules)
    first = (f"Rules: {listed}. The circuit breaker trips when more than {format_percent(a.percent('max_drop_rate'))} "
             f"of rows fail over an hour; alerts go to {a.text('alert_channels')}.")
    second = (f"Rejected rows go to `{a.text('quarantine_table')}` with their failed rule names and raw payload "
              f"(replay them after a fix); freshness alerts fire after {a.duration('freshness_threshold').spark}; "
              "evidence is the expectation metrics in the pipeline event log.")
    return [first, second]


register("dlt-streaming-pipeline", dlt_generate, notes=dlt_notes)
register("streaming-dq-expectations", dq_generate, notes=dq_notes)
