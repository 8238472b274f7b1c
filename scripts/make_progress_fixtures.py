"""Regenerate the stream-progress fixtures from real local Spark queries.

Four Structured Streaming queries run on local Spark (``local[2]``; the rate
source, or the Kafka-shaped ``se_arrivals`` source of ``tests/spark/local_edges.py``
producing in wall-clock time; parquet or foreachBatch sinks) and their
StreamingQueryProgress events are saved under ``tests/fixtures/progress/``:

    healthy.json        windowed count with a watermark; batches well inside a 4 s trigger  (recentProgress dump)
    no-watermark.jsonl  dropDuplicates on a key without a watermark: state only grows         (listener log)
    slow-sink.json      Kafka-like source, 300 rows/s in, maxOffsetsPerTrigger 400, a sink
                        taking 5 ms a row: batches overrun the 1 s trigger, the backlog grows (recentProgress dump)
    late-data.jsonl     a tenth of the rows 30 s late against a 5 s watermark, 3 s trigger:
                        rows dropped                                                          (listener log)

Needs ``pyspark>=4.2``, ``pyarrow`` and Java 17. Takes a few minutes (longer on a busy machine).
Temporary paths in the events are replaced with ``<tmp>`` so the files carry
nothing machine-specific.

    python scripts/make_progress_fixtures.py [--out tests/fixtures/progress] [--batches 14]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "progress"
sys.path.insert(0, str(ROOT))


def spark_session():
    from tests.spark.local_edges import local_spark

    return local_spark("progress-fixtures")


class JsonLinesListener:
    """A StreamingQueryListener that appends each progress event's JSON as one line (the listener-log shape)."""

    def __init__(self) -> None:
        from pyspark.sql.streaming import StreamingQueryListener

        lines: dict[str, list[str]] = {}
        self.lines = lines

        class _Listener(StreamingQueryListener):
            def onQueryStarted(self, event):  # noqa: N802 - Spark's callback names
                pass

            def onQueryProgress(self, event):  # noqa: N802
                lines.setdefault(event.progress.name or str(event.progress.id), []).append(event.progress.json)

            def onQueryIdle(self, event):  # noqa: N802
                pass

            def onQueryTerminated(self, event):  # noqa: N802
                pass

        self.listener = _Listener()

    def events(self, name: str, at_least: int, timeout: float = 30.0) -> list[str]:
        """The events of query ``name`` once at least ``at_least`` arrived (the bus delivers them asynchronously)."""
        deadline = time.monotonic() + timeout
        while len(self.lines.get(name, [])) < at_least and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.lines.get(name, []))


def wait_batches(query, batches: int, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while len(query.recentProgress) < batches:
        if query.exception() is not None:
            raise RuntimeError(f"query {query.name} failed: {query.exception()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"query {query.name}: {len(query.recentProgress)} of {batches} batches in {timeout} s")
        time.sleep(0.2)


def scrub(text: str, tmp: Path) -> str:
    """Replace the temporary folder (in every spelling Spark uses) with ``<tmp>``."""
    for form in (f"file:{tmp}", str(tmp), str(tmp.resolve())):
        text = text.replace(form, "<tmp>")
    return text


def save_array(path: Path, progress: list[str], tmp: Path) -> None:
    """A recentProgress dump: a JSON array, one progress object per line."""
    items = [json.dumps(json.loads(p), separators=(",", ":")) for p in progress]
    path.write_text(scrub("[\n" + ",\n".join(items) + "\n]\n", tmp), encoding="utf-8")


def save_lines(path: Path, progress: list[str], tmp: Path) -> None:
    """A listener log: one progress object per line."""
    items = [json.dumps(json.loads(p), separators=(",", ":")) for p in progress]
    path.write_text(scrub("\n".join(items) + "\n", tmp), encoding="utf-8")


def healthy(spark, tmp: Path, batches: int) -> list[str]:
    """A windowed count with a watermark and a parquet sink; a small rate well within a 1 s trigger."""
    from pyspark.sql import functions as F

    events = spark.readStream.format("rate").option("rowsPerSecond", 20).load()
    counts = (events.withWatermark("timestamp", "5 seconds")
              .groupBy(F.window("timestamp", "2 seconds")).agg(F.count("*").alias("events")))
    # A 4 s trigger leaves headroom even on a busy two-core machine: the engine waits between batches.
    query = (counts.writeStream.queryName("healthy_window_counts").outputMode("append").format("parquet")
             .option("path", str(tmp / "healthy" / "out")).option("checkpointLocation", str(tmp / "healthy" / "cp"))
             .trigger(processingTime="4 seconds").start())
    wait_batches(query, batches)
    query.stop()
    return [p.json for p in query.recentProgress]


def no_watermark(spark, tmp: Path, batches: int, listener: JsonLinesListener) -> list[str]:
    """dropDuplicates on a non-time key with no watermark: every key stays in state for ever."""
    events = spark.readStream.format("rate").option("rowsPerSecond", 200).load()
    deduped = events.dropDuplicates(["value"])
    query = (deduped.writeStream.queryName("dedup_without_watermark").outputMode("append").format("parquet")
             .option("path", str(tmp / "nowm" / "out")).option("checkpointLocation", str(tmp / "nowm" / "cp"))
             .trigger(processingTime="1 second").start())
    wait_batches(query, batches)
    query.stop()
    return listener.events("dedup_without_watermark", batches)


def slow_sink(spark, tmp: Path, batches: int) -> list[str]:
    """A Kafka-like producer at 300 rows/s, 400 rows per batch, into a sink that takes 5 ms a row."""
    events = (spark.readStream.format("se_arrivals").option("rowsPerSecond", 300)
              .option("maxOffsetsPerTrigger", 400).option("topic", "orders").load())
    written = tmp / "slow" / "out"

    def write_batch(batch_df, batch_id: int) -> None:
        batch_df.persist()  # two actions below: without it each re-reads the source (and doubles numInputRows)
        rows = batch_df.count()
        time.sleep(rows * 0.005)  # the sink's cost: an external API, a row-by-row MERGE
        batch_df.write.mode("append").parquet(str(written))
        batch_df.unpersist()

    query = (events.writeStream.queryName("slow_foreach_batch_sink").foreachBatch(write_batch)
             .option("checkpointLocation", str(tmp / "slow" / "cp")).trigger(processingTime="1 second").start())
    wait_batches(query, batches, timeout=400)
    query.stop()
    return [p.json for p in query.recentProgress]


def late_data(spark, tmp: Path, batches: int, listener: JsonLinesListener) -> list[str]:
    """One row in ten arrives 30 s late against a 5 s watermark: the windowed count drops them."""
    from pyspark.sql import functions as F

    events = spark.readStream.format("rate").option("rowsPerSecond", 50).load()
    shifted = events.withColumn(
        "event_time",
        F.when(F.col("value") % 10 == 0, F.col("timestamp") - F.expr("INTERVAL 30 SECONDS")).otherwise(F.col("timestamp")),
    )
    counts = (shifted.withWatermark("event_time", "5 seconds")
              .groupBy(F.window("event_time", "2 seconds")).agg(F.count("*").alias("events")))
    query = (counts.writeStream.queryName("late_events_window_counts").outputMode("append").format("parquet")
             .option("path", str(tmp / "late" / "out")).option("checkpointLocation", str(tmp / "late" / "cp"))
             .trigger(processingTime="3 seconds").start())
    wait_batches(query, batches)
    query.stop()
    return listener.events("late_events_window_counts", batches)


def warm_up(spark, tmp: Path) -> None:
    """One throwaway batch so class loading and code generation do not distort the first fixture."""
    from pyspark.sql import functions as F

    events = spark.readStream.format("rate").option("rowsPerSecond", 10).load()
    query = (events.groupBy(F.col("value") % 2).count().writeStream.outputMode("complete").format("memory")
             .queryName("warm_up").option("checkpointLocation", str(tmp / "warm" / "cp")).start())
    wait_batches(query, 2)
    query.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="fixture folder (default: tests/fixtures/progress)")
    parser.add_argument("--batches", type=int, default=14, help="batches per query (default: 14)")
    parser.add_argument("--only", nargs="*", default=None, help="regenerate only these fixtures (file stems)")
    args = parser.parse_args(argv)
    if shutil.which("java") is None:
        print("make_progress_fixtures: Java is needed (Spark runs on the JVM)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="se-fixtures-"))
    spark = spark_session()
    listener = JsonLinesListener()
    spark.streams.addListener(listener.listener)
    wanted = set(args.only or ["healthy", "no-watermark", "slow-sink", "late-data"])
    try:
        started = time.monotonic()
        warm_up(spark, tmp)
        jobs = (
            ("healthy", lambda: save_array(args.out / "healthy.json", healthy(spark, tmp, args.batches), tmp)),
            ("no-watermark", lambda: save_lines(args.out / "no-watermark.jsonl",
                                                no_watermark(spark, tmp, args.batches, listener), tmp)),
            ("slow-sink", lambda: save_array(args.out / "slow-sink.json", slow_sink(spark, tmp, args.batches), tmp)),
            ("late-data", lambda: save_lines(args.out / "late-data.jsonl",
                                             late_data(spark, tmp, args.batches, listener), tmp)),
        )
        for name, job in jobs:
            if name in wanted:
                began = time.monotonic()
                job()
                print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr)
        print(f"all fixtures in {time.monotonic() - started:.0f} s (Spark {spark.version})", file=sys.stderr)
    finally:
        spark.streams.removeListener(listener.listener)
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
