"""Cross-file contracts executed on local Spark: what one file produces is what the next one reads.

Each generated module's ``transform`` runs (batch, on a tiny synthetic input shaped like its source) for
the task's defaults and for a realistic non-default answer set; its output must have every column the
thread's design records for the table (the columns the generated SQL and later commands read), with the
event time typed TIMESTAMP. Every dead-letter writer produces exactly the one DLQ shape, and the SLO
listener writes rows whose latencies are NULL without losing them when a write fails.
"""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import json
import os
import types
from pathlib import Path

import pytest

from tests.spark.harness import load_module
from tests.unit_tests.test_artifact_contracts import defaults
from tests.unit_tests.test_artifacts import CUSTOM
from tools.artifacts import generate
from tools.artifacts.dlq import dlq_schema
from tools.design import Design

SOURCES = {"kafka-connector-setup": "kafka_source.py", "eventhubs-connector-setup": "eventhubs_source.py",
           "kinesis-connector-setup": "kinesis_source.py"}


def generated(task_id: str, answers: dict[str, str], name: str, tmp_path: Path) -> tuple[object, Design]:
    """Generate the task with ``answers``, import the module ``name``; return it and the design it recorded."""
    design = Design()
    for artifact in generate(task_id, answers, {}, "docs/streaming/x.md", None, design):
        if artifact.path.endswith("/" + name):
            path = tmp_path / f"{task_id}_{name}"
            path.write_text(artifact.content, encoding="utf-8")
            return load_module(path), design
    raise AssertionError(f"{task_id} generated no {name}")


def answer_sets(task_id: str) -> list[dict[str, str]]:
    """The defaults and the task's realistic custom answers."""
    return [defaults(task_id), {**defaults(task_id), **CUSTOM[task_id][0]}]


def spark_type(sql_type: str) -> str:
    """A DDL type as Spark's simpleString names it (``BIGINT`` → ``bigint``, ``STRUCT<a: STRING>`` → ``struct<a:string>``)."""
    from pyspark.sql.types import _parse_datatype_string

    return _parse_datatype_string(sql_type).simpleString()


def bus_rows(spark, module, kind: str):
    """Two records shaped like the source's rows: a payload with the declared schema, one value unparseable."""
    from pyspark.sql.types import _parse_datatype_string

    schema = _parse_datatype_string(module.PAYLOAD_SCHEMA)
    sample = {}
    for field in schema.fields:
        name = field.dataType.simpleString()
        sample[field.name] = ("2026-12-04T10:00:00Z" if name == "timestamp" else 12.5 if name in ("double", "float")
                              else 7 if name in ("int", "bigint") else f"{field.name}-1")
    body = json.dumps(sample).encode()
    now = dt.datetime(2026, 12, 4, 10, 1, tzinfo=dt.UTC)
    if kind == "kinesis":
        rows = [(body, "clicks", "pk", "shardId-0", "4960", now), (b"not json", "clicks", "pk", "shardId-0", "4961", now)]
        return spark.createDataFrame(rows, "data binary, stream string, partitionKey string, shardId string, "
                                           "sequenceNumber string, approximateArrivalTimestamp timestamp")
    rows = [(b"k", body, "orders", 0, 10, now), (b"k2", b"not json", "orders", 0, 11, now)]
    return spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset bigint, "
                                       "timestamp timestamp")


def streamed(spark, frame, transform, workdir: Path):
    """``transform`` run as a stream (availableNow) over ``frame``'s rows; the result as a table.

    Streaming-only steps (``dropDuplicatesWithinWatermark``) need a streaming DataFrame.
    """
    import uuid

    source = workdir / f"rows_{uuid.uuid4().hex[:8]}"
    frame.write.parquet(str(source))
    name = f"contract_{uuid.uuid4().hex[:8]}"
    query = (transform(spark.readStream.schema(frame.schema).parquet(str(source)))
             .writeStream.format("memory").queryName(name)
             .option("checkpointLocation", str(workdir / f"chk_{name}"))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    return spark.table(name)


@pytest.mark.parametrize("task_id", sorted(SOURCES))
def test_bus_sources_produce_the_columns_their_table_is_designed_with(spark, tmp_path: Path, task_id: str) -> None:
    for answers in answer_sets(task_id):
        module, design = generated(task_id, answers, SOURCES[task_id], tmp_path)
        rows = bus_rows(spark, module, "kinesis" if "kinesis" in task_id else "kafka")
        # Only a streaming-only step (dropDuplicatesWithinWatermark) needs a stream; a batch is quicker.
        needs_stream = "dropDuplicatesWithinWatermark" in inspect.getsource(module.transform)
        out = streamed(spark, rows, module.transform, tmp_path) if needs_stream else module.transform(rows)
        types = dict(out.dtypes)
        table = design.table_by_role("bronze")
        assert table is not None
        for column, sql_type in table.columns.items():
            assert column in types, (task_id, column, sorted(types))
            assert types[column] == spark_type(sql_type), (task_id, column, types[column], sql_type)
        assert types[table.event_time] == "timestamp"
        rows = out.collect()
        assert len(rows) == 2  # the unparseable record is kept (raw value), its payload columns NULL
        assert sum(1 for r in rows if r[table.event_time] is not None) == 1


def test_autoloader_keeps_rescued_rows_and_dead_letters_only_malformed_ones(spark, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    for answers in answer_sets("autoloader-streaming-ingest"):
        module, design = generated("autoloader-streaming-ingest", answers, "autoloader_ingest.py", tmp_path)
        landing = tmp_path / f"landing_{len(answers)}_{id(module)}"
        landing.mkdir()
        key, ts = module.ID_COLUMN, module.EVENT_TIME
        lines = [{key: "a", ts: "2026-12-04T10:00:00Z", "new_producer_field": 1},  # rescued in rescue mode
                 {key: None, ts: "2026-12-04T10:00:00Z"}]  # no key: malformed
        (landing / "part.json").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
        frame = (spark.read.schema(module.SCHEMA_HINTS).json(str(landing))
                 .withColumn("_rescued_data", F.lit('{"new_producer_field": 1}')))
        out = module.transform(frame.select("*", "_metadata"))
        good = out.filter(~F.col("_malformed")).drop("_malformed")
        bad = module.dead_letters(out.filter(F.col("_malformed")), reason=F.lit("malformed"),
                                  payload=F.to_json(F.struct("*")), source_ref=F.col("_source_file"),
                                  record_key=F.col("_idempotency_key"), event_ts=F.lit(None), version="v1")
        assert good.count() == 1 and bad.count() == 1
        assert {c: t for c, t in bad.dtypes} == {c: spark_type(t) for c, t in dlq_schema().items()}
        bronze = design.table_by_role("bronze")
        assert set(bronze.columns) <= set(good.columns), (sorted(bronze.columns), good.columns)


def test_dlq_router_dead_letters_have_the_one_dlq_shape(spark, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    module, _ = generated("dlq-quarantine-ops", defaults("dlq-quarantine-ops"), "dlq_router.py", tmp_path)
    rows = [("e1", dt.datetime(2026, 12, 4, 10, 0)), (None, dt.datetime(2026, 12, 4, 10, 0))]
    frame = spark.createDataFrame(rows, f"{module.ID_COLUMN} string, {module.EVENT_TIME} timestamp")
    routed = module.transform(frame)
    bad = module.dead_letters(routed.filter(F.col("_dlq_reason").isNotNull()), reason=F.col("_dlq_reason"),
                              payload=F.to_json(F.struct("*")), source_ref=F.lit(module.SOURCE_TABLE),
                              record_key=F.col(module.ID_COLUMN), event_ts=F.col(module.EVENT_TIME), version="v1")
    assert bad.count() == 1
    assert dict(bad.dtypes) == {c: spark_type(t) for c, t in dlq_schema().items()}


def test_blue_green_rows_carry_the_colour_that_runs(spark, tmp_path: Path) -> None:
    module, _ = generated("blue-green-deploy", defaults("blue-green-deploy"), "blue_green_stream.py", tmp_path)
    frame = spark.createDataFrame([("e1",)], "event_id string")
    assert module.transform(frame, "blue").first()["_deployed_color"] == "blue"
    assert module.transform(frame, "green").first()["_deployed_color"] == "green"


def test_slo_listener_writes_null_latencies_and_keeps_rows_when_a_write_fails(spark, tmp_path: Path) -> None:
    module, _ = generated("latency-slo-and-alerts", defaults("latency-slo-and-alerts"), "slo_listener.py", tmp_path)
    listener = module.SloListener()
    progress = {"id": "q1", "name": "bronze_events", "batchId": 3, "timestamp": "2026-12-04T10:00:00.000Z",
                "numInputRows": 0, "inputRowsPerSecond": 0, "processedRowsPerSecond": 0.0,
                "durationMs": {"triggerExecution": 120}, "eventTime": {}, "sources": [], "stateOperators": []}
    listener.emit(module.slo_record(progress))  # no event time: latency and watermark lag are None
    module.METRICS_TABLE = "no_such_catalog.ops.metrics"
    with pytest.raises(Exception):  # noqa: B017 - the catalog does not exist locally: any write error will do
        listener.flush(spark)
    assert len(listener.buffer) == 1  # kept for the next flush
    module.METRICS_TABLE = "slo_metrics_contract"
    spark.sql(f"DROP TABLE IF EXISTS {module.METRICS_TABLE}")
    assert listener.flush(spark) == 1 and len(listener.buffer) == 0
    row = spark.table(module.METRICS_TABLE).first()
    assert row["event_latency_ms"] is None and row["batch_duration_ms"] == 120.0 and row["failed"] is False
    spark.sql(f"DROP TABLE IF EXISTS {module.METRICS_TABLE}")


# -- the declarative pipeline on a Kafka source ---------------------------------------------------

NESTED_PAYLOAD = ("order_id STRING, event_ts TIMESTAMP, customer STRUCT<id: STRING, tier: STRING>, "
                  "amount DECIMAL(12,2)")
DLT_KAFKA = {"source_format": "kafka", "source": "orders.v3", "kafka_bootstrap_servers": "b-1.msk.acme.io:9096",
             "event_time_column": "event_ts", "payload_schema": NESTED_PAYLOAD, "measure_column": "amount",
             "allowed_lateness": "10 minutes", "window_duration": "5 minutes", "bronze_table": "acme.bronze.orders",
             "table": "acme.silver.orders", "quarantine_table": "acme.quarantine.orders",
             "target_table": "acme.gold.orders_5m", "expectations-streaming-tmpl:name": "positive_amount",
             "expr": "amount > 0", "action": "DROP"}


def kafka_records(spark, folder: Path):
    """Kafka-shaped rows in two files (two micro-batches): parsed orders, a refund, a value that is not JSON."""
    def order(n: int, ts: str, amount: float) -> bytes:
        return json.dumps({"order_id": f"o{n}", "event_ts": ts, "customer": {"id": f"c{n}", "tier": "gold"},
                           "amount": amount}).encode()

    at = dt.datetime(2026, 12, 4, 10, 6, tzinfo=dt.UTC)
    first = [(b"o1", order(1, "2026-12-04T10:00:30Z", 10.5)), (b"o2", order(2, "2026-12-04T10:01:00Z", 20.25)),
             (b"o3", order(3, "2026-12-04T10:03:00Z", 5.0)), (b"o4", order(4, "2026-12-04T10:02:00Z", -3.0)),
             (b"o5", b"{not json")]
    second = [(b"o6", order(6, "2026-12-04T10:30:00Z", 7.0))]  # moves the watermark past the first window
    schema = "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp, " \
             "timestampType int"
    for n, batch in enumerate((first, second)):
        rows = [(k, v, "orders.v3", 0, 100 * n + i, at, 0) for i, (k, v) in enumerate(batch)]
        spark.createDataFrame(rows, schema).coalesce(1).write.mode("append").parquet(str(folder))
        # The file source orders by modification time: the second batch is newer.
        for path in folder.glob("*.parquet"):
            if n == 0:
                os.utime(path, (1_000_000, 1_000_000))
    return spark.read.parquet(str(folder)).schema


def test_dlt_kafka_pipeline_parses_the_payload_and_aggregates_the_measure(spark, tmp_path: Path) -> None:
    """The Kafka variant of *dlt-streaming on local Spark: payload parsed, rules on payload columns, real totals."""
    from tests.spark.declarative import LocalPipeline, load_declarative

    design = Design()
    answers = {**defaults("dlt-streaming-pipeline"), **DLT_KAFKA}
    files = {Path(a.path).name: a.content for a in generate("dlt-streaming-pipeline", answers, {},
                                                           "docs/streaming/dlt-streaming.md", None, design)}
    path = tmp_path / "dlt_kafka_pipeline.py"
    path.write_text(files["dlt_pipeline.py"], encoding="utf-8")
    module, fake = load_declarative(path)
    folder = tmp_path / "kafka"
    schema = kafka_records(spark, folder)
    asked: list = []

    class KafkaPipeline(LocalPipeline):
        files_per_batch = 2  # Silver and quarantine: one micro-batch; Gold: one file per batch (the watermark moves)

        def source(self, recorded):
            asked.append(recorded)
            return (self.spark.readStream.schema(schema).option("maxFilesPerTrigger", self.files_per_batch)
                    .parquet(str(folder)))

    pipeline = KafkaPipeline(spark, fake.datasets, None, [], tmp_path)
    module._spark = lambda: pipeline
    module._dbutils = lambda _: types.SimpleNamespace(secrets=types.SimpleNamespace(get=lambda scope, key: "x"))
    out = {}
    for table in (module.SILVER_TABLE, module.QUARANTINE_TABLE, module.GOLD_TABLE):
        name = "dlt_" + table.replace(".", "_")
        pipeline.files_per_batch = 1 if table == module.GOLD_TABLE else 2
        query = (pipeline.evaluate(table).writeStream.format("memory").queryName(name).outputMode("append")
                 .option("checkpointLocation", str(tmp_path / "chk" / name)).trigger(availableNow=True).start())
        query.awaitTermination()
        out[table] = spark.table(name)
    assert asked[0].format == "kafka" and asked[0].options["subscribe"] == "orders.v3"
    assert asked[0].options["kafka.bootstrap.servers"] == "b-1.msk.acme.io:9096"

    silver, quarantine, gold = out[module.SILVER_TABLE], out[module.QUARANTINE_TABLE], out[module.GOLD_TABLE]
    types_of = dict(silver.dtypes)
    assert types_of["customer"] == "struct<id:string,tier:string>" and types_of["event_ts"] == "timestamp"
    for role, frame in (("silver", silver), ("gold", gold)):
        table = design.table_by_role(role)
        produced = dict(frame.dtypes)
        for column, sql_type in table.columns.items():  # what later commands' SQL reads is really there
            assert column in produced, (role, column, sorted(produced))
            assert produced[column] == spark_type(sql_type), (role, column, produced[column], sql_type)
    assert sorted(r["order_id"] for r in silver.collect()) == ["o1", "o2", "o3", "o6"]
    assert {r["customer"]["tier"] for r in silver.collect()} == {"gold"}
    # The refund fails the user's rule on a payload column; the unparseable value has no event time.
    rejected = {r["payload"]: r["failed_rules"] for r in quarantine.collect()}
    assert rejected == {json.dumps({"order_id": "o4", "event_ts": "2026-12-04T10:02:00Z",
                                    "customer": {"id": "c4", "tier": "gold"}, "amount": -3.0}): ["positive_amount"],
                        "{not json": ["has_event_time", "positive_amount"]}  # NULL fails a rule too
    windows = [r.asDict() for r in gold.collect()]
    at = dt.datetime(2026, 12, 4, 10, 0)
    assert windows == [{"window_start": at, "window_end": at + dt.timedelta(minutes=5), "events": 3,
                        "total_amount": decimal.Decimal("35.75"), "last_event_time": at + dt.timedelta(minutes=3)}]


def test_autoloader_csv_reads_the_header_line_as_column_names(spark, tmp_path: Path) -> None:
    from tests.spark.local_edges import RecordingSession

    answers = {**defaults("autoloader-streaming-ingest"), **CUSTOM["autoloader-streaming-ingest"][0]}
    assert answers["file_format"] == "csv"
    module, _ = generated("autoloader-streaming-ingest", answers, "autoloader_ingest.py", tmp_path)
    session = RecordingSession()
    module.read_stream(session)
    options = session.recorded.options
    landing = tmp_path / "csv_landing"
    landing.mkdir()
    (landing / "clicks.csv").write_text("click_id,ts\nc1,2026-12-04T10:00:00Z\n", encoding="utf-8")
    # Auto Loader passes the format's own options to the CSV reader: the same reader, locally.
    plain = {k: v for k, v in options.items() if not k.startswith("cloudFiles.")}
    frame = spark.read.format(options["cloudFiles.format"]).options(**plain).schema(module.SCHEMA_HINTS).load(str(landing))
    rows = module.transform(frame.select("*", "_metadata")).collect()
    assert [(r[module.ID_COLUMN], r["_malformed"]) for r in rows] == [("c1", False)]


def test_kafka_bronze_keeps_a_lagging_partitions_records(spark, tmp_path: Path) -> None:
    """Catch-up from earliest: a partition whose records are hours older than another's is read a batch later.

    Bronze must keep them (only producer retries are dropped); a watermark on the Kafka timestamp dropped them as late.
    """
    module, _ = generated("kafka-connector-setup", defaults("kafka-connector-setup"), "kafka_source.py", tmp_path)
    folder = tmp_path / "catch_up"
    schema = "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"

    def record(event_id: str, partition: int, offset: int, hour: int) -> tuple:
        at = dt.datetime(2026, 12, 4, hour, 0, tzinfo=dt.UTC)
        body = json.dumps({"event_id": event_id, "event_time": at.isoformat(), "amount": 1.0}).encode()
        return (event_id.encode(), body, "orders", partition, offset, at)

    batches = [[record("a", 0, 10, 12), record("a", 0, 11, 12)],  # a producer retry: one copy is kept
               [record("c", 0, 12, 12)],
               # The lagging partition, three hours older (late filtering uses the watermark one batch behind).
               [record("b", 1, 5, 9)]]
    for n, rows in enumerate(batches):
        before = set(folder.glob("*.parquet"))
        spark.createDataFrame(rows, schema).coalesce(1).write.mode("append").parquet(str(folder))
        for path in set(folder.glob("*.parquet")) - before:  # the file source reads oldest first: one file a batch
            os.utime(path, (1_000_000 + n * 1000, 1_000_000 + n * 1000))
    name = "catch_up_bronze"
    query = (module.transform(spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(folder)))
             .writeStream.format("memory").queryName(name).option("checkpointLocation", str(tmp_path / "chk_catch_up"))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    assert sorted(r["event_id"] for r in spark.table(name).collect()) == ["a", "b", "c"]
