"""Declarative pipelines: the DLT (Lakeflow) medallion pipeline and streaming DQ expectations.

Both tasks produce a Python pipeline (``from pyspark import pipelines as dp``)
with expectations and a quarantine table built the way the pack's
data-quality article describes (rules in warn mode on a temporary view, an
``is_quarantined`` flag wrapped in ``coalesce(..., true)``, two tables split on
it), plus the bundle that deploys it and the SQL that watches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tools.artifacts.base import (
    Artifact,
    Duration,
    Inputs,
    artifact_dir,
    config_path,
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
from tools.artifacts.dlq import DEAD_LETTERS_FN, dlq_schema
from tools.artifacts.skeleton import DBUTILS_HELPER, constants, header, join
from tools.artifacts.sources import PAYLOAD_SCHEMA_DEFAULT, login_module, sasl_mechanism, schema_columns
from tools.design import current, own_table, record_table

FILE_FORMATS = ("json", "csv", "parquet", "avro")
PIPELINE_IMPORTS = """from pyspark import pipelines as dp
from pyspark.sql import Column, DataFrame, SparkSession
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
    kafka_user_secret: tuple[str, str] = ("", "")
    kafka_password_secret: tuple[str, str] = ("", "")
    sasl_mechanism: str = "PLAIN"
    payload_schema: str = PAYLOAD_SCHEMA_DEFAULT
    measure: str | None = None  # numeric payload column the Gold aggregate sums
    id_column: str | None = None  # the event id (the dead letters' record key)
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
    username = dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)
    password = dbutils.secrets.get(scope=PASSWORD_SECRET_SCOPE, key=PASSWORD_SECRET_KEY_NAME)
    jaas_config = f"{LOGIN_MODULE} required username={json.dumps(username)} password={json.dumps(password)};"
    value = F.col("value").cast("string")
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP_SERVERS)
        .option("subscribe", SOURCE)
        .option("kafka.security.protocol", "SASL_SSL")
        .option("kafka.sasl.mechanism", SASL_MECHANISM)
        .option("kafka.sasl.jaas.config", jaas_config)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 100000)
        .load()
        .select(
            value.alias("value"),
            F.from_json(value, PAYLOAD_SCHEMA).alias("payload"),
            "topic",
            "partition",
            "offset",
        )
        .select("*", "payload.*")
        .drop("payload")
        .withColumn("_ingest_ts", F.current_timestamp())
    )'''
    elif spec.source_kind == "delta":
        expectation = '@dp.expect("has_event_time", f"{EVENT_TIME} IS NOT NULL")'
        body = '''    return _spark().readStream.table(SOURCE).withColumn("_ingest_ts", F.current_timestamp())'''
    else:
        expectation = '@dp.expect("rescued_data_empty", "_rescued_data IS NULL")'
        body = '''    spark = _spark()
    df = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", SOURCE_FORMAT)
        .option("cloudFiles.inferColumnTypes", "true")
        # JSON inference reads ISO timestamps as STRING: the hints type the event time (withWatermark needs it).
        .option("cloudFiles.schemaHints", PAYLOAD_SCHEMA)
        .option("cloudFiles.maxFilesPerTrigger", 1000)
        .load(SOURCE)
    )
    # A declared column no file has carried yet is added as a typed NULL, so Silver and Gold can always read it.
    for field in spark.createDataFrame([], PAYLOAD_SCHEMA).schema.fields:
        if field.name not in df.columns:
            df = df.withColumn(field.name, F.lit(None).cast(field.dataType))
    return df.withColumn("_source_file", F.col("_metadata.file_path")).withColumn("_ingest_ts", F.current_timestamp())'''
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
    if spec.source_kind in ("kafka", "autoloader") and spec.bronze_table:
        rows.append(("PAYLOAD_SCHEMA", py(spec.payload_schema),
                     "event schema (DDL): parses the Kafka value" if spec.source_kind == "kafka"
                     else "schema hints: the event time typed as TIMESTAMP"))
    if spec.source_kind == "kafka":
        rows += [("BOOTSTRAP_SERVERS", py(spec.kafka_servers), "kafka.bootstrap.servers"),
                 ("SECRET_SCOPE", py(spec.kafka_user_secret[0]), "secret scope holding the SASL username ..."),
                 ("SECRET_KEY_NAME", py(spec.kafka_user_secret[1]), "... under this key"),
                 ("PASSWORD_SECRET_SCOPE", py(spec.kafka_password_secret[0]), "secret scope holding the password ..."),
                 ("PASSWORD_SECRET_KEY_NAME", py(spec.kafka_password_secret[1]), "... under this key"),
                 ("SASL_MECHANISM", py(spec.sasl_mechanism), "kafka.sasl.mechanism: what the brokers accept"),
                 ("LOGIN_MODULE", py(login_module(spec.sasl_mechanism)), "its shaded JAAS login module (Databricks "
                  "Runtime)")]
    rows.append(("EVENT_TIME", py(spec.event_time), "event-time column"))
    if spec.lateness is not None:
        rows.append(("ALLOWED_LATENESS", py(spec.lateness.spark), "watermark delay of the stateful steps"))
    if spec.window is not None:
        rows.append(("WINDOW_DURATION", py(spec.window.spark), "tumbling window of the Gold aggregate"))
    if spec.dedup_key:
        rows.append(("DEDUP_KEY", py(spec.dedup_key), "duplicates of this key within the watermark are dropped"))
    elif spec.id_column:
        rows.append(("ID_COLUMN", py(spec.id_column), "the event id: the dead letters' record key"))
    if spec.bronze_table:
        rows.append(("BRONZE_TABLE", py(spec.bronze_table), "Bronze streaming table"))
    rows += [("CHECKED_VIEW", py(checked), "temporary view: every rule evaluated, nothing dropped"),
             ("SILVER_TABLE", py(spec.silver_table), "rows that pass the quarantine rules"),
             ("QUARANTINE_TABLE", py(spec.quarantine_table), "rows that fail them, with the failed rule names")]
    if spec.gold_table:
        rows.append(("GOLD_TABLE", py(spec.gold_table), "published aggregate"))
    if spec.gold_table and spec.measure:
        rows.append(("MEASURE", py(spec.measure), "numeric column the Gold aggregate sums"))
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
    raw = 'F.col("value")' if spec.source_kind == "kafka" and spec.bronze_table else \
        'F.to_json(F.struct(*[c for c in rows.columns if c not in ("is_quarantined", "failed_rules")]))'
    quarantine_fn = f'''@dp.table(
    name=QUARANTINE_TABLE,
    comment="Dead letters of the pipeline (the one DLQ shape, dlq_table.sql): failed rules, the raw record, status.",
)
@dp.expect("has_failed_rules", "size(failed_rules) > 0")
def quarantine() -> DataFrame:
    """Quarantine: the rejected rows with the raw record, so a corrected parser or rule can re-read them."""
    failed_rules = F.array_compact(
        F.array(*[F.when(F.expr(f"NOT coalesce({{rule}}, false)"), F.lit(name)) for name, rule in QUARANTINE_RULES.items()])
    )
    rows = _spark().readStream.table(CHECKED_VIEW).where("is_quarantined").withColumn("failed_rules", failed_rules)
    return dead_letters(
        rows,
        reason=F.lit("dq_failure"),
        payload={raw},
        source_ref=F.lit(SOURCE),
        record_key={"F.col(DEDUP_KEY)" if spec.dedup_key else "F.col(ID_COLUMN)" if spec.id_column else "F.lit(None)"},
        event_ts=F.col(EVENT_TIME),
        version=QUARANTINE_TABLE,
        failed_rules=F.col("failed_rules"),
    )'''
    gold_fn = ""
    if spec.gold_table and spec.window is not None and spec.lateness is not None:
        measures = ('F.count(F.lit(1)).alias("events"), F.sum(MEASURE).alias(f"total_{MEASURE}"), '
                    'F.max(EVENT_TIME).alias("last_event_time")') if spec.measure else \
            'F.count(F.lit(1)).alias("events"), F.max(EVENT_TIME).alias("last_event_time")'
        columns = '"events", f"total_{MEASURE}", "last_event_time"' if spec.measure else '"events", "last_event_time"'
        gold_fn = f'''@dp.table(name=GOLD_TABLE, comment="Events and totals per event-time window, final after the watermark.")
@dp.expect("window_has_events", "events > 0")
def gold() -> DataFrame:
    """Gold: a windowed aggregate bounded by the watermark (append mode emits each window once)."""
    return (
        _spark()
        .readStream.table(SILVER_TABLE)
        .withWatermark(EVENT_TIME, ALLOWED_LATENESS)
        .groupBy(F.window(EVENT_TIME, WINDOW_DURATION))
        .agg({measures})
        .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), {columns})
    )'''
    extra_imports = ("import json", "from typing import Any") if spec.source_kind == "kafka" else ()
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
    parts += [DEAD_LETTERS_FN, _bronze_function(spec), checked_fn, silver_fn, quarantine_fn, gold_fn]
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
    "kafka_username_secret": "streaming/kafka-username",
    "kafka_password_secret": "streaming/kafka-password",
    "sasl_mechanism": "PLAIN",
    "payload_schema": PAYLOAD_SCHEMA_DEFAULT,
    "measure_column": "amount",
    "streaming-pipeline-spec-tmpl:name": "orders_events_stream",
    "expectations-streaming-tmpl:name": "valid_event_time",
    "expr": "event_time IS NOT NULL AND event_time <= current_timestamp()",
    "action": "DROP",
}


def typed_payload(schema: str, event_time: str) -> str:
    """The payload schema with the event-time column typed as TIMESTAMP (added when missing)."""
    columns = schema_columns(schema)
    if event_time in columns:
        return schema
    return f"{schema}, {event_time} TIMESTAMP" if schema.strip() else f"{event_time} TIMESTAMP"


def _source_kind(fmt: str) -> str:
    return "kafka" if fmt == "kafka" else "delta" if fmt in ("delta", "delta table") else "autoloader"


def dlt_spec(a: Inputs, path: str = "dlt_pipeline.py") -> PipelineSpec:
    """The pipeline the ``dlt-streaming-pipeline`` answers describe (tables another command writes are not reused)."""
    a = Inputs({**a.answers, **{key: own_table(a.text(key), "dlt", path)
                                for key in ("bronze_table", "table", "quarantine_table", "target_table")}}, a.defaults)
    fmt = a.choice("source_format")
    kind = _source_kind(fmt)
    event_time = a.text("event_time_column")
    payload = typed_payload(a.text("payload_schema"), event_time)
    columns = schema_columns(payload)
    measure = a.text("measure_column")
    source = current().tables.get(a.text("source"))
    # A Delta source another command of the thread writes: its columns are known (the measure is summed when it
    # has it), and a Bronze table is not copied into a second Bronze table.
    known = dict(source.columns) if kind == "delta" and source is not None else {}
    bronze = None if kind == "delta" and source is not None and source.role == "bronze" else a.text("bronze_table")
    if bronze is None and source is not None:
        current().notices.append(f"`{source.name}` is already the thread's Bronze table (written by `{source.writer}`): "
                                 f"the pipeline reads it directly and declares no second Bronze "
                                 f"(`{a.text('bronze_table')}` is not created).")
    base = [Rule("has_event_time", f"{sql_ident(event_time)} IS NOT NULL", "DROP")]
    if kind == "autoloader":
        # A new producer column lands in _rescued_data: count it (WARN), never quarantine a complete row for it.
        base.append(Rule("no_rescued_data", "_rescued_data IS NULL", "WARN"))
    action = a.text("action").upper() if a.text("action").upper() in ("WARN", "DROP", "FAIL") else "DROP"
    user = [Rule(rule_name(a.text("expectations-streaming-tmpl:name")), a.text("expr"), action)]
    return PipelineSpec(
        command="dlt-streaming", summary="Lakeflow Declarative Pipeline: Bronze → Silver (+ quarantine) → Gold.",
        source_kind=kind, source=a.text("source"), file_format=fmt if kind == "autoloader" else "json",
        bronze_table=bronze, silver_table=a.text("table"), quarantine_table=a.text("quarantine_table"),
        gold_table=a.text("target_table"), event_time=event_time, lateness=a.duration("allowed_lateness"),
        window=a.duration("window_duration"), rules=merge_rules(base, user),
        kafka_servers=a.text("kafka_bootstrap_servers"), kafka_user_secret=a.secret("kafka_username_secret"),
        kafka_password_secret=a.secret("kafka_password_secret"), sasl_mechanism=sasl_mechanism(a), payload_schema=payload,
        measure=measure if (measure in known if kind == "delta" else measure in columns) else None,
        id_column=current().id_column or next((c for c in columns if c.endswith("_id") or c == "id"), None),
        notes=[f"Source {a.text('source')} ({fmt}) → {bronze or 'read directly (already Bronze)'} → {a.text('table')} "
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


def sum_type(sql_type: str) -> str:
    """The type Spark's ``sum`` returns for a column of ``sql_type`` (integers widen, decimals gain 10 digits)."""
    kind = sql_type.strip().upper()
    if kind in ("TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "LONG", "BYTE", "SHORT"):
        return "BIGINT"
    if match := re.match(r"^DECIMAL\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$", kind):
        return f"DECIMAL({min(38, int(match.group(1)) + 10)},{match.group(2)})"
    if kind in ("DECIMAL", "DEC", "NUMERIC"):
        return "DECIMAL(20,0)"
    return "DOUBLE"


def spec_columns(spec: PipelineSpec) -> dict[str, dict[str, str]]:
    """The columns each table of ``spec`` gets, as the generated pipeline code produces them."""
    payload = schema_columns(spec.payload_schema)
    if spec.source_kind == "kafka":
        bronze = {"value": "STRING", **payload, "topic": "STRING", "partition": "INT", "offset": "BIGINT"}
    elif spec.source_kind == "autoloader":
        bronze = {**payload, "_rescued_data": "STRING", "_source_file": "STRING"}
    else:
        bronze = current().columns_of(spec.source) or {spec.event_time: "TIMESTAMP"}
    bronze = {**bronze, "_ingest_ts": "TIMESTAMP"}
    out = {"bronze": bronze, "silver": dict(bronze), "quarantine": dlq_schema()}
    if spec.gold_table and spec.window is not None:
        gold = {"window_start": "TIMESTAMP", "window_end": "TIMESTAMP", "events": "BIGINT"}
        if spec.measure:
            gold[f"total_{spec.measure}"] = sum_type(bronze.get(spec.measure) or payload.get(spec.measure, "DOUBLE"))
        out["gold"] = {**gold, "last_event_time": "TIMESTAMP"}
    return out


def record_spec_tables(spec: PipelineSpec, path: str) -> None:
    """Record the pipeline's tables and their columns in the thread's design."""
    columns = spec_columns(spec)
    if spec.bronze_table:
        record_table(spec.bronze_table, "bronze", columns["bronze"], writer=path, event_time=spec.event_time,
                     id_column=spec.id_column)
    record_table(spec.silver_table, "silver", columns["silver"], writer=path, event_time=spec.event_time,
                 id_column=spec.dedup_key or spec.id_column)
    record_table(spec.quarantine_table, "quarantine", columns["quarantine"], writer=path, event_time="event_ts")
    if "gold" in columns and spec.gold_table:
        record_table(spec.gold_table, "gold", columns["gold"], writer=path, event_time="window_end")


def expectations_yaml(spec: PipelineSpec) -> str:
    """The expectations of the generated code as the pack's expectations config (every rule, none dropped)."""
    data = {"version": 1, "dataset": table_name(spec.silver_table),
            "streaming_expectations": [{"name": r.name, "expr": r.condition, "action": r.action} for r in spec.rules]}
    return dump_yaml(data, [f"Expectations of {spec.silver_table} (generated with *{spec.command}; "
                            "the same rules as the pipeline code)."])


def pipeline_spec_yaml(spec: PipelineSpec, name: str, continuous: bool) -> str:
    """The pipeline spec rendered from the code's values (the pack sample's checkpoint_location does not apply).

    A Lakeflow Declarative Pipeline keeps each flow's checkpoint itself: there is no location to set.
    """
    data = {"version": 1, "pipeline": {
        "name": name,
        "source": {"kind": spec.source_kind, "name": spec.source},
        "tables": {"bronze": spec.bronze_table or f"{spec.source} (read directly)", "silver": spec.silver_table,
                   "quarantine": spec.quarantine_table, "gold": spec.gold_table},
        "output_table": spec.silver_table,
        "mode": "continuous" if continuous else "triggered",
        "event_time": spec.event_time,
        "watermark": spec.lateness.spark if spec.lateness else None,
        "window": spec.window.spark if spec.window else None,
        "checkpoints": "managed by the pipeline, one per flow (no checkpoint location to set)",
    }}
    return dump_yaml(data, [f"Pipeline {name} (generated with *{spec.command}; the same values as dlt_pipeline.py)."])


def dlt_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                 workspace: object = None) -> list[Artifact]:
    """Artefacts of ``dlt-streaming-pipeline``."""
    a = Inputs(answers, DLT_DEFAULTS)
    folder = artifact_dir(doc_location)
    spec = dlt_spec(a, str(folder / "dlt_pipeline.py"))
    name = a.text("streaming-pipeline-spec-tmpl:name")
    recipients = emails(a.text("notification_email")) or [a.text("notification_email")]
    targets = Targets.for_output(spec.silver_table)  # the pipeline keeps its own checkpoints
    record_spec_tables(spec, str(folder / "dlt_pipeline.py"))
    return [
        Artifact(config_path(doc_location, "expectations-streaming-tmpl.yaml"), expectations_yaml(spec), "yaml",
                 "Every expectation of the pipeline (the same rules as the code), with its action."),
        Artifact(config_path(doc_location, "streaming-pipeline-spec-tmpl.yaml"),
                 pipeline_spec_yaml(spec, name, a.choice("pipeline_mode") == "continuous"), "yaml",
                 "The pipeline's sources, tables, mode and watermark (the same values as the code)."),
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
    first = (f"Streaming tables `{spec.bronze_table or spec.source}` → `{spec.silver_table}` → `{spec.gold_table}`, event time "
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
    user = Rule(rule_name(a.text("name")), a.text("expr"), action)
    if future_bound(user.condition, a.text("event_time_column")):
        # The user's own upper bound on the event time decides; a second, looser bound would only be cancelled by it.
        base = [r for r in base if r.name != "event_time_not_in_future"]
    return merge_rules(base, [user])


def future_bound(condition: str, event_time: str) -> bool:
    """Whether ``condition`` bounds the event time by the current time (``event_time <= current_timestamp()``)."""
    ts = re.escape(event_time.strip("`"))
    return bool(re.search(rf"`?{ts}`?\s*<=?\s*(current_timestamp|now)\s*\(", condition, re.I)
                or re.search(rf"(current_timestamp|now)\s*\(\)[^<>]*>=?\s*`?{ts}`?", condition, re.I))


def dq_spec(a: Inputs, path: str = "dq_expectations_pipeline.py") -> PipelineSpec:
    """The checks pipeline the ``streaming-dq-expectations`` answers describe."""
    target = own_table(a.text("target_table"), "validated", path)
    quarantine = own_table(a.text("quarantine_table"), "dq", path)
    return PipelineSpec(
        command="streaming-dq", summary="Streaming data-quality expectations with a quarantine table.",
        source_kind="delta", source=a.text("source_table"), silver_table=target,
        quarantine_table=quarantine, event_time=a.text("event_time_column"), rules=dq_rules(a),
        lateness=a.duration("dedup_window"), dedup_key=a.text("id_column"),
        notes=[f"Reads {a.text('source_table')}, publishes {target}, quarantines to "
               f"{quarantine}; uniqueness on {a.text('id_column')} within "
               f"{a.duration('dedup_window').spark}."],
    )


def circuit_breaker_sql(a: Inputs, checked_datasets: list[str], target: str) -> str:
    """Event-log queries behind the DQ alerts: drop rate per window and freshness of the target."""
    rate = a.percent("max_drop_rate")
    target = table_name(target)
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


def dq_routing_yaml(a: Inputs, rules: list[Rule], target: str, quarantine: str) -> str:
    """Rule → severity → circuit-breaker action → alert route."""
    channels_text = a.text("alert_channels")
    severity = {"FAIL": "critical", "DROP": "major", "WARN": "minor"}
    breaker = {"FAIL": "expect_or_fail: stop the flow's update",
               "DROP": "quarantine the row (expect_or_drop guard on Silver)",
               "WARN": "keep the row, count the violation"}
    data = {
        "version": 1,
        "dataset": table_name(target),
        "quarantine_table": table_name(quarantine),
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
    folder = artifact_dir(doc_location)
    path = str(folder / "dq_expectations_pipeline.py")
    spec = dq_spec(a, path)
    record_spec_tables(spec, path)
    return [
        Artifact(path, declarative_module(spec), "python",
                 "Expectations for completeness, timeliness, range and uniqueness; failing rows quarantined with "
                 "their failed rules."),
        Artifact(config_path(doc_location, "expectations-streaming-tmpl.yaml"), expectations_yaml(spec), "yaml",
                 "Every expectation of the checks pipeline (the same rules as the code), with its action."),
        Artifact(str(folder / "dq_alerts.sql"),
                 circuit_breaker_sql(a, [table_name(spec.silver_table), slug(short_name(spec.silver_table)) + "_checked"],
                                     spec.silver_table),
                 "sql", "Circuit breaker (drop rate from the event log), freshness and uniqueness alert queries."),
        Artifact(str(folder / "dq_alert_routing.yaml"),
                 dq_routing_yaml(a, spec.rules, spec.silver_table, spec.quarantine_table), "yaml",
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
