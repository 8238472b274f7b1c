"""A diagnosis as Markdown (for people and documents) and as a JSON-ready dict (for tools)."""

from __future__ import annotations

from dataclasses import asdict

from tools.diagnose.detect import Diagnosis
from tools.diagnose.stats import human_bytes, human_count, human_ms

ICONS = {"critical": "🔴", "warn": "🟠", "info": "🔵"}
SLO_ICONS = {"met": "✅", "missed": "🟠", "warn": "🟠", "critical": "🔴", "no data": "—"}
CHART_TITLES = {
    "rates": "Input vs processed rate",
    "duration": "Batch duration vs trigger",
    "state": "State rows and memory",
    "lag": "Source backlog",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def _slo_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return human_ms(value) if unit == "ms" else f"{value:.2f} min"


def query_markdown(diagnosis: Diagnosis, charts: dict[str, str] | None = None, level: int = 2) -> str:
    """One query's diagnosis as Markdown.

    Args:
        diagnosis: the diagnosis.
        charts: links to the rendered charts by chart name (relative to the report).
        level: the heading level of the query's title.
    """
    stats = diagnosis.stats
    head = "#" * level
    lines = [f"{head} Query `{diagnosis.query}`", "",
             f"**Verdict: {diagnosis.verdict}**", "",
             f"{stats['batches']} batches in {stats['runs']} run(s), {stats['first']} → {stats['last']}; "
             f"read from a {diagnosis.origin}.", "",
             "| Measure | Value |", "|---|---|",
             f"| rows read | {human_count(stats['input_rows'])} |",
             f"| input rate (median) | {human_count(stats['input_rate_median'])} rows/s |",
             f"| processed rate (median) | {human_count(stats['processed_rate_median'])} rows/s |",
             f"| batch duration p50 / p95 | {human_ms(stats['duration_p50_ms'])} / {human_ms(stats['duration_p95_ms'])} |",
             f"| trigger interval | {human_ms(diagnosis.trigger_ms)} ({diagnosis.trigger_source}) |",
             f"| state rows first → last | {human_count(stats['state_rows_first'])} → "
             f"{human_count(stats['state_rows_last'])} |",
             f"| state memory (last) | {human_bytes(stats['state_memory_last_bytes'])} |",
             f"| event-time watermark | {'set' if stats['watermark'] else 'none'} |",
             f"| rows dropped by the watermark | {human_count(stats['dropped_by_watermark'])} |",
             f"| source lag (last) | {human_count(stats['lag_last'])} {stats['lag_unit'] or ''} |", ""]
    lines += [f"{head}# Findings", ""]
    if not diagnosis.findings:
        lines += ["No problems found: processing keeps up with input, batches fit the trigger, state is bounded "
                  "and nothing was dropped by the watermark.", ""]
    for finding in diagnosis.findings:
        lines += [f"- {ICONS[finding.severity]} **{finding.severity.upper()} · {finding.title}** "
                  f"(`{finding.code}`, {finding.topic})",
                  f"  - Evidence: {finding.evidence}",
                  f"  - Fix: {finding.fix}"]
    lines += ["", f"{head}# Latency SLO", "", "| SLI | Observed p95 | Objective | Warn | Critical | Status |",
              "|---|---|---|---|---|---|"]
    for check in diagnosis.slo:
        lines.append(f"| {_cell(check.metric)} | {_slo_value(check.observed, check.unit)} | "
                     f"{_slo_value(check.target, check.unit)} | {_slo_value(check.warn, check.unit)} | "
                     f"{_slo_value(check.critical, check.unit)} | {SLO_ICONS[check.status]} {check.status} |")
    lines.append("")
    if charts:
        lines += [f"{head}# Charts", ""]
        for name, link in charts.items():
            lines += [f"![{CHART_TITLES.get(name, name)}]({link})", ""]
    return "\n".join(lines)


def markdown(results: list[tuple[str, list[Diagnosis]]], charts: dict[tuple[str, str], dict[str, str]] | None = None,
             title: str = "Stream health diagnosis") -> str:
    """The whole report: one section per file and query.

    Args:
        results: ``(file path, diagnoses)`` pairs.
        charts: chart links by ``(file path, query)``.
        title: the report's title.
    """
    lines = [f"# {title}", ""]
    unhealthy = [(path, d) for path, ds in results for d in ds if not d.healthy]
    total = sum(len(ds) for _, ds in results)
    lines += [f"{total - len(unhealthy)} of {total} queries healthy." if total else "No queries found.", ""]
    for path, diagnoses in results:
        lines += [f"## `{path}`", ""]
        for diagnosis in diagnoses:
            links = (charts or {}).get((path, diagnosis.query))
            lines.append(query_markdown(diagnosis, links, level=3))
    return "\n".join(lines).rstrip("\n") + "\n"


def to_dict(diagnosis: Diagnosis, charts: dict[str, str] | None = None) -> dict[str, object]:
    """A JSON-ready form of one query's diagnosis."""
    return {
        "query": diagnosis.query,
        "origin": diagnosis.origin,
        "verdict": "healthy" if diagnosis.healthy else "unhealthy",
        "summary": diagnosis.verdict,
        "causes": diagnosis.causes,
        "trigger_ms": diagnosis.trigger_ms,
        "trigger_source": diagnosis.trigger_source,
        "stats": diagnosis.stats,
        "findings": [asdict(f) for f in diagnosis.findings],
        "slo": [asdict(c) for c in diagnosis.slo],
        "charts": dict(charts or {}),
    }
