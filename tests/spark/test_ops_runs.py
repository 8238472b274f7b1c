"""Operations modules run on local Spark: what they report is what they did.

``dlq_reprocess.reprocess`` reads the dead letters lazily. A DataFrame on a Delta table reads the table's latest
snapshot each time it runs, so on serverless (no ``persist``) anything counted after the run's own status updates
sees fewer NEW rows: the audit line must be counted before the writes. The DLQ here is a Python data source that,
like Delta, reads its current rows at every execution.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql.datasource import DataSource, DataSourceReader

from tests.spark.harness import load_module
from tests.unit_tests.test_artifact_contracts import defaults
from tools.artifacts import generate
from tools.artifacts.dlq import dlq_schema


class LiveTableSource(DataSource):
    """``spark.read.format("se_live_table")``: the rows of a JSON-lines file, read when the query runs."""

    @classmethod
    def name(cls) -> str:
        """The format name."""
        return "se_live_table"

    def schema(self) -> str:
        """The table's DDL (option ``schema``)."""
        return self.options["schema"]

    def reader(self, schema: object) -> DataSourceReader:
        """A reader of the file as it is now."""
        return LiveTableReader(self.options["file"], schema)


class LiveTableReader(DataSourceReader):
    def __init__(self, file: str, schema: object) -> None:
        self.file, self.fields = file, [(f.name, f.dataType.simpleString()) for f in schema.fields]

    def read(self, partition: object):  # noqa: ANN201 - Spark's iterator of tuples
        """Every row of the file, timestamps parsed."""
        for line in Path(self.file).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            yield tuple(dt.datetime.fromisoformat(record[n]) if t == "timestamp" and record[n] else record[n]
                        for n, t in self.fields)


def live_table(spark, name: str, rows: list[dict], ddl: str, file: Path) -> None:
    """Write ``rows`` to ``file`` and (re)register ``name`` as a view that reads the file at every run."""
    file.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="utf-8")
    spark.read.format("se_live_table").option("file", str(file)).option("schema", ddl).load() \
        .createOrReplaceTempView(name)


def reprocess_module(compute: str, tmp_path: Path) -> object:
    answers = {**defaults("dlq-quarantine-ops"), "compute_kind": compute}
    for artifact in generate("dlq-quarantine-ops", answers, {}, "docs/streaming/dlq-ops.md"):
        if artifact.path.endswith("/dlq_reprocess.py"):
            path = tmp_path / f"dlq_reprocess_{compute}.py"
            path.write_text(artifact.content, encoding="utf-8")
            return load_module(path)
    raise AssertionError("no dlq_reprocess.py")


def test_reprocess_reports_what_it_replayed_and_leaves_the_rest_new(spark, tmp_path: Path) -> None:
    compute = "serverless"  # no persist: every action reads the DLQ again (classic caches the first read)
    module = reprocess_module(compute, tmp_path)
    module.DLQ_TABLE, module.TARGET_TABLE = f"dlq_reprocess_{compute}", f"silver_reprocess_{compute}"
    # Temporary views stand in for the tables (spark.table reads them; nothing is written to disk).
    spark.createDataFrame([], f"{module.ID_COLUMN} string, {module.EVENT_TIME} timestamp").createOrReplaceTempView(
        module.TARGET_TABLE)
    at = dt.datetime(2026, 12, 4, 10, 0)

    def letter(key: str | None, n: int) -> dict:
        payload = json.dumps({module.ID_COLUMN: key, module.EVENT_TIME: "2026-12-04T09:00:00"})
        values = ("dq_failure", [], payload, "src", key or f"missing-{n}", at, at, "v1", "NEW", 0, None, None)
        return dict(zip(dlq_schema(), values, strict=True))

    spark.dataSource.register(LiveTableSource)
    ddl = ", ".join(f"{c} {t}" for c, t in dlq_schema().items())
    dlq_file = tmp_path / "dlq.jsonl"
    live_table(spark, module.DLQ_TABLE, [letter("e1", 1), letter("e2", 2), letter(None, 3)], ddl, dlq_file)
    merged = []

    def merge_into_target(spark_, repaired) -> None:  # the MERGE itself is Delta's; record what it was given
        merged.extend(r[module.ID_COLUMN] for r in repaired.collect())

    def mark(spark_, keys, status: str, note: str) -> None:  # Delta's MERGE on the DLQ, done on the file itself
        hit = {r["record_key"] for r in keys.collect()}
        rows = [json.loads(line) for line in dlq_file.read_text(encoding="utf-8").splitlines()]
        for row in rows:
            if row["record_key"] in hit and row["status"] == "NEW":
                row.update(status=status, attempts=row["attempts"] + 1, reprocess_note=note)
        dlq_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")  # the view reads it anew

    module.merge_into_target, module.mark, module.BACKOFF_SECONDS = merge_into_target, mark, 0
    result = module.reprocess(spark, approved_by="orders tech lead")
    assert sorted(merged) == ["e1", "e2"]
    assert result == {"pending": 3, "replayed": 2, "attempt": 1}, result
    final = {r["record_key"]: (r["status"], r["attempts"]) for r in spark.table(module.DLQ_TABLE).collect()}
    assert final == {"e1": ("REPLAYED", 1), "e2": ("REPLAYED", 1), "missing-3": ("NEW", 1)}
    for table in (module.DLQ_TABLE, module.TARGET_TABLE):
        spark.catalog.dropTempView(table)


def blue_green_modules(tmp_path: Path) -> tuple[object, object]:
    answers = {**defaults("blue-green-deploy"), "switch_mechanism": "table rename"}
    out = {}
    for artifact in generate("blue-green-deploy", answers, {}, "docs/streaming/blue-green.md"):
        name = artifact.path.rsplit("/", 1)[-1]
        if name in ("cutover.py", "blue_green_stream.py"):
            path = tmp_path / name
            path.write_text(artifact.content, encoding="utf-8")
            out[name] = load_module(path)
    return out["cutover.py"], out["blue_green_stream.py"]


def test_table_rename_cutover_switches_back_and_forth_and_streams_find_their_table(spark, tmp_path: Path) -> None:
    cutover, stream = blue_green_modules(tmp_path)
    tables = {"blue": "default.bg_orders_blue", "green": "default.bg_orders_green"}
    consumer = "default.bg_orders"
    cutover.TABLES, cutover.CONSUMER_VIEW, cutover.EVENT_TIME = tables, consumer, "event_time"
    cutover.FRESHNESS_LIMIT_MINUTES = 10_000
    recent = spark.sql("SELECT date_trunc('HOUR', current_timestamp()) - INTERVAL 30 MINUTES AS t").first()["t"]
    for name in [*tables.values(), consumer]:
        spark.sql(f"DROP TABLE IF EXISTS {name}")
    for color, name in tables.items():  # external tables in tmp_path: nothing lands in the working folder
        spark.sql(f"CREATE TABLE {name} (event_id STRING, event_time TIMESTAMP) USING parquet "
                  f"LOCATION '{tmp_path / color}'")
        spark.createDataFrame([(f"{color}-1", recent)], "event_id string, event_time timestamp") \
            .write.insertInto(name)
    try:
        cutover.switch(spark, "blue")  # blue goes live first: its table takes the consumer name
        assert cutover.current_name(spark, "blue") == consumer
        cutover.switch(spark, "green")
        assert (cutover.current_name(spark, "green"), cutover.current_name(spark, "blue")) == (consumer, tables["blue"])
        assert cutover.health(spark, "green")["healthy"] and cutover.health(spark, "blue")["staleness_minutes"] < 120
        # A restarted stream writes where its rows are: green (live) under the consumer name, blue under its own.
        assert stream.table_for(spark, tables["green"], consumer, "green") == consumer
        assert stream.table_for(spark, tables["blue"], consumer, "blue") == tables["blue"]
        assert {r["event_id"] for r in spark.table(consumer).collect()} == {"green-1"}
        cutover.switch(spark, "blue")  # the rollback is the same switch back
        assert {r["event_id"] for r in spark.table(consumer).collect()} == {"blue-1"}
        assert {r["event_id"] for r in spark.table(tables["green"]).collect()} == {"green-1"}
        with pytest.raises(Exception):  # noqa: B017 - blue is live already: refused before anything changes
            cutover.switch(spark, "blue")
        assert {r["event_id"] for r in spark.table(consumer).collect()} == {"blue-1"}
    finally:
        for name in [*tables.values(), consumer]:
            spark.sql(f"DROP TABLE IF EXISTS {name}")
