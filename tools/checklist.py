"""Judge every item of a checklist against targets, from their behaviour, with evidence.

Evidence comes from two automated sources: findings of the pipeline linter
(``tools.lint``) mapped to checklist items, and each item's facets matched
against the *facts* of the targets (``tools.evidence``: calls, options,
settings, SQL statements, answers, concrete decisions) — never against a
heading, comment, docstring or prose. Each target has a kind (code, SQL,
job config, design document, runbook...) and each facet names the kinds that
can show it: what the targets cannot show is N/A, what they could show but do
not is REVIEW, and FAIL is kept for a defect or a required element missing.
Nothing here executes the target.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from knowledge.loader import Checklist, ChecklistItem
from tools.budget import NOT_CHECKED, NOT_JUDGED, OutOfTime, check_time, out_of_time
from tools.evidence import EVIDENCE_KINDS, Fact, classify, describe, facts_of
from tools.evidence.kinds import REPORT, held_by
from tools.lint.model import FileResult

STATUSES = ("PASS", "FAIL", "PARTIAL", "N/A", "REVIEW")
CODE_SUFFIXES = {".py", ".sql", ".yaml", ".yml", ".json"}
MAX_TARGET_CHARS = 2_000_000


@dataclass(frozen=True)
class Target:
    """One thing under review: a file's name and text."""

    name: str
    text: str
    path: Path | None = None  # a real file, so the linter can read it
    kind: str | None = None  # an artefact kind (tools.evidence.kinds); classified from name and text when None


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
    kinds: dict[str, str] = field(default_factory=dict)  # target name → artefact kind
    cut: list[str] = field(default_factory=list)
    """What the request's time budget left out ("`x.py` was not linted"), said in the scope."""

    def scope(self) -> str:
        """One sentence on what the targets could show: why items are N/A or REVIEW."""
        counts = self.counts()
        kinds = set(self.kinds.values()) - {REPORT}
        held = held_by(kinds)
        parts = [f"Judged from the behaviour of {describe(kinds) or 'the target'} ({len(self.targets)} file(s)): "
                 "calls, options, settings, "
                 "SQL, answers and concrete decisions, never headings, comments or prose"]
        if counts["N/A"]:
            parts.append(f"{counts['N/A']} item(s) N/A: not something {held} can show, or not what the files do")
        if counts["REVIEW"]:
            parts.append(f"{counts['REVIEW']} item(s) REVIEW: not (fully) evidenced by these files — "
                         "the evidence belongs in another artefact or needs a reviewer")
        if self.cut:
            parts.append(f"the time budget ran out: {', '.join(self.cut)}")
        return "; ".join(parts) + "."

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
            "review_reasons": {i.text: i.reason for i in self.items if i.status == "REVIEW"},
            "kinds": dict(self.kinds),
            "scope": self.scope(),
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
            f"- Kinds: {', '.join(f'`{n}` {k}' for n, k in self.kinds.items()) or '(unknown)'}",
            f"- Scope: {self.scope()}",
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
            lines += ["", "## Not applicable (not something these files can show)", ""]
            lines += [f"- {i.text}: {i.reason}" for i in not_applicable]
        review = [i for i in self.items if i.status == "REVIEW"]
        if review:
            lines += ["", "## Needs review (not evidenced by these files)", ""]
            lines += [f"- {i.text}: {i.reason}" for i in review]
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


@dataclass(frozen=True)
class Source:
    """A target with its kind and the facts of its behaviour (what facets are matched against)."""

    target: Target
    kind: str
    facts: tuple[Fact, ...]


def sources_of(targets: list[Target]) -> list[Source]:
    """Classify every target and extract its facts."""
    out = []
    for target in targets:
        kind = target.kind or classify(target.name, target.text)
        out.append(Source(target, kind, tuple(facts_of(target.name, target.text, kind))))
    return out


def lint_results(targets: list[Target]) -> list[FileResult]:
    """The linter's result for each target that is code or config (a file, or generated text named like one).

    A file the request's time budget left no time for gets ``NOT_CHECKED`` as its error.
    """
    from tools.lint import check_paths, check_text
    from tools.lint.engine import SUFFIX_KINDS

    results = []
    paths = [t.path for t in targets if t.path is not None and t.path.suffix.lower() in CODE_SUFFIXES]
    if paths:
        results += check_paths(paths)
    for target in targets:
        kind = SUFFIX_KINDS.get(Path(target.name).suffix.lower())
        if target.path is None and kind:
            try:
                results.append(check_text(target.text, kind, target.name))
            except OutOfTime:
                results.append(FileResult(target.name, [], NOT_CHECKED))
    return results


def lint_findings(targets: list[Target], results: list[FileResult] | None = None) -> list[dict]:
    """Linter findings (``path`` added) for the targets that are code or config, or of ``results`` when given."""
    findings = []
    for result in lint_results(targets) if results is None else results:
        for finding in result.findings:
            record = asdict(finding)
            record["path"] = result.path
            findings.append(record)
    return findings


_RANK = {"code": 0, "sql": 1, "job": 2, "config": 3, "script": 4, "answers": 5, "runbook": 6, "doc": 7}


def _matches(pattern: str, facts: list[Fact]) -> Fact | None:
    """The strongest fact matching ``pattern``: a code/SQL/config file's own line before a document's."""
    compiled = re.compile(pattern, re.I)
    found = [f for f in facts if compiled.search(f.text)]
    if not found:
        return None
    return min(found, key=lambda f: (f.where.split(":", 1)[0].endswith(".md"), _RANK.get(f.kind, 9)))


def judge_item(item: ChecklistItem, section: str, checklist_id: str, sources: list[Source],
               findings: list[dict]) -> ItemResult:
    """Judge one item from behaviour: the linter's findings, then each facet against the targets' facts.

    FAIL needs evidence of a defect (a linter FAIL) or a facet that a target's kind must show
    (``required_in``) shown nowhere. What the targets' kinds cannot show is N/A; what they could
    show but do not is REVIEW ("not evidenced by these files") — never FAIL.
    """
    result = ItemResult(item.id, str(item.text), section, item.topic, "REVIEW", recommendation=item.recommendation)
    mapped = [f for f in findings if f.get("checklist") == checklist_id and f.get("item") == item.text.zh]
    defects = [f for f in mapped if f.get("status") in ("FAIL", "PARTIAL", "REVIEW")]
    lint_evidence = [f"{Path(str(f.get('path'))).name}:{f.get('line')}: {f.get('rule')} {f.get('message')}"
                     for f in mapped]
    if defects:
        worst = next(s for s in ("FAIL", "PARTIAL", "REVIEW") if any(f.get("status") == s for f in defects))
        result.status = worst
        order = {"FAIL": 0, "PARTIAL": 1, "REVIEW": 2, "PASS": 3}
        result.evidence = [lint_evidence[i] for i in sorted(range(len(mapped)),
                                                             key=lambda i: order.get(str(mapped[i].get("status")), 4))]
        result.reason = "; ".join(str(f.get("message")) for f in defects if f.get("status") == worst)[:400]
        return result
    kinds = {s.kind for s in sources}
    facts = [f for s in sources for f in s.facts]
    if item.applies_when and not _matches(item.applies_when, facts):
        result.status = "N/A"
        result.reason = f"nothing the files do is what this item is about (no {item.topic or 'related'} behaviour in them)"
        return result
    found, missing, unshowable = [], [], []
    # A kind that must show the item must show it in every file of that kind, not somewhere in the thread.
    bound = [s for s in sources if s.kind in item.required_in]
    required: dict[str, list[str]] = {}
    for facet in item.facets:
        able = set(facet.kinds or EVIDENCE_KINDS)
        for source in bound:
            if source.kind in able and not _matches(facet.pattern, list(source.facts)):
                required.setdefault(source.target.name, []).append(facet.name)
        if not able & kinds:
            unshowable.append((facet.name, able))
            continue
        fact = _matches(facet.pattern, [f for f in facts if f.kind in able])
        if fact is not None:
            found.append(facet.name)
            result.evidence.append(f"{facet.name} — {fact.cite()}")
        elif not able & {s.kind for s in bound}:  # a facet bound to a required kind is judged file by file
            missing.append(facet.name)
    result.evidence += [e for e in lint_evidence if e not in result.evidence]
    held = held_by(kinds)
    if item.facets and not found and not missing and not required and not bound:
        if lint_evidence:  # the linter's rule held, but the rest of the item is out of these files' reach
            result.status = "REVIEW"
            result.reason = f"the linter's rule for this item holds; the rest is not something {held} can show"
            return result
        elsewhere = describe(set().union(*(able for _, able in unshowable)) - {"answers"})
        result.status = "N/A"
        result.reason = f"not something {held} can show; evidenced by {elsewhere or 'other artefacts'}"
        return result
    if not item.facets:
        result.status = "PASS" if lint_evidence else "REVIEW"
        result.reason = ("the linter's rule for this item holds" if lint_evidence else
                         "no automated rule for this item; a reviewer (or the configured model) must judge it")
        return result
    parts = [f"evidenced: {', '.join(found)}"] if found else []
    if required:
        kind_names = describe(set(item.required_in) & kinds)
        bound_facets = [f for f in item.facets if set(f.kinds or EVIDENCE_KINDS) & set(item.required_in)]
        shown_somewhere = len(bound) > len(required) or any(len(n) < len(bound_facets) for n in required.values())
        result.status = "PARTIAL" if shown_somewhere else "FAIL"
        where = "; ".join(f"`{name}` lacks {', '.join(names)}" for name, names in required.items())
        parts.append(f"missing from the {kind_names}, which must show it: {where}")
    elif missing or unshowable:
        result.status = "REVIEW"
        if missing:
            parts.append(f"not evidenced by these files: {', '.join(missing)}")
        if unshowable:
            parts.append(f"not something {held} can show: {', '.join(n for n, _ in unshowable)}")
    else:
        result.status = "PASS"
    result.reason = "; ".join(parts)
    return result


def run_checklist(checklist: Checklist, targets: list[Target]) -> ChecklistReport:
    """Judge every item of ``checklist`` against ``targets``.

    Args:
        checklist: a pack checklist.
        targets: the documents, configs or code files under review.

    Returns:
        The report, one result per item, in checklist order.

    """
    return run_checklists([checklist], targets)[0]


@dataclass
class PreparedTargets:
    """Targets with their facts extracted and their code linted: what every checklist judges."""

    targets: list[Target]
    sources: list[Source]
    findings: list[dict]
    results: list[FileResult] = field(default_factory=list)
    """The linter's result per file, errors included (a review lists them)."""
    cut: list[str] = field(default_factory=list)
    """What the request's time budget left out: targets not read, files not linted."""


_PREPARED: OrderedDict[tuple, PreparedTargets] = OrderedDict()
_PREPARED_LOCK = threading.Lock()
_PREPARED_KEEP = 4
"""Preparations kept by content: a review in the app judges the files, then runs the same checklist on the
same files in the conversation; the second run reuses the first's linting instead of paying for it again."""


def _content_key(targets: list[Target]) -> tuple:
    return tuple((t.name, hashlib.sha256(t.text.encode("utf-8", "surrogatepass")).hexdigest(), str(t.path), t.kind)
                 for t in targets)


def prepare_targets(targets: list[Target]) -> PreparedTargets:
    """Extract the facts of ``targets`` and lint them, once for any number of checklists.

    Within a request's time budget (``tools.budget``): what it leaves no time for is listed in ``cut`` (and
    such a partial preparation is not kept for reuse).
    """
    targets = [Target(t.name, t.text[:MAX_TARGET_CHARS], t.path, t.kind) for t in targets]
    key = _content_key(targets)
    with _PREPARED_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    sources, cut = [], []
    for target in targets:
        try:
            check_time()
            sources.append(sources_of([target])[0])
        except OutOfTime:
            cut.append(f"`{target.name}` was not read")
    results = lint_results([s.target for s in sources if s.kind != REPORT])
    names = {str(t.path): t.name for t in targets if t.path is not None}
    cut += [f"`{names.get(r.path, r.path)}` was not linted" for r in results if r.error == NOT_CHECKED]
    prepared = PreparedTargets(targets, sources, lint_findings([], results), results, cut)
    if not cut:
        with _PREPARED_LOCK:
            _PREPARED[key] = prepared
            while len(_PREPARED) > _PREPARED_KEEP:
                _PREPARED.popitem(last=False)
    return prepared


def judge_checklist(checklist: Checklist, prepared: PreparedTargets) -> ChecklistReport:
    """Judge every item of ``checklist`` against targets prepared by :func:`prepare_targets`.

    Items the request's time budget leaves no time for are REVIEW, "not judged", and the report says so.
    """
    items, unjudged = [], 0
    for section in checklist.sections:
        for item in section.items:
            if out_of_time():
                unjudged += 1
                items.append(ItemResult(item.id, str(item.text), str(section.title), item.topic, "REVIEW",
                                        reason=NOT_JUDGED, recommendation=item.recommendation))
                continue
            items.append(judge_item(item, str(section.title), checklist.id, prepared.sources, prepared.findings))
    title = f"{checklist.title} ({checklist.title_zh})" if checklist.title_zh else checklist.title
    kinds = {s.target.name: s.kind for s in prepared.sources}
    cut = [*prepared.cut, f"{unjudged} item(s) were not judged"] if unjudged else list(prepared.cut)
    return ChecklistReport(checklist.id, title, [t.name for t in prepared.targets], items, kinds, cut)


def run_checklists(checklists: list[Checklist], targets: list[Target]) -> list[ChecklistReport]:
    """Judge several checklists against the same targets, extracting facts and linting once."""
    prepared = prepare_targets(targets)
    return [judge_checklist(checklist, prepared) for checklist in checklists]
