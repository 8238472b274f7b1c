"""Format results as text (people), JSON (DESIGN.md contract) or SARIF 2.1.0 (CI)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

from tools.lint.catalog import RULES
from tools.lint.model import FileResult

TOOL_NAME = "streaming-engineer"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def to_json(results: list[FileResult]) -> str:
    """``{"files": [{"path", "findings": [...], "error"?}]}`` as in DESIGN.md."""
    return json.dumps({"files": [r.to_dict() for r in results]}, ensure_ascii=False, indent=2)


def to_text(results: list[FileResult], verbose: bool = False) -> str:
    """One line per finding (PASS only with ``verbose``), then a summary line."""
    out: list[str] = []
    counts: Counter[str] = Counter()
    for result in results:
        if result.error:
            out.append(f"{result.path}: ERROR not analysed: {result.error}")
        for warning in result.warnings:
            out.append(f"{result.path}: WARNING {warning}")
        for finding in result.findings:
            counts[finding.status] += 1
            if finding.status == "PASS" and not verbose:
                continue
            where = f"{result.path}:{finding.line}" if finding.line else result.path
            out.append(f"{where}: {finding.status} {finding.rule} [{finding.severity}] {finding.topic}: {finding.message}")
            if finding.evidence:
                out.append(f"    | {finding.evidence}")
    errors = sum(1 for r in results if r.error)
    summary = [f"{len(results)} file{'s' if len(results) != 1 else ''} checked"]
    summary += [f"{counts[s]} {s}" for s in ("FAIL", "PARTIAL", "REVIEW") if counts[s]]
    if counts["PASS"]:
        summary.append(f"{counts['PASS']} PASS" + ("" if verbose else " (shown with --verbose)"))
    if errors:
        summary.append(f"{errors} could not be analysed")
    partial = sum(1 for r in results if r.warnings and not r.error)
    if partial:
        summary.append(f"{partial} analysed in part")
    if not any(counts[s] for s in ("FAIL", "PARTIAL", "REVIEW")):
        summary.append("no problems found")
    out.append(", ".join(summary))
    return "\n".join(out)


def _sarif_rule(rule_id: str) -> dict[str, Any]:
    rule = RULES[rule_id]
    return {
        "id": rule.id,
        "name": "".join(w.capitalize() for w in rule.title.replace("/", " ").replace("-", " ").split() if w.isalnum()),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.catches},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {"topic": rule.topic, "checklist": rule.checklist, "item": rule.item},
    }


def to_sarif(results: list[FileResult], verbose: bool = False) -> str:
    """A SARIF 2.1.0 log: one run, one result per non-PASS finding.

    PASS findings are left out unless ``verbose`` (then as ``kind: pass``);
    files that could not be checked become tool execution notifications.
    """
    rule_ids = sorted(RULES)
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for result in results:
        # A URI reference: spaces and other reserved characters percent-encoded, slashes kept.
        location = {"physicalLocation": {"artifactLocation": {"uri": quote(result.path, safe="/:")}}}
        if result.error:
            notifications.append({"level": "error", "message": {"text": f"not analysed: {result.error}"},
                                  "locations": [location]})
        for warning in result.warnings:
            notifications.append({"level": "warning", "message": {"text": warning}, "locations": [location]})
        for finding in result.findings:
            if finding.status == "PASS" and not verbose:
                continue
            region = {"startLine": finding.line or 1}
            entry: dict[str, Any] = {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": "none" if finding.status == "PASS" else _SARIF_LEVEL[finding.severity],
                "message": {"text": finding.message},
                "locations": [{"physicalLocation": {**location["physicalLocation"], "region": region}}],
                "properties": {
                    "status": finding.status,
                    "topic": finding.topic,
                    "checklist": finding.checklist,
                    "item": finding.item,
                    "evidence": finding.evidence,
                },
            }
            if finding.status == "PASS":
                entry["kind"] = "pass"
            sarif_results.append(entry)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "rules": [_sarif_rule(r) for r in rule_ids]}},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": sarif_results,
        }],
    }
    return json.dumps(log, ensure_ascii=False, indent=2)
