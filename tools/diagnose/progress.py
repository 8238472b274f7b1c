"""Reading stream progress: StreamingQueryProgress JSON and the pipeline event log's flow progress.

Three shapes arrive from users, often mixed with unrelated records:

- a ``query.recentProgress`` dump: a JSON array of progress objects;
- a ``StreamingQueryListener`` log: JSON Lines, each a progress object, or an
  event wrapping one (``{"progress": {...}}``, as Spark's own event log writes
  ``QueryProgressEvent``);
- the Lakeflow / DLT event log: rows with ``event_type = 'flow_progress'`` whose
  ``details`` (a JSON string or an object) hold ``flow_progress.metrics``.

Every record becomes one ``Batch``: the few numbers the detectors need, with
``None`` where the source does not report a value (never a guessed zero).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECENT_PROGRESS = "recentProgress"
LISTENER_LOG = "StreamingQueryListener log"
EVENT_LOG = "pipeline event log (flow_progress)"
LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".log", ".txt")

# Source metrics that already say how far behind the source is, by unit (Kafka, Kinesis, Auto Loader).
_LAG_METRICS = (
    ("maxOffsetsBehindLatest", "offsets"),
    ("avgOffsetsBehindLatest", "offsets"),
    ("numFilesOutstanding", "files"),
    ("numBytesOutstanding", "bytes"),
    ("maxMsBehindLatest", "ms"),
    ("avgMsBehindLatest", "ms"),
)
# flow_progress backlog metrics, most telling first.
_BACKLOG_METRICS = (("backlog_records", "records"), ("backlog_files", "files"), ("backlog_bytes", "bytes"),
                    ("backlog_seconds", "seconds"))


class ProgressError(ValueError):
    """A file that holds no stream progress this module can read (the message says why)."""


@dataclass(frozen=True)
class Batch:
    """One micro-batch (or one flow_progress event) of one query.

    Attributes:
        query: the query's name, or its id when unnamed (the flow name for the event log).
        run_id: the run (a restart from the checkpoint starts a new run).
        batch_id: the micro-batch id (the event's position for the event log).
        timestamp: when the trigger started (UTC).
        num_input_rows: rows read by the batch.
        input_rate: rows per second arriving (``inputRowsPerSecond``).
        processed_rate: rows per second processed (``processedRowsPerSecond``).
        duration_ms: the whole trigger (``durationMs.triggerExecution``).
        phases: ``durationMs`` by phase (addBatch, latestOffset, walCommit, ...).
        watermark: the event-time watermark, ``None`` when the query sets none.
        event_time_max: the newest event time in the batch.
        state_rows: rows held by all stateful operators.
        state_rows_removed: rows the operators evicted in this batch.
        state_memory_bytes: memory used by the state stores.
        dropped_by_watermark: rows dropped as later than the watermark.
        state_operators: the stateful operators' names.
        shuffle_partitions: the state's shuffle partitions (fixed by the checkpoint).
        state_provider: ``RocksDB`` or ``HDFS-backed`` when the metrics reveal it.
        lag: how far the source is behind its latest data, in ``lag_unit``.
        lag_unit: offsets | files | bytes | ms | records | seconds.
        output_rows: rows written by the sink (``None`` when not reported).
        offsets_read: Kafka records between the batch's start and end offsets (``None`` for other sources).
        dropped_by_expectations: rows an expectation dropped (event log only).
        origin: the shape the record came in (recentProgress, listener log, event log).
    """

    query: str
    run_id: str
    batch_id: int
    timestamp: datetime
    num_input_rows: int | None = None
    input_rate: float | None = None
    processed_rate: float | None = None
    duration_ms: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    watermark: datetime | None = None
    event_time_max: datetime | None = None
    state_rows: int | None = None
    state_rows_removed: int | None = None
    state_memory_bytes: int | None = None
    dropped_by_watermark: int | None = None
    state_operators: tuple[str, ...] = ()
    shuffle_partitions: int | None = None
    state_provider: str | None = None
    lag: float | None = None
    lag_unit: str | None = None
    output_rows: int | None = None
    offsets_read: float | None = None
    dropped_by_expectations: int | None = None
    origin: str = RECENT_PROGRESS


@dataclass
class ProgressLog:
    """The progress read from one file, by query."""

    path: str
    origin: str
    queries: dict[str, list[Batch]]
    skipped: int = 0  # records that were not progress (other events, blank or broken lines)


# -- small conversions ----------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``Z``, an offset or none; ``T`` or a space) as UTC, or ``None``."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return None if math.isnan(number) or math.isinf(number) else number
    return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _json_value(value: Any) -> Any:
    """Offsets arrive as JSON text in some dumps and as objects in others."""
    if isinstance(value, str):
        try:
            return _loads(value)
        except ValueError:
            return value
    return value


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Numeric leaves of an offset (Kafka: topic → partition → offset) by path."""
    value = _json_value(value)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}/{index}")
    else:
        number = _number(value)
        if number is not None:
            yield prefix, number


def offsets_behind(end: Any, latest: Any) -> float | None:
    """Offsets the source still holds beyond ``end``: the sum of ``latest - end`` over matching partitions.

    Returns ``None`` when the two offsets share no numeric partition (a source
    whose offsets are not counters, or one that does not report its latest).
    """
    if latest is None or end is None:
        return None
    ends = dict(_leaves(end))
    pairs = [(ends[path], number) for path, number in _leaves(latest) if path in ends]
    if not pairs:
        return None
    return float(sum(max(0.0, latest_n - end_n) for end_n, latest_n in pairs))


# -- StreamingQueryProgress -----------------------------------------------------------


def _source_lag(sources: list[dict[str, Any]]) -> tuple[float | None, str | None]:
    """The lag summed over the sources, in the first unit every lagging source can report."""
    total: dict[str, float] = {}
    for source in sources:
        behind = offsets_behind(source.get("endOffset"), source.get("latestOffset"))
        if behind is not None:
            total["offsets"] = total.get("offsets", 0.0) + behind
            continue
        metrics = source.get("metrics") or {}
        for key, unit in _LAG_METRICS:
            number = _number(metrics.get(key))
            if number is not None:
                total[unit] = total.get(unit, 0.0) + number
                break
    for unit in ("offsets", "files", "records", "ms", "bytes", "seconds"):
        if unit in total:
            return total[unit], unit
    return None, None


def _kafka_offsets_read(sources: list[dict[str, Any]]) -> float | None:
    """Records the Kafka sources' offsets advanced by (Kafka offsets count records; other sources' may not)."""
    spans = [offsets_behind(s.get("startOffset"), s.get("endOffset")) for s in sources
             if "kafka" in str(s.get("description", "")).lower()]
    present = [span for span in spans if span is not None]
    return float(sum(present)) if present and len(present) == len(spans) else None


def _state_provider(operators: list[dict[str, Any]]) -> str | None:
    keys = " ".join(" ".join((op.get("customMetrics") or {}).keys()) for op in operators).lower()
    if "rocksdb" in keys:
        return "RocksDB"
    if "loadedmapcache" in keys:  # the HDFS-backed provider's cache metrics
        return "HDFS-backed"
    return None


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def batch_from_progress(progress: dict[str, Any], origin: str = RECENT_PROGRESS) -> Batch | None:
    """One ``Batch`` from a StreamingQueryProgress object (``None`` if it is not one)."""
    timestamp = parse_time(progress.get("timestamp"))
    batch_id = _int(progress.get("batchId"))
    if timestamp is None or batch_id is None:
        return None
    phases = {k: float(v) for k, v in (progress.get("durationMs") or {}).items() if _number(v) is not None}
    event_time = progress.get("eventTime") or {}
    operators = [op for op in progress.get("stateOperators") or [] if isinstance(op, dict)]
    sources = [s for s in progress.get("sources") or [] if isinstance(s, dict)]
    sink = progress.get("sink") or {}
    lag, lag_unit = _source_lag(sources)
    output_rows = _int(sink.get("numOutputRows"))
    duration = phases.get("triggerExecution", _number(progress.get("batchDuration")))
    return Batch(
        query=str(progress.get("name") or progress.get("id") or "query"),
        run_id=str(progress.get("runId") or ""),
        batch_id=batch_id,
        timestamp=timestamp,
        num_input_rows=_int(progress.get("numInputRows")),
        input_rate=_number(progress.get("inputRowsPerSecond")),
        processed_rate=_number(progress.get("processedRowsPerSecond")),
        duration_ms=duration,
        phases=phases,
        watermark=parse_time(event_time.get("watermark")),
        event_time_max=parse_time(event_time.get("max")),
        state_rows=_sum(_int(op.get("numRowsTotal")) for op in operators),
        state_rows_removed=_sum(_int(op.get("numRowsRemoved")) for op in operators),
        state_memory_bytes=_sum(_int(op.get("memoryUsedBytes")) for op in operators),
        dropped_by_watermark=_sum(_int(op.get("numRowsDroppedByWatermark")) for op in operators),
        state_operators=tuple(str(op.get("operatorName") or "?") for op in operators),
        shuffle_partitions=max((_int(op.get("numShufflePartitions")) or 0 for op in operators), default=0) or None,
        state_provider=_state_provider(operators),
        lag=lag,
        lag_unit=lag_unit,
        output_rows=output_rows if output_rows is not None and output_rows >= 0 else None,
        offsets_read=_kafka_offsets_read(sources),
        origin=origin,
    )


# -- the pipeline event log -----------------------------------------------------------


def _flow_name(row: dict[str, Any]) -> str:
    origin = _json_value(row.get("origin")) or {}
    if isinstance(origin, dict):
        return str(origin.get("flow_name") or origin.get("dataset_name") or origin.get("pipeline_name") or "flow")
    return "flow"


def batch_from_flow_progress(row: dict[str, Any], position: int) -> Batch | None:
    """One ``Batch`` from an event-log row with ``event_type = 'flow_progress'`` and metrics."""
    details = _json_value(row.get("details")) or {}
    flow = details.get("flow_progress") if isinstance(details, dict) else None
    timestamp = parse_time(row.get("timestamp"))
    if not isinstance(flow, dict) or timestamp is None:
        return None
    metrics = flow.get("metrics") or {}
    quality = flow.get("data_quality") or {}
    if not metrics and not quality:  # a status change (QUEUED, STARTING ...) carries no numbers
        return None
    lag, lag_unit = None, None
    for key, unit in _BACKLOG_METRICS:
        number = _number(metrics.get(key))
        if number is not None:
            lag, lag_unit = number, unit
            break
    origin = _json_value(row.get("origin")) or {}
    return Batch(
        query=_flow_name(row),
        run_id=str(origin.get("update_id") or "") if isinstance(origin, dict) else "",
        batch_id=position,
        timestamp=timestamp,
        num_input_rows=_int(metrics.get("num_output_rows")),
        duration_ms=_number(metrics.get("executor_time_ms")),
        lag=lag,
        lag_unit=lag_unit,
        output_rows=_int(metrics.get("num_output_rows")),
        dropped_by_expectations=_int(quality.get("dropped_records")),
        origin=EVENT_LOG,
    )


# -- files ----------------------------------------------------------------------------


MAX_PROGRESS_BYTES = 100 * 1024 * 1024
"""Largest progress file read (a day of a listener log at one batch a second and 1 KB a batch is about
90 MB); a bigger log is refused with its size, so pass its recent part."""
MAX_DEPTH = 64
"""Deepest nesting accepted in a record: progress JSON is about six levels deep, and deeper input would
exhaust the recursion of the JSON parser or of the readers here."""


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/objects deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _loads(text: str) -> Any:
    """``json.loads`` that reports nesting too deep as ``ValueError`` (it raises ``RecursionError``)."""
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    if _too_deep(value):
        raise ValueError("nested too deeply")
    return value


def _records(text: str) -> tuple[list[Any], str, int]:
    """The JSON records of ``text`` and the shape they came in; broken lines are counted, not fatal."""
    stripped = text.strip()
    if not stripped:
        raise ProgressError("the file is empty")
    if stripped[0] in "[{":
        try:
            whole = _loads(stripped)
        except ValueError as exc:
            if "nested too deeply" in str(exc):
                raise ProgressError(f"the JSON is nested deeper than {MAX_DEPTH} levels; that is not stream "
                                    "progress") from exc
            whole = None
        if isinstance(whole, list):
            return whole, RECENT_PROGRESS, 0
        if isinstance(whole, dict):
            for key in ("recentProgress", "progress", "events", "rows"):
                if isinstance(whole.get(key), list):
                    return whole[key], RECENT_PROGRESS, 0
            return [whole], LISTENER_LOG, 0
    records, broken = [], 0
    for line in stripped.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(_loads(line))
        except ValueError:
            broken += 1  # a listener log often has plain log lines between the JSON ones
    if not records:
        raise ProgressError("no JSON records found (expected a JSON array or JSON Lines)")
    return records, LISTENER_LOG, broken


def parse_text(text: str, path: str = "<text>") -> ProgressLog:
    """Read the progress in ``text`` (any of the three shapes).

    Raises:
        ProgressError: when no record is stream progress.

    """
    records, shape, skipped = _records(text)
    batches: list[Batch] = []
    origins = set()
    for position, record in enumerate(records):
        batch = None
        if isinstance(record, dict):
            if record.get("event_type") == "flow_progress" or "flow_progress" in str(record.get("details", ""))[:200]:
                batch = batch_from_flow_progress(record, position)
            else:
                progress = record.get("progress") if isinstance(record.get("progress"), dict) else record
                batch = batch_from_progress(progress, shape)
        if batch is None:
            skipped += 1
            continue
        batches.append(batch)
        origins.add(batch.origin)
    if not batches:
        raise ProgressError(f"none of the {len(records)} records is a StreamingQueryProgress or a flow_progress event")
    queries: dict[str, list[Batch]] = {}
    for batch in batches:
        queries.setdefault(batch.query, []).append(batch)
    for name, items in queries.items():
        # A recentProgress dump taken twice overlaps: keep one record per (run, batch).
        unique = {(b.run_id, b.batch_id, b.timestamp): b for b in items}
        queries[name] = sorted(unique.values(), key=lambda b: (b.timestamp, b.batch_id))
    origin = EVENT_LOG if origins == {EVENT_LOG} else shape
    return ProgressLog(path=path, origin=origin, queries=queries, skipped=skipped)


def load(path: Path | str) -> ProgressLog:
    """Read the progress in the file at ``path``.

    Raises:
        ProgressError: when the file cannot be read or holds no progress.

    """
    from tools.workspace import WorkspaceError, read_regular

    try:
        text = read_regular(path, MAX_PROGRESS_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProgressError(f"{path}: not UTF-8 text") from exc
    except WorkspaceError as exc:
        raise ProgressError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise ProgressError(f"{path}: {exc.strerror or exc}") from exc
    try:
        return parse_text(text, str(path))
    except ProgressError as exc:
        raise ProgressError(f"{path}: {exc}") from exc


def discover(paths: Iterable[Path | str]) -> list[Path]:
    """The progress files named by ``paths``: files as given, folders walked for JSON/log files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOG_SUFFIXES
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            found.append(path)
    return found
