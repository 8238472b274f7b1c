"""The stream a generated job runs when the task writes no stream of its own.

``*workflows-triggers`` and ``*cost-guardrails`` ask which Python file the job runs
(``src/ingest_stream.py`` by default). A bundle must not point at a file that does not
exist, so those tasks write that file: an Auto Loader → Bronze stream in the edge
convention that takes the bundle target's ``--catalog`` / ``--schema`` /
``--checkpoint-root`` and ``--available-now`` (bounded runs for scheduled,
file-arrival and serverless jobs). Replace its body with the team's own stream and keep
``main()``'s parameters: the bundle passes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.artifacts.base import py, query_name, short_name
from tools.artifacts.bundles import TARGET_HELPERS, Targets, target_constants
from tools.artifacts.skeleton import CONVENTION_NOTE, constants, header, join, section


@dataclass(frozen=True)
class EntryStream:
    """What the entry-point stream reads and writes (production values)."""

    command: str
    source_path: str
    target_table: str
    checkpoint: str
    file_format: str = "json"
    trigger_interval: str = "1 minute"
    max_files_per_trigger: int = 1000


def entry_module(stream: EntryStream, targets: Targets) -> str:
    """The text of the entry-point module."""
    rows = [
        ("SOURCE_PATH", py(stream.source_path), "landing folder or Unity Catalog volume (read, never written)"),
        ("FILE_FORMAT", py(stream.file_format), "cloudFiles.format"),
        ("TARGET_TABLE", py(stream.target_table), "Bronze table (production name; the target may move it)"),
        ("CHECKPOINT", py(stream.checkpoint), "this query's own checkpoint (production path)"),
        ("QUERY_NAME", py(query_name("bronze", stream.target_table)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(stream.trigger_interval), "processingTime interval of a continuous classic job"),
        ("MAX_FILES_PER_TRIGGER", str(stream.max_files_per_trigger), "cloudFiles.maxFilesPerTrigger (rate limit)"),
        ("SCHEMA_LOCATION", 'CHECKPOINT + "/_schema"', "inferred schema and its versions, beside the checkpoint"),
    ]
    read = '''def read_stream(spark: SparkSession, schema_location: str = SCHEMA_LOCATION) -> DataFrame:
    """The source edge: new files under SOURCE_PATH, discovered incrementally by Auto Loader."""
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", FILE_FORMAT)
        .option("cloudFiles.schemaLocation", schema_location)
        .option("cloudFiles.inferColumnTypes", "true")
        .option("cloudFiles.schemaEvolutionMode", "addNewColumns")
        .option("cloudFiles.maxFilesPerTrigger", MAX_FILES_PER_TRIGGER)
        .load(SOURCE_PATH)
    )'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Lineage columns: the source file and the ingest time (Bronze keeps every column, _rescued_data included)."""
    return df.withColumn("_source_file", F.col("_metadata.file_path")).withColumn("_ingest_ts", F.current_timestamp())'''
    start = '''def start(
    df: DataFrame, checkpoint: str = CHECKPOINT, target: str | None = None, available_now: bool = False
) -> StreamingQuery:
    """The sink edge: an exactly-once Delta append with this query's own checkpoint.

    ``available_now`` drains what has arrived and stops (scheduled, file-arrival and serverless
    jobs); otherwise the query runs on a processingTime trigger until the continuous job stops it.
    """
    writer = (
        df.writeStream.format("delta")
        .queryName(QUERY_NAME)
        .option("checkpointLocation", checkpoint)
        .option("mergeSchema", "true")  # columns added by schema evolution reach Bronze
    )
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=TRIGGER_INTERVAL)
    return writer.toTable(target or TARGET_TABLE)'''
    main = '''def main() -> None:
    """Run the stream in the bundle target's namespace: `python ingest_stream.py --catalog ... [--available-now]`."""
    parser = add_target_arguments(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--available-now", action="store_true", help="drain the backlog and stop (bounded run)")
    args = parser.parse_args()
    checkpoint = checkpoint_in_target(CHECKPOINT, args.checkpoint_root)
    target = in_target(TARGET_TABLE, args.catalog, args.schema)
    spark = SparkSession.builder.getOrCreate()
    query = start(transform(read_stream(spark, checkpoint + "/_schema")), checkpoint, target, args.available_now)
    query.awaitTermination()


if __name__ == "__main__":
    main()
'''
    doc = [
        f"Reads {stream.file_format} files from {stream.source_path} into {stream.target_table} "
        f"(table {short_name(stream.target_table)} in the bundle target's catalog and schema).",
        "The job passes --catalog, --schema and --checkpoint-root from its bundle target, so a dev deployment writes "
        "its own table with its own checkpoint; --available-now makes the run bounded (drain, then stop).",
        "Replace read_stream/transform with the team's stream and keep main()'s parameters: the bundle passes them.",
        CONVENTION_NOTE,
    ]
    return join(header("Auto Loader → Bronze: the stream the job runs.", stream.command, doc,
                       extra_imports=("import argparse",)),
                constants(rows), constants(target_constants(targets.prod), "production namespace"),
                read, transform, start, section("deployment target") + "\n" + TARGET_HELPERS, main)
