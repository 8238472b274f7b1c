"""Judge every item of a checklist against a target, with evidence.

Evidence comes from two automated sources: findings of the pipeline linter
(``tools.lint``) mapped to checklist items, and each item's facet patterns in
the pack. Items with neither are REVIEW offline (a model judges them when one
is configured). Nothing here executes the target.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from knowledge.loader import Checklist, ChecklistItem

STATUSES = ("PASS", "FAIL", "PARTIAL", "N/A", "REVIEW")
CODE_SUFFIXES = {".py", ".sql", ".yaml", ".yml", ".json"}
MAX_TARGET_CHARS = 2_000_000


@dataclass(frozen=True)
class Target:
    """One thing under review: a file's name and text."""

    name: str
    text: str
    path: Path | None = None  # a real file, so the linter can read it


@dataclass
class ItemResult:
    """The judgement of one checklist item."""

    item_id: str
    text: str
    section: str
    topic: str
    status: str
    evidence: list[str] = field(default_factory=list)
    reason: str = ""
    recommendation: str = ""


@dataclass
class ChecklistReport:
    """Every item of one checklist, judged."""

    checklist_id: str
    title: str
    targets: list[str]
    items: list[ItemResult]

    def counts(self) -> dict[str, int]:
        """How many items have each status."""
        return {s: sum(1 for i in self.items if i.status == s) for s in STATUSES}

    def pass_rate(self, items: list[ItemResult] | None = None) -> float | None:
        """PASS over applicable items (PARTIAL counts half); ``None`` when nothing applies."""
        items = self.items if items is None else items
        judged = [i for i in items if i.status in ("PASS", "FAIL", "PARTIAL")]
        if not judged:
            return None
        score = sum(1.0 if i.status == "PASS" else 0.5 if i.status == "PARTIAL" else 0.0 for i in judged)
        return score / len(judged)

    def sections(self) -> list[tuple[str, float | None, list[ItemResult]]]:
        """Per-section pass rate, in order."""
        order: dict[str, list[ItemResult]] = {}
        for item in self.items:
            order.setdefault(item.section, []).append(item)
        return [(name, self.pass_rate(items), items) for name, items in order.items()]

    def summary(self) -> dict:
        """A compact, JSON-safe record (kept in the thread for the release gate)."""
        return {
            "checklist": self.checklist_id,
            "title": self.title,
            "targets": self.targets,
            "counts": self.counts(),
            "pass_rate": self.pass_rate(),
            "failed": [asdict(i) for i in self.items if i.status in ("FAIL", "PARTIAL")],
            "review": [i.text for i in self.items if i.status == "REVIEW"],
        }

    def to_markdown(self) -> str:
        """The report: per-section pass rate, failures with evidence, recommendations, N/A reasons."""
        counts = self.counts()
        rate = self.pass_rate()
        lines = [
            f"# Checklist report: {self.title}",
            "",
            f"- Checklist: `{self.checklist_id}`",
            f"- Target: {', '.join(f'`{t}`' for t in self.targets) or '(none)'}",
            f"- Result: {' · '.join(f'{s} {n}' for s, n in counts.items() if n)}"
            + (f" — pass rate {rate:.0%}" if rate is not None else ""),
            "",
            "## Pass rate by section",
            "",
            "| Section | Pass rate | Items |",
            "|---|---|---|",
        ]
        for name, section_rate, items in self.sections():
            shown = f"{section_rate:.0%}" if section_rate is not None else "n/a"
            lines.append(f"| {name} | {shown} | {len(items)} |")
        lines += ["", "## Items", "", "| Status | Item | Evidence |", "|---|---|---|"]
        for item in self.items:
            evidence = "; ".join(item.evidence[:3]) or item.reason
            lines.append(f"| {item.status} | {item.text} | {_cell(evidence)} |")
        failed = [i for i in self.items if i.status in ("FAIL", "PARTIAL")]
        if failed:
            lines += ["", "## Failed and partial items", ""]
            for item in failed:
                lines.append(f"- **{item.status}** {item.text}: {item.reason}")
                lines += [f"  - evidence: {e}" for e in item.evidence[:5]]
                if item.recommendation:
                    lines.append(f"  - recommendation: {item.recommendation}")
        not_applicable = [i for i in self.items if i.status == "N/A"]
        if not_applicable:
            lines += ["", "## Not applicable", ""]
            lines += [f"- {i.text}: {i.reason}" for i in not_applicable]
        review = [i for i in self.items if i.status == "REVIEW"]
        if review:
            lines += ["", "## Needs review", ""]
            lines += [f"- {i.text}: {i.reason}" for i in review]
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def _first_match(pattern: re.Pattern[str], targets: list[Target]) -> str | None:
    for target in targets:
        for number, line in enumerate(target.text.splitlines(), start=1):
            if pattern.search(line):
                return f"{target.name}:{number}: `{line.strip()[:120]}`"
    return None


def lint_findings(targets: list[Target]) -> list[dict]:
    """Linter findings for the targets that are code or config (files, or generated text named like one)."""
    from tools.lint import check_paths, check_text
    from tools.lint.engine import SUFFIX_KINDS

    results = []
    paths = [t.path for t in targets if t.path is not None and t.path.suffix.lower() in CODE_SUFFIXES]
    if paths:
        results += check_paths(paths)
    for target in targets:
        kind = SUFFIX_KINDS.get(Path(target.name).suffix.lower())
        if target.path is None and kind:
            results.append(check_text(target.text, kind, target.name))
    findings = []
    for result in results:
        for finding in result.findings:
            record = asdict(finding)
            record["path"] = result.path
            findings.append(record)
    return findings


def judge_item(item: ChecklistItem, section: str, checklist_id: str, targets: list[Target],
               findings: list[dict]) -> ItemResult:
    """Judge one item: linter findings first, then facet evidence, else REVIEW."""
    result = ItemResult(item.id, str(item.text), section, item.topic, "REVIEW", recommendation=item.recommendation)
    mapped = [f for f in findings if f.get("checklist") == checklist_id and f.get("item") == item.text.zh]
    if mapped:
        statuses = {f.get("status") for f in mapped}
        worst = next((s for s in ("FAIL", "PARTIAL", "REVIEW", "PASS") if s in statuses), "REVIEW")
        result.status = worst
        result.evidence = [f"{Path(str(f.get('path'))).name}:{f.get('line')}: {f.get('rule')} {f.get('message')}"
                           for f in mapped]
        result.reason = "; ".join(str(f.get("message")) for f in mapped if f.get("status") == worst)[:400]
        return result
    if item.applies_when and not _first_match(re.compile(item.applies_when, re.I), targets):
        result.status = "N/A"
        result.reason = f"the target shows no sign of what this item is about (looked for /{item.applies_when}/)"
        return result
    if not item.facets:
        result.reason = "no automated rule for this item; a reviewer (or the configured model) must judge it"
        return result
    found, absent = [], []
    for facet in item.facets:
        evidence = _first_match(re.compile(facet.pattern, re.I), targets)
        if evidence:
            found.append(facet.name)
            result.evidence.append(f"{facet.name} — {evidence}")
        else:
            absent.append(facet.name)
    if not absent:
        result.status, result.reason = "PASS", f"evidence found for: {', '.join(found)}"
    elif found:
        result.status, result.reason = "PARTIAL", f"no evidence of: {', '.join(absent)}"
    else:
        result.status, result.reason = "FAIL", f"no evidence of: {', '.join(absent)}"
    return result


def run_checklist(checklist: Checklist, targets: list[Target]) -> ChecklistReport:
    """Judge every item of ``checklist`` against ``targets``.

    Args:
        checklist: a pack checklist.
        targets: the documents, configs or code files under review.

    Returns:
        The report, one result per item, in checklist order.

    """
    targets = [Target(t.name, t.text[:MAX_TARGET_CHARS], t.path) for t in targets]
    findings = lint_findings(targets)
    items = [
        judge_item(item, str(section.title), checklist.id, targets, findings)
        for section in checklist.sections
        for item in section.items
    ]
    title = f"{checklist.title} ({checklist.title_zh})" if checklist.title_zh else checklist.title
    return ChecklistReport(checklist.id, title, [t.name for t in targets], items)
