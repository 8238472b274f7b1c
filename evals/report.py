"""Write a run's reports: JSON (everything), Markdown (for people and CI logs), JUnit XML (for CI UIs)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evals.metrics import Threshold
from evals.runner import CaseResult, RunResult

MAX_FAILURES_SHOWN = 40
"""Failures listed in the Markdown report (the JSON report has them all)."""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _case_record(result: CaseResult) -> dict[str, Any]:
    return {
        "suite": result.case.suite,
        "id": result.case.id,
        "kind": result.case.kind,
        "repeat": result.repeat,
        "status": result.status,
        "seconds": round(result.seconds, 4),
        "thread": result.thread,
        "description": result.case.description,
        "tags": list(result.case.tags),
        "failures": [{"check": c.name, "message": c.message} for c in result.failures],
        "checks": len(result.checks),
        "metrics": result.metrics,
        "turns": [asdict(t) for t in result.turns],
        "error": result.error,
    }


def to_json(run: RunResult, metrics: Mapping[str, Any], verdicts: list[Threshold]) -> dict[str, Any]:
    """The whole run as one JSON-safe object."""
    return {
        "run": {
            "id": run.run_id, "backend": run.backend, "model": run.model, "started": run.started,
            "seconds": round(run.seconds, 2), "index_seconds": round(run.index_seconds, 2), "home": run.home,
            "repeat": run.repeat, "cache": run.cache, "skipped": run.skipped, "notes": run.notes,
        },
        "passed": all(v.ok for v in verdicts),
        "suites": dict(metrics),
        "thresholds": [{"name": v.name, "minimum": v.minimum, "value": v.value, "ok": v.ok, "skipped": v.skipped}
                       for v in verdicts],
        "cases": [_case_record(r) for r in run.results],
    }


def to_markdown(run: RunResult, metrics: Mapping[str, Mapping[str, Any]], verdicts: list[Threshold]) -> str:
    """A summary a person reads: suites, thresholds, failures."""
    passed = all(v.ok for v in verdicts)
    model = f", model `{run.model}`" if run.model else ""
    lines = [
        f"# Eval report — {'PASSED' if passed else 'FAILED'}",
        "",
        f"Backend **{run.backend}**{model}; {sum(m['cases'] for m in metrics.values())} cases"
        + (f" × {run.repeat} repeats" if run.repeat > 1 else "")
        + f"; {run.seconds:.1f} s in all (engine and index ready in {run.index_seconds:.1f} s); run `{run.run_id}`.",
        "",
        "| Suite | Cases | Passed | Failed | Errors | Pass rate | Trajectory | Tool calls | Time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for suite, row in metrics.items():
        lines.append(f"| {suite} | {row['cases']} | {row['passed']} | {row['failed']} | {row['errors']} | "
                     f"{_fmt(row['pass_rate'])} | {_fmt(row.get('trajectory'))} | {_fmt(row.get('tool_calls'))} | "
                     f"{row['seconds']:.1f} |")
    extra = [(suite, name, value) for suite, row in metrics.items() for name, value in row.items()
             if name not in ("cases", "runs", "passed", "failed", "errors", "pass_rate", "seconds", "trajectory",
                             "tool_calls", "pass_rate_by_repeat") and value is not None]
    if extra:
        lines += ["", "| Metric | Value |", "|---|---:|"]
        lines += [f"| {suite}.{name} | {_fmt(value)} |" for suite, name, value in extra]
    if verdicts:
        lines += ["", "## Thresholds", "", "| Metric | Minimum | Value | |", "|---|---:|---:|---|"]
        lines += [f"| {v.name} | {v.minimum:.3f} | {_fmt(v.value)} | "
                  f"{'skipped (not measured in this run)' if v.skipped else '✅' if v.ok else '❌'} |" for v in verdicts]
    failures = [r for r in run.results if not r.passed]
    if failures:
        lines += ["", f"## Failures ({len(failures)})", ""]
        for result in failures[:MAX_FAILURES_SHOWN]:
            repeat = f" (repeat {result.repeat + 1})" if run.repeat > 1 else ""
            if result.status == "error":
                reason = (result.error.strip().splitlines() or ["error"])[-1]
            else:
                reason = "; ".join(f"{c.name}: {c.message}" for c in result.failures[:3])
            lines.append(f"- **{result.case.key}**{repeat}: {reason[:400]}")
        if len(failures) > MAX_FAILURES_SHOWN:
            lines.append(f"- … and {len(failures) - MAX_FAILURES_SHOWN} more (see report.json)")
    notes = [*run.notes, *run.skipped]
    if run.cache:
        notes.append(f"model request cache: {run.cache.get('hits', 0)} hits, {run.cache.get('misses', 0)} misses")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# Characters XML 1.0 cannot hold at all, not even escaped (C0 controls but tab/newline/CR, surrogates, U+FFFE/F).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    r"""``text`` with every character XML 1.0 forbids written as a visible ``\xNN`` / ``\uNNNN`` escape."""
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else
                            f"\\u{ord(m.group()):04x}", text)


def _sanitise(root: ET.Element) -> None:
    """Make every text, tail and attribute of the tree storable in XML (bad-input cases carry control characters)."""
    for element in root.iter():
        if element.text:
            element.text = xml_safe(element.text)
        if element.tail:
            element.tail = xml_safe(element.tail)
        for key, value in element.attrib.items():
            element.attrib[key] = xml_safe(value)


def to_junit(run: RunResult, verdicts: list[Threshold]) -> str:
    """JUnit XML: one test suite per eval suite, one test case per case (and repeat), plus the thresholds."""
    root = ET.Element("testsuites", name=f"streaming-engineer eval ({run.backend})", time=f"{run.seconds:.3f}")
    by_suite: dict[str, list[CaseResult]] = {}
    for result in run.results:
        by_suite.setdefault(result.case.suite, []).append(result)
    for suite, results in by_suite.items():
        element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                                failures=str(sum(1 for r in results if r.status == "failed")),
                                errors=str(sum(1 for r in results if r.status == "error")),
                                time=f"{sum(r.seconds for r in results):.3f}")
        for result in results:
            name = result.case.id + (f" [repeat {result.repeat + 1}]" if run.repeat > 1 else "")
            case = ET.SubElement(element, "testcase", classname=f"evals.{suite}", name=name,
                                 time=f"{result.seconds:.3f}")
            if result.status == "failed":
                message = "; ".join(c.message for c in result.failures[:3])[:500]
                failure = ET.SubElement(case, "failure", message=message, type="AssertionError")
                failure.text = "\n".join(f"{c.name}: {c.message}" for c in result.failures)
            elif result.status == "error":
                error = ET.SubElement(case, "error", message=(result.error.strip().splitlines() or [""])[-1][:500])
                error.text = result.error
            if result.turns:
                out = ET.SubElement(case, "system-out")
                out.text = "\n\n".join(f"> {t.input}\n[{' → '.join(t.route)}]\n{t.output}" for t in result.turns)
    if verdicts:
        element = ET.SubElement(root, "testsuite", name="thresholds", tests=str(len(verdicts)),
                                failures=str(sum(1 for v in verdicts if not v.ok)), errors="0", time="0")
        for verdict in verdicts:
            case = ET.SubElement(element, "testcase", classname="evals.thresholds", name=verdict.name, time="0")
            if verdict.skipped:
                ET.SubElement(case, "skipped", message="not measured in this run")
            elif not verdict.ok:
                ET.SubElement(case, "failure", type="ThresholdError",
                              message=f"{verdict.name} = {_fmt(verdict.value)} < {verdict.minimum:.3f}")
    _sanitise(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_reports(folder: Path, run: RunResult, metrics: Mapping[str, Any], verdicts: list[Threshold]) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``junit.xml`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md", "junit": folder / "junit.xml"}
    paths["json"].write_text(json.dumps(to_json(run, metrics, verdicts), indent=2, ensure_ascii=False, default=str),
                             encoding="utf-8")
    paths["markdown"].write_text(to_markdown(run, metrics, verdicts), encoding="utf-8")
    paths["junit"].write_text(to_junit(run, verdicts), encoding="utf-8")
    return paths
