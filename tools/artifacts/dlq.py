"""The one dead-letter shape every writer of the thread uses.

The Auto Loader ingest, the DLQ router and the declarative quarantine all
append to a dead-letter table; they used to disagree on its columns, so the
reprocessing job skipped rows (``attempts`` NULL) or failed. Here is the single
column list, the DDL built from it and the PySpark function each generated
writer inlines, so a writer cannot drift from the table. ``payload`` keeps the
raw record (the Kafka value, or every source column as JSON including
``_rescued_data``) so a fixed parser can re-read it.
"""

from __future__ import annotations

from tools.artifacts.base import table_name

# (column, SQL type, comment) — the order is the table's order.
DLQ_COLUMNS: list[tuple[str, str, str]] = [
    ("dlq_reason", "STRING", "schema_violation | dq_failure | malformed"),
    ("failed_rules", "ARRAY<STRING>", "names of the rules the row failed"),
    ("payload", "STRING", "the raw record (Kafka value or the source row as JSON), re-readable by a fixed parser"),
    ("source_ref", "STRING", "source table, file path or topic/partition/offset"),
    ("record_key", "STRING", "the event id, when it could be read"),
    ("event_ts", "TIMESTAMP", "event time, when it could be read"),
    ("ingest_ts", "TIMESTAMP", "when the row was dead-lettered"),
    ("pipeline_version", "STRING", "the writer that dead-lettered it"),
    ("status", "STRING", "NEW | REPLAYED | DISCARDED"),
    ("attempts", "INT", "reprocessing attempts so far"),
    ("reprocess_note", "STRING", "outcome of the last reprocessing"),
    ("reprocessed_at", "TIMESTAMP", "when it was last reprocessed"),
]


def dlq_schema() -> dict[str, str]:
    """Column -> SQL type of the dead-letter table."""
    return {name: sql_type for name, sql_type, _ in DLQ_COLUMNS}


def dlq_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the dead-letter table (Change Data Feed on, clustered by ingest time)."""
    body = ",\n".join(f"  {name} {sql_type} COMMENT '{comment}'" for name, sql_type, comment in DLQ_COLUMNS)
    return (f"CREATE TABLE IF NOT EXISTS {table_name(table)} (\n{body}\n)\nCLUSTER BY (ingest_ts)\n"
            "TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true');\n")


DEAD_LETTERS_FN = '''def dead_letters(df: DataFrame, reason: Column, payload: Column, source_ref: Column, record_key: Column,
                 event_ts: Column, version: str, failed_rules: Column | None = None) -> DataFrame:
    """Rows in the one dead-letter shape of this pipeline (dlq_table.sql); ``payload`` is the raw record."""
    rules = failed_rules if failed_rules is not None else F.array().cast("array<string>")
    return df.select(
        reason.cast("string").alias("dlq_reason"),
        rules.cast("array<string>").alias("failed_rules"),
        payload.cast("string").alias("payload"),
        source_ref.cast("string").alias("source_ref"),
        record_key.cast("string").alias("record_key"),
        event_ts.cast("timestamp").alias("event_ts"),
        F.current_timestamp().alias("ingest_ts"),
        F.lit(version).cast("string").alias("pipeline_version"),
        F.lit("NEW").alias("status"),
        F.lit(0).cast("int").alias("attempts"),
        F.lit(None).cast("string").alias("reprocess_note"),
        F.lit(None).cast("timestamp").alias("reprocessed_at"),
    )'''
