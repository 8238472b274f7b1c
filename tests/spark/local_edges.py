"""Local stand-ins for the edges a generated pipeline has on Databricks.

The Kafka, Event Hubs, Kinesis and Delta jars cannot be downloaded here, and
Auto Loader exists only on Databricks, so the harness swaps a module's edges
for local ones that keep the semantics its claims rest on:

- ``se_arrivals``: a Python streaming data source shaped like Kafka (key, value,
  topic, partition, offset, timestamp) or Kinesis (data, partitionKey, shardId,
  sequenceNumber, approximateArrivalTimestamp). It serves a fixed list of
  records in waves, honours ``maxOffsetsPerTrigger`` (admission control) and
  reports its latest offset, so "offsets behind latest" and rate limits are
  real. With ``rowsPerSecond`` it is a wall-clock producer instead (for the
  progress fixtures).
- ``RecordingSession``: a stand-in ``SparkSession`` that records what
  ``read_stream(spark)`` asks for (format, options, path or table), so the
  local source is configured by the module's own options.
- ``LocalTables`` / ``DeltaTable``: Delta's table operations the generated
  ``write_batch`` functions use — appends with ``txnAppId``/``txnVersion``
  (a version at or below the last one committed for that app id is skipped, as
  Delta documents) and ``MERGE`` with ``whenMatchedUpdateAll`` /
  ``whenNotMatchedInsertAll`` — on parquet folders.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows, SupportsTriggerAvailableNow

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCHEMA = ("key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
                "timestampType int")
KINESIS_SCHEMA = ("partitionKey string, data binary, stream string, shardId string, sequenceNumber string, "
                  "approximateArrivalTimestamp timestamp")
RATE_LIMIT_OPTIONS = ("maxOffsetsPerTrigger", "cloudFiles.maxFilesPerTrigger", "maxFilesPerTrigger",
                      "maxBytesPerTrigger", "cloudFiles.maxBytesPerTrigger", "maxRecordsPerFetch")


def local_spark(app: str = "streaming-engineer-tests") -> SparkSession:
    """A small local session: two cores, no UI, two shuffle partitions, this interpreter for Python workers.

    Workers must run this interpreter (it has pyarrow) and import this package,
    so both go into the environment before the JVM starts.
    """
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    paths = [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    spark = (
        SparkSession.builder.master("local[2]").appName(app)
        # Tables without a location go to a temporary folder, never into the checkout (parallel test workers
        # and a clean `git status` both need that).
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="se-spark-warehouse-"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        # Progress for every batch, including the no-data batches that advance the watermark.
        .config("spark.sql.streaming.noDataProgressEventInterval", "0")
        .config("spark.sql.streaming.minBatchesToRetain", "10")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.dataSource.register(ArrivalsSource)
    return spark


# -- se_arrivals: a Kafka- or Kinesis-shaped source --------------------------------------


def _timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)


class ArrivalsSource(DataSource):
    """``spark.readStream.format("se_arrivals")``.

    Options:
        shape: ``kafka`` (default) or ``kinesis``.
        records: a JSON file ``{"chunks": [[record, ...], ...]}``; a record has
            ``value`` (text), optional ``key`` and ``timestamp`` (ISO-8601).
            Each chunk arrives as one wave: no batch spans two chunks.
        upto: serve only the first ``upto`` chunks (a later run can serve more).
        partitions: partitions (Kafka) or shards (Kinesis); records are dealt round-robin.
        maxOffsetsPerTrigger: at most this many records per batch.
        rowsPerSecond: instead of ``records``, produce this many records a second
            of wall-clock time (a live producer).
        topic: the topic or stream name.
    """

    @classmethod
    def name(cls) -> str:
        """The format name."""
        return "se_arrivals"

    def schema(self) -> str:
        """Kafka's or Kinesis's record schema."""
        return KINESIS_SCHEMA if self.options.get("shape") == "kinesis" else KAFKA_SCHEMA

    def streamReader(self, schema: Any) -> DataSourceStreamReader:  # noqa: N802 - Spark's name
        """The reader for one query run."""
        return ArrivalsReader(dict(self.options))


class ArrivalsReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Offsets are ``{"0": n0, "1": n1, ...}``; the consumed records are always a prefix of the global order."""

    def __init__(self, options: dict[str, str]) -> None:
        options = {str(k).lower(): v for k, v in options.items()}  # Spark's options are case-insensitive
        self.options = options
        self.parts = int(options.get("partitions", "2"))
        self.limit = int(options["maxoffsetspertrigger"]) if "maxoffsetspertrigger" in options else None
        self.rate = float(options["rowspersecond"]) if "rowspersecond" in options else None
        self.started = time.time()
        self.records: list[dict[str, Any]] = []
        self.chunk_ends: list[int] = []
        if self.rate is None:
            chunks = json.loads(Path(options["records"]).read_text(encoding="utf-8"))["chunks"]
            chunks = chunks[: int(options.get("upto", len(chunks)))]
            for chunk in chunks:
                self.records.extend(chunk)
                self.chunk_ends.append(len(self.records))
        self.frozen_total: int | None = None

    # The global position g (records consumed) maps to per-partition offsets by dealing round-robin.
    def _offsets(self, g: int) -> dict[str, int]:
        return {str(p): g // self.parts + (1 if p < g % self.parts else 0) for p in range(self.parts)}

    def _available(self) -> int:
        if self.frozen_total is not None:
            return self.frozen_total
        if self.rate is not None:
            return int((time.time() - self.started) * self.rate)
        return len(self.records)

    def initialOffset(self) -> dict:  # noqa: N802 - Spark's names below
        """Nothing consumed."""
        return self._offsets(0)

    def getDefaultReadLimit(self) -> Any:  # noqa: N802
        """``maxOffsetsPerTrigger`` as a row limit."""
        return ReadMaxRows(self.limit) if self.limit else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:  # noqa: N802
        """availableNow: serve what is there now, then stop."""
        self.frozen_total = self._available()

    def latestOffset(self, start: dict, limit: Any) -> dict:  # noqa: N802
        """The next wave's end, capped by the read limit."""
        g = sum(int(v) for v in start.values())
        end = self._available()
        wave_end = next((e for e in self.chunk_ends if e > g), end)
        end = min(end, wave_end)
        if isinstance(limit, ReadMaxRows):
            end = min(end, g + limit.max_rows)
        return self._offsets(max(g, end))

    def reportLatestOffset(self) -> dict:  # noqa: N802
        """Everything published so far (what "offsets behind latest" is measured against)."""
        return self._offsets(self._available())

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        """One partition per Kafka partition (Kinesis shard), carrying its records."""
        first, last = sum(int(v) for v in start.values()), sum(int(v) for v in end.values())
        topic = self.options.get("topic", "events")
        split: list[list[tuple]] = [[] for _ in range(self.parts)]
        for g in range(first, last):
            p, offset = g % self.parts, g // self.parts
            record = self.records[g] if self.rate is None else self._generated(g)
            split[p].append((p, offset, topic, record))
        return [InputPartition(rows) for rows in split if rows]

    def _generated(self, g: int) -> dict[str, Any]:
        arrived = dt.datetime.fromtimestamp(self.started + g / (self.rate or 1), dt.UTC)
        return {"key": f"k{g}", "value": json.dumps({"event_id": f"e{g}", "event_time": arrived.isoformat()}),
                "timestamp": arrived.isoformat()}

    def read(self, partition: InputPartition) -> Iterator[tuple]:
        """The records of one partition, in the configured shape."""
        kinesis = self.options.get("shape") == "kinesis"
        for p, offset, topic, record in partition.value:
            ts = _timestamp(record.get("timestamp"))
            value = (record.get("value") or "").encode("utf-8")
            key = record.get("key")
            if kinesis:
                yield (key or f"pk-{offset}", value, topic, f"shardId-{p:012d}", f"{offset:020d}", ts)
            else:
                yield (key.encode("utf-8") if key else None, value, topic, p, offset, ts, 0)

    def commit(self, end: dict) -> None:
        """Nothing to acknowledge: offsets live in the query's checkpoint."""


# -- what read_stream asks for -------------------------------------------------------


class RecordedSource:
    """What a module's ``read_stream`` asked Spark for."""

    def __init__(self) -> None:
        self.format: str | None = None
        self.options: dict[str, str] = {}
        self.path: str | None = None
        self.table: str | None = None
        self.schema: Any = None

    def rate_limits(self) -> dict[str, str]:
        """The admission-control options set (maxOffsetsPerTrigger, maxFilesPerTrigger, ...)."""
        return {k: v for k, v in self.options.items() if k in RATE_LIMIT_OPTIONS}


class _RecordingReader:
    def __init__(self, recorded: RecordedSource) -> None:
        self._recorded = recorded

    def format(self, name: str) -> _RecordingReader:
        self._recorded.format = name
        return self

    def option(self, key: str, value: Any) -> _RecordingReader:
        self._recorded.options[key] = str(value)
        return self

    def options(self, **options: Any) -> _RecordingReader:
        for key, value in options.items():
            self.option(key, value)
        return self

    def schema(self, schema: Any) -> _RecordingReader:
        self._recorded.schema = schema
        return self

    def load(self, path: str | None = None, **options: Any) -> RecordedSource:
        self.options(**options)
        self._recorded.path = path
        return self._recorded

    def table(self, name: str) -> RecordedSource:
        self._recorded.table = name
        self._recorded.format = self._recorded.format or "delta"
        return self._recorded


class _RecordingConf:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, key: str, value: Any) -> None:
        self.values[key] = str(value)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


class RecordingSession:
    """Stands in for ``SparkSession`` where a module only configures (``read_stream``, ``configure``)."""

    def __init__(self) -> None:
        self.recorded = RecordedSource()
        self.conf = _RecordingConf()
        self.secrets_read: list[tuple[str, str]] = []

    @property
    def readStream(self) -> _RecordingReader:  # noqa: N802 - SparkSession's name
        """A reader that records instead of reading."""
        return _RecordingReader(self.recorded)


class _Secrets:
    def __init__(self, session: Any) -> None:
        self._session = session

    def get(self, scope: str, key: str) -> str:
        if isinstance(self._session, RecordingSession):
            self._session.secrets_read.append((scope, key))
        return f"redacted-{scope}-{key}"


class FakeDBUtils:
    """``pyspark.dbutils.DBUtils`` (Databricks Runtime only): secrets read are recorded, values are fake."""

    def __init__(self, spark: Any) -> None:
        self.secrets = _Secrets(spark)


@contextmanager
def databricks_modules(tables: LocalTables | None = None) -> Iterator[None]:
    """Provide ``pyspark.dbutils`` and ``delta.tables`` for the duration (neither exists off Databricks)."""
    dbutils = types.ModuleType("pyspark.dbutils")
    dbutils.DBUtils = FakeDBUtils  # type: ignore[attr-defined]
    delta = types.ModuleType("delta")
    delta_tables = types.ModuleType("delta.tables")
    delta_tables.DeltaTable = _delta_table_class(tables)  # type: ignore[attr-defined]
    delta.tables = delta_tables  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("pyspark.dbutils", "delta", "delta.tables")}
    sys.modules.update({"pyspark.dbutils": dbutils, "delta": delta, "delta.tables": delta_tables})
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


# -- Delta's table operations on parquet ---------------------------------------------------


class LocalTables:
    """Tables by name in a folder: append (with Delta's idempotent-write rule) and MERGE.

    Each table is a list of parquet folders plus ``_meta.json`` holding the
    folders and, per ``txnAppId``, the last ``txnVersion`` committed. Writes
    go through the session's real writer, never through the patched one.
    """

    def __init__(self, spark: SparkSession, root: Path) -> None:
        self.spark = spark
        self.root = root
        self.writes: list[dict[str, Any]] = []

    def _folder(self, name: str) -> Path:
        return self.root / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)

    def _meta(self, name: str) -> dict[str, Any]:
        path = self._folder(name) / "_meta.json"
        return json.loads(path.read_text()) if path.exists() else {"parts": [], "txn": {}}

    def _save_meta(self, name: str, meta: dict[str, Any]) -> None:
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"._meta-{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, folder / "_meta.json")  # the commit: atomic, like a Delta log entry

    def exists(self, name: str) -> bool:
        """Whether the table has been written."""
        return (self._folder(name) / "_meta.json").exists()

    def read(self, name: str) -> DataFrame:
        """The table's rows."""
        meta = self._meta(name)
        if not meta["parts"]:
            raise LookupError(f"table {name} does not exist (or is empty)")
        return self.spark.read.parquet(*[str(self._folder(name) / part) for part in meta["parts"]])

    def _write(self, df: DataFrame, name: str) -> str:
        part = f"part-{uuid.uuid4().hex[:12]}"
        ORIGINAL_WRITE.fget(df).mode("overwrite").parquet(str(self._folder(name) / part))  # type: ignore[union-attr]
        return part

    def append(self, df: DataFrame, name: str, options: dict[str, str]) -> None:
        """Append, skipping a ``txnVersion`` at or below the last committed for its ``txnAppId``."""
        meta = self._meta(name)
        app, version = options.get("txnAppId"), options.get("txnVersion")
        record = {"table": name, "op": "append", "txn": (app, version), "skipped": False}
        if app is not None and version is not None and int(version) <= int(meta["txn"].get(app, -1)):
            record["skipped"] = True
            self.writes.append(record)
            return
        meta["parts"].append(self._write(df, name))
        if app is not None and version is not None:
            meta["txn"][app] = int(version)
        self._save_meta(name, meta)
        self.writes.append(record)

    def replace(self, df: DataFrame, name: str) -> None:
        """Replace the table's content (a MERGE's result)."""
        meta = self._meta(name)
        meta["parts"] = [self._write(df, name)]
        self._save_meta(name, meta)
        self.writes.append({"table": name, "op": "merge"})


_CONDITION = re.compile(r"^\s*(\w+)\.(\w+)\s*=\s*(\w+)\.(\w+)\s*$")


class _MergeBuilder:
    def __init__(self, table: Any, source: DataFrame, condition: str) -> None:
        self.table, self.source, self.condition = table, source, condition
        self.update_condition: str | None = None
        self.updates = self.inserts = False

    def whenMatchedUpdateAll(self, condition: str | None = None) -> _MergeBuilder:  # noqa: N802 - Delta's names
        self.updates, self.update_condition = True, condition
        return self

    def whenNotMatchedInsertAll(self, condition: str | None = None) -> _MergeBuilder:  # noqa: N802
        if condition:
            raise NotImplementedError("the local MERGE supports whenNotMatchedInsertAll() without a condition")
        self.inserts = True
        return self

    def execute(self) -> None:
        tables: LocalTables = self.table.tables
        name, target_alias = self.table.name, self.table.alias_name
        pairs = [_CONDITION.match(part) for part in re.split(r"\s+AND\s+", self.condition, flags=re.I)]
        if not all(pairs):
            raise NotImplementedError(f"the local MERGE supports key equality conditions only: {self.condition!r}")
        source_alias = next(m.group(3) if m.group(1) == target_alias else m.group(1) for m in pairs)
        if not tables.exists(name):
            # As Delta: a MERGE into a table that does not exist fails (the module must create it first).
            raise RuntimeError(f"[DELTA_MISSING_DELTA_TABLE] {name} is not a Delta table: MERGE needs the target")
        target = tables.read(name)
        columns = target.columns
        joined = target.withColumn("__in_t", F.lit(True)).alias(target_alias).join(
            self.source.select(*columns).withColumn("__in_s", F.lit(True)).alias(source_alias),
            on=F.expr(self.condition), how="full_outer")
        in_t, in_s = F.col(f"{target_alias}.__in_t").isNotNull(), F.col(f"{source_alias}.__in_s").isNotNull()
        take_source = in_s & ~in_t if self.inserts else F.lit(False)
        if self.updates:
            update = F.expr(self.update_condition) if self.update_condition else F.lit(True)
            take_source = take_source | (in_t & in_s & F.coalesce(update, F.lit(False)))
        merged = joined.where(in_t | take_source).select(*[
            F.when(take_source, F.col(f"{source_alias}.{c}")).otherwise(F.col(f"{target_alias}.{c}")).alias(c)
            for c in columns
        ])
        tables.replace(merged.localCheckpoint(), name)  # materialise before the old files are replaced


class _CreateBuilder:
    """``DeltaTable.createIfNotExists(spark).tableName(...).addColumns(schema).execute()`` on the local tables."""

    def __init__(self, spark: Any, tables: LocalTables | None) -> None:
        self.spark, self.tables, self.name, self.schema = spark, tables, "", None

    def tableName(self, name: str) -> _CreateBuilder:  # noqa: N802 - Delta's names
        self.name = name
        return self

    def addColumns(self, schema: Any) -> _CreateBuilder:  # noqa: N802
        self.schema = schema
        return self

    def execute(self) -> None:
        if self.tables is None:
            raise RuntimeError("no local tables configured")
        if not self.tables.exists(self.name):
            self.tables.replace(self.spark.createDataFrame([], self.schema), self.name)


def _delta_table_class(tables: LocalTables | None) -> type:
    class DeltaTable:
        """``delta.tables.DeltaTable`` for the local tables (forName, alias, merge)."""

        def __init__(self, name: str) -> None:
            self.tables, self.name, self.alias_name = tables, name, "t"

        @classmethod
        def forName(cls, spark: Any, name: str) -> DeltaTable:  # noqa: N802 - Delta's name
            if tables is None:
                raise RuntimeError("no local tables configured")
            return cls(name)

        @classmethod
        def createIfNotExists(cls, spark: Any) -> _CreateBuilder:  # noqa: N802 - Delta's name
            return _CreateBuilder(spark, tables)

        def alias(self, name: str) -> DeltaTable:
            self.alias_name = name
            return self

        def toDF(self) -> DataFrame:  # noqa: N802
            return tables.read(self.name)  # type: ignore[union-attr]

        def merge(self, source: DataFrame, condition: str) -> _MergeBuilder:
            return _MergeBuilder(self, source, condition)

    return DeltaTable


class LocalWriter:
    """``DataFrame.write`` while a module's ``write_batch`` runs: Delta writes go to the local tables."""

    def __init__(self, df: DataFrame, tables: LocalTables) -> None:
        self.df, self.tables = df, tables
        self._format, self._mode, self._options = "delta", "errorifexists", {}

    def format(self, name: str) -> LocalWriter:
        self._format = name
        return self

    def mode(self, mode: str) -> LocalWriter:
        self._mode = mode
        return self

    def option(self, key: str, value: Any) -> LocalWriter:
        self._options[key] = str(value)
        return self

    def options(self, **options: Any) -> LocalWriter:
        for key, value in options.items():
            self.option(key, value)
        return self

    def partitionBy(self, *columns: str) -> LocalWriter:  # noqa: N802 - Spark's name
        return self

    def saveAsTable(self, name: str, **_: Any) -> None:  # noqa: N802
        if self._format != "delta":
            raise NotImplementedError(f"local tables stand in for Delta only, not {self._format}")
        if self._mode == "overwrite":
            self.tables.replace(self.df, name)
        else:
            self.tables.append(self.df, name, self._options)

    def save(self, path: str | None = None, **_: Any) -> None:
        self.saveAsTable(path or "unnamed")


def _classic_dataframe() -> type:
    from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

    return ClassicDataFrame


ORIGINAL_WRITE = _classic_dataframe().__dict__["write"]


@contextmanager
def local_delta_writes(tables: LocalTables) -> Iterator[None]:
    """Route ``DataFrame.write`` to the local tables for the duration."""
    cls = _classic_dataframe()
    cls.write = property(lambda df: LocalWriter(df, tables))  # type: ignore[assignment]
    try:
        yield
    finally:
        cls.write = ORIGINAL_WRITE  # type: ignore[assignment]
