"""Stream health from a query's batches: what is wrong, the evidence, and the setting that fixes it.

Each detector looks at one symptom a streaming engineer reads in
StreamingQueryProgress: processing slower than arrival, batches longer than
the trigger, state that only grows, rows dropped by the watermark, a source
backlog, and the latency SLO. A finding always names the command or setting
that fixes it, so a report is a to-do list rather than a chart to interpret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tools.diagnose.progress import Batch
from tools.diagnose.slo import SloThresholds
from tools.diagnose.stats import growth, human_bytes, human_count, human_ms, median, percentile

SEVERITIES = ("critical", "warn", "info")
WARM_UP_BATCHES = 2  # per run: code generation, state loading and the backlog built while starting
ROCKSDB_SETTING = ("spark.sql.streaming.stateStore.providerClass="
                   "com.databricks.sql.streaming.state.RocksDBStateStoreProvider (Databricks; open-source Spark: "
                   "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider) on a new checkpoint")
_PHASES = {
    "addBatch": "the transformation and the sink write (addBatch)",
    "latestOffset": "asking the source for its latest offsets (latestOffset)",
    "getBatch": "planning the source read (getBatch)",
    "queryPlanning": "query planning",
    "walCommit": "writing the offset log to the checkpoint (walCommit)",
    "commitOffsets": "committing the batch to the checkpoint (commitOffsets)",
}


@dataclass(frozen=True)
class Settings:
    """What the progress does not say but the user may: the trigger, limits and targets.

    Attributes:
        trigger_ms: the processingTime trigger interval; inferred from idle gaps when ``None``.
        rate_limit: rows per batch allowed by maxOffsetsPerTrigger (or files by maxFilesPerTrigger).
        target_batch_ms: the batch duration the team aims for.
        slo: the latency-SLO thresholds.
        state_provider: the provider the user says is configured (``RocksDB`` / ``HDFS-backed``).
        expected_state_keys: how many keys the state is planned to hold.
    """

    trigger_ms: float | None = None
    rate_limit: int | None = None
    target_batch_ms: float | None = None
    slo: SloThresholds = field(default_factory=SloThresholds)
    state_provider: str | None = None
    expected_state_keys: int | None = None


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem (or note).

    Attributes:
        code: a stable id (``falling-behind``, ``unbounded-state``, ...).
        severity: critical | warn | info.
        topic: the linter's topic vocabulary (backpressure, trigger, state, watermark, observability, dq).
        title: one line.
        evidence: the numbers behind it.
        fix: the command or setting that fixes it.
    """

    code: str
    severity: str
    topic: str
    title: str
    evidence: str
    fix: str


@dataclass(frozen=True)
class SloCheck:
    """One SLI measured against its objective and alert thresholds."""

    metric: str
    observed: float | None
    target: float
    warn: float
    critical: float
    unit: str
    status: str  # met | missed | warn | critical | no data


@dataclass
class Diagnosis:
    """The health of one query over the batches read."""

    query: str
    origin: str
    batches: list[Batch]
    steady: list[Batch]
    trigger_ms: float | None
    trigger_source: str
    findings: list[Finding]
    slo: list[SloCheck]
    stats: dict[str, object]

    @property
    def healthy(self) -> bool:
        """No warning and nothing critical."""
        return not any(f.severity in ("critical", "warn") for f in self.findings)

    @property
    def causes(self) -> list[str]:
        """The codes of the warning and critical findings, most severe first."""
        ranked = sorted(self.findings, key=lambda f: SEVERITIES.index(f.severity))
        return list(dict.fromkeys(f.code for f in ranked if f.severity in ("critical", "warn")))

    @property
    def verdict(self) -> str:
        """``healthy`` or ``unhealthy: <first cause>``."""
        if self.healthy:
            return "healthy"
        first = sorted(self.findings, key=lambda f: SEVERITIES.index(f.severity))[0]
        return f"unhealthy: {first.title}"


# -- helpers --------------------------------------------------------------------------


def steady_batches(batches: list[Batch]) -> list[Batch]:
    """The batches after each run's warm-up (all of them when too few would remain)."""
    seen: dict[str, int] = {}
    steady = []
    for batch in batches:
        seen[batch.run_id] = seen.get(batch.run_id, 0) + 1
        if seen[batch.run_id] > WARM_UP_BATCHES:
            steady.append(batch)
    return steady if len(steady) >= 3 else list(batches)


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def infer_trigger_ms(batches: list[Batch]) -> float | None:
    """The trigger interval, from the gaps in which the engine waited for the next trigger.

    A processingTime trigger starts batches on multiples of its interval, so
    when a batch ends early the next one starts exactly one interval after it
    began. Back-to-back batches (no wait) reveal nothing: ``None``.
    """
    waits = []
    for a, b in zip(batches, batches[1:], strict=False):
        if a.run_id != b.run_id or a.duration_ms is None:
            continue
        gap_ms = _seconds(b.timestamp, a.timestamp) * 1000
        if gap_ms - a.duration_ms > max(100.0, 0.1 * gap_ms):
            waits.append(gap_ms)
    if len(waits) < max(2, (len(batches) - 1) // 3):
        return None
    return round((median(waits) or 0) / 100) * 100 or None


def dominant_phase(batches: list[Batch]) -> tuple[str, float] | None:
    """The phase that takes the largest share of trigger time, with that share."""
    totals: dict[str, float] = {}
    whole = 0.0
    for batch in batches:
        if not batch.duration_ms:
            continue
        whole += batch.duration_ms
        for phase, ms in batch.phases.items():
            if phase != "triggerExecution":
                totals[phase] = totals.get(phase, 0.0) + ms
    if not totals or whole <= 0:
        return None
    phase, ms = max(totals.items(), key=lambda kv: kv[1])
    return phase, ms / whole


def _phase_note(batches: list[Batch]) -> str:
    found = dominant_phase(batches)
    if not found:
        return ""
    phase, share = found
    return f" {share:.0%} of the trigger time goes to {_PHASES.get(phase, phase)}."


def _values(batches: list[Batch], attribute: str) -> list[float]:
    return [float(v) for v in (getattr(b, attribute) for b in batches) if v is not None]


# -- detectors ------------------------------------------------------------------------


def detect_falling_behind(steady: list[Batch]) -> list[Finding]:
    """Processing slower than arrival: processedRowsPerSecond below inputRowsPerSecond."""
    pairs = [(b.input_rate, b.processed_rate) for b in steady
             if b.num_input_rows and b.input_rate and b.processed_rate is not None]
    if len(pairs) < 3:
        return []
    ratios = [p / i for i, p in pairs]
    typical = median(ratios) or 0.0
    below = sum(1 for r in ratios if r < 0.95) / len(ratios)
    if typical >= 0.95 or below < 0.5:
        return []
    input_rate = median([i for i, _ in pairs]) or 0.0
    processed = median([p for _, p in pairs]) or 0.0
    sizes = _values(steady, "num_input_rows")
    size_growth, _ = growth(sizes)
    evidence = (f"median input {input_rate:,.0f} rows/s vs processed {processed:,.0f} rows/s "
                f"(processing keeps up with {typical:.0%} of arrivals; {below:.0%} of {len(ratios)} batches behind)")
    if size_growth >= 1.5:
        evidence += f"; rows per batch grew {size_growth:.1f}x, so each batch is bigger than the last"
    evidence += "." + _phase_note(steady)
    return [Finding(
        code="falling-behind", severity="critical" if typical < 0.7 or size_growth >= 1.5 else "warn",
        topic="backpressure", title="Falling behind: input arrives faster than it is processed", evidence=evidence,
        fix=("Make each batch fit its trigger, then add capacity: cap the batch with maxOffsetsPerTrigger "
             "(Kafka / Event Hubs), maxFilesPerTrigger or maxBytesPerTrigger (Auto Loader), maxRecordsPerFetch "
             "(Kinesis); speed up the slow phase (for addBatch: a MERGE with a partition predicate or fewer "
             "small files in the sink); then add cores and set spark.sql.shuffle.partitions to a multiple of "
             "them (a stateful query keeps the value its checkpoint started with). *backpressure-tune"),
    )]


def detect_reread(steady: list[Batch]) -> list[Finding]:
    """Flag numInputRows at a multiple of the Kafka records a batch spans: foreachBatch re-reads its source."""
    pairs = [(b.num_input_rows, b.offsets_read) for b in steady if b.num_input_rows and b.offsets_read]
    if len(pairs) < 3:
        return []
    factors = [rows / span for rows, span in pairs]
    typical = median(factors) or 1.0
    if typical < 1.9 or sum(1 for f in factors if f >= 1.9) / len(factors) < 0.5:
        return []
    return [Finding(
        code="batch-read-twice", severity="warn", topic="backpressure",
        title="Each micro-batch is read from the source more than once",
        evidence=(f"numInputRows is {typical:.1f}x the records between the batch's start and end offsets in "
                  f"{len(pairs)} batches: every action on batch_df in foreachBatch re-reads Kafka."),
        fix=("In foreachBatch call batch_df.persist() before the first action and batch_df.unpersist() after the "
             "last (or write once and derive the rest from the written table). *backpressure-tune"),
    )]


def detect_trigger(steady: list[Batch], trigger_ms: float | None, trigger_source: str,
                   settings: Settings) -> list[Finding]:
    """Batch duration against the trigger interval and the target, and batches that keep growing."""
    durations = _values(steady, "duration_ms")
    if len(durations) < 3:
        return []
    findings = []
    p50, p95 = median(durations) or 0.0, percentile(durations, 95) or 0.0
    if trigger_ms:
        over = sum(1 for d in durations if d > trigger_ms) / len(durations)
        if over >= 0.5:
            findings.append(Finding(
                code="batch-overrun", severity="critical" if p50 > 2 * trigger_ms else "warn", topic="trigger",
                title="Batches take longer than the trigger interval",
                evidence=(f"{over:.0%} of {len(durations)} batches exceed the {human_ms(trigger_ms)} trigger "
                          f"({trigger_source}); median {human_ms(p50)}, p95 {human_ms(p95)}." + _phase_note(steady)),
                fix=("Either lengthen the trigger past the p95 batch duration "
                     f"(.trigger(processingTime=\"{max(1, round(p95 * 1.5 / 1000))} seconds\")) or shrink the batch "
                     "with maxOffsetsPerTrigger / maxFilesPerTrigger so it fits; add cores if neither is "
                     "acceptable. *backpressure-tune"),
            ))
        elif over >= 0.2:
            findings.append(Finding(
                code="batch-overrun", severity="info", topic="trigger", title="Some batches overrun the trigger",
                evidence=f"{over:.0%} of batches exceed the {human_ms(trigger_ms)} trigger; p95 {human_ms(p95)}.",
                fix="Keep headroom: size maxOffsetsPerTrigger / maxFilesPerTrigger so the p95 batch fits the trigger.",
            ))
    elif trigger_source == "unknown":
        findings.append(Finding(
            code="trigger-unknown", severity="info", topic="trigger",
            title="Trigger interval unknown: batches run back to back",
            evidence=(f"no idle time between batches (median {human_ms(p50)}): the query uses the default trigger "
                      "(next batch as soon as the last ends) or every batch overruns its interval."),
            fix="Give the interval (diagnose --trigger \"1 minute\", or the trigger question of *backpressure-tune).",
        ))
    if settings.target_batch_ms and p95 > settings.target_batch_ms:
        findings.append(Finding(
            code="batch-over-target", severity="warn", topic="backpressure",
            title="Batch duration above the team's target",
            evidence=f"p95 {human_ms(p95)} against a target of {human_ms(settings.target_batch_ms)}.",
            fix="Lower maxOffsetsPerTrigger / maxFilesPerTrigger until the p95 batch meets the target, or add cores.",
        ))
    ratio, rising = growth(durations)
    third = max(1, len(durations) // 3)
    start, end = sum(durations[:third]) / third, sum(durations[-third:]) / third
    if ratio >= 1.5 and rising >= 0.6 and end - start >= 500:
        findings.append(Finding(
            code="batch-growth", severity="warn", topic="backpressure", title="Batch duration keeps growing",
            evidence=(f"mean duration rose from {human_ms(start)} to {human_ms(end)} ({ratio:.1f}x) with "
                      f"{rising:.0%} of steps rising: a backlog is building." + _phase_note(steady)),
            fix=("Bound the batch (maxOffsetsPerTrigger / maxFilesPerTrigger) so duration stays flat, and find the "
                 "slow phase; for a growing addBatch check state size and the sink. *backpressure-tune"),
        ))
    return findings


def detect_state(steady: list[Batch], settings: Settings) -> list[Finding]:
    """State that only grows (no watermark, or one that never evicts) and state too large for memory."""
    rows = _values(steady, "state_rows")
    if len(rows) < 4:
        return []
    findings = []
    memory = _values(steady, "state_memory_bytes")
    ratio, rising = growth(rows)
    removed = sum(b.state_rows_removed or 0 for b in steady)
    has_watermark = any(b.watermark is not None for b in steady)
    operators = sorted({op for b in steady for op in b.state_operators})
    provider = settings.state_provider or next((b.state_provider for b in reversed(steady) if b.state_provider), None)
    in_memory = provider != "RocksDB"
    mem_note = f"; memory {human_bytes(memory[0])} → {human_bytes(memory[-1])}" if len(memory) >= 2 else ""
    if ratio >= 1.5 and rising >= 0.75 and rows[-1] - rows[0] >= 100:
        evidence = (f"state rows {human_count(rows[0])} → {human_count(rows[-1])} over {len(rows)} batches "
                    f"({rising:.0%} of steps rising){mem_note}; operators: {', '.join(operators) or 'n/a'}; "
                    f"rows evicted: {human_count(removed)}")
        store = f" Until then keep the state off the JVM heap: {ROCKSDB_SETTING}." if in_memory else ""
        if not has_watermark:
            findings.append(Finding(
                code="unbounded-state", severity="critical", topic="state",
                title="Unbounded state: no watermark, so no state is ever evicted",
                evidence=evidence + "; the progress reports no event-time watermark.",
                fix=("Add withWatermark(\"<event time>\", \"<delay>\") before the stateful operator and bound it "
                     "by event time: dropDuplicatesWithinWatermark([...keys]) for dedup, a window(...) in the "
                     "groupBy for aggregations, TTL in transformWithState for arbitrary state." + store
                     + " *state-store, *watermark-lateness"),
            ))
        elif removed == 0:
            findings.append(Finding(
                code="unbounded-state", severity="critical", topic="state",
                title="Unbounded state: a watermark is set but nothing is evicted",
                evidence=evidence + "; the watermark advances yet the operator's keys never expire.",
                fix=("The stateful key does not carry event time: use dropDuplicatesWithinWatermark instead of "
                     "dropDuplicates on non-time keys, or put window(<event time>, ...) in the groupBy; for "
                     "transformWithState set a TTL." + store + " *state-store"),
            ))
        else:
            findings.append(Finding(
                code="state-growth", severity="warn", topic="state",
                title="State grows faster than the watermark evicts it",
                evidence=evidence + ".",
                fix=("Shorten the watermark delay or the window, or coarsen the keys; size the cluster for the "
                     "steady state." + store + " *state-store"),
            ))
    if memory and memory[-1] >= 2 * (1 << 30) and in_memory:
        findings.append(Finding(
            code="state-memory", severity="warn", topic="state", title="Large state held on the JVM heap",
            evidence=f"state store memory {human_bytes(memory[-1])} with the {provider or 'default'} provider.",
            fix=f"Move state to RocksDB: {ROCKSDB_SETTING}; enable changelog checkpointing "
                "(spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled=true). *state-store",
        ))
    if settings.expected_state_keys and rows[-1] > 1.2 * settings.expected_state_keys:
        findings.append(Finding(
            code="state-over-plan", severity="warn", topic="state", title="State holds more keys than planned",
            evidence=f"{human_count(rows[-1])} rows against the {human_count(settings.expected_state_keys)} planned.",
            fix="Revisit the key design and the watermark delay, and re-size the state store. *state-store",
        ))
    partitions = max((b.shuffle_partitions or 0 for b in steady), default=0)
    per_batch = median(_values(steady, "num_input_rows")) or 0
    if partitions >= 64 and per_batch / partitions < 50:
        findings.append(Finding(
            code="shuffle-partitions", severity="info", topic="backpressure",
            title="Many state partitions for small batches",
            evidence=f"{partitions} state partitions for a median of {human_count(per_batch)} rows per batch.",
            fix=("Each partition is a task and a state store per batch: for a new checkpoint set "
                 "spark.sql.shuffle.partitions to about 2-3x the cores (an existing stateful checkpoint keeps its "
                 "value)."),
        ))
    return findings


def detect_watermark_drops(batches: list[Batch]) -> list[Finding]:
    """Rows dropped as later than the watermark (numRowsDroppedByWatermark) and by expectations."""
    findings = []
    dropped = sum(b.dropped_by_watermark or 0 for b in batches)
    total = sum(b.num_input_rows or 0 for b in batches)
    if dropped > 0:
        share = dropped / total if total else 1.0
        hit = sum(1 for b in batches if b.dropped_by_watermark)
        delays = [(b.event_time_max - b.watermark).total_seconds() for b in batches
                  if b.watermark and b.event_time_max and b.watermark.year > 1970]
        delay = f"; the watermark trails the newest event by about {median(delays):.0f} s" if delays else ""
        aggregated = any("stateStoreSave" in b.state_operators for b in batches)
        # Spark counts an aggregation's late rows after the partial aggregation: one per late group.
        undercount = " (an aggregation counts late rows per group, so more input rows may have been late)" \
            if aggregated else ""
        findings.append(Finding(
            code="late-rows-dropped", severity="warn" if share >= 0.001 else "info", topic="watermark",
            title="Late rows dropped by the watermark",
            evidence=f"{human_count(dropped)} rows ({share:.2%} of {human_count(total)} read) dropped in {hit} of "
                     f"{len(batches)} batches{delay}{undercount}.",
            fix=("If those rows must count, widen the delay in withWatermark(\"<event time>\", \"<delay>\") past the "
                 "observed lateness (more state, later results); otherwise keep it and capture them: in foreachBatch "
                 "write rows whose event time is below the watermark to a quarantine table so none is lost "
                 "silently. *watermark-lateness sizes the delay from the observed disorder."),
        ))
    expectation_drops = sum(b.dropped_by_expectations or 0 for b in batches)
    if expectation_drops > 0:
        findings.append(Finding(
            code="expectation-drops", severity="warn", topic="dq", title="Rows dropped by expectations",
            evidence=f"{human_count(expectation_drops)} rows dropped by expect_or_drop expectations.",
            fix="Route failing rows to a quarantine table instead of dropping them silently. *streaming-dq, *dlq-ops",
        ))
    return findings


def detect_source_lag(steady: list[Batch], settings: Settings) -> list[Finding]:
    """How far the source is behind its latest data (offsets, files, bytes, ms or seconds)."""
    lagging = [b for b in steady if b.lag is not None]
    if len(lagging) < 3:
        return []
    unit = lagging[-1].lag_unit or "offsets"
    lag = [b.lag or 0.0 for b in lagging if b.lag_unit == unit]
    sizes = _values(steady, "num_input_rows")
    limit = settings.rate_limit
    capped_at = None
    if sizes:
        top = max(sizes)
        at_top = sum(1 for s in sizes if top > 0 and s >= 0.98 * (limit or top))
        if at_top / len(sizes) >= 0.8 and (limit is None or top >= 0.98 * limit):
            capped_at = limit or top
    findings = []
    nonzero = sum(1 for value in lag if value > 0) / len(lag)
    ratio, rising = growth(lag)
    cap_note = (f" Every batch reads {human_count(capped_at)} rows: the rate limit sets the pace."
                if capped_at and nonzero >= 0.5 else "")
    fix = ("Raise the throughput or the cap: maxOffsetsPerTrigger (Kafka / Event Hubs), maxFilesPerTrigger / "
           "maxBytesPerTrigger (Auto Loader), maxRecordsPerFetch or enhanced fan-out (Kinesis) — raise the cap only "
           "while batches still fit the trigger; add cores (and Kafka minPartitions) when they do not. "
           "*backpressure-tune")
    # Offsets and records compare with rows per batch: less than one batch behind is normal pipelining.
    one_batch = (median(sizes) or 0.0) if unit in ("offsets", "records") else 0.0
    if ratio >= 1.5 and rising >= 0.6 and lag[-1] > 0:
        findings.append(Finding(
            code="falling-behind", severity="critical", topic="backpressure",
            title="Falling behind: the source backlog keeps growing",
            evidence=f"{human_count(lag[0])} → {human_count(lag[-1])} {unit} behind latest over {len(lag)} batches "
                     f"({rising:.0%} of steps rising).{cap_note}",
            fix=fix,
        ))
    elif nonzero >= 0.5 and (median(lag) or 0) > one_batch:
        findings.append(Finding(
            code="source-lag", severity="warn", topic="backpressure", title="Persistent source backlog",
            evidence=f"median {human_count(median(lag))} {unit} behind latest in {nonzero:.0%} of batches"
                     + (" (more than one batch's worth)" if one_batch else "") + f".{cap_note}",
            fix=fix,
        ))
    return findings


def check_slo(steady: list[Batch], slo: SloThresholds) -> tuple[list[SloCheck], list[Finding]]:
    """p95 batch latency and p95 freshness against the latency SLO and its alert thresholds."""
    checks, findings = [], []
    latency = percentile(_values(steady, "duration_ms"), 95)
    freshness_values = [
        (_seconds(b.timestamp, b.event_time_max) * 1000 + (b.duration_ms or 0)) / 60000
        for b in steady if b.event_time_max is not None
    ] or [b.lag / 60 for b in steady if b.lag is not None and b.lag_unit == "seconds"]
    freshness = percentile(freshness_values, 95)
    for metric, observed, target, warn, critical, unit, code in (
        ("pipeline latency p95 (batch duration)", latency, slo.latency_p95_ms, slo.warn_latency_ms,
         slo.critical_latency_ms, "ms", "slo-latency"),
        ("end-to-end freshness p95 (batch end − newest event time)", freshness, slo.freshness_p95_min,
         slo.warn_freshness_min, slo.critical_freshness_min, "min", "slo-freshness"),
    ):
        if observed is None:
            checks.append(SloCheck(metric, None, target, warn, critical, unit, "no data"))
            continue
        status = ("critical" if observed > critical else "warn" if observed > warn
                  else "missed" if observed > target else "met")
        checks.append(SloCheck(metric, observed, target, warn, critical, unit, status))
        if status == "met":
            continue
        shown = human_ms(observed) if unit == "ms" else f"{observed:.2f} min"
        goal = human_ms(target) if unit == "ms" else f"{target:g} min"
        fix = ("Cut batch latency: shorter processingTime trigger with batches capped by maxOffsetsPerTrigger / "
               "maxFilesPerTrigger, more cores, fewer shuffle partitions for small batches. *latency-slo"
               if unit == "ms" else
               "Freshness includes the watermark delay and the window of append-mode aggregations: shorten the "
               "withWatermark delay or the window, or emit in update mode; keep batches within the trigger. "
               "*latency-slo")
        findings.append(Finding(
            code=code, severity="critical" if status == "critical" else "warn", topic="observability",
            title=f"Latency SLO {'breached' if status != 'missed' else 'missed'}: {metric.split(' (')[0]}",
            evidence=f"observed {shown} against the SLO {goal} (warn above {warn:g} {unit}, critical above "
                     f"{critical:g} {unit}; thresholds from {slo.source}).",
            fix=fix,
        ))
    return checks, findings


# -- the whole diagnosis --------------------------------------------------------------


def _stats(batches: list[Batch], steady: list[Batch]) -> dict[str, object]:
    rows = _values(steady, "state_rows")
    memory = _values(steady, "state_memory_bytes")
    lag = [b for b in steady if b.lag is not None]
    return {
        "batches": len(batches),
        "runs": len({b.run_id for b in batches}),
        "first": batches[0].timestamp.isoformat() if batches else None,
        "last": batches[-1].timestamp.isoformat() if batches else None,
        "input_rows": sum(b.num_input_rows or 0 for b in batches),
        "input_rate_median": median(_values(steady, "input_rate")),
        "processed_rate_median": median(_values(steady, "processed_rate")),
        "duration_p50_ms": median(_values(steady, "duration_ms")),
        "duration_p95_ms": percentile(_values(steady, "duration_ms"), 95),
        "state_rows_first": rows[0] if rows else None,
        "state_rows_last": rows[-1] if rows else None,
        "state_memory_last_bytes": memory[-1] if memory else None,
        "dropped_by_watermark": sum(b.dropped_by_watermark or 0 for b in batches),
        "watermark": any(b.watermark is not None for b in batches),
        "lag_last": lag[-1].lag if lag else None,
        "lag_unit": lag[-1].lag_unit if lag else None,
    }


def diagnose_batches(query: str, batches: list[Batch], settings: Settings | None = None) -> Diagnosis:
    """Diagnose one query from its batches (ordered by time)."""
    settings = settings or Settings()
    steady = steady_batches(batches)
    trigger_ms, trigger_source = settings.trigger_ms, "as given"
    if trigger_ms is None:
        trigger_ms = infer_trigger_ms(steady)
        trigger_source = "inferred from the idle time between batches" if trigger_ms else "unknown"
    findings = [  # in the order a cause explains the rest: a growing backlog before the overrun that shows it
        *detect_falling_behind(steady),
        *detect_source_lag(steady, settings),
        *detect_state(steady, settings),
        *detect_reread(steady),
        *detect_trigger(steady, trigger_ms, trigger_source, settings),
        *detect_watermark_drops(batches),
    ]
    checks, slo_findings = check_slo(steady, settings.slo)
    findings += slo_findings
    if batches and not any(b.num_input_rows for b in batches):
        findings.append(Finding(
            code="no-input", severity="info", topic="observability", title="No input in any batch",
            evidence=f"{len(batches)} batches read 0 rows.",
            fix="Check the source (topic, path, starting offsets) and that the producer is writing.",
        ))
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return Diagnosis(query=query, origin=batches[0].origin if batches else "", batches=batches, steady=steady,
                     trigger_ms=trigger_ms, trigger_source=trigger_source, findings=findings, slo=checks,
                     stats=_stats(batches, steady))
