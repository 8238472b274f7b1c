"""Suite metrics from case results, and the thresholds a run must meet.

Per suite: cases, pass rate (over every repeat; with ``--repeat`` also the
pass rate of each repeat and its standard deviation), trajectory accuracy
(route assertions that held) and tool-call accuracy. Knowledge adds
recall@k, MRR@depth, the share of answers holding every key fact, the share
whose first sentence holds one, the share of uncovered questions declined and, when a model judged it, mean
groundedness. Lint cases add precision and recall of the findings
(rule, status, line) against the expected ones.

``evals/thresholds.yaml`` sets minimums as ``suite: {metric: minimum}``
under ``default``, with per-backend replacements under ``backends``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evals.runner import CaseResult, RunResult

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.yaml"


@dataclass(frozen=True)
class Threshold:
    """One minimum and how the run measured up to it."""

    suite: str
    metric: str
    minimum: float
    value: float | None
    ok: bool
    skipped: bool = False

    @property
    def name(self) -> str:
        """``suite.metric``."""
        return f"{self.suite}.{self.metric}"


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _check_share(results: list[CaseResult], prefix: str) -> float | None:
    """Share of assertions whose name starts with ``prefix`` (after ``turn N: ``) that held."""
    relevant = [c for r in results for c in r.checks if c.name.split(": ", 1)[-1].startswith(prefix)]
    return _rate(sum(1 for c in relevant if c.ok), len(relevant))


def suite_metrics(run: RunResult, k: int = 5, depth: int = 10) -> dict[str, dict[str, Any]]:
    """Every suite's metrics (``None`` where a metric does not apply)."""
    by_suite: dict[str, list[CaseResult]] = {s: [] for s in run.suites}
    for result in run.results:
        by_suite.setdefault(result.case.suite, []).append(result)
    metrics: dict[str, dict[str, Any]] = {}
    for suite, results in by_suite.items():
        passed = sum(1 for r in results if r.passed)
        row: dict[str, Any] = {
            "cases": len({r.case.id for r in results}),
            "runs": len(results),
            "passed": passed,
            "failed": sum(1 for r in results if r.status == "failed"),
            "errors": sum(1 for r in results if r.status == "error"),
            "pass_rate": _rate(passed, len(results)),
            "seconds": round(sum(r.seconds for r in results), 2),
        }
        # Shares of route and tool-call assertions, when the suite's cases make any (else absent: not measured).
        for metric, prefix in (("trajectory", "route"), ("tool_calls", "tool_calls")):
            share = _check_share(results, prefix)
            if share is not None:
                row[metric] = share
        if run.repeat > 1 and results:
            rates = [_rate(sum(1 for r in results if r.repeat == n and r.passed),
                           sum(1 for r in results if r.repeat == n)) or 0.0 for n in range(run.repeat)]
            row["pass_rate_by_repeat"] = rates
            row["pass_rate_stdev"] = statistics.pstdev(rates)
        knowledge = [r for r in results if r.case.kind == "knowledge"]
        if knowledge:
            row.update(knowledge_metrics(knowledge, k, depth))
        lint = [r for r in results if r.case.kind == "lint"]
        if lint:
            row.update(lint_metrics(lint))
        metrics[suite] = row
    return metrics


def knowledge_metrics(results: list[CaseResult], k: int = 5, depth: int = 10) -> dict[str, Any]:
    """recall@k, MRR@depth, key facts, declined and groundedness over knowledge results."""
    answerable = [r for r in results if r.metrics.get("answerable")]
    declinable = [r for r in results if r.metrics.get("answerable") is False]
    ranks = [r.metrics.get("rank") for r in answerable]
    row = {
        f"recall@{k}": _rate(sum(1 for rank in ranks if rank is not None and rank <= k), len(ranks)),
        f"mrr@{depth}": _rate(sum(1.0 / rank for rank in ranks if rank), len(ranks)),
        "key_facts": _rate(sum(1 for r in answerable if r.metrics.get("key_facts")), len(answerable)),
        # The answer leads with the answer: its first sentence holds a labelled key fact.
        "first_sentence_fact": _rate(sum(1 for r in answerable if r.metrics.get("first_sentence_fact")), len(answerable)),
        "declined": _rate(sum(1 for r in declinable if r.metrics.get("declined")), len(declinable)),
    }
    judged = [r for r in answerable if "groundedness" in r.metrics]
    if judged:
        # Only when a judge ran: without one the metric is absent (its threshold skipped), not zero.
        scores = [float(r.metrics["groundedness"]) for r in judged if r.metrics["groundedness"] is not None]
        row.update(groundedness=statistics.mean(scores) if scores else None, judged=len(scores),
                   unjudged=len(judged) - len(scores))
    return row


def lint_metrics(results: list[CaseResult]) -> dict[str, Any]:
    """Micro precision and recall of actionable findings (rule, status, line)."""
    tp = sum(r.metrics.get("tp", 0) for r in results)
    fp = sum(r.metrics.get("fp", 0) for r in results)
    fn = sum(r.metrics.get("fn", 0) for r in results)
    precision = _rate(tp, tp + fp)
    recall = _rate(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {"precision": precision, "recall": recall, "f1": f1, "findings_expected": tp + fn, "findings_reported": tp + fp}


def load_thresholds(path: Path | str = THRESHOLDS_FILE, backend: str = "offline") -> dict[str, dict[str, float]]:
    """The minimums for ``backend``: the ``default`` block with the backend's replacements."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    merged: dict[str, dict[str, float]] = {}
    for block in (data.get("default") or {}, (data.get("backends") or {}).get(backend) or {}):
        for suite, minimums in block.items():
            merged.setdefault(str(suite), {}).update({str(m): float(v) for m, v in (minimums or {}).items()})
    return merged


def evaluate(metrics: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, Mapping[str, float]]) -> list[Threshold]:
    """Compare every minimum of a suite that ran with what it measured.

    A suite left out of the run (``--suite``) is not judged. A metric the
    run does not produce at all (groundedness without a judge) is skipped,
    and shown as skipped; one it produces without a value (no such cases
    ran, or the judge could not score) fails.
    """
    verdicts = []
    for suite, minimums in thresholds.items():
        if suite not in metrics:
            continue
        for metric, minimum in minimums.items():
            if metric not in metrics[suite]:
                verdicts.append(Threshold(suite, metric, minimum, None, True, skipped=True))
                continue
            value = metrics[suite].get(metric)
            ok = value is not None and float(value) >= minimum - 1e-9
            verdicts.append(Threshold(suite, metric, minimum, None if value is None else float(value), ok))
    return verdicts
