"""Recovery: the dead-letter queue and its reprocessing, replay and backfill, live schema evolution.

Facts come from the pack's data-quality, replay-recovery and schema-evolution
articles: DLQ columns (reason, raw payload, source reference, status), replay
from a new checkpoint with an explicit starting position into an idempotent
MERGE, ``RESTORE TABLE ... TO VERSION AS OF`` for rollback, additive changes
with ``ADD COLUMNS`` / ``mergeSchema``, type widening and column mapping.
"""

from __future__ import annotations

import datetime as dt
import re

import yaml

from tools.artifacts.base import (
    Artifact,
    Inputs,
    artifact_dir,
    format_percent,
    py,
    query_name,
    register,
    short_name,
    slug,
    sql_ident,
    sql_str,
    table_name,
)
from tools.artifacts.dlq import DEAD_LETTERS_FN, dlq_ddl, dlq_schema
from tools.artifacts.skeleton import (
    CONVENTION_NOTE,
    DELTA_IMPORT,
    MERGE_IMPORTS,
    compute_note,
    constants,
    header,
    job_main,
    join,
    main_block,
    start_block,
    target_section,
)
from tools.artifacts.stateful import merge_write_batch
from tools.design import current, note_source, own_table, record_table, unique_query_name

RESTORE_WARNING = ("RESTORE only with every stream that writes the table stopped (a live writer's commits after the "
                   "restored version are lost); streams reading the table see a change commit and fail unless they "
                   "use skipChangeCommits — restart them after checking.")


def dlq_policy(rendered: dict[str, str]) -> dict[str, int]:
    """Retries, backoff and audit retention from the rendered DLQ policy template (defaults if absent)."""
    policy = {"retries": 3, "backoff_seconds": 60, "retention_days": 30}
    text = rendered.get("dlq-policy-tmpl.yaml")
    if text:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            data = {}
        reprocess, audit = data.get("reprocess") or {}, data.get("audit") or {}
        for key, source in (("retries", reprocess), ("backoff_seconds", reprocess), ("retention_days", audit)):
            if isinstance(source.get(key), int):
                policy[key] = source[key]
    return policy


# -- DLQ and quarantine ops -----------------------------------------------------------

DLQ_DEFAULTS = {
    "dlq_table": "main.quarantine.events_dlq",
    "max_dlq_ratio": "0.5",
    "reprocess_mode": "manual approval",
    "dlq_owner": "streaming on-call",
    "source_table": "main.bronze.events",
    "target_table": "main.silver.events",
    "id_column": "event_id",
    "event_time_column": "event_time",
    "validation_rule": "event_id IS NOT NULL AND event_time IS NOT NULL",
    "checkpoint": "/Volumes/main/streaming/checkpoints/events_dlq_router",
}


def dlq_router_module(a: Inputs, path: str = "dlq_router.py", target: str | None = None) -> str:
    """Route each micro-batch: valid rows MERGE into the target, invalid rows append to the DLQ."""
    target = target or a.text("target_table")
    serverless = current().serverless
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "streaming source (Delta)"),
        ("TARGET_TABLE", py(target), "clean table"),
        ("DLQ_TABLE", py(a.text("dlq_table")), "dead letters: reason, raw payload, source reference, status"),
        ("ID_COLUMN", py(a.text("id_column")), "business key: MERGE key and DLQ record key"),
        ("EVENT_TIME", py(a.text("event_time_column")), "orders versions of a key"),
        ("VALIDATION_RULE", py(a.text("validation_rule")), "SQL condition that is true for a good row"),
        ("CHECKPOINT", py(a.text("checkpoint")), "this query's own checkpoint"),
        ("QUERY_NAME", py(unique_query_name(query_name("silver", target) + "_dlq_router", path)),
         "shown in the Spark UI and metrics"),
        ("TXN_APP_ID", py(f"{slug(short_name(target))}_dlq_router_v1"), "stable id for idempotent DLQ appends"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Delta table, read as a stream."""
    return spark.readStream.table(SOURCE_TABLE)'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Classify each row: schema_violation (rescued data), dq_failure (rule false or NULL), or NULL when good."""
    failed_rule = ~F.coalesce(F.expr(VALIDATION_RULE), F.lit(False))
    reason = F.when(failed_rule, F.lit("dq_failure"))
    if "_rescued_data" in df.columns:
        reason = F.when(F.col("_rescued_data").isNotNull(), F.lit("schema_violation")).otherwise(reason)
    return df.withColumn("_dlq_reason", reason)'''
    write = '''def write_batch(batch_df: DataFrame, batch_id: int) -> None:
    """Dead letters append to DLQ_TABLE (txnAppId/txnVersion); good rows MERGE into TARGET_TABLE."""
    {DELTA_IMPORT}

    batch_df.persist()
    bad = dead_letters(
        batch_df.filter(F.col("_dlq_reason").isNotNull()),
        reason=F.col("_dlq_reason"),
        payload=F.to_json(F.struct(*[c for c in batch_df.columns if c != "_dlq_reason"])),
        source_ref=F.lit(SOURCE_TABLE),
        record_key=F.col(ID_COLUMN),
        event_ts=F.col(EVENT_TIME),
        version=TXN_APP_ID,
        failed_rules=F.when(F.col("_dlq_reason") == "dq_failure", F.array(F.lit("validation_rule")))
        .otherwise(F.array(F.lit("rescued_data"))),
    )
    (
        bad.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id)
        .saveAsTable(DLQ_TABLE)
    )
    good = batch_df.filter(F.col("_dlq_reason").isNull()).drop(*[c for c in ("_dlq_reason", "_rescued_data")
                                                                   if c in batch_df.columns])
    # One row per key inside the batch: MERGE fails when two source rows match one target row.
    latest = (
        good.withColumn("_rn", F.row_number().over(Window.partitionBy(ID_COLUMN).orderBy(F.col(EVENT_TIME).desc())))
        .filter("_rn = 1")
        .drop("_rn")
    )
    # The first batch creates the clean table (MERGE needs an existing table) with the valid rows' columns.
    DeltaTable.createIfNotExists(batch_df.sparkSession).tableName(TARGET_TABLE).addColumns(latest.schema).execute()
    (
        DeltaTable.forName(batch_df.sparkSession, TARGET_TABLE)
        .alias("t")
        .merge(latest.alias("s"), f"t.{ID_COLUMN} = s.{ID_COLUMN}")
        .whenMatchedUpdateAll(condition=f"s.{EVENT_TIME} > t.{EVENT_TIME}")
        .whenNotMatchedInsertAll()
        .execute()
    )
    batch_df.unpersist()'''.replace("{DELTA_IMPORT}", DELTA_IMPORT)
    if serverless:  # serverless compute has no persist(): the batch is read twice instead
        write = write.replace("\n    batch_df.persist()", "").replace("\n    batch_df.unpersist()", "")
    start = start_block("The sink edge: foreachBatch(write_batch) with this query's own checkpoint.",
                        [".foreachBatch(write_batch)", ".queryName(QUERY_NAME)",
                         '.option("checkpointLocation", checkpoint)'], ".start()", '"1 minute"')
    doc = [compute_note(),
           f"{a.text('source_table')} → {target}; failures → {a.text('dlq_table')} (owner: {a.text('dlq_owner')}).",
           "Duplicates inside a batch are collapsed and the MERGE on the key makes replays harmless, so no dedup window "
           "is needed here.",
           CONVENTION_NOTE]
    imports = MERGE_IMPORTS.replace("from pyspark.sql import DataFrame,", "from pyspark.sql import Column, DataFrame,")
    prod, helpers = target_section(target, a.text("checkpoint"))
    return join(header("DLQ routing: valid rows upserted, dead letters kept with reason and payload.", "dlq-ops", doc,
                       imports=imports, extra_imports=("import argparse",)),
                constants(rows), prod, DEAD_LETTERS_FN, read, transform, write, start, helpers,
                job_main(path.rsplit("/", 1)[-1], ["TARGET_TABLE", "DLQ_TABLE"], ["CHECKPOINT"]))


def dlq_reprocess_module(a: Inputs, policy: dict[str, int]) -> str:
    """A support module: re-validate pending dead letters and move the good ones back, idempotently."""
    mode = a.choice("reprocess_mode")
    rows = [
        ("DLQ_TABLE", py(a.text("dlq_table")), "dead letters"),
        ("TARGET_TABLE", py(a.text("target_table")), "where repaired rows go"),
        ("ID_COLUMN", py(a.text("id_column")), "MERGE key"),
        ("EVENT_TIME", py(a.text("event_time_column")), "orders versions of a key"),
        ("VALIDATION_RULE", py(a.text("validation_rule")), "re-run after the fix"),
        ("MAX_ATTEMPTS", str(policy["retries"]), "from the DLQ policy: retries before DISCARD review"),
        ("BACKOFF_SECONDS", str(policy["backoff_seconds"]), "from the DLQ policy: wait between attempts"),
        ("REPROCESS_MODE", py(a.text("reprocess_mode")), "who starts a run"),
        ("OWNER", py(a.text("dlq_owner")), "owns the dead letters"),
    ]
    approval = ('    if REPROCESS_MODE == "manual approval" and not approved_by:\n'
                '        raise SystemExit("manual approval: pass --approved-by <name> (recorded in the DLQ)")\n') \
        if mode == "manual approval" else ""
    functions = f'''def pending(spark: SparkSession, reason: str | None = None, upto: Any = None) -> DataFrame:
    """Dead letters still NEW (optionally one reason, dead-lettered by ``upto``), under the attempt limit."""
    rows = spark.table(DLQ_TABLE).where("status = 'NEW'").where(F.col("attempts") < MAX_ATTEMPTS)
    if upto is not None:  # the run's snapshot: letters the router adds meanwhile wait for the next run
        rows = rows.where(F.col("ingest_ts") <= F.lit(upto))
    return rows.where(F.col("dlq_reason") == reason) if reason else rows


def repair(spark: SparkSession, rows: DataFrame) -> DataFrame:
    """Re-read the raw payload with the target's schema and keep the rows that now pass the rule."""
    schema = spark.table(TARGET_TABLE).schema
    parsed = rows.select("record_key", F.from_json("payload", schema).alias("row")).select("record_key", "row.*")
    return parsed.where(F.coalesce(F.expr(VALIDATION_RULE), F.lit(False)))


def merge_into_target(spark: SparkSession, repaired: DataFrame) -> None:
    """Upsert repaired rows on ID_COLUMN (newer EVENT_TIME wins): a second run changes nothing."""
    {DELTA_IMPORT}

    latest = (
        repaired.drop("record_key")
        .withColumn("_rn", F.row_number().over(Window.partitionBy(ID_COLUMN).orderBy(F.col(EVENT_TIME).desc())))
        .filter("_rn = 1")
        .drop("_rn")
    )
    (
        DeltaTable.forName(spark, TARGET_TABLE)
        .alias("t")
        .merge(latest.alias("s"), f"t.{{ID_COLUMN}} = s.{{ID_COLUMN}}")
        .whenMatchedUpdateAll(condition=f"s.{{EVENT_TIME}} > t.{{EVENT_TIME}}")
        .whenNotMatchedInsertAll()
        .execute()
    )


def mark(spark: SparkSession, keys: DataFrame, status: str, note: str) -> None:
    """Record the outcome on the dead letters (audit trail: status, attempts, who and when)."""
    {DELTA_IMPORT}

    (
        DeltaTable.forName(spark, DLQ_TABLE)
        .alias("d")
        .merge(keys.alias("k"), "d.record_key = k.record_key AND d.status = 'NEW'")
        .whenMatchedUpdate(set={{
            "status": F.lit(status),
            "attempts": F.col("d.attempts") + 1,
            "reprocess_note": F.lit(note),
            "reprocessed_at": F.current_timestamp(),
        }})
        .execute()
    )


def reprocess(spark: SparkSession, reason: str | None = None, approved_by: str = "") -> dict[str, int]:
    """One reprocessing run with retries and backoff; returns counts for the audit log."""
{approval}    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            upto = spark.table(DLQ_TABLE).agg(F.max("ingest_ts")).first()[0]
            rows = pending(spark, reason, upto){{PERSIST}}
            repaired = repair(spark, rows){{PERSIST}}
            # Counted before the writes: without a cache, ``rows`` is read again after the marks (fewer NEW rows).
            counts = {{"pending": rows.count(), "replayed": repaired.select("record_key").distinct().count()}}
            merge_into_target(spark, repaired)
            mark(spark, repaired.select("record_key").distinct(), "REPLAYED", f"approved by {{approved_by or OWNER}}")
            # What is still NEW now failed again: one more attempt each (MAX_ATTEMPTS then stops it).
            mark(spark, pending(spark, reason, upto).select("record_key").distinct(), "NEW",
                 "still failing after the fix")
            return {{**counts, "attempt": attempt}}
        except Exception:  # a transient failure: back off and retry, the MERGE makes a retry safe
            if attempt == MAX_ATTEMPTS:
                raise
            time.sleep(BACKOFF_SECONDS * attempt)
    return {{"pending": 0, "replayed": 0, "attempt": MAX_ATTEMPTS}}'''
    functions = functions.replace("{PERSIST}", "" if current().serverless else ".persist()")
    main = '''def main() -> None:
    """Run once: `python dlq_reprocess.py [--reason dq_failure] [--approved-by NAME]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reason", default=None)
    parser.add_argument("--approved-by", default="")
    args = parser.parse_args()
    spark = SparkSession.builder.getOrCreate()
    print(json.dumps(reprocess(spark, args.reason, args.approved_by)))


if __name__ == "__main__":
    main()
'''
    imports = "from pyspark.sql import DataFrame, SparkSession, Window\nfrom pyspark.sql import functions as F"
    doc = [f"Reprocessing mode: {a.text('reprocess_mode')}; retries {policy['retries']} with "
           f"{policy['backoff_seconds']} s backoff (DLQ policy).",
           "Fix the root cause first (producer, rule or schema); rows that still fail stay NEW with attempts+1.",
           "Support module: batch, no stream; run it as a job task."]
    return join(header("Reprocess dead letters back into the clean table.", "dlq-ops", doc, imports=imports,
                       extra_imports=("import argparse", "import json", "import time", "from typing import Any")),
                constants(rows), functions, main)


def dlq_sql(a: Inputs, policy: dict[str, int]) -> str:
    """The DLQ table, its audit queries, the ratio alert and retention."""
    dlq, source = table_name(a.text("dlq_table")), table_name(a.text("source_table"))
    ratio = a.percent("max_dlq_ratio")
    ts = sql_ident(a.text("event_time_column"))
    days = policy["retention_days"]
    return f"""-- Dead-letter queue {dlq} (owner: {a.text('dlq_owner')}).
{dlq_ddl(dlq)}
-- Audit: what failed, when, why, and what became of it.
SELECT date_trunc('DAY', ingest_ts) AS day, dlq_reason, status, count(*) AS rows
FROM {dlq}
GROUP BY ALL
ORDER BY day DESC, rows DESC;

-- Alert: dead-letter ratio over the last hour above {format_percent(ratio)} (a jump usually means an upstream
-- contract change). Use as a Databricks SQL alert on dlq_ratio_pct > {ratio:g}.
SELECT 100.0 * (SELECT count(*) FROM {dlq} WHERE ingest_ts >= current_timestamp() - INTERVAL 1 HOURS)
       / nullif((SELECT count(*) FROM {source} WHERE {ts} >= current_timestamp() - INTERVAL 1 HOURS), 0)
       AS dlq_ratio_pct;

-- Cost: keep resolved dead letters {days} days (audit retention), then delete and vacuum; compact weekly.
DELETE FROM {dlq}
WHERE status IN ('REPLAYED', 'DISCARDED') AND reprocessed_at < current_timestamp() - INTERVAL {days} DAYS;
OPTIMIZE {dlq};
VACUUM {dlq};
"""


def dlq_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                 workspace: object = None) -> list[Artifact]:
    """Artefacts of ``dlq-quarantine-ops``."""
    a = Inputs(answers, DLQ_DEFAULTS)
    policy = dlq_policy(rendered)
    folder = artifact_dir(doc_location)
    path = str(folder / "dlq_router.py")
    target = own_table(a.text("target_table"), "routed", path)
    a = Inputs({**a.answers, "target_table": target}, DLQ_DEFAULTS)
    note_source(a.text("source_table"), "bronze", event_time=a.text("event_time_column"),
                id_column=a.text("id_column"))
    record_table(target, "silver", current().columns_of(a.text("source_table")), writer=path,
                 event_time=a.text("event_time_column"), id_column=a.text("id_column"))
    record_table(a.text("dlq_table"), "dlq", dlq_schema(), writer=path)
    current().dlq_ddl = dlq_ddl(a.text("dlq_table"))
    return [
        Artifact(path, dlq_router_module(a, path), "python",
                 "Streaming router: dead letters (schema_violation, dq_failure) appended idempotently to the DLQ, "
                 "good rows MERGEd into the target."),
        Artifact(str(folder / "dlq_reprocess.py"), dlq_reprocess_module(a, policy), "python",
                 "Reprocessing job: re-validate the raw payload, MERGE back, mark REPLAYED, retries with backoff."),
        Artifact(str(folder / "dlq_table.sql"), dlq_sql(a, policy), "sql",
                 "DLQ table, audit query, ratio alert, retention and compaction."),
    ]


def dlq_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``dlq-quarantine-ops``."""
    a = Inputs(answers, DLQ_DEFAULTS)
    first = (f"Rows go to `{a.text('dlq_table')}` as `schema_violation` (rescued data) or `dq_failure` "
             f"(`{a.text('validation_rule')}` false or NULL); duplicates are dropped by the dedup step. Reprocessing: "
             f"{a.text('reprocess_mode')}, with the DLQ policy's retries and backoff; repaired rows are MERGEd on "
             f"`{a.text('id_column')}`, so a second run changes nothing.")
    second = (f"Each dead letter keeps its source reference, reason, ingest time, status and attempts (audit trail, "
              f"owner: {a.text('dlq_owner')}); alert above {format_percent(a.percent('max_dlq_ratio'))} per hour; "
              "resolved rows are deleted after the audit retention, then OPTIMIZE and VACUUM keep the table cheap.")
    return [first, second]


# -- replay and recovery ----------------------------------------------------------------

REPLAY_DEFAULTS = {
    "replay_window": "72 hours",
    "replay_source": "Bronze Delta table",
    "batch_slice": "1 hour",
    "target_table": "main.silver.events",
    "rto": "4 hours",
    "source_table": "main.bronze.events",
    "id_column": "event_id",
    "event_time_column": "event_time",
    "checkpoint": "/Volumes/main/streaming/checkpoints/events_replay_v1",
}


def replay_module(a: Inputs) -> str:
    """The replay: a new checkpoint, an explicit start, availableNow, MERGE; then per-slice reconciliation."""
    window, slice_ = a.duration("replay_window"), a.duration("batch_slice")
    target = a.text("target_table")
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "replayed from (Bronze keeps the history)"),
        ("TARGET_TABLE", py(target), "rebuilt idempotently"),
        ("ID_COLUMN", py(a.text("id_column")), "MERGE key"),
        ("EVENT_TIME", py(a.text("event_time_column")), "orders versions; slices are cut on it"),
        ("REPLAY_WINDOW_SECONDS", str(round(window.seconds)), f"replay window: {window.spark}"),
        ("SLICE_SECONDS", str(round(slice_.seconds)), f"reconciliation slice: {slice_.spark}"),
        ("CHECKPOINT", py(a.text("checkpoint")), "a NEW checkpoint for the replay; never the live query's"),
        ("QUERY_NAME", py(query_name("replay", target)), "shown in the Spark UI and metrics"),
        ("RECONCILIATION_TABLE", py(f"{table_name(target)}_reconciliation"), "one row per slice and run"),
    ]
    helpers = '''def replay_start() -> dt.datetime:
    """Where the replay starts: now minus the replay window (UTC)."""
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=REPLAY_WINDOW_SECONDS)


def slices(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The replay window cut into SLICE_SECONDS pieces (the last one may be shorter)."""
    step = dt.timedelta(seconds=SLICE_SECONDS)
    out, cursor = [], start
    while cursor < end:
        out.append((cursor, min(cursor + step, end)))
        cursor += step
    return out'''
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Delta source from an explicit start (commits since replay_start())."""
    return (
        spark.readStream.option("startingTimestamp", replay_start().strftime("%Y-%m-%d %H:%M:%S"))
        .option("maxFilesPerTrigger", 200)
        .table(SOURCE_TABLE)
    )'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Rows without an event time cannot be placed in a slice; they stay in the source for the DLQ job."""
    return df.filter(F.col(EVENT_TIME).isNotNull())'''
    write = merge_write_batch("TARGET_TABLE", ["ID_COLUMN"], "EVENT_TIME", True,
                              "MERGE on ID_COLUMN, newer EVENT_TIME wins: overlap with the live stream is harmless.")
    start = '''def start(df: DataFrame, checkpoint: str = CHECKPOINT) -> StreamingQuery:
    """The sink edge: availableNow drains the window in rate-limited batches, then stops."""
    return (
        df.writeStream.foreachBatch(write_batch)
        .queryName(QUERY_NAME)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )'''
    recon = '''def reconcile(spark: SparkSession, start_ts: dt.datetime, end_ts: dt.datetime, version_before: int) -> None:
    """Source vs target counts and duplicates per slice, appended to RECONCILIATION_TABLE."""
    source = spark.table(SOURCE_TABLE)
    target = spark.table(TARGET_TABLE)
    results = []
    for low, high in slices(start_ts, end_ts):
        in_slice = (F.col(EVENT_TIME) >= F.lit(low)) & (F.col(EVENT_TIME) < F.lit(high))
        source_keys = source.where(in_slice).select(ID_COLUMN).distinct().count()
        target_rows = target.where(in_slice).count()
        target_keys = target.where(in_slice).select(ID_COLUMN).distinct().count()
        results.append((low, high, source_keys, target_rows, target_keys, target_rows - target_keys,
                        source_keys == target_keys and target_rows == target_keys, version_before))
    columns = ["slice_start", "slice_end", "source_keys", "target_rows", "target_keys", "duplicates", "ok",
               "target_version_before"]
    spark.createDataFrame(results, columns).withColumn("checked_at", F.current_timestamp()).write.mode(
        "append").saveAsTable(RECONCILIATION_TABLE)


def rollback(spark: SparkSession, version_before: int) -> None:
    """Undo the replay's writes: restore the target to its version before the run.

    Stop every stream writing TARGET_TABLE first: their commits after ``version_before`` are lost by the
    RESTORE. Streams reading the table see a change commit and fail unless they use skipChangeCommits.
    """
    spark.sql(f"RESTORE TABLE {TARGET_TABLE} TO VERSION AS OF {int(version_before)}")'''
    body = '''    version_before = spark.sql(f"DESCRIBE HISTORY {TARGET_TABLE} LIMIT 1").first()["version"]
    started = replay_start()
    start(transform(read_stream(spark))).awaitTermination()
    reconcile(spark, started, dt.datetime.now(dt.timezone.utc), version_before)
    print(f"replay done; to undo it (live writers of the table stopped first): "
          f"RESTORE TABLE {TARGET_TABLE} TO VERSION AS OF {version_before}")'''
    doc = [f"Replays {window.spark} of {a.text('source_table')} into {target} in {slice_.spark} reconciliation "
           f"slices; RTO {a.duration('rto').spark}.",
           "The MERGE on the key absorbs the overlap with the live stream: no dedup window is needed. Drill: rehearse "
           "the replay and the RESTORE on a copy of the table every quarter (recovery test).", CONVENTION_NOTE]
    return join(header("Replay / backfill with reconciliation and rollback.", "replay-recovery", doc,
                       imports=MERGE_IMPORTS, extra_imports=("import datetime as dt",)),
                constants(rows), helpers, read, transform, write, start, recon,
                main_block(body, "Record the target version, replay, reconcile every slice, print the rollback."))


def replay_sql(a: Inputs) -> str:
    """Checks to run after the replay (and before declaring recovery done)."""
    target, source = table_name(a.text("target_table")), table_name(a.text("source_table"))
    key, ts = sql_ident(a.text("id_column")), sql_ident(a.text("event_time_column"))
    window = a.duration("replay_window")
    recon = f"{target}_reconciliation"
    return f"""-- After the replay of {window.spark}: evidence that the target is complete and has no duplicates.

-- 1. Slices that did not reconcile (must be empty).
SELECT * FROM {recon} WHERE NOT ok ORDER BY slice_start;

-- 2. Duplicates introduced by overlap (must be empty).
SELECT {key}, count(*) AS copies FROM {target}
WHERE {ts} >= current_timestamp() - {window.sql_interval}
GROUP BY {key} HAVING count(*) > 1;

-- 3. Source vs target per closed hour.
SELECT date_trunc('HOUR', {ts}) AS hour, count(DISTINCT {key}) AS keys FROM {source}
WHERE {ts} >= current_timestamp() - {window.sql_interval} GROUP BY 1
EXCEPT
SELECT date_trunc('HOUR', {ts}) AS hour, count(DISTINCT {key}) AS keys FROM {target}
WHERE {ts} >= current_timestamp() - {window.sql_interval} GROUP BY 1;

-- 4. The record of the run: which versions the replay wrote (rollback target = the version before it).
DESCRIBE HISTORY {target};
"""


def replay_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                    workspace: object = None) -> list[Artifact]:
    """Artefacts of ``replay-and-recovery``."""
    a = Inputs(answers, REPLAY_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "replay_backfill.py"), replay_module(a), "python",
                 "Replay: new checkpoint, explicit startingTimestamp, availableNow, MERGE; per-slice reconciliation "
                 "and the RESTORE statement for rollback."),
        Artifact(str(folder / "replay_checks.sql"), replay_sql(a), "sql",
                 "Post-replay evidence: failed slices, duplicates, hourly source/target diff, table history."),
    ]


def replay_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``replay-and-recovery``."""
    a = Inputs(answers, REPLAY_DEFAULTS)
    window, slice_ = a.duration("replay_window"), a.duration("batch_slice")
    count = max(1, round(window.seconds / slice_.seconds))
    source = a.text("replay_source")
    upstream = "" if source.lower().startswith("bronze") else (
        f" The source is {source}: first re-ingest the window into `{a.text('source_table')}` with the connector "
        "module on a new checkpoint and an explicit start (Kafka `startingTimestamp`, Auto Loader "
        "`includeExistingFiles=true`), provided retention still covers it.")
    first = (f"Replay {window.spark} of `{a.text('source_table')}` into `{a.text('target_table')}`, reconciled in "
             f"{count} slices of {slice_.spark} (distinct keys source vs target, duplicates per slice, stored in "
             f"`{table_name(a.text('target_table'))}_reconciliation`).{upstream}")
    second = (f"The replay runs on its own checkpoint `{a.text('checkpoint')}` with availableNow and MERGE, so it can "
              f"be retried; rollback is `RESTORE TABLE {a.text('target_table')} TO VERSION AS OF <version before>` "
              f"(printed by the run) — {RESTORE_WARNING} RTO {a.duration('rto').spark}: the run, checks and "
              "rollback must fit in it; "
              "every run leaves its reconciliation rows and table history as evidence.")
    return [first, second]


# -- live schema evolution ------------------------------------------------------------

SCHEMA_DEFAULTS = {
    "change_summary": "add nullable column device_type STRING",
    "change_type": "additive nullable column",
    "target_table": "main.silver.events",
    "shadow_duration": "24 hours",
    "source_table": "main.bronze.events",
    "shadow_checkpoint": "/Volumes/main/streaming/checkpoints/events_schema_shadow",
    "id_column": "event_id",
    "event_time_column": "event_time",
}

_COLUMN_TYPE = re.compile(
    r"column\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s+(?:to\s+|type\s+)?([A-Za-z]+(?:\(\s*\d+\s*(?:,\s*\d+\s*)?\))?)", re.I)
_RENAME = re.compile(r"rename\s+(?:column\s+)?`?([A-Za-z_][A-Za-z0-9_]*)`?\s+to\s+`?([A-Za-z_][A-Za-z0-9_]*)`?", re.I)
# "widen temperature to DOUBLE", "change amount from INT to BIGINT", "alter column qty type BIGINT".
_WIDEN = re.compile(
    r"(?:widen|change|alter|promote)\s+(?:column\s+)?`?([A-Za-z_][A-Za-z0-9_]*)`?\s+"
    r"(?:from\s+[A-Za-z]+(?:\([^)]*\))?\s+)?(?:to|type|as)\s+([A-Za-z]+(?:\(\s*\d+\s*(?:,\s*\d+\s*)?\))?)", re.I)
_DROP = re.compile(r"drop\s+(?:column\s+)?`?([A-Za-z_][A-Za-z0-9_]*)`?", re.I)
_SQL_TYPES = {"string", "int", "integer", "bigint", "long", "smallint", "tinyint", "byte", "short", "double", "float",
              "boolean", "date", "timestamp", "timestamp_ntz", "decimal", "binary", "variant"}


def parse_change(summary: str) -> dict[str, str]:
    """The column, type and rename target named in a change summary (what could be read)."""
    found: dict[str, str] = {}
    if match := _RENAME.search(summary):
        found.update(column=match.group(1), new_name=match.group(2))
    else:
        for pattern in (_COLUMN_TYPE, _WIDEN):
            match = pattern.search(summary)
            if match and match.group(2).split("(")[0].lower() in _SQL_TYPES:
                found.update(column=match.group(1), type=match.group(2).upper())
                break
    if "column" not in found and (match := _DROP.search(summary)):
        found.update(column=match.group(1))
    return found


# Commands whose generated code is a declarative pipeline: the tables it writes are its streaming tables.
PIPELINE_COMMANDS = frozenset({"dlt-streaming-pipeline", "streaming-dq-expectations"})


def pipeline_change_sql(a: Inputs, table: str, writer: str) -> str:
    """The change on a pipeline's streaming table: made in the pipeline's code, checked here (no DDL on the table).

    A streaming table's schema is its flow's query; ``ALTER TABLE``/``COMMENT ON`` on it fail
    (STREAMING_TABLE_OPERATION_NOT_ALLOWED) outside the Beta of ALTER TABLE on streaming tables, and RESTORE does
    not apply either.
    """
    change = parse_change(a.text("change_summary"))
    column = change.get("new_name") or change.get("column", "new_column")
    return "\n".join([
        f"-- Live schema change on {table}: {a.text('change_summary')}",
        f"-- {table} is a streaming table of the pipeline in {writer}: its schema is the pipeline's query, so",
        "-- ALTER TABLE / COMMENT ON / RESTORE on it fail (STREAMING_TABLE_OPERATION_NOT_ALLOWED). Make the change",
        "-- in the pipeline code (its payload schema or select), after the shadow validation passed",
        "-- (compare_shadow.sql), and run an update: an added nullable column joins the table's schema; a rename,",
        "-- drop or narrowing needs a full refresh of the table and of the tables reading it.",
        "-- Note the current version first: it is the point to compare with.",
        f"DESCRIBE HISTORY {table};",
        "",
        "-- After the update: the column is there, and how many new rows carry it.",
        f"DESCRIBE TABLE {table};",
        f"SELECT count(*) AS rows, count({sql_ident(column)}) AS rows_with_{slug(column)} FROM {table};",
        "",
        "-- Rollback: deploy the previous pipeline code; an added column stays (NULL in later rows) until a full",
        "-- refresh rebuilds the table from its source.",
        "",
    ])


def schema_change_sql(a: Inputs) -> str:
    """The DDL for the change, guarded by history, with the rollback statement."""
    table = table_name(a.text("target_table"))
    owner = current().writer_of(table)
    if owner is not None and owner.command in PIPELINE_COMMANDS:
        return pipeline_change_sql(a, table, owner.writer or "the pipeline")
    kind = a.choice("change_type")
    change = parse_change(a.text("change_summary"))
    column, col_type = change.get("column", "new_column"), change.get("type", "STRING")
    lines = [f"-- Live schema change on {table}: {a.text('change_summary')}",
             f"-- Kind: {a.text('change_type')}. Run after the shadow validation passed (compare_shadow.sql).",
             "-- Note the current version first: it is the rollback point.",
             f"DESCRIBE HISTORY {table};", ""]
    if kind.startswith("additive"):
        lines += ["-- Additive and nullable: existing rows read NULL; streams reading the table restart once.",
                  f"ALTER TABLE {table} ADD COLUMNS ({sql_ident(column)} {col_type} "
                  f"COMMENT {sql_str(a.text('change_summary'))});"]
    elif kind.startswith("enum"):
        lines += ["-- A new value in an existing column: no DDL. Widen the accepted-values expectation in the same",
                  "-- release and check which values arrive today:",
                  f"SELECT {sql_ident(column)}, count(*) FROM {table} GROUP BY 1 ORDER BY 2 DESC;"]
    elif kind.startswith("type"):
        lines += ["-- Type widening (Databricks Runtime 15.4 LTS+): readers need a client that supports the feature.",
                  f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true');",
                  f"ALTER TABLE {table} ALTER COLUMN {sql_ident(column)} TYPE {col_type};"]
    else:
        lines += ["-- Breaking change: column mapping makes rename/drop metadata-only, but streams reading this table",
                  "-- stop at the change and may need new checkpoints; release it with the consumers' code.",
                  f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name');"]
        if "new_name" in change:
            lines.append(f"ALTER TABLE {table} RENAME COLUMN {sql_ident(column)} TO {sql_ident(change['new_name'])};")
        else:
            lines.append(f"ALTER TABLE {table} DROP COLUMN {sql_ident(column)};")
    if "column" not in change and not kind.startswith("enum"):
        # Nothing to run against a placeholder column: the statements stay commented until the column is filled in.
        lines[5:] = ["-- No column (and type) could be read from the change summary: put them into these statements,",
                     "-- then uncomment them.", *[line if line.startswith("--") else f"-- {line}" for line in lines[5:]]]
    note = f"Last schema change {dt.date.today().isoformat()}: {a.text('change_summary')}"
    lines += ["", "-- Changelog entry in the table's own metadata (the Delta history records the DDL as well).",
              f"COMMENT ON TABLE {table} IS {sql_str(note)};",
              "", "-- Rollback: restore the version noted above and redeploy the previous code.",
              f"-- {RESTORE_WARNING}",
              f"-- RESTORE TABLE {table} TO VERSION AS OF <version noted above>;", ""]
    return "\n".join(lines)


def shadow_module(a: Inputs) -> str:
    """The shadow stream: the new schema written to a copy of the table, on its own checkpoint."""
    change = parse_change(a.text("change_summary"))
    target = a.text("target_table")
    shadow = f"{table_name(target)}_schema_shadow"
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "the same source as the live stream"),
        ("SHADOW_TABLE", py(shadow), "nobody consumes it; compared with the live table"),
        ("CHECKPOINT", py(a.text("shadow_checkpoint")), "the shadow's own checkpoint, never the live one"),
        ("NEW_COLUMN", py(change.get("new_name") or change.get("column", "new_column")), "the column being changed"),
        ("NEW_TYPE", py(change.get("type", "STRING")), "its type after the change"),
        ("QUERY_NAME", py(query_name("shadow", shadow)), "shown in the Spark UI and metrics"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the live stream's source, read independently."""
    return spark.readStream.table(SOURCE_TABLE)'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """The new schema: the changed column exists (NULL where producers do not send it yet)."""
    if NEW_COLUMN in df.columns:
        return df.withColumn(NEW_COLUMN, F.col(NEW_COLUMN).cast(NEW_TYPE))
    return df.withColumn(NEW_COLUMN, F.lit(None).cast(NEW_TYPE))'''
    start = start_block("The sink edge: the shadow table, schema merged on write (additive only).",
                        ['.format("delta")', ".queryName(QUERY_NAME)", '.option("checkpointLocation", checkpoint)',
                         '.option("mergeSchema", "true")'], ".toTable(SHADOW_TABLE)", '"1 minute"')
    doc = [f"Shadow validation for {a.duration('shadow_duration').spark} before changing {target}.", compute_note(),
           CONVENTION_NOTE]
    prod, helpers = target_section(shadow, a.text("shadow_checkpoint"))
    return join(header("Shadow stream writing the new schema beside the live table.", "schema-evolution-live", doc,
                       extra_imports=("import argparse",)),
                constants(rows), prod, read, transform, start, helpers,
                job_main("shadow_schema_stream.py", ["SHADOW_TABLE"], ["CHECKPOINT"]))


def compare_shadow_sql(a: Inputs) -> str:
    """Source vs shadow over closed windows: the shadow (the source with the new schema) lost no row or key.

    The shadow stream reads SOURCE_TABLE, so it is compared with SOURCE_TABLE — not with the live target,
    whose rows went through other logic (dedup, DQ) and would differ for reasons unrelated to the change.
    """
    target = table_name(a.text("source_table"))
    shadow = f"{table_name(a.text('target_table'))}_schema_shadow"
    key, ts = sql_ident(a.text("id_column")), sql_ident(a.text("event_time_column"))
    duration = a.duration("shadow_duration")
    return f"""-- Shadow validation over {duration.spark}: the shadow re-writes the source ({target}) with the new schema;
-- compare it with that source over hours closed in both tables (counts and keys must match).
SELECT 'source' AS side, count(*) AS rows, count(DISTINCT {key}) AS keys FROM {target}
WHERE {ts} >= current_timestamp() - {duration.sql_interval} AND {ts} < date_trunc('HOUR', current_timestamp())
UNION ALL
SELECT 'shadow', count(*), count(DISTINCT {key}) FROM {shadow}
WHERE {ts} >= current_timestamp() - {duration.sql_interval} AND {ts} < date_trunc('HOUR', current_timestamp());

-- Keys in one table and not the other (both must be empty before the switch).
SELECT {key} FROM {target}
WHERE {ts} >= current_timestamp() - {duration.sql_interval} AND {ts} < date_trunc('HOUR', current_timestamp())
EXCEPT
SELECT {key} FROM {shadow}
WHERE {ts} >= current_timestamp() - {duration.sql_interval} AND {ts} < date_trunc('HOUR', current_timestamp());
"""


def changelog_md(a: Inputs) -> str:
    """The changelog entry for the release notes."""
    today = dt.date.today().isoformat()
    return (f"# Schema changelog — {a.text('target_table')}\n\n"
            f"## {today}: {a.text('change_summary')}\n\n"
            f"- Kind: {a.text('change_type')}\n"
            f"- Validation: shadow stream for {a.duration('shadow_duration').spark} (`compare_shadow.sql` empty diffs)\n"
            "- Rollout: shadow → switch consumers → watch one full day → remove the shadow\n"
            "- Rollback: `RESTORE TABLE ... TO VERSION AS OF` the version noted before the DDL, redeploy the previous "
            "code\n"
            "- Evidence: `DESCRIBE HISTORY` of the table, the comparison results, this entry\n")


def schema_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                    workspace: object = None) -> list[Artifact]:
    """Artefacts of ``schema-evolution-live``."""
    a = Inputs(answers, SCHEMA_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "shadow_schema_stream.py"), shadow_module(a), "python",
                 "Shadow stream with the new schema on its own checkpoint (mergeSchema, additive only)."),
        Artifact(str(folder / "compare_shadow.sql"), compare_shadow_sql(a), "sql",
                 "Live vs shadow comparison over closed hours."),
        Artifact(str(folder / "schema_change.sql"), schema_change_sql(a), "sql",
                 "The DDL for the change, the changelog comment and the rollback statement."),
        Artifact(str(folder / "CHANGELOG.md"), changelog_md(a), "markdown", "Changelog entry for the release."),
    ]


def schema_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``schema-evolution-live``."""
    a = Inputs(answers, SCHEMA_DEFAULTS)
    kind = a.choice("change_type")
    change = parse_change(a.text("change_summary"))
    safe = kind.startswith(("additive", "enum"))
    what = ("an additive, nullable change — allowed live" if safe else
            "not additive — it needs type widening or column mapping, and the consuming streams stop and restart")
    read = (f" (column `{change.get('column')}`" + (f" {change['type']}" if "type" in change else "") + ")"
            if change.get("column") else " (no column could be read from the summary: edit schema_change.sql)")
    first = (f"`{a.text('change_summary')}` on `{a.text('target_table')}` is {what}{read}. A shadow stream writes "
             f"the new schema to `{table_name(a.text('target_table'))}_schema_shadow` for "
             f"{a.duration('shadow_duration').spark} before the DDL runs.")
    owner = current().writer_of(table_name(a.text("target_table")))
    if owner is not None and owner.command in PIPELINE_COMMANDS:
        second = (f"`{a.text('target_table')}` is a streaming table of `{owner.writer}`: rollout is shadow → compare "
                  "(empty diffs) → the change in the pipeline code and an update (no DDL on a streaming table) → "
                  "remove the shadow; rollback: deploy the previous pipeline code; recorded in CHANGELOG.md and the "
                  "Delta history.")
    else:
        second = ("Rollout: shadow → compare (empty diffs) → DDL → restart readers → remove the shadow; rollback: "
                  "RESTORE to the version noted before the DDL and redeploy; the change is recorded in CHANGELOG.md, "
                  "the table comment and the Delta history.")
    return [first, second]


register("dlq-quarantine-ops", dlq_generate, notes=dlq_notes)
register("replay-and-recovery", replay_generate, notes=replay_notes)
register("schema-evolution-live", schema_generate, notes=schema_notes)
