"""Stateful streaming: watermarks and lateness, deduplication and idempotent sinks, the state store.

The generated modules follow the edge convention. Facts used here come from
the pack's articles: ``withWatermark`` before the aggregation on the same
column, ``dropDuplicatesWithinWatermark`` for duplicates with different event
times, ``txnAppId``/``txnVersion`` or a key-based MERGE in ``foreachBatch``,
the RocksDB provider and changelog checkpointing, and the state reader.
"""

from __future__ import annotations

import re

from tools.artifacts.base import (
    Artifact,
    Duration,
    Inputs,
    artifact_dir,
    config_path,
    dump_yaml,
    format_percent,
    py,
    query_name,
    register,
    short_name,
    slug,
    sql_ident,
    table_name,
)
from tools.artifacts.skeleton import (
    CONVENTION_NOTE,
    DELTA_IMPORT,
    MERGE_IMPORTS,
    STREAM_IMPORTS,
    compute_note,
    constants,
    header,
    job_main,
    join,
    start_block,
    target_section,
)
from tools.design import current, own_table, record_table, unique_query_name

DATABRICKS_ROCKSDB = "com.databricks.sql.streaming.state.RocksDBStateStoreProvider"
HDFS_PROVIDER = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"

LISTENER_CLASS = '''class LateDataListener(StreamingQueryListener):
    """Counts rows dropped by the watermark and the watermark lag after every micro-batch."""

    def onQueryStarted(self, event: Any) -> None:
        """Nothing to record at start."""

    def onQueryProgress(self, event: Any) -> None:
        """Log the late-data metrics of the batch as one JSON line."""
        progress = json.loads(event.progress.json)
        dropped = sum(op.get("numRowsDroppedByWatermark", 0) for op in progress.get("stateOperators", []))
        LOG.info(json.dumps({
            "query": progress.get("name"),
            "batch_id": progress.get("batchId"),
            "rows_dropped_by_watermark": dropped,
            "watermark": progress.get("eventTime", {}).get("watermark"),
        }))

    def onQueryIdle(self, event: Any) -> None:
        """No data: nothing to record."""

    def onQueryTerminated(self, event: Any) -> None:
        """Log a failed query; the job's retry policy restarts it."""
        if event.exception:
            LOG.error("query %s terminated: %s", event.id, event.exception)'''


def merge_write_batch(target: str, keys: list[str], order_column: str | None, latest_wins: bool,
                      doc: str) -> str:
    """A foreachBatch function that de-duplicates the batch on ``keys`` and MERGEs it into ``target``.

    Args:
        target: the constant naming the target table (``TARGET_TABLE``).
        keys: Python expressions naming the key columns (constants or string literals).
        order_column: the constant naming the column that orders versions (latest first), if any.
        latest_wins: update a matched row when the incoming version is newer (else insert only).
        doc: the function's docstring.
    """
    order = f"F.col({order_column}).desc()" if order_column else "F.lit(1)"
    update = ""
    if latest_wins:
        guard = f'condition=f"s.{{{order_column}}} > t.{{{order_column}}}"' if order_column else ""
        update = f"\n        .whenMatchedUpdateAll({guard})"
    return f'''def write_batch(batch_df: DataFrame, batch_id: int) -> None:
    """{doc}"""
    {DELTA_IMPORT}

    keys = [{", ".join(keys)}]
    # One row per key inside the batch: MERGE fails when two source rows match one target row.
    latest = (
        batch_df.withColumn("_rn", F.row_number().over(Window.partitionBy(*keys).orderBy({order})))
        .filter("_rn = 1")
        .drop("_rn")
    )
    # The first batch creates the target (MERGE needs an existing table) with the batch's columns.
    DeltaTable.createIfNotExists(batch_df.sparkSession).tableName({target}).addColumns(latest.schema).execute()
    (
        DeltaTable.forName(batch_df.sparkSession, {target})
        .alias("t")
        .merge(latest.alias("s"), " AND ".join(f"t.{{key}} = s.{{key}}" for key in keys)){update}
        .whenNotMatchedInsertAll()
        .execute()
    )'''


# -- watermarks and lateness ------------------------------------------------------------

WATERMARK_DEFAULTS = {
    "observed_p99_lateness": "5 minutes",
    "window_type": "tumbling",
    "window_duration": "5 minutes",
    "output_mode": "append",
    "late_data_handling": "drop and count",
    "source_table": "main.silver.events",
    "target_table": "main.gold.events_windowed",
    "checkpoint": "/Volumes/main/streaming/checkpoints/events_windowed",
    "group_key": "device_id",
    "ts_col": "event_time",
    "delay": "10 minutes",
}


def watermark_delay(a: Inputs) -> Duration:
    """The delay the code uses: the configured one, widened to 2 × p99 lateness when the user chose to widen."""
    delay, p99 = a.duration("delay"), a.duration("observed_p99_lateness")
    if a.choice("late_data_handling").startswith("widen") and delay.seconds < 2 * p99.seconds:
        return p99.scaled(2)
    return delay


def watermark_mode(a: Inputs) -> str:
    """The output mode the code uses: complete is replaced by update (complete never evicts state)."""
    mode = a.choice("output_mode")
    return "update" if mode == "complete" else mode


def watermark_module(a: Inputs) -> str:
    """The windowed aggregation (or dedup) with its watermark and late-data metrics."""
    window_type = a.choice("window_type")
    window = a.duration("window_duration")
    mode = watermark_mode(a)
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "streaming source (Delta)"),
        ("EVENT_TIME", py(a.text("ts_col")), "event-time column (TIMESTAMP)"),
        ("WATERMARK_DELAY", py(watermark_delay(a).spark), "how late an event may be and still count"),
        ("WINDOW_DURATION", py(window.spark), f"{window_type} window"),
    ]
    if window_type == "sliding":
        rows.append(("SLIDE_DURATION", py(window.scaled(0.5).spark), "sliding step: half the window"))
    rows += [
        ("GROUP_KEY", py(a.text("group_key")), "aggregated per key and window"),
        ("OUTPUT_MODE", py(mode), "append emits a window once, after the watermark passes its end" if mode == "append"
         else "update re-emits a window whenever late events change it"),
        ("CHECKPOINT", py(a.text("checkpoint")), "this query's own checkpoint (holds the window state)"),
        ("TARGET_TABLE", py(a.text("target_table")), "windowed results"),
        ("QUERY_NAME", py(unique_query_name(query_name("gold", a.text("target_table")), "watermark_window.py")),
         "shown in the Spark UI and metrics"),
    ]
    if window_type == "session":
        grouping = "F.session_window(EVENT_TIME, WINDOW_DURATION), GROUP_KEY"
    elif window_type == "sliding":
        grouping = "F.window(EVENT_TIME, WINDOW_DURATION, SLIDE_DURATION), GROUP_KEY"
    else:
        grouping = "F.window(EVENT_TIME, WINDOW_DURATION), GROUP_KEY"
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Delta table, read as a stream."""
    return spark.readStream.table(SOURCE_TABLE)'''
    if window_type.startswith("none"):
        transform = '''def transform(df: DataFrame) -> DataFrame:
    """No window: drop duplicates of GROUP_KEY within the watermark (state is evicted after the delay)."""
    return df.withWatermark(EVENT_TIME, WATERMARK_DELAY).dropDuplicatesWithinWatermark([GROUP_KEY])'''
    else:
        window_column = "session_window" if window_type == "session" else "window"
        transform = f'''def transform(df: DataFrame) -> DataFrame:
    """Watermark first, on the column the window uses, so old window state is evicted."""
    return (
        df.withWatermark(EVENT_TIME, WATERMARK_DELAY)
        .groupBy({grouping})
        .agg(F.count(F.lit(1)).alias("events"), F.max(EVENT_TIME).alias("last_event_time"))
        .select(
            F.col("{window_column}.start").alias("window_start"),
            F.col("{window_column}.end").alias("window_end"),
            GROUP_KEY,
            "events",
            "last_event_time",
        )
    )'''
    merge = mode == "update" and not window_type.startswith("none")
    parts = []
    if merge:
        parts.append(merge_write_batch("TARGET_TABLE", ['"window_start"', '"window_end"', "GROUP_KEY"], None, True,
                                       "Upsert the windows updated in this batch; replaying a batch rewrites the "
                                       "same rows (idempotent)."))
        start = start_block("The sink edge: update mode into a MERGE, so a window's row is revised as late events "
                            "arrive.", [".foreachBatch(write_batch)", ".queryName(QUERY_NAME)", ".outputMode(OUTPUT_MODE)",
                                        '.option("checkpointLocation", checkpoint)'], ".start()", '"1 minute"')
    else:
        start = start_block("The sink edge: each window is appended once, when the watermark passes its end.",
                            ['.format("delta")', ".queryName(QUERY_NAME)", ".outputMode(OUTPUT_MODE)",
                             '.option("checkpointLocation", checkpoint)'], ".toTable(TARGET_TABLE)", '"1 minute"')
    body = '''    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spark.streams.addListener(LateDataListener())'''
    imports = STREAM_IMPORTS.replace("from pyspark.sql.streaming import StreamingQuery",
                                     "from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener")
    if merge:
        imports = imports.replace("from pyspark.sql import DataFrame, SparkSession",
                                  "from pyspark.sql import DataFrame, SparkSession, Window")
    doc = [f"{window_type} windows of {window.spark} on {a.text('ts_col')} with a {watermark_delay(a).spark} watermark; "
           f"late data: {a.text('late_data_handling')}.",
           f"Output latency: a window is final about {window.spark} + {watermark_delay(a).spark} after it starts; set "
           "the freshness SLO threshold above that.",
           "The watermark delay can change on this checkpoint; changing the window or the keys is a state migration "
           "(new checkpoint and a replay). State is evicted by the watermark.", CONVENTION_NOTE]
    logger = 'LOG = logging.getLogger("streaming.late_data")'
    prod, helpers = target_section(a.text("target_table"), a.text("checkpoint"))
    return join(header("Event-time windows with a watermark, and late-data metrics.", "watermark-lateness", doc,
                       imports=imports, extra_imports=("import argparse", "import json", "import logging",
                                                       "from typing import Any")),
                constants(rows), prod, logger, LISTENER_CLASS, read, transform, *parts, start, helpers,
                job_main("watermark_window.py", ["TARGET_TABLE"], ["CHECKPOINT"], body))


def late_reprocess_sql(a: Inputs) -> str:
    """Batch recompute of closed windows from the source, for rows that arrived after the watermark."""
    ts = sql_ident(a.text("ts_col"))
    key = sql_ident(a.text("group_key"))
    window = a.duration("window_duration")
    source, target = table_name(a.text("source_table")), table_name(a.text("target_table"))
    return f"""-- Late data beyond the watermark is kept in the source (Bronze/Silver) and folded in by batch.
-- Run daily for the closed days; MERGE makes a re-run idempotent.
MERGE INTO {target} AS t
USING (
  SELECT window({ts}, '{window.spark}').start AS window_start,
         window({ts}, '{window.spark}').end AS window_end,
         {key},
         count(*) AS events,
         max({ts}) AS last_event_time
  FROM {source}
  WHERE {ts} >= date_sub(current_date(), 1) AND {ts} < current_date()
  GROUP BY 1, 2, 3
) AS s
ON t.window_start = s.window_start AND t.window_end = s.window_end AND t.{key} = s.{key}
WHEN MATCHED AND s.events <> t.events THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
"""


def watermark_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                       workspace: object = None) -> list[Artifact]:
    """Artefacts of ``watermarks-and-lateness``."""
    a = Inputs(answers, WATERMARK_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "watermark_window.py")
    windowed = not a.choice("window_type").startswith("none")
    columns = ({"window_start": "TIMESTAMP", "window_end": "TIMESTAMP", a.text("group_key"): "STRING",
                "events": "BIGINT", "last_event_time": "TIMESTAMP"} if windowed
               else current().columns_of(a.text("source_table")))
    record_table(a.text("target_table"), "gold" if windowed else "silver", columns, writer=path,
                 event_time="window_end" if windowed else a.text("ts_col"))
    config = {"version": 1, "watermark": {"column": a.text("ts_col"), "delay_threshold": watermark_delay(a).spark,
                                          "window": a.duration("window_duration").spark if windowed else None,
                                          "output_mode": watermark_mode(a)}}
    out = [Artifact(config_path(doc_location, "watermark-config-tmpl.yaml"),
                    dump_yaml(config, ["The watermark the code uses (a widened delay is the one written here)."]),
                    "yaml", "Watermark column, delay, window and output mode — the values of watermark_window.py."),
           Artifact(path, watermark_module(a), "python",
                    "Windowed aggregation with withWatermark before groupBy, the chosen output mode, and a listener "
                    "logging numRowsDroppedByWatermark.")]
    if a.choice("late_data_handling").startswith("capture") and not a.choice("window_type").startswith("none"):
        out.append(Artifact(str(folder / "late_data_reprocess.sql"), late_reprocess_sql(a), "sql",
                            "Daily batch MERGE that folds events later than the watermark into closed windows."))
    return out


def watermark_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``watermarks-and-lateness``."""
    a = Inputs(answers, WATERMARK_DEFAULTS)
    delay, p99 = watermark_delay(a), a.duration("observed_p99_lateness")
    cover = ("covers" if delay.seconds >= p99.seconds else "is SHORTER than")
    first = (f"Observed p99 lateness {p99.spark}; the watermark delay {delay.spark} {cover} it"
             + ("" if delay.seconds >= p99.seconds else " — expect rows dropped by the watermark") +
             f". {a.text('window_type').capitalize()} windows of {a.duration('window_duration').spark} on "
             f"`{a.text('ts_col')}`, grouped by `{a.text('group_key')}`.")
    mode = a.choice("output_mode")
    output = (f"Output mode {mode}: each window is emitted once, {delay.spark} after it closes (latency traded for "
              "completeness)." if watermark_mode(a) == "append" else
              "Output mode update: windows are revised in place through a MERGE." +
              (" Complete mode was replaced by update: complete keeps every group in state forever (SE104)."
               if mode == "complete" else ""))
    second = (f"{output} Late data: {a.text('late_data_handling')}; `numRowsDroppedByWatermark` is logged per batch — "
              "a steady non-zero value or a stalled watermark is the anomaly to alert on.")
    return [first, second]


# -- dedup and idempotency ------------------------------------------------------------

DEDUP_DEFAULTS = {
    "delivery_guarantee": "exactly-once effect (at-least-once + idempotent sink)",
    "sink_write_mode": "MERGE in foreachBatch",
    "target_table": "main.silver.events",
    "expected_duplicate_rate": "1",
    "source_table": "main.bronze.events",
    "checkpoint": "/Volumes/main/streaming/checkpoints/events_dedup",
    "id_key": "event_id",
    "time_field": "event_time",
    "window_minutes": "60",
    "strategy": "latest version wins (MERGE on event_id when source.version > target.version)",
}


def first_wins(strategy: str) -> bool:
    """Whether the conflict rule keeps the first version (else the latest wins)."""
    return bool(re.search(r"\bfirst\b|先到|保留最早", strategy.lower()))


def dedup_module(a: Inputs, path: str = "dedup_idempotent_sink.py", table: str | None = None) -> str:
    """Deduplication and the chosen idempotent sink.

    ``dropDuplicatesWithinWatermark`` keeps the FIRST copy of a key, so it serves "first version wins". For
    "latest version wins" the stream keeps every version and the MERGE decides on the sequence column
    (TIME_FIELD): a newer version updates the row, an older or equal one changes nothing, so the order in
    which copies arrive — and any replay — cannot change the result.
    """
    mode = a.choice("sink_write_mode")
    table = table or a.text("target_table")
    latest = not first_wins(a.text("strategy"))
    if latest and not mode.startswith("merge"):
        mode = "merge in foreachbatch"  # latest-wins needs the MERGE: an append cannot replace an older version
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "streaming source (Delta)"),
        ("ID_KEY", py(a.text("id_key")), "business id: the dedup and merge key"),
        ("TIME_FIELD", py(a.text("time_field")), "event time / version that orders duplicates (sequence column)"),
        ("DEDUP_WINDOW", py(f"{a.int('window_minutes')} minutes"), "duplicates further apart than this are not caught"),
        ("CHECKPOINT", py(a.text("checkpoint")), "this query's own checkpoint (holds the dedup state)"),
        ("TARGET_TABLE", py(table), "deduplicated table"),
        ("QUERY_NAME", py(unique_query_name(query_name("silver", table) + "_dedup", path)),
         "shown in the Spark UI and metrics"),
    ]
    if "txn" in mode:
        rows.append(("TXN_APP_ID", py(f"{slug(short_name(table))}_dedup_v1"),
                     "stable per query; use a new one whenever the checkpoint is reset"))
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Delta table, read as a stream."""
    return spark.readStream.table(SOURCE_TABLE)'''
    if latest:
        transform = '''def transform(df: DataFrame) -> DataFrame:
    """Keep every version of a key (the MERGE keeps the newest); rows without a key or version cannot be ordered."""
    return df.where(F.col(ID_KEY).isNotNull() & F.col(TIME_FIELD).isNotNull())'''
    else:
        transform = '''def transform(df: DataFrame) -> DataFrame:
    """First version wins: drop later copies of ID_KEY within DEDUP_WINDOW (state evicted after it)."""
    return df.withWatermark(TIME_FIELD, DEDUP_WINDOW).dropDuplicatesWithinWatermark([ID_KEY])'''
    parts = []
    imports = STREAM_IMPORTS
    if mode.startswith("merge"):
        rule = ("the newer TIME_FIELD wins (an older or equal version changes nothing)" if latest
                else "the first version wins (later copies are ignored)")
        parts.append(merge_write_batch("TARGET_TABLE", ["ID_KEY"], "TIME_FIELD", latest,
                                       f"MERGE on ID_KEY, {rule}; replaying a batch changes nothing."))
        sink = ".foreachBatch(write_batch)"
        terminal = ".start()"
        imports = MERGE_IMPORTS
    elif "txn" in mode:
        parts.append('''def write_batch(batch_df: DataFrame, batch_id: int) -> None:
    """Append the batch; Delta skips a (TXN_APP_ID, batch_id) it has already committed (a retry, not a replay)."""
    (
        batch_df.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id)
        .saveAsTable(TARGET_TABLE)
    )''')
        sink = ".foreachBatch(write_batch)"
        terminal = ".start()"
    else:
        sink = '.format("delta")'
        terminal = ".toTable(TARGET_TABLE)"
    start = start_block("The sink edge, with this query's own checkpoint.",
                        [sink, ".queryName(QUERY_NAME)", '.option("checkpointLocation", checkpoint)'], terminal,
                        '"1 minute"')
    replay = ("Replays go through the same MERGE: re-reading a range changes nothing." if mode.startswith("merge") else
              "txnAppId/txnVersion only skip a retried micro-batch of THIS checkpoint: a replay on a new checkpoint "
              "(new batch ids) appends again. Replay a range with replaceWhere over that range, or switch to MERGE.")
    doc = [f"{a.text('source_table')} → {table}: {'latest' if latest else 'first'} version of {a.text('id_key')} "
           f"wins ({a.text('strategy')}), sink: {mode}.",
           "Bypass: rows without a key cannot be deduplicated; route them to the DLQ (*dlq-ops). " + replay,
           compute_note(), CONVENTION_NOTE]
    prod, helpers = target_section(table, a.text("checkpoint"))
    return join(header("Deduplication and an idempotent sink.", "idempotency-dedup", doc,
                       imports=imports, extra_imports=("import argparse",)), constants(rows), prod, read, transform,
                *parts, start, helpers, job_main("dedup_idempotent_sink.py", ["TARGET_TABLE"], ["CHECKPOINT"]))


def dedup_verification_sql(a: Inputs) -> str:
    """Queries that prove the sink is idempotent: duplicates, rate, and a replay check."""
    key, ts = sql_ident(a.text("id_key")), sql_ident(a.text("time_field"))
    target, source = table_name(a.text("target_table")), table_name(a.text("source_table"))
    rate = a.percent("expected_duplicate_rate")
    return f"""-- Idempotency verification for {target}. Run after deploys, restarts and replays.

-- 1. Keys present more than once in the target (must be empty).
SELECT {key}, count(*) AS copies
FROM {target}
GROUP BY {key}
HAVING count(*) > 1
ORDER BY copies DESC
LIMIT 100;

-- 2. count(*) vs count(DISTINCT key) over the last day (must be equal).
SELECT count(*) AS target_rows, count(DISTINCT {key}) AS distinct_keys
FROM {target}
WHERE {ts} >= current_timestamp() - INTERVAL 1 DAYS;

-- 3. Source duplicate rate over the last day; expected about {format_percent(rate)}.
--    A much higher rate means a producer or replay problem upstream.
SELECT 100.0 * (count(*) - count(DISTINCT {key})) / nullif(count(*), 0) AS duplicate_rate_pct,
       100.0 * (count(*) - count(DISTINCT {key})) / nullif(count(*), 0) > {rate * 3:g} AS above_expected
FROM {source}
WHERE {ts} >= current_timestamp() - INTERVAL 1 DAYS;

-- 4. Re-run check: after replaying a window (same rows again), query 1 must still be empty
--    and the target row count for that window unchanged.
"""


def dedup_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                   workspace: object = None) -> list[Artifact]:
    """Artefacts of ``dedup-and-idempotency``."""
    a = Inputs(answers, DEDUP_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "dedup_idempotent_sink.py")
    table = own_table(a.text("target_table"), "dedup", path)
    source = current().columns_of(a.text("source_table"))
    record_table(table, "silver", source, writer=path, event_time=a.text("time_field"), id_column=a.text("id_key"))
    return [
        Artifact(path, dedup_module(a, path, table), "python",
                 "Deduplication (first wins: dropDuplicatesWithinWatermark; latest wins: MERGE on the sequence "
                 f"column), then the idempotent sink ({a.text('sink_write_mode')})."),
        Artifact(str(folder / "dedup_verification.sql"), dedup_verification_sql(a), "sql",
                 "Verification queries: duplicate keys, count vs distinct, duplicate rate, re-run check."),
    ]


def dedup_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``dedup-and-idempotency``."""
    a = Inputs(answers, DEDUP_DEFAULTS)
    guarantee = a.text("delivery_guarantee")
    first = (f"Key `{a.text('id_key')}` + `{a.text('time_field')}`; guarantee: {guarantee}. Sink: "
             f"{a.text('sink_write_mode')} into `{a.text('target_table')}`"
             + (" — a retried micro-batch cannot write twice." if not a.choice("sink_write_mode").startswith("plain")
                else " — the Delta sink is exactly-once; duplicates older than the window are not caught.")
             + f" Expected duplicate rate {format_percent(a.percent('expected_duplicate_rate'))}.")
    rule = "first version wins" if first_wins(a.text("strategy")) else "latest version wins"
    how = ("dropDuplicatesWithinWatermark keeps the first copy within the window" if first_wins(a.text("strategy"))
           else "every version reaches a MERGE that updates only when the incoming sequence value is newer "
                f"(`{a.text('time_field')}`)")
    replay = ("Replays go through the same MERGE, so reprocessing a range is idempotent."
              if a.choice("sink_write_mode").startswith("merge") or not first_wins(a.text("strategy")) else
              "txnAppId/txnVersion protect retries of this checkpoint only: a replay on a new checkpoint appends "
              "again, so replay with replaceWhere over the range (or MERGE).")
    second = (f"Window {a.int('window_minutes')} minutes (set it above the largest gap between copies); conflicts: "
              f"{rule} ({a.text('strategy')}): {how}. {replay}")
    return [first, second]


# -- state store ----------------------------------------------------------------------

STATE_DEFAULTS = {
    "stateful_operators": "windowed aggregation, dropDuplicatesWithinWatermark",
    "state_store_provider": "RocksDB",
    "expected_state_keys": "10000000",
    "checkpoint_root": "/Volumes/main/streaming/checkpoints/events_agg",
    "source_table": "main.silver.events",
    "target_table": "main.gold.events_agg",
    "id_column": "event_id",
    "event_time_column": "event_time",
    "window_duration": "5 minutes",
    "shuffle_partitions": "200",
    "job_principal": "streaming-jobs-sp",
    "ttl_hours": "24",
    "allowed_lateness": "10 minutes",
    "compact_interval_min": "60",
    "steps": "stop query; back up checkpoint; deploy new code with a new checkpoint; replay from Bronze for the "
             "state horizon; verify counts",
}


def state_ops(a: Inputs) -> tuple[bool, bool]:
    """(dedup, aggregation) as named in the stateful-operators answer."""
    text = a.text("stateful_operators").lower()
    dedup = bool(re.search(r"dedup|duplicate|去重", text))
    agg = bool(re.search(r"agg|window|count|聚合|窗口", text)) or not dedup
    return dedup, agg


def state_module(a: Inputs) -> str:
    """The stateful query with its state store configured before the first start."""
    dedup, agg = state_ops(a)
    rocksdb = a.choice("state_store_provider").startswith("rocksdb")
    serverless = current().serverless
    delay, why = state_watermark(a)
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "streaming source (Delta)"),
        ("EVENT_TIME", py(a.text("event_time_column")), "event-time column"),
        ("ID_COLUMN", py(a.text("id_column")), "dedup key"),
        ("WATERMARK_DELAY", py(delay.spark), why),
        ("WINDOW_DURATION", py(a.duration("window_duration").spark), "aggregation window"),
        ("STATE_STORE_PROVIDER", py(DATABRICKS_ROCKSDB if rocksdb else HDFS_PROVIDER),
         "fixed when the checkpoint is created"),
        ("SHUFFLE_PARTITIONS", py(str(a.int("shuffle_partitions"))), "state partitions: fixed by the checkpoint"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint; state lives under it"),
        ("TARGET_TABLE", py(a.text("target_table")), "result table"),
        ("QUERY_NAME", py(unique_query_name(query_name("gold", a.text("target_table")) + "_stateful",
                                            "stateful_query.py")), "shown in the Spark UI and metrics"),
    ]
    steps = ["df.withWatermark(EVENT_TIME, WATERMARK_DELAY)"]
    if dedup:
        steps.append(".dropDuplicatesWithinWatermark([ID_COLUMN])")
    if agg:
        steps += [".groupBy(F.window(EVENT_TIME, WINDOW_DURATION))",
                  '.agg(F.count(F.lit(1)).alias("events"))',
                  '.select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), '
                  '"events")']
    chain = "\n        ".join(steps)
    configure = '''def configure(spark: SparkSession) -> None:
    """State store settings; they must be set before the query's first start (the checkpoint fixes them)."""
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", STATE_STORE_PROVIDER)
    spark.conf.set("spark.sql.shuffle.partitions", SHUFFLE_PARTITIONS)'''
    if rocksdb:
        configure += '''
    # Upload only changed state each batch; snapshots are written in the background.
    spark.conf.set("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")'''
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Delta table, read as a stream."""
    return spark.readStream.table(SOURCE_TABLE)'''
    transform = f'''def transform(df: DataFrame) -> DataFrame:
    """Stateful steps bounded by the watermark: state older than WATERMARK_DELAY is dropped."""
    return (
        {chain}
    )'''
    start = start_block("The sink edge: append mode, so each window is written once and its state released.",
                        ['.format("delta")', ".queryName(QUERY_NAME)", '.outputMode("append")',
                         '.option("checkpointLocation", checkpoint)'], ".toTable(TARGET_TABLE)", '"1 minute"')
    body = "    configure(spark)"
    if serverless:
        # Serverless manages the state store (RocksDB) and refuses these session settings.
        configure, body = "", ""
        rows = [r for r in rows if r[0] not in ("STATE_STORE_PROVIDER", "SHUFFLE_PARTITIONS")]
    doc = [f"Operators: {a.text('stateful_operators')}; provider "
           f"{'RocksDB (managed by serverless)' if serverless else 'RocksDB' if rocksdb else 'HDFS-backed'}; about "
           f"{a.int('expected_state_keys')} keys in state.",
           f"Watermark {delay.spark}: {why}; later events are dropped (numRowsDroppedByWatermark). "
           f"A window lands about window + {delay.spark} after it starts; keep the freshness SLO threshold above it.",
           compute_note(), CONVENTION_NOTE]
    prod, helpers = target_section(a.text("target_table"), a.text("checkpoint_root"))
    return join(header("Stateful query with its state store configured and bounded.", "state-store", doc,
                       extra_imports=("import argparse",)),
                constants(rows), prod, configure, read, transform, start, helpers,
                job_main("stateful_query.py", ["TARGET_TABLE"], ["CHECKPOINT"], body))


def state_watermark(a: Inputs) -> tuple[Duration, str]:
    """The watermark delay and why: the lateness when windows are aggregated, the TTL for dedup alone.

    One watermark serves every stateful operator of a query; a 24-hour TTL used as the watermark of
    5-minute windows would hold every window back 24 hours. So an aggregation uses the allowed lateness,
    and the dedup horizon then equals it (a longer horizon belongs in a MERGE on the key downstream).
    """
    dedup, agg = state_ops(a)
    if agg:
        why = "the allowed lateness of the windows" + (" (it is also the dedup horizon)" if dedup else "")
        return a.duration("allowed_lateness"), why
    return Duration(a.int("ttl_hours"), "hours"), "the state TTL: keys are remembered this long, then evicted"


def inspect_state_module(a: Inputs) -> str:
    """A support module: read the state of the query (state reader) and back up the checkpoint."""
    rows = [
        ("CHECKPOINT", py(a.text("checkpoint_root")), "the query's checkpoint"),
        ("BACKUP_ROOT", py(a.text("checkpoint_root").rstrip("/") + "_backups"), "copies taken before risky changes"),
        ("EXPECTED_STATE_KEYS", str(a.int("expected_state_keys")), "planned size of the state"),
    ]
    functions = '''def state_metadata(spark: SparkSession, checkpoint: str = CHECKPOINT) -> DataFrame:
    """Operators and their state stores, as the checkpoint records them."""
    return spark.read.format("state-metadata").load(checkpoint)


def state_rows(spark: SparkSession, operator_id: int = 0, checkpoint: str = CHECKPOINT) -> DataFrame:
    """The key/value rows of one stateful operator at the latest committed batch."""
    return spark.read.format("statestore").option("operatorId", operator_id).load(checkpoint)


def report(spark: SparkSession, checkpoint: str = CHECKPOINT) -> dict[str, Any]:
    """State size, partition skew and growth against the plan, for the maintenance log."""
    per_partition = state_rows(spark, checkpoint=checkpoint).groupBy("partition_id").count().collect()
    counts = [row["count"] for row in per_partition] or [0]
    total = sum(counts)
    mean = total / len(counts)
    return {
        "checkpoint": checkpoint,
        "operators": [row.asDict() for row in state_metadata(spark, checkpoint).collect()],
        "state_rows": total,
        "planned_rows": EXPECTED_STATE_KEYS,
        "over_plan": total > EXPECTED_STATE_KEYS,
        "partitions": len(counts),
        "skew": (max(counts) / mean) if mean else 0.0,
    }


def backup_checkpoint(spark: SparkSession, label: str, checkpoint: str = CHECKPOINT) -> str:
    """Copy the checkpoint (stop the query first) before a risky change; returns the copy's path."""
    from pyspark.dbutils import DBUtils  # only on Databricks Runtime

    target = f"{BACKUP_ROOT}/{label}"
    DBUtils(spark).fs.cp(checkpoint, target, recurse=True)
    return target'''
    main = '''def main() -> None:
    """Print the state report as one JSON line (schedule it; alert when over_plan or skew > 2)."""
    spark = SparkSession.builder.getOrCreate()
    print(json.dumps(report(spark), default=str))


if __name__ == "__main__":
    main()
'''
    doc = ["Reads state with the state data source (format statestore / state-metadata; Databricks Runtime 14.3 LTS "
           "and above). It never writes to the checkpoint.", "Support module: no stream, just main()."]
    return join(header("State store inspection and checkpoint backup.", "state-store", doc,
                       imports="from pyspark.sql import DataFrame, SparkSession",
                       extra_imports=("import json", "from typing import Any")),
                constants(rows), functions, main)


def protect_checkpoint_sql(a: Inputs) -> str:
    """Volume grants so only the job's principal can write (or delete) the checkpoint."""
    path = a.text("checkpoint_root")
    parts = path.strip("/").split("/")
    principal = a.text("job_principal").replace("`", "")
    if len(parts) >= 4 and parts[0] == "Volumes":
        volume = ".".join(sql_ident(part) for part in parts[1:4])
        return f"""-- Protect the checkpoint {path}: nobody but the job's principal may write or delete it.
-- Deleting or editing a checkpoint restarts the query from scratch (duplicates, lost state).
REVOKE WRITE VOLUME ON VOLUME {volume} FROM `account users`;
GRANT READ VOLUME ON VOLUME {volume} TO `account users`;
GRANT WRITE VOLUME ON VOLUME {volume} TO `{principal}`;
SHOW GRANTS ON VOLUME {volume};
"""
    return f"""-- Protect the checkpoint {path}: grant write access on the external location that holds it
-- to the job's principal `{principal}` only (checkpoints outside a Unity Catalog volume).
SHOW EXTERNAL LOCATIONS;
"""


def state_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                   workspace: object = None) -> list[Artifact]:
    """Artefacts of ``state-store-management``."""
    a = Inputs(answers, STATE_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "stateful_query.py")
    a = Inputs({**a.answers, "target_table": own_table(a.text("target_table"), "stateful", path)}, STATE_DEFAULTS)
    dedup, agg = state_ops(a)
    columns = ({"window_start": "TIMESTAMP", "window_end": "TIMESTAMP", "events": "BIGINT"} if agg
               else current().columns_of(a.text("source_table")))
    record_table(a.text("target_table"), "gold" if agg else "silver", columns, writer=path,
                 event_time="window_end" if agg else a.text("event_time_column"))
    return [
        Artifact(path, state_module(a), "python",
                 "The stateful query: provider, changelog checkpointing and shuffle partitions set before the first "
                 "start; watermark as the state TTL."),
        Artifact(str(folder / "inspect_state.py"), inspect_state_module(a), "python",
                 "State reader report (rows, partitions, skew vs plan) and a checkpoint backup helper."),
        Artifact(str(folder / "protect_checkpoint.sql"), protect_checkpoint_sql(a), "sql",
                 "Grants so only the job's principal can write the checkpoint."),
    ]


def state_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``state-store-management``."""
    a = Inputs(answers, STATE_DEFAULTS)
    keys = a.int("expected_state_keys")
    rocksdb = a.choice("state_store_provider").startswith("rocksdb")
    provider = ("RocksDB with changelog checkpointing" if rocksdb else
                "HDFS-backed (state in executor memory)" + (
                    f" — with {keys} keys expect GC pauses; RocksDB is advised" if keys >= 1_000_000 else ""))
    delay, why = state_watermark(a)
    first = (f"Watermark {delay.spark} on `{a.text('event_time_column')}` ({why}; built-in operators evict state by "
             f"watermark, so the {a.int('ttl_hours')} h TTL bounds only a dedup-only query); provider: "
             f"{provider}; maintenance report every {a.int('compact_interval_min')} min with `inspect_state.py`. "
             f"Checkpoint `{a.text('checkpoint_root')}` is writable only by `{a.text('job_principal')}` and backed "
             "up before risky changes.")
    steps = "; ".join(s.strip() for s in a.text("steps").split(";") if s.strip())
    second = (f"Allowed on this checkpoint: trigger and rate-limit changes. Changing operators, keys, the provider or "
              f"{a.int('shuffle_partitions')} shuffle partitions needs a new checkpoint and a replay — migration: "
              f"{steps}.")
    return [first, second]


register("watermarks-and-lateness", watermark_generate, notes=watermark_notes)
register("dedup-and-idempotency", dedup_generate, notes=dedup_notes)
register("state-store-management", state_generate, notes=state_notes)
