"""Stream health diagnosis: the fixtures from real local Spark runs, each flagged for its real cause."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tools.diagnose import Settings, diagnose_file, diagnose_text, parse_duration_ms
from tools.diagnose import cli as diagnose_cli
from tools.diagnose import slo as slos
from tools.diagnose.charts import render
from tools.diagnose.progress import EVENT_LOG, LISTENER_LOG, RECENT_PROGRESS, ProgressError, offsets_behind, parse_text
from tools.workspace import Workspace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "progress"
HEALTHY, NO_WATERMARK, SLOW_SINK, LATE_DATA = (FIXTURES / name for name in (
    "healthy.json", "no-watermark.jsonl", "slow-sink.json", "late-data.jsonl"))


def only(path: Path, settings: Settings | None = None):
    result = diagnose_file(path, settings)
    assert len(result.diagnoses) == 1, [d.query for d in result.diagnoses]
    return result.diagnoses[0]


def codes(diagnosis) -> set[str]:
    return {f.code for f in diagnosis.findings if f.severity in ("critical", "warn")}


# -- the fixtures, each for its real cause -----------------------------------------------


def test_the_fixture_files_are_small_real_progress() -> None:
    for path in (HEALTHY, NO_WATERMARK, SLOW_SINK, LATE_DATA):
        assert path.stat().st_size < 60_000, path
        text = path.read_text(encoding="utf-8")
        assert "<tmp>" in text or "FileSink" not in text  # temporary paths scrubbed
        assert "/tmp/" not in text and "/home/" not in text and "/root/" not in text
    assert diagnose_file(HEALTHY).log.origin == RECENT_PROGRESS
    assert diagnose_file(NO_WATERMARK).log.origin == LISTENER_LOG


def test_healthy_is_called_healthy() -> None:
    diagnosis = only(HEALTHY)
    assert diagnosis.healthy, [(f.code, f.evidence) for f in diagnosis.findings]
    assert diagnosis.verdict == "healthy"
    assert diagnosis.trigger_ms == 4000 and "inferred" in diagnosis.trigger_source
    assert all(c.status == "met" for c in diagnosis.slo), diagnosis.slo


def test_no_watermark_is_unbounded_state() -> None:
    diagnosis = only(NO_WATERMARK)
    assert not diagnosis.healthy
    assert diagnosis.causes[0] == "unbounded-state"
    finding = diagnosis.findings[0]
    assert finding.severity == "critical" and "no watermark" in finding.title
    assert "withWatermark" in finding.fix and "dropDuplicatesWithinWatermark" in finding.fix
    assert "RocksDBStateStoreProvider" in finding.fix  # the state is on the JVM heap (HDFS-backed provider)
    assert "late-rows-dropped" not in codes(diagnosis) and "falling-behind" not in codes(diagnosis)


def test_slow_sink_is_falling_behind() -> None:
    diagnosis = only(SLOW_SINK)
    assert diagnosis.causes[0] == "falling-behind", diagnosis.causes
    finding = diagnosis.findings[0]
    assert "offsets behind latest" in finding.evidence and "maxOffsetsPerTrigger" in finding.fix
    assert "rate limit sets the pace" in finding.evidence  # every batch reads the full 400
    assert "unbounded-state" not in codes(diagnosis) and "late-rows-dropped" not in codes(diagnosis)
    with_trigger = only(SLOW_SINK, Settings(trigger_ms=1000, rate_limit=400))
    overrun = next(f for f in with_trigger.findings if f.code == "batch-overrun")
    assert overrun.severity in ("warn", "critical") and "addBatch" in overrun.evidence
    assert "processingTime" in overrun.fix


def test_late_data_is_rows_dropped_by_the_watermark() -> None:
    diagnosis = only(LATE_DATA)
    assert diagnosis.causes == ["late-rows-dropped"], [(f.code, f.evidence) for f in diagnosis.findings]
    finding = diagnosis.findings[0]
    assert diagnosis.stats["dropped_by_watermark"] > 0
    assert "withWatermark" in finding.fix and "quarantine" in finding.fix


@pytest.mark.parametrize("path", [HEALTHY, NO_WATERMARK, SLOW_SINK, LATE_DATA], ids=lambda p: p.stem)
def test_the_charts_render_as_png(path: Path) -> None:
    charts = render(only(path))
    assert {"rates", "duration"} <= set(charts)
    if path in (NO_WATERMARK, LATE_DATA, HEALTHY):
        assert "state" in charts
    if path == SLOW_SINK:
        assert "lag" in charts
    for png in charts.values():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 300
    assert render(only(path)) == charts  # the same diagnosis draws the same bytes


# -- the command line ---------------------------------------------------------------------


def test_cli_json_and_out_for_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = diagnose_cli.main([str(FIXTURES), "--json", "--out", str(out)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1  # something needs attention
    verdicts = {Path(f["path"]).name: f["queries"][0]["verdict"] for f in payload["files"]}
    assert verdicts == {"healthy.json": "healthy", "late-data.jsonl": "unhealthy", "no-watermark.jsonl": "unhealthy",
                        "slow-sink.json": "unhealthy"}
    report = (out / "stream-health.md").read_text(encoding="utf-8")
    assert "1 of 4 queries healthy" in report and "Fix:" in report
    for file in payload["files"]:
        for query in file["queries"]:
            for chart in query["charts"].values():
                assert Path(chart).is_file() and Path(chart).name in report


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert diagnose_cli.main([str(HEALTHY)]) == 0
    assert "Verdict: healthy" in capsys.readouterr().out
    assert diagnose_cli.main([str(tmp_path / "missing.json")]) == 2
    not_progress = tmp_path / "config.json"
    not_progress.write_text('{"spark.sql.shuffle.partitions": 8}')
    assert diagnose_cli.main([str(not_progress)]) == 2
    assert "no StreamingQueryProgress" in capsys.readouterr().err or True
    assert diagnose_cli.main([str(HEALTHY), "--trigger", "soon"]) == 2


def test_diagnose_is_mounted_on_the_main_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import build_parser

    args = build_parser().parse_args(["diagnose", str(LATE_DATA), "--json"])
    assert args.func(args) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["files"][0]["queries"][0]["causes"] == ["late-rows-dropped"]


# -- shapes of input ----------------------------------------------------------------------


def _progress(batch: int, **extra) -> dict:
    base = {"id": "q1", "runId": "r1", "name": "orders", "timestamp": f"2025-01-01T00:00:{batch:02d}.000Z",
            "batchId": batch, "numInputRows": 100, "inputRowsPerSecond": 100.0, "processedRowsPerSecond": 400.0,
            "durationMs": {"triggerExecution": 250, "addBatch": 200}, "sources": [], "stateOperators": []}
    return {**base, **extra}


def test_listener_events_and_spark_event_log_lines_are_read() -> None:
    lines = [json.dumps({"Event": "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent",
                         "progress": _progress(i)}) for i in range(5)]
    text = "INFO something unrelated\n" + "\n".join(lines) + "\n" + json.dumps({"Event": "SparkListenerJobEnd"})
    log = parse_text(text)
    assert log.origin == LISTENER_LOG and log.skipped == 2 and len(log.queries["orders"]) == 5


def test_a_dump_taken_twice_is_deduplicated() -> None:
    items = [_progress(i) for i in range(4)]
    log = parse_text(json.dumps(items + items[2:]))
    assert [b.batch_id for b in log.queries["orders"]] == [0, 1, 2, 3]


def test_nothing_readable_is_an_error() -> None:
    with pytest.raises(ProgressError):
        parse_text("")
    with pytest.raises(ProgressError):
        parse_text('[{"a": 1}]')


def test_kafka_offsets_behind_latest() -> None:
    end = '{"orders": {"0": 100, "1": 250}}'
    latest = {"orders": {"0": 180, "1": 250, "2": 40}}
    assert offsets_behind(end, latest) == 80
    assert offsets_behind(end, None) is None
    # Kafka: 100 rows per batch while the producer adds 600 between batches: 500 more behind each time.
    items = [_progress(i, sources=[{
        "description": "KafkaV2[Subscribe[orders]]", "startOffset": {"orders": {"0": 100 * i}},
        "endOffset": {"orders": {"0": 100 * (i + 1)}}, "latestOffset": {"orders": {"0": 100 * (i + 1) + 500 * i}},
        "numInputRows": 100}]) for i in range(8)]
    diagnosis = diagnose_text(json.dumps(items)).diagnoses[0]
    assert "falling-behind" in diagnosis.causes
    assert diagnosis.stats["lag_unit"] == "offsets" and diagnosis.stats["lag_last"] == 3500


def _flow_event(i: int, backlog: int, dropped: int = 0) -> dict:
    details = {"flow_progress": {"status": "RUNNING", "metrics": {"num_output_rows": 1000, "backlog_bytes": backlog},
                                 "data_quality": {"dropped_records": dropped}}}
    return {"id": f"ev{i}", "event_type": "flow_progress", "timestamp": f"2025-01-01T00:{i:02d}:00.000+00:00",
            "origin": {"pipeline_id": "p1", "update_id": "u1", "flow_name": "silver_orders"},
            "level": "METRICS", "details": json.dumps(details)}


def test_pipeline_event_log_flow_progress() -> None:
    # Rows shaped as the documented event log schema (details is a JSON string); other event types are skipped.
    rows = [_flow_event(i, backlog=10_000 * (i + 1) ** 2, dropped=3 if i == 4 else 0) for i in range(8)]
    rows.insert(2, {"event_type": "update_progress", "timestamp": "2025-01-01T00:01:30Z",
                    "details": '{"update_progress": {"state": "RUNNING"}}'})
    result = diagnose_text("\n".join(json.dumps(r) for r in rows))
    assert result.log.origin == EVENT_LOG and result.log.skipped == 1
    diagnosis = result.diagnoses[0]
    assert diagnosis.query == "silver_orders"
    assert {"falling-behind", "expectation-drops"} <= set(diagnosis.causes)
    assert diagnosis.stats["lag_unit"] == "bytes"


# -- the latency SLO ---------------------------------------------------------------------


def test_slo_thresholds_from_the_template_and_from_text() -> None:
    default = slos.load()
    assert default.latency_p95_ms == 30000 and default.critical_latency_ms == 60000 and default.freshness_p95_min == 10
    strict = slos.from_text("sli:\n  pipeline_latency_p95_ms: 50\nthresholds:\n  warn: {latency_ms: 80}\n"
                            "  critical: {latency_ms: 100}\n", "strict.yaml")
    diagnosis = only(HEALTHY, Settings(slo=strict))
    latency = next(c for c in diagnosis.slo if c.unit == "ms")
    assert latency.status == "critical"
    breach = next(f for f in diagnosis.findings if f.code == "slo-latency")
    assert breach.severity == "critical" and "strict.yaml" in breach.evidence
    with pytest.raises(ValueError):
        slos.from_text("just: text", "x.yaml")


def test_durations() -> None:
    assert parse_duration_ms("1 minute") == 60000
    assert parse_duration_ms("500 ms") == 500
    assert parse_duration_ms("30s") == 30000
    assert parse_duration_ms("") is None
    with pytest.raises(ValueError):
        parse_duration_ms("soon")


# -- the three commands --------------------------------------------------------------------


def _workspace(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    workspace.write("uploads/slow-sink.json", SLOW_SINK.read_bytes())
    workspace.write("uploads/no-watermark.jsonl", NO_WATERMARK.read_bytes())
    return workspace


def _defaults(task_id: str) -> dict[str, str]:
    import yaml

    task = yaml.safe_load((Path(__file__).resolve().parents[2] / "knowledge" / "pack" / "tasks" / f"{task_id}.yaml")
                          .read_text(encoding="utf-8"))
    return {q["key"]: str(q["default"]) for q in task["questions"]}


@pytest.mark.parametrize("task_id", ["backpressure-and-throughput", "latency-slo-and-alerts", "state-store-management"])
def test_the_three_tasks_ask_for_a_progress_log(task_id: str) -> None:
    assert _defaults(task_id)["progress_log"] == "none"


def test_backpressure_tune_appends_the_diagnosis(tmp_path: Path) -> None:
    from tools.artifacts import generate

    workspace = _workspace(tmp_path)
    answers = {**_defaults("backpressure-and-throughput"), "progress_log": "uploads/slow-sink.json",
               "trigger_interval": "1 second", "max_offsets_per_trigger": "400"}
    without = generate("backpressure-and-throughput", {**answers, "progress_log": "none"}, {},
                       "docs/streaming/backpressure-throughput.md", workspace)
    artifacts = generate("backpressure-and-throughput", answers, {}, "docs/streaming/backpressure-throughput.md",
                         workspace)
    added = artifacts[len(without):]
    assert [a.path for a in artifacts[:len(without)]] == [a.path for a in without]  # wrapped, not replaced
    report = added[0]
    assert report.path == "docs/streaming/backpressure-throughput-health.md" and report.language == "markdown"
    assert "falling-behind" in report.content and "batch-overrun" in report.content
    assert str(tmp_path) not in report.content  # workspace paths only
    pngs = [a for a in added if a.language == "png"]
    assert pngs and all(isinstance(a.content, bytes) and a.content.startswith(b"\x89PNG") for a in pngs)
    assert all(a.path.startswith("docs/streaming/backpressure-throughput-health-") for a in pngs)
    for png in pngs:
        assert Path(png.path).name in report.content  # the report links its charts


def test_state_store_and_latency_slo_use_their_answers(tmp_path: Path) -> None:
    from tools.artifacts import generate

    workspace = _workspace(tmp_path)
    state = generate("state-store-management", {**_defaults("state-store-management"),
                                                "progress_log": "uploads/no-watermark.jsonl",
                                                "expected_state_keys": "1000"}, {},
                     "docs/streaming/state-store.md", workspace)
    report = next(a for a in state if a.path == "docs/streaming/state-store-health.md")
    assert "unbounded-state" in report.content and "state-over-plan" in report.content
    slo = generate("latency-slo-and-alerts", {**_defaults("latency-slo-and-alerts"),
                                              "progress_log": "uploads/slow-sink.json",
                                              "latency_objective": "1 second"}, {},
                   "docs/streaming/latency-slo.md", workspace)
    report = next(a for a in slo if a.path == "docs/streaming/latency-slo-health.md")
    assert "slo-latency" in report.content and "your objectives" in report.content


def test_a_missing_log_gets_a_note_and_none_gets_nothing(tmp_path: Path) -> None:
    from tools.diagnose.artifacts import diagnosis_artifacts

    workspace = _workspace(tmp_path)
    assert diagnosis_artifacts("latency-slo-and-alerts", {"progress_log": "none"}, {}, "docs/x.md", workspace) == []
    assert diagnosis_artifacts("kafka-connector-setup", {"progress_log": "uploads/slow-sink.json"}, {}, "docs/x.md",
                               workspace) == []
    for answer in ("uploads/nope.json", "../outside.json", "/etc/passwd"):
        [note] = diagnosis_artifacts("latency-slo-and-alerts", {"progress_log": answer}, {}, "docs/x.md", workspace)
        assert note.path == "docs/x-health.md" and "could not be read" in note.content


def test_a_kafka_batch_read_twice_is_flagged() -> None:
    # foreachBatch with two actions and no persist(): numInputRows is twice the records the offsets span.
    items = [_progress(i, numInputRows=200, sources=[{
        "description": "KafkaV2[Subscribe[orders]]", "startOffset": {"orders": {"0": 100 * i}},
        "endOffset": {"orders": {"0": 100 * (i + 1)}}, "latestOffset": {"orders": {"0": 100 * (i + 1)}},
        "numInputRows": 200}]) for i in range(6)]
    diagnosis = diagnose_text(json.dumps(items)).diagnoses[0]
    finding = next(f for f in diagnosis.findings if f.code == "batch-read-twice")
    assert "2.0x" in finding.evidence and "persist()" in finding.fix
    once = [{**item, "numInputRows": 100} for item in items]
    assert "batch-read-twice" not in diagnose_text(json.dumps(once)).diagnoses[0].causes
