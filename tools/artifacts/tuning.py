"""Backpressure and throughput: rate limits sized from the peak rate, progress-based verdicts.

Structured Streaming has no push-based backpressure; the levers are admission
controls (``maxOffsetsPerTrigger``, ``cloudFiles.maxFilesPerTrigger``,
``maxBytesPerTrigger``), the trigger interval and parallelism
(``spark.sql.shuffle.partitions``, fixed by a stateful query's checkpoint).
The generated module measures before and after with ``recentProgress``.
"""

from __future__ import annotations

from tools.artifacts.base import Artifact, Inputs, artifact_dir, py, register
from tools.artifacts.skeleton import constants, header, join
from tools.design import current

BACKPRESSURE_DEFAULTS = {
    "peak_input_rate": "50000",
    "trigger_interval": "1 minute",
    "max_offsets_per_trigger": "500000",
    "shuffle_partitions": "200",
    "target_batch_duration": "45 seconds",
    "source_kind": "kafka",
    "baseline_table": "main.ops.throughput_baseline",
}


def needed_per_trigger(a: Inputs) -> int:
    """Records one trigger must admit to keep up with the peak rate."""
    return round(a.int("peak_input_rate") * a.duration("trigger_interval").seconds)


def tuning_module(a: Inputs) -> str:
    """A support module: rate limits per source kind, the shuffle setting, and progress-based verdicts."""
    cap = a.int("max_offsets_per_trigger")
    rows = [
        ("PEAK_INPUT_ROWS_PER_SECOND", str(a.int("peak_input_rate")), "measured peak arrival rate"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval"),
        ("TRIGGER_SECONDS", f"{a.duration('trigger_interval').seconds:g}", "the same, in seconds"),
        ("TARGET_BATCH_SECONDS", f"{a.duration('target_batch_duration').seconds:g}",
         "a batch must finish well inside the trigger interval"),
        ("MAX_RECORDS_PER_TRIGGER", str(cap), "admission cap per micro-batch"),
        ("SHUFFLE_PARTITIONS", py(str(a.int("shuffle_partitions"))), "set before a stateful query's first start"),
        ("SOURCE_KIND", py(a.choice("source_kind")), "which admission control applies"),
        ("BASELINE_TABLE", py(a.text("baseline_table")), "before/after measurements are appended here"),
    ]
    body = '''# Admission controls per source: the cap above, in each source's own option.
RATE_LIMITS: dict[str, dict[str, str]] = {
    "kafka": {"maxOffsetsPerTrigger": str(MAX_RECORDS_PER_TRIGGER)},
    "event hubs": {"maxOffsetsPerTrigger": str(MAX_RECORDS_PER_TRIGGER)},
    "auto loader": {"cloudFiles.maxFilesPerTrigger": "1000", "cloudFiles.maxBytesPerTrigger": "10g"},
    "delta table": {"maxFilesPerTrigger": "1000", "maxBytesPerTrigger": "10g"},
}


def apply_rate_limits(reader: Any, kind: str = SOURCE_KIND) -> Any:
    """Add the source's admission controls to a DataStreamReader (call before .load() / .table())."""
    return reader.options(**RATE_LIMITS[kind])


def configure(spark: SparkSession) -> None:
    """Parallelism: shuffle (state) partitions. A stateful query keeps the value its checkpoint was created with."""
    spark.conf.set("spark.sql.shuffle.partitions", SHUFFLE_PARTITIONS)


def summarize(progress: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput facts of recent micro-batches and a verdict (pure: works on any list of progress dicts)."""
    if not progress:
        return {"batches": 0, "verdict": "no progress yet"}
    durations = sorted((p.get("durationMs") or {}).get("triggerExecution", 0) / 1000 for p in progress)
    p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))]
    input_rate = sum(p.get("inputRowsPerSecond") or 0 for p in progress) / len(progress)
    processed_rate = sum(p.get("processedRowsPerSecond") or 0 for p in progress) / len(progress)
    capped = sum(1 for p in progress if (p.get("numInputRows") or 0) >= MAX_RECORDS_PER_TRIGGER)
    if processed_rate and input_rate > processed_rate:
        verdict = "falling behind: processing slower than arrival — scale the cluster or fix skew"
    elif p95 > TRIGGER_SECONDS:
        verdict = "batches overrun the trigger interval — lower the cap or add cores"
    elif capped and p95 < TARGET_BATCH_SECONDS / 2:
        verdict = "cap reached with headroom — raise MAX_RECORDS_PER_TRIGGER"
    elif p95 > TARGET_BATCH_SECONDS:
        verdict = "above the target batch duration — lower the cap or add cores"
    else:
        verdict = "keeping up within the target"
    return {
        "batches": len(progress),
        "p95_batch_seconds": round(p95, 2),
        "input_rows_per_second": round(input_rate, 1),
        "processed_rows_per_second": round(processed_rate, 1),
        "batches_at_cap": capped,
        "verdict": verdict,
    }


def record(spark: SparkSession, label: str, queries: list[Any]) -> list[dict[str, Any]]:
    """Summarise ``queries`` and append the rows to BASELINE_TABLE (label: before / after).

    Call it in the job that runs the queries (``record(spark, "before", spark.streams.active)``): a session
    sees only the queries it started, so a separate script would measure nothing.
    """
    rows = []
    for query in queries:
        progress = [json.loads(p.json) if hasattr(p, "json") else p for p in (query.recentProgress or [])]
        rows.append({"label": label, "query": query.name, **summarize(progress)})
    if rows:
        frame = spark.createDataFrame([{k: str(v) for k, v in r.items()} for r in rows])
        frame.withColumn("measured_at", F.current_timestamp()).write.mode("append").option(
            "mergeSchema", "true").saveAsTable(BASELINE_TABLE)
    return rows


def main() -> None:
    """`python backpressure_tuning.py progress.jsonl [label]`: summarise a saved progress log (one JSON a line)."""
    path = sys.argv[1] if len(sys.argv) > 1 else "progress.jsonl"
    label = sys.argv[2] if len(sys.argv) > 2 else "before"
    with open(path, encoding="utf-8") as handle:
        progress = [json.loads(line) for line in handle if line.strip()]
    print(json.dumps({"label": label, **summarize(progress)}, indent=2))


if __name__ == "__main__":
    main()
'''
    doc = [f"Peak {a.int('peak_input_rate')} rows/s; trigger {a.duration('trigger_interval').spark}; cap {cap} "
           "records per batch.", "Record 'before', change one lever, record 'after', compare in BASELINE_TABLE; find hot "
           "stages in the Spark UI (stage timeline, thread dumps) before changing anything.",
           "Retries: a batch that failed for its size is retried with the same data (new caps apply from the next "
           "batch), so keep the job's retry backoff and a task timeout above the drain time of the backlog.",
           "Support module: no stream, just main()."]
    return join(header("Backpressure tuning: admission controls, parallelism, before/after measurements.",
                       "backpressure-tune", doc,
                       imports="from pyspark.sql import SparkSession\nfrom pyspark.sql import functions as F",
                       extra_imports=("import json", "import sys", "from typing import Any")),
                constants(rows), body)


def backpressure_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                          workspace: object = None) -> list[Artifact]:
    """Artefacts of ``backpressure-and-throughput``."""
    a = Inputs(answers, BACKPRESSURE_DEFAULTS)
    return [Artifact(str(artifact_dir(doc_location) / "backpressure_tuning.py"), tuning_module(a), "python",
                     "Rate limits per source, shuffle partitions, throughput summary and verdict from recentProgress, "
                     "before/after baseline rows.")]


def backpressure_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``backpressure-and-throughput``."""
    a = Inputs(answers, BACKPRESSURE_DEFAULTS)
    need, cap = needed_per_trigger(a), a.int("max_offsets_per_trigger")
    interval, target = a.duration("trigger_interval"), a.duration("target_batch_duration")
    if cap < need:
        verdict = (f"the cap of {cap} is BELOW the {need} records one {interval.spark} trigger brings at peak: the "
                   "backlog grows at peak — raise the cap (and compute) or shorten the interval")
    else:
        verdict = (f"the cap of {cap} covers the {need} records one {interval.spark} trigger brings at peak "
                   f"({cap / max(need, 1):.1f}×), so a backlog drains")
    fits = "fits inside" if target.seconds < interval.seconds else "does NOT fit inside"
    pace = f"Target batch duration {target.spark} {fits} the trigger interval."
    if current().serverless:
        # Serverless streams run availableNow: no trigger interval; the job's schedule plays its part.
        batches = -(-need // max(cap, 1))
        verdict = (f"on serverless (availableNow) a run every {interval.spark} finds about {need} records at peak and "
                   f"drains them in {batches} batch(es) of at most {cap}")
        pace = (f"Each run must finish inside the {interval.spark} schedule: about {batches} batch(es) of "
                f"{target.spark} each.")
    first = (f"At {a.int('peak_input_rate')} rows/s, {verdict}. {pace} Parallelism: {a.int('shuffle_partitions')} "
             "shuffle partitions (fixed by the checkpoint of a stateful query; aim for 1–2× the cluster's cores). "
             "Skew shows as a few long tasks in the Spark UI "
             "(AQE does not apply to streaming): salt hot keys or pre-aggregate.")
    second = ("Prove the gain: `backpressure_tuning.py before`, change one lever, `backpressure_tuning.py after`; "
              "compare p95 batch seconds and processed vs input rows/s in the baseline table (flame graphs from the "
              "Spark UI's thread dumps for hot stages).")
    return [first, second]


register("backpressure-and-throughput", backpressure_generate, notes=backpressure_notes)
