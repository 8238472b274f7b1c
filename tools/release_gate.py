"""The release gate: judge a thread's artefacts, decide Go / Conditional Go / No-Go, write the deploy script.

The gate never judges its own document or the checklist reports (they restate
judgements; they are no evidence of behaviour). It re-runs every checklist the
thread ran on the thread's artefact files as they are now, keeps the results
of checklists run on text that is not a thread file (pasted code), applies the
reviewer's item-by-item overrides, and decides:

- any FAIL → **No-Go**, with action items;
- no FAIL, but PARTIAL or REVIEW items → **Conditional Go**, each open item a named condition;
- every applicable item PASS → **Go**;
- nothing judged at all → **No-Go** (no evidence is no release).

The deploy script it writes runs ``databricks bundle deploy -t prod`` for the
thread's bundles only after a Go, and only on the very files the Go was given for.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from knowledge.loader import Pack
from tools.checklist import ChecklistReport, Target, run_checklists
from tools.evidence.kinds import REPORT, SHORT, classify

GO, NO_GO, CONDITIONAL = "Go", "No-Go", "Conditional Go"
GATE_CHECKLIST = "release-readiness-streaming-checklist"  # what the gate itself does, not something to grep for
DEPLOY_SCRIPT = "docs/gates/deploy-prod.sh"
_OVERRIDE_MARK = "set by the reviewer"


@dataclass(frozen=True)
class Artefact:
    """One file of the thread under the gate."""

    path: str
    text: str
    kind: str

    @property
    def sha256(self) -> str:
        """Digest of the content the verdict is given for."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass
class GateDecision:
    """What the gate found and decided."""

    verdict: str
    artefacts: list[Artefact]
    results: list[dict]  # checklist summaries the verdict rests on (fresh ones first)
    conditions: list[str] = field(default_factory=list)  # open PARTIAL/REVIEW items (Conditional Go)
    actions: list[str] = field(default_factory=list)  # FAIL items (No-Go)

    @property
    def bundles(self) -> list[str]:
        """Folders of the thread's Asset Bundles (a ``databricks.yml`` each), workspace-relative."""
        return sorted({str(PurePosixPath(a.path).parent) for a in self.artefacts
                       if PurePosixPath(a.path).name in ("databricks.yml", "databricks.yaml")})


def artefacts_of(files: dict[str, str]) -> list[Artefact]:
    """The thread's files that can be evidence (reports and gate records left out)."""
    out = []
    for path, text in files.items():
        kind = classify(path, text)
        if kind != REPORT and path != DEPLOY_SCRIPT:
            out.append(Artefact(path, text, kind))
    return out


def verdict(results: list[dict]) -> str:
    """No-Go on any FAIL (or nothing judged), Conditional Go on PARTIAL/REVIEW, else Go."""
    counts = {s: sum(r["counts"].get(s, 0) for r in results) for s in ("FAIL", "PARTIAL", "REVIEW", "PASS")}
    if counts["FAIL"] or not results:
        return NO_GO
    if counts["PARTIAL"] or counts["REVIEW"]:
        return CONDITIONAL
    return GO if counts["PASS"] else NO_GO


def _apply_overrides(report: ChecklistReport, stored: list[dict]) -> None:
    overrides: dict[str, str] = {}
    for summary in stored:
        if summary.get("checklist") == report.checklist_id:
            overrides.update(summary.get("overrides") or {})
    for item in report.items:
        if item.text in overrides and overrides[item.text] != item.status:
            item.reason = f"{_OVERRIDE_MARK} in an earlier review (the files show: {item.status} — {item.reason})"
            item.status = overrides[item.text]


def decide(pack: Pack, files: dict[str, str], stored: list[dict], extra_checklists: tuple[str, ...] = ()) -> GateDecision:
    """Judge the thread's files against every checklist the thread ran and decide.

    Args:
        pack: the knowledge pack (its checklists).
        files: the thread's artefacts, workspace-relative path → text.
        stored: the thread's checklist summaries (``ChecklistReport.summary()`` records).
        extra_checklists: checklists to run even if the thread never ran them.

    Returns:
        The decision with the results it rests on.

    """
    artefacts = artefacts_of(files)
    paths = {a.path for a in artefacts}
    ran = [s.get("checklist") for s in stored] + list(extra_checklists)
    checklist_ids = [c for c in dict.fromkeys(ran) if c in pack.checklists and c != GATE_CHECKLIST]
    results: list[dict] = []
    if artefacts:
        targets = [Target(a.path, a.text, None, a.kind) for a in artefacts]
        for report in run_checklists([pack.checklists[c] for c in checklist_ids], targets):
            _apply_overrides(report, stored)
            summary = report.summary()
            summary["source"] = "judged now on the thread's artefacts"
            results.append(summary)
    judged_now = {r["checklist"] for r in results}
    for summary in stored:
        named = [t for t in summary.get("targets") or [] if t != "inputs"]
        if summary.get("checklist") in judged_now and all(t in paths for t in named):
            continue  # superseded by the fresh judgement of the same files
        if summary.get("checklist") == GATE_CHECKLIST:
            continue
        results.append(summary)
    decision = GateDecision(verdict(results), artefacts, results)
    for r in results:
        for item in r.get("failed") or []:
            fix = f" — fix: {item['recommendation']}" if item.get("recommendation") else ""
            where = "; ".join(str(e)[:160] for e in (item.get("evidence") or [])[:2])
            where = f" [evidence: {where}]" if where else ""
            line = f"**{item['status']}** {item['text']} (`{r['checklist']}`): {item['reason']}{where}{fix}"
            (decision.actions if item["status"] == "FAIL" else decision.conditions).append(line)
        reasons = r.get("review_reasons") or {}
        decision.conditions += [f"**REVIEW** {text} (`{r['checklist']}`): {reasons.get(text) or 'needs a reviewer'}"
                                for text in r.get("review") or []]
    return decision


def deploy_script(decision: GateDecision, gate_doc: str) -> str:
    """A bash script that deploys the thread's bundles to prod after a Go, and refuses otherwise."""
    head = ["#!/usr/bin/env bash",
            f"# Written by *release-gate: verdict {decision.verdict}. Deploys the thread's Asset Bundles to the prod",
            "# target only after a Go, and only while the judged files are unchanged. Re-run *release-gate after",
            "# any change. Usage: bash docs/gates/deploy-prod.sh (from anywhere)",
            "set -euo pipefail",
            'ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"',
            'cd "$ROOT"']
    if decision.verdict != GO:
        open_items = decision.actions or decision.conditions
        lines = [*head, f"echo {shlex.quote(f'Release gate verdict is {decision.verdict}, not Go: nothing is deployed.')} >&2",
                 f"echo {shlex.quote(f'See {gate_doc}; close these and run *release-gate again:')} >&2"]
        lines += [f"echo {shlex.quote('  - ' + _plain(item)[:200])} >&2" for item in open_items[:20]]
        return "\n".join([*lines, "exit 1"]) + "\n"
    if not decision.bundles:
        return "\n".join([*head, "echo 'Release gate: Go, but this thread has no Asset Bundle (databricks.yml) to "
                                 "deploy.' >&2", "exit 0"]) + "\n"
    digests = "\n".join(f"{a.sha256}  {a.path}" for a in decision.artefacts)
    lines = [*head, "", "# The Go was given for exactly these files.",
             "sha256sum --check --quiet <<'SHA256'", digests, "SHA256", ""]
    for folder in decision.bundles:
        quoted = shlex.quote(folder)
        lines += [f"( cd {quoted} && databricks bundle validate -t prod && databricks bundle deploy -t prod )"]
    lines.append(f"echo {shlex.quote('Deployed to prod: ' + ', '.join(decision.bundles))}")
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    return text.replace("**", "").replace("`", "")


def kinds_line(artefacts: list[Artefact]) -> str:
    """``3 code, 2 SQL, 1 design document`` for the gate record."""
    counts: dict[str, int] = {}
    for artefact in artefacts:
        counts[artefact.kind] = counts.get(artefact.kind, 0) + 1
    return ", ".join(f"{n} {SHORT[k]}" for k, n in counts.items()) or "none"
