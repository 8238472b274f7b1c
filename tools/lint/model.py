"""The data the linter produces: rules, findings and per-file results.

These shapes are a public contract (DESIGN.md, ``check --format json``), so
field names and allowed values are spelled out here once and checked by tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["PASS", "FAIL", "PARTIAL", "N/A", "REVIEW"]
Severity = Literal["error", "warning", "info"]
Topic = Literal[
    "watermark",
    "idempotency",
    "checkpoint",
    "dlq",
    "schema",
    "security",
    "trigger",
    "backpressure",
    "state",
    "observability",
    "dq",
    "cost",
]

STATUSES: tuple[str, ...] = ("PASS", "FAIL", "PARTIAL", "N/A", "REVIEW")
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
TOPICS: tuple[str, ...] = (
    "watermark",
    "idempotency",
    "checkpoint",
    "dlq",
    "schema",
    "security",
    "trigger",
    "backpressure",
    "state",
    "observability",
    "dq",
    "cost",
)
# Statuses that "matter": they are shown by default and counted by the
# precision/recall measurement. PASS is positive evidence, N/A is unused here.
ACTIONABLE: frozenset[str] = frozenset({"FAIL", "PARTIAL", "REVIEW"})


@dataclass(frozen=True)
class Rule:
    """One automated rule: what it catches, where it belongs and how to fix it.

    Attributes:
        id: stable identifier, e.g. ``SE101``; used in suppression comments.
        topic: one of ``TOPICS``.
        checklist: id of the bundle checklist the rule serves.
        item: the checklist bullet, verbatim (Chinese) from the bundle.
        severity: severity of the rule's worst outcome.
        title: short English name.
        catches: what the rule detects, one sentence.
        fix: what to do about it; appended to every non-PASS message.
        statuses: the statuses this rule can emit.

    """

    id: str
    topic: str
    checklist: str
    item: str
    severity: str
    title: str
    catches: str
    fix: str
    statuses: tuple[str, ...] = ("FAIL",)


@dataclass
class Finding:
    """One judgement of one rule at one place in one file.

    Attributes:
        rule: rule id (``SE101``).
        topic: the rule's topic.
        checklist: the bundle checklist id the finding serves.
        status: PASS / FAIL / PARTIAL / N/A / REVIEW.
        severity: error / warning / info.
        line: 1-based line, or ``None`` for a whole-file finding.
        message: what is wrong and how to fix it.
        evidence: the source text the judgement rests on (secrets redacted).
        item: the checklist bullet, verbatim, so checklist runs can attach it.

    """

    rule: str
    topic: str
    checklist: str
    status: str
    severity: str
    line: int | None
    message: str
    evidence: str
    item: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON shape, plus ``item``."""
        return {
            "rule": self.rule,
            "topic": self.topic,
            "checklist": self.checklist,
            "status": self.status,
            "severity": self.severity,
            "line": self.line,
            "message": self.message,
            "evidence": self.evidence,
            "item": self.item,
        }


@dataclass
class FileResult:
    """Everything the linter says about one file.

    Attributes:
        path: the file path as given or as found while walking a folder.
        findings: findings after suppression, sorted by line.
        error: why the file could not be analysed (only the plaintext-secret
            rules ran, or nothing did), else ``None``; the CLI then exits 2.
        warnings: parts of an analysed file that were left out (a notebook
            cell with a syntax error), one sentence each.

    """

    path: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def has_fail(self) -> bool:
        """True when any finding FAILs (the CLI then exits 1)."""
        return any(f.status == "FAIL" for f in self.findings)

    @property
    def unanalysed(self) -> bool:
        """True when the file could not be analysed (the CLI then exits 2)."""
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON shape for one file; ``error`` and ``warnings`` only when set."""
        data: dict[str, Any] = {"path": self.path, "findings": [f.to_dict() for f in self.findings]}
        if self.error is not None:
            data["error"] = self.error
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data
