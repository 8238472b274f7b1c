"""Run a generated stream module on local Spark with its edges swapped, and check what it claims.

A module's claims are read from its code: ``withWatermark`` before a stateful
operator (late rows are dropped — ``numRowsDroppedByWatermark`` — and state
stays bounded), ``dropDuplicatesWithinWatermark`` (the duplicates fed are removed),
``write_batch`` (an idempotent foreachBatch sink: a crash after the write and
a restart from the checkpoint leave no duplicates and no gaps), a rate limit in
``read_stream`` (no batch reads more), a DLQ table (bad rows are routed there,
none lost).

Every module sees the same scenario, in five waves of event time:

    A  on-time rows, two ids twice                        (T0 .. T0+80 s)
    B  duplicates of A's ids, new ids [, bad rows]        (T0+1 .. 5 min)
    C  rows ten days later: the watermark jumps
    E  more rows ten days later: A-B state is evicted
    D  rows from the first minutes again: late            (T0+90 s)

(E sits between C and D because Spark judges a row late against the
watermark of the *previous* batch, so the jump must be a batch old.)

Run 1 serves A-B (a module with ``write_batch`` crashes right after writing
batch 1, before Spark commits it); run 2 restarts from the checkpoint and
serves everything. Both runs use ``availableNow`` so they end with the data.

For an aggregation Spark counts ``numRowsDroppedByWatermark`` after the
partial aggregation (late rows of one group count once), so the check asks
for at least one and at most all of them, and the windows' totals prove that
none of the late rows was counted.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import inspect
import json
import os
import re
import sys
import time
import types
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.spark.local_edges import (
    RATE_LIMIT_OPTIONS,
    LocalTables,
    RecordedSource,
    RecordingSession,
    databricks_modules,
    local_delta_writes,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SMALL_LIMIT = {"rows": 10, "files": 2}  # the module's rate limit, patched down so the scenario spans batches
RUN_TIMEOUT_S = 180
OSS_ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
DATABRICKS_ROCKSDB = "com.databricks.sql.streaming.state.RocksDBStateStoreProvider"


class InjectedCrash(RuntimeError):
    """Raised after a batch was written and before Spark commits it (a driver dying at the worst time)."""


@dataclass
class Check:
    """One property checked."""

    name: str
    passed: bool
    detail: str


@dataclass
class Outcome:
    """What running a module showed."""

    module: str
    claims: list[str]
    checks: list[Check] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it ran."""
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line per check, for assertion messages."""
        lines = [f"{self.module}: claims {', '.join(self.claims) or 'none'}"]
        lines += [f"  {'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- loading a module -------------------------------------------------------------------


def load_module(path: Path, name: str | None = None) -> types.ModuleType:
    """Import a generated file under a unique name (importing must not start Spark)."""
    name = name or f"generated_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _constant(module: types.ModuleType, *names: str, default: str | None = None) -> str | None:
    return next((getattr(module, n) for n in names if isinstance(getattr(module, n, None), str)), default)


@dataclass
class Shape:
    """The column names and claims of one module."""

    id_col: str
    time_col: str
    group_col: str | None
    claims: list[str]
    aggregates: bool
    merges: bool
    dlq_table: str | None
    target_table: str | None


def shape_of(module: types.ModuleType) -> Shape:
    """Read a module's column constants and its claims from its code."""
    transform = inspect.getsource(module.transform)
    write_batch = inspect.getsource(module.write_batch) if hasattr(module, "write_batch") else ""
    claims = []
    aggregates = "groupBy(" in transform
    # A watermark on the ingest time (processing time) bounds state but never makes a row late: no late-row claim.
    if re.search(r"withWatermark\((?![\"']_?ingest_ts[\"'])", transform):
        claims.append("watermark")
    if "dropDuplicatesWithinWatermark" in transform:
        claims.append("dedup")
    if write_batch:
        claims.append("idempotent-sink")
    else:
        claims.append("restart")
    if "DLQ_TABLE" in write_batch:
        claims.append("dlq")
    return Shape(
        id_col=_constant(module, "ID_KEY", "ID_COLUMN", "DEDUP_KEY", default="event_id"),
        time_col=_constant(module, "TIME_FIELD", "EVENT_TIME", default="event_time"),
        group_col=_constant(module, "GROUP_KEY"),
        claims=claims,
        aggregates=aggregates,
        merges=".merge(" in write_batch,
        dlq_table=_constant(module, "DLQ_TABLE") if "DLQ_TABLE" in write_batch else None,
        target_table=_constant(module, "TARGET_TABLE"),
    )


# -- the scenario -----------------------------------------------------------------------


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def scenario(shape: Shape, bad_rows: bool) -> list[list[dict[str, Any]]]:
    """The five waves A, B, C, E, D as rows of the module's columns (``seq`` is unique per row fed)."""
    seq = iter(range(10_000))

    def row(event_id: str, moment: dt.datetime | None, wave: str) -> dict[str, Any]:
        data = {"seq": next(seq), shape.id_col: event_id, shape.time_col: _iso(moment), "wave": wave,
                "payload": f"payload-{event_id}"}
        if shape.group_col:
            data[shape.group_col] = f"d{int(event_id[1:]) % 3}"
        return data

    second = dt.timedelta(seconds=1)
    a = [row(f"e{i}", T0 + 10 * i * second, "A") for i in range(8)]
    a += [row(f"e{i}", T0 + (10 * i + 5) * second, "A") for i in range(2)]
    b = [row(f"e{i}", T0 + (10 * i + 60) * second, "B") for i in range(2, 5)]
    b += [row(f"f{i}", T0 + (120 + 20 * i) * second, "B") for i in range(6)]
    if bad_rows:
        b += [row(f"b{i}", None, "B") for i in range(2)]
    c = [row(f"g{i}", T0 + dt.timedelta(days=10) + i * second, "C") for i in range(5)]
    e = [row(f"k{i}", T0 + dt.timedelta(days=10, minutes=1) + i * second, "E") for i in range(3)]
    d = [row(f"h{i}", T0 + (90 + i) * second, "D") for i in range(4)]
    return [a, b, c, e, d]


# -- local sources ----------------------------------------------------------------------


FILE_SCHEMA_EXTRA = "seq long, wave string, payload string"


def _file_schema(shape: Shape, rescued: bool) -> str:
    columns = [f"`{shape.id_col}` string", f"`{shape.time_col}` timestamp", FILE_SCHEMA_EXTRA]
    if shape.group_col:
        columns.append(f"`{shape.group_col}` string")
    if rescued:
        columns.append("_rescued_data string")
    return ", ".join(columns)


class LocalSource:
    """The module's source, swapped: se_arrivals for Kafka / Event Hubs / Kinesis, JSON files otherwise."""

    def __init__(self, spark: SparkSession, recorded: RecordedSource, shape: Shape, waves: list[list[dict]],
                 folder: Path, malformed: int = 0) -> None:
        self.spark, self.recorded, self.shape, self.waves = spark, recorded, shape, waves
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.kind = {"kafka": "kafka", "kinesis": "kinesis", "cloudFiles": "files"}.get(recorded.format or "", "table")
        self.malformed = malformed
        self.limit = self._limit()
        # A wave is one batch: as many files as the module's (lowered) limit admits, one when the limit is large.
        small = self.kind == "files" and self.limit and self.limit <= SMALL_LIMIT["files"]
        self.files_per_wave = self.limit if small else 1
        self.files_written = 0
        self.rows_per_file: list[int] = []

    def _limit(self) -> int | None:
        for key in RATE_LIMIT_OPTIONS:
            if key in self.recorded.options and "Bytes" not in key:
                return int(float(self.recorded.options[key]))
        return None

    def records(self) -> Path:
        """The waves as se_arrivals records (Kafka key = the id, timestamp = the event time)."""
        path = self.folder / "records.json"
        chunks = [[{"key": r[self.shape.id_col], "value": json.dumps(r), "timestamp": r[self.shape.time_col]}
                   for r in wave] for wave in self.waves]
        path.write_text(json.dumps({"chunks": chunks}))
        return path

    def publish(self, upto: int) -> None:
        """Make waves ``[0, upto)`` visible (file sources: write their files, oldest first)."""
        if self.kind in ("kafka", "kinesis"):
            return
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        for index in range(len(self.rows_per_file) // self.files_per_wave, upto):
            wave = self.waves[index]
            lines = [json.dumps(r) for r in wave]
            if index == 1 and self.malformed:
                lines += ['{"broken json'] * self.malformed  # Auto Loader rescues these; here the corrupt column does
            size = -(-len(lines) // self.files_per_wave)
            for part in range(self.files_per_wave):
                chunk = lines[part * size:(part + 1) * size]
                path = data / f"wave{index}-part{part}.json"
                path.write_text("\n".join(chunk) + "\n")
                # The file source orders by modification time: make the waves' order explicit.
                stamp = time.time() - 10_000 + self.files_written
                os.utime(path, (stamp, stamp))
                self.files_written += 1
                self.rows_per_file.append(len(chunk))

    def stream(self, upto: int) -> DataFrame:
        """The streaming DataFrame the module's ``transform`` receives."""
        if self.kind in ("kafka", "kinesis"):
            pytest.importorskip("pyarrow", reason="pyarrow is not installed: the Kafka / Kinesis stand-in is a "
                                                  "Python data source, which exchanges rows as Arrow batches")
            reader = (self.spark.readStream.format("se_arrivals").option("shape", self.kind)
                      .option("records", str(self.records())).option("upto", upto)
                      .option("topic", self.recorded.options.get("subscribe")
                              or self.recorded.options.get("streamName", "events")))
            if self.limit:
                reader = reader.option("maxOffsetsPerTrigger", self.limit)
            return reader.load()
        self.publish(upto)
        reader = (self.spark.readStream.schema(_file_schema(self.shape, self.kind == "files"))
                  .option("maxFilesPerTrigger", self.files_per_wave))
        if self.kind == "files":
            reader = reader.option("columnNameOfCorruptRecord", "_rescued_data")
        return reader.json(str(self.folder / "data"))

    def static(self) -> DataFrame:
        """Every row fed, as a batch DataFrame of the same schema (for expectations of stateless modules)."""
        if self.kind in ("kafka", "kinesis"):
            rows = [r for wave in self.waves for r in wave]
            if self.kind == "kafka":
                data = [(r[self.shape.id_col].encode(), json.dumps(r).encode(), "events", 0, i,
                         dt.datetime.fromisoformat(r[self.shape.time_col]) if r[self.shape.time_col] else None, 0)
                        for i, r in enumerate(rows)]
                schema = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, " \
                         "timestampType int"
            else:
                data = [(r[self.shape.id_col], json.dumps(r).encode(), "events", "shardId-0", f"{i:020d}",
                         dt.datetime.fromisoformat(r[self.shape.time_col]) if r[self.shape.time_col] else None)
                        for i, r in enumerate(rows)]
                schema = ("partitionKey string, data binary, stream string, shardId string, sequenceNumber string, "
                          "approximateArrivalTimestamp timestamp")
            return self.spark.createDataFrame(data, schema)
        reader = self.spark.read.schema(_file_schema(self.shape, self.kind == "files"))
        if self.kind == "files":
            reader = reader.option("columnNameOfCorruptRecord", "_rescued_data")
        return reader.json(str(self.folder / "data"))


# -- reading results ---------------------------------------------------------------------


def seqs(df: DataFrame) -> list[int]:
    """The ``seq`` of every output row: a column, or a field of a JSON column (value, body, payload)."""
    if "seq" in df.columns:
        column = F.col("seq")
    else:
        text = next((c for c in ("value", "body", "payload", "data") if c in df.columns), None)
        if text is None:
            return []
        column = F.get_json_object(F.col(text).cast("string"), "$.seq")
    return [int(r[0]) for r in df.select(column.alias("s")).collect() if r[0] is not None]


def _dropped(progress: list[dict[str, Any]]) -> int:
    return sum(op.get("numRowsDroppedByWatermark", 0) for p in progress for op in p.get("stateOperators", []))


def _state_rows(progress: dict[str, Any]) -> int:
    return sum(op.get("numRowsTotal", 0) for op in progress.get("stateOperators", []))


# -- running ------------------------------------------------------------------------------


def _patch_rate_limit(module: types.ModuleType, recorded: RecordedSource, notes: list[str]) -> None:
    """Lower the module's rate-limit constant so the small scenario spans several batches."""
    for key, value in recorded.rate_limits().items():
        if "Bytes" in key:
            continue
        unit = "files" if "Files" in key else "rows"
        for name, constant in vars(module).items():
            if name.isupper() and isinstance(constant, int) and not isinstance(constant, bool) \
                    and str(constant) == value:
                setattr(module, name, SMALL_LIMIT[unit])
                notes.append(f"{name}={constant} ({key}) lowered to {SMALL_LIMIT[unit]} for the small scenario")
                return
        notes.append(f"{key}={value} is a literal in read_stream, not a constant: kept")


def _session_settings(module: types.ModuleType, notes: list[str]) -> dict[str, str]:
    """The module's ``configure(spark)`` settings, mapped to what runs locally."""
    if not hasattr(module, "configure"):
        return {}
    if isinstance(getattr(module, "SHUFFLE_PARTITIONS", None), str | int):
        notes.append(f"SHUFFLE_PARTITIONS={module.SHUFFLE_PARTITIONS} lowered to 2 (two local cores)")
        module.SHUFFLE_PARTITIONS = "2" if isinstance(module.SHUFFLE_PARTITIONS, str) else 2
    recorder = RecordingSession()
    module.configure(recorder)
    settings = dict(recorder.conf.values)
    key = "spark.sql.streaming.stateStore.providerClass"
    if settings.get(key) == DATABRICKS_ROCKSDB:
        settings[key] = OSS_ROCKSDB  # the same RocksDB state store under its open-source name
        notes.append("Databricks RocksDB provider mapped to open-source Spark's RocksDBStateStoreProvider")
    return settings


def _await(query: Any) -> str | None:
    """Wait for an availableNow query; the error text when it failed."""
    try:
        finished = query.awaitTermination(RUN_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a StreamingQueryException carries the sink's error
        return str(exc)
    if not finished:
        query.stop()
        return f"no end within {RUN_TIMEOUT_S} s"
    return None


def run_module(spark: SparkSession, module: types.ModuleType, workdir: Path, name: str = "",
               claims: list[str] | None = None) -> Outcome:
    """Run ``module`` through the scenario in two runs and check its claims.

    Args:
        spark: the local session.
        module: the generated module (its constants may be patched: see the notes of the outcome).
        workdir: an empty folder for the source files, checkpoint and tables.
        name: the module's name in the report.
        claims: the claims to hold it to (default: those its code makes; a broken copy keeps the original's).
    """
    began = time.monotonic()
    shape = shape_of(module)
    if claims is not None:
        shape.claims = list(claims)
    outcome = Outcome(module=name or module.__name__, claims=list(shape.claims))
    recorder = RecordingSession()
    with databricks_modules():
        module.read_stream(recorder)
        _patch_rate_limit(module, recorder.recorded, outcome.notes)
        recorder = RecordingSession()
        module.read_stream(recorder)
    if recorder.secrets_read:
        outcome.notes.append(f"secrets read through dbutils: {recorder.secrets_read}")
    recorded = recorder.recorded
    if recorded.rate_limits():
        outcome.claims.append("rate-limit")
    malformed = 2 if recorded.format == "cloudFiles" and "dlq" in shape.claims else 0
    waves = scenario(shape, bad_rows="dlq" in shape.claims and recorded.format != "cloudFiles")
    source = LocalSource(spark, recorded, shape, waves, workdir / "source", malformed)
    tables = LocalTables(spark, workdir / "tables")
    settings = _session_settings(module, outcome.notes)
    # State is evicted in the next data batch instead of an extra empty one: fewer batches, same results.
    settings.setdefault("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    saved = {k: spark.conf.get(k, None) for k in settings}
    checkpoint, sink = workdir / "checkpoint", workdir / "sink"
    batches_written: list[int] = []

    def start(upto: int, crash_at: int | None) -> Any:
        frame = module.transform(source.stream(upto))
        writer = frame.writeStream.option("checkpointLocation", str(checkpoint)).trigger(availableNow=True)
        if hasattr(module, "write_batch"):
            def write_batch(batch_df: DataFrame, batch_id: int) -> None:
                module.write_batch(batch_df, batch_id)
                batches_written.append(batch_id)
                if crash_at is not None and batch_id == crash_at:
                    raise InjectedCrash(f"crash after writing batch {batch_id}, before its commit")
            return writer.foreachBatch(write_batch).start()
        mode = _constant(module, "OUTPUT_MODE", default="append")
        return writer.format("parquet").outputMode(mode).option("path", str(sink)).start()

    errors = []
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        with ExitStack() as stack:
            stack.enter_context(databricks_modules(tables))
            stack.enter_context(local_delta_writes(tables))
            crash_at = 1 if hasattr(module, "write_batch") else None
            for upto, crash in ((2, crash_at), (len(waves), None)):
                query = start(upto, crash)
                error = _await(query)
                outcome.progress += [json.loads(p.json) for p in query.recentProgress]
                if error and not (crash is not None and "InjectedCrash" in error):
                    errors.append(error.splitlines()[0][:500])
                    break
    except (PySparkException, NotImplementedError, LookupError) as exc:
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:500]}")
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
    outcome.checks.append(Check("runs", not errors, "; ".join(errors) or
                                f"{len(outcome.progress)} batches over two runs"))
    if not errors:
        _check(outcome, spark, module, shape, source, tables, sink, waves, batches_written)
        if settings.get("spark.sql.streaming.stateStore.providerClass") == OSS_ROCKSDB:
            outcome.checks.append(_rocksdb_check(outcome.progress))
    outcome.seconds = time.monotonic() - began
    return outcome


# -- the checks ------------------------------------------------------------------------------


def _output(module: types.ModuleType, shape: Shape, tables: LocalTables, sink: Path, spark: SparkSession) -> DataFrame:
    if hasattr(module, "write_batch"):
        return tables.read(shape.target_table or "target")
    return spark.read.parquet(str(sink))


def _check(outcome: Outcome, spark: SparkSession, module: types.ModuleType, shape: Shape, source: LocalSource,
           tables: LocalTables, sink: Path, waves: list[list[dict]], batches_written: list[int]) -> None:
    rows = [r for wave in waves for r in wave]
    good = [r for r in rows if r[shape.time_col] is not None]
    bad = [r for r in rows if r[shape.time_col] is None]
    late = list(waves[4]) if "watermark" in shape.claims else []
    kept = [r for r in good if r not in late]
    output = _output(module, shape, tables, sink, spark)
    claims = outcome.claims

    if "watermark" in claims:
        dropped = _dropped(outcome.progress)
        exact = dropped == len(late) or shape.aggregates  # aggregations count after the partial aggregation
        outcome.checks.append(Check(
            "watermark-drops-late-rows", 0 < dropped <= len(late) and exact,
            f"numRowsDroppedByWatermark {dropped}, late rows fed {len(late)}"))
        last = outcome.progress[-1] if outcome.progress else {}
        operators = max(1, len(last.get("stateOperators", [])))
        # After C moved the watermark ten days on, only the keys (and windows) of C and E may remain.
        bound = (len(waves[2]) + len(waves[3]) + 3) * operators
        state = _state_rows(last)
        outcome.checks.append(Check(
            "state-bounded", state <= bound,
            f"state rows after the last batch {state} (bound {bound}; {len({r[shape.id_col] for r in rows})} keys fed)"))

    if shape.aggregates:
        _check_windows(outcome, output, shape, kept, waves)
        return

    if "dedup" in claims or shape.merges:
        # Keyed sinks: one row per id, every id that was not late, nothing else.
        fed_ids = [r[shape.id_col] for r in kept]
        duplicates_fed = len(fed_ids) - len(set(fed_ids))
        out_ids = [r[0] for r in output.select(shape.id_col).collect()]
        expected = set(fed_ids)
        repeated = sorted({i for i in out_ids if out_ids.count(i) > 1})
        missing, extra = sorted(expected - set(out_ids)), sorted(set(out_ids) - expected)
        name = "dedup-removes-duplicates" if "dedup" in claims else "merge-one-row-per-key"
        outcome.checks.append(Check(
            name, not repeated and duplicates_fed > 0,
            f"{duplicates_fed} duplicate rows fed; ids repeated in the output: {repeated or 'none'}"))
        outcome.checks.append(Check(
            "exactly-once", not repeated and not missing and not extra,
            f"{len(set(out_ids))} ids written of {len(expected)} expected; repeated {repeated or 'none'}, "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}" + _replay_note(batches_written)))
        if shape.merges and "dedup" not in claims and shape.time_col in output.columns:
            newest: dict[str, str] = {}
            for r in kept:
                newest[r[shape.id_col]] = max(newest.get(r[shape.id_col], ""), r[shape.time_col])
            written = output.select(shape.id_col, F.date_format(shape.time_col, "yyyy-MM-dd'T'HH:mm:ss'Z'")).collect()
            wrong = sorted(i for i, t in written if i in newest and newest[i] != t)
            outcome.checks.append(Check("merge-newer-wins", not wrong,
                                        f"ids not at their newest event time: {wrong or 'none'}"))
    else:
        # Row sinks: every row the transform keeps (computed on the same rows as a batch), exactly once.
        out_seqs = seqs(output)
        expected_seqs = set(seqs(module.transform(source.static())))
        repeated = sorted({s for s in out_seqs if out_seqs.count(s) > 1})
        missing, extra = sorted(expected_seqs - set(out_seqs)), sorted(set(out_seqs) - expected_seqs)
        outcome.checks.append(Check(
            "exactly-once", bool(expected_seqs) and not repeated and not missing and not extra,
            f"{len(out_seqs)} rows written, {len(expected_seqs)} expected; repeated {repeated or 'none'}, "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}" + _replay_note(batches_written)))

    if "dlq" in claims and shape.dlq_table:
        dead = tables.read(shape.dlq_table) if tables.exists(shape.dlq_table) else None
        count = dead.count() if dead is not None else 0
        wanted = len(bad) or source.malformed
        outcome.checks.append(Check("dlq-routes-bad-rows", count == wanted and wanted > 0,
                                    f"{count} rows in {shape.dlq_table}, {wanted} bad rows fed"))

    if "rate-limit" in claims:
        _check_rate_limit(outcome, source)


def _rocksdb_check(progress: list[dict[str, Any]]) -> Check:
    """The state store the module configures is the one the operators report."""
    keys = {k for p in progress for op in p.get("stateOperators", []) for k in op.get("customMetrics", {})}
    rocksdb = sorted(k for k in keys if k.lower().startswith("rocksdb"))
    return Check("rocksdb-state-store", bool(rocksdb), f"RocksDB metrics reported: {', '.join(rocksdb[:3]) or 'none'}")


def _replay_note(batches_written: list[int]) -> str:
    replayed = sorted({b for b in batches_written if batches_written.count(b) > 1})
    return f"; batches written twice (replayed after the crash): {replayed}" if replayed else ""


def _check_windows(outcome: Outcome, output: DataFrame, shape: Shape, kept: list[dict], waves: list[list[dict]]) -> None:
    """Windowed aggregations: every closed window once, counting exactly the rows that were not late."""
    counted = [r for r in kept if r["wave"] in ("A", "B")]  # C's and E's windows are still open at the end
    if "dedup" in outcome.claims:
        firsts: dict[str, dict] = {}
        for r in counted:
            firsts.setdefault(r[shape.id_col], r)
        counted = list(firsts.values())
    keys = ["window_start"] + ([shape.group_col] if shape.group_col and shape.group_col in output.columns else [])
    rows = output.select(*keys, "events").collect()
    seen = [tuple(r[k] for k in keys) for r in rows]
    repeated = sorted({str(s) for s in seen if seen.count(s) > 1})
    total = sum(r["events"] for r in rows)
    outcome.checks.append(Check(
        "exactly-once", not repeated and total == len(counted),
        f"{len(rows)} windows with {total} events, {len(counted)} expected; windows written twice: "
        f"{repeated or 'none'}"))


def _check_rate_limit(outcome: Outcome, source: LocalSource) -> None:
    limit = source.limit
    sizes = [p["numInputRows"] for p in outcome.progress if p.get("numInputRows")]
    if source.kind in ("kafka", "kinesis"):
        over = [s for s in sizes if s > (limit or 0)]
        outcome.checks.append(Check("rate-limit-honoured", bool(limit) and not over,
                                    f"rows per batch {sizes} against maxOffsetsPerTrigger {limit}"))
        return
    most = sorted(source.rows_per_file, reverse=True)[: limit or 1]
    ceiling = sum(most) + source.malformed
    over = [s for s in sizes if s > ceiling]
    outcome.checks.append(Check("rate-limit-honoured", bool(limit) and not over,
                                f"rows per batch {sizes}; {limit} files per trigger hold at most {ceiling} rows"))
