"""Review upload: save dropped pipeline files, run a checklist and the linter, report.

The files land in the thread's workspace under ``uploads/``. When no question
is waiting in the thread, the review also runs through the graph as
``*execute-checklist`` (so the chat shows it and ``*release-gate`` counts it);
the tables and the chart come from the same deterministic judgement.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agent.session import Engine, TurnResult
from tools.budget import out_of_time, remaining, time_budget
from tools.checklist import ChecklistReport, PreparedTargets, Target, judge_checklist, prepare_targets
from tools.lint import FileResult
from tools.workspace import Workspace, WorkspaceError, read_regular

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
"""Per file; the server refuses bigger uploads before they reach the app (``max_file_size``)."""
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)
MAX_FILES = 20
MAX_REVIEW_BYTES = 512 * 1024
"""All files of one review together (reading, linting and judging cost CPU per KB)."""
REVIEW_SECONDS = 45.0
"""A review's whole request takes at most about this long (``tools.budget``: the work stops between small
units — a file, a query, a checklist item); what it left no time for is said, never silently dropped."""
PREPARE_SHARE = 2 / 3
"""Of the budget, what reading and linting the files may take: the rest is kept for judging them."""
MAX_FINDINGS_PER_FILE = 100
MAX_REPORT_CHARS = 1024 * 1024
TEXT_SUFFIXES = (".py", ".sql", ".yaml", ".yml", ".json", ".md", ".txt", ".toml", ".conf", ".ini", ".cfg")
UPLOAD_DIR = "uploads"
ALL = "all"
"""The review choice that runs every checklist of the pack."""
STATUS_COLOURS = {
    "PASS": "#d1fae5",
    "FAIL": "#fee2e2",
    "PARTIAL": "#fef3c7",
    "N/A": "#e5e7eb",
    "REVIEW": "#dbeafe",
}
BANDS = {"good (≥ 80%)": "#10b981", "fair (50–79%)": "#f59e0b", "poor (< 50%)": "#ef4444"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Review:
    """What one review produced."""

    saved: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reports: list[ChecklistReport] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    report_path: str | None = None
    turns: list[TurnResult] = field(default_factory=list)


def safe_name(name: str) -> str:
    """A file name safe to write: no folders, only plain characters, the suffix kept.

    A name with no plain characters before its suffix (``订单流.py``) gets a short stable one instead
    (``upload-1a2b3c4d.py``): cut down to its suffix it was refused as "not a pipeline file", and two such
    files overwrote each other.
    """
    base = Path(str(name).replace("\\", "/")).name
    suffix = _UNSAFE_NAME.sub("", Path(base).suffix)[:16]
    stem = _UNSAFE_NAME.sub("-", base[: len(base) - len(Path(base).suffix)]).strip(".-")
    if not stem:
        stem = "upload-" + hashlib.sha256(base.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        suffix = suffix or ".txt"
    return stem[: 100 - len(suffix)] + suffix


def save_uploads(workspace: Workspace, paths: list[str]) -> tuple[list[str], list[str]]:
    """Copy uploaded files into the workspace's ``uploads/`` folder.

    Args:
        workspace: the thread's workspace.
        paths: the uploaded files (in Gradio's upload cache).

    Returns:
        ``(saved workspace-relative paths, problems)``: a file that is too big,
        binary, not UTF-8 or of an unsupported type is skipped with a reason.

    """
    saved: list[str] = []
    problems: list[str] = []
    total = 0
    if len(paths) > MAX_FILES:
        problems.append(f"{len(paths)} files dropped; I review at most {MAX_FILES} at once, so I took the first {MAX_FILES}.")
        paths = paths[:MAX_FILES]
    for raw in paths:
        path = Path(raw)
        name = safe_name(_original_name(path))
        if not name.lower().endswith(TEXT_SUFFIXES):
            problems.append(f"{name}: not a pipeline file I can review (use {', '.join(TEXT_SUFFIXES)}).")
            continue
        try:
            data = read_regular(path, MAX_UPLOAD_BYTES)
        except WorkspaceError:
            problems.append(f"{name}: over the {MAX_UPLOAD_MB} MB limit per file (or not a file); skipped.")
            continue
        except OSError as exc:
            problems.append(f"{name}: cannot be read ({exc.strerror or exc}); skipped.")
            continue
        if total + len(data) > MAX_REVIEW_BYTES:
            problems.append(f"{name}: a review judges at most {MAX_REVIEW_BYTES // 1024} KB of files in all; skipped "
                            "(review it on its own, or lint it with `streaming-engineer check`).")
            continue
        if b"\x00" in data[:8192]:
            problems.append(f"{name}: a binary file; skipped.")
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{name}: not UTF-8 text; skipped.")
            continue
        relative = f"{UPLOAD_DIR}/{name}"
        try:
            workspace.write(relative, data)
        except WorkspaceError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if relative not in saved:
            saved.append(relative)
            total += len(data)
    return saved, problems


def _original_name(path: Path) -> str:
    # Gradio keeps the browser's file name as the last path component of the cached upload.
    return path.name


def lint(workspace: Workspace, results: list[FileResult]) -> list[dict[str, Any]]:
    """The linter's findings on the saved files (the results the review's preparation got), workspace-relative."""
    findings = []
    for result in results:
        name = workspace.relative(Path(result.path)) if Path(result.path).is_absolute() else result.path
        if result.error:
            findings.append({"path": name, "rule": "-", "topic": "-", "checklist": "-", "status": "REVIEW",
                             "severity": "info", "line": None, "message": result.error, "evidence": ""})
        # FAILs first, so what is cut off is the least important.
        ordered = sorted(result.findings, key=lambda f: {"FAIL": 0, "PARTIAL": 1}.get(f.status, 2))
        for finding in ordered[:MAX_FINDINGS_PER_FILE]:
            findings.append({"path": name, **finding.to_dict()})
        if len(ordered) > MAX_FINDINGS_PER_FILE:
            findings.append({"path": name, "rule": "-", "topic": "-", "checklist": "-", "status": "REVIEW",
                             "severity": "info", "line": None, "evidence": "",
                             "message": f"{len(ordered) - MAX_FINDINGS_PER_FILE} more findings in this file are not "
                                        f"listed (at most {MAX_FINDINGS_PER_FILE} per file); run `check` on it"})
    return findings


def judge(engine: Engine, workspace: Workspace, relative: list[str],
          checklist_ids: list[str]) -> tuple[list[ChecklistReport], list[str], PreparedTargets]:
    """Run each checklist of ``checklist_ids`` on the saved files, within the request's time budget.

    The files are read and linted once (within ``PREPARE_SHARE`` of the budget left), then each checklist
    only judges its items; once the budget runs out, no further checklist is started.

    Returns:
        The reports, the ids of the checklists left out because the time ran out, and the prepared files.

    """
    left = remaining()
    with time_budget((REVIEW_SECONDS if left is None else left) * PREPARE_SHARE):
        prepared = prepare_targets([Target(rel, workspace.read(rel), workspace.resolve(rel)) for rel in relative])
    reports, skipped = [], []
    for checklist_id in checklist_ids:
        if out_of_time():
            skipped.append(checklist_id)
            continue
        reports.append(judge_checklist(engine.pack.checklists[checklist_id], prepared))
    return reports, skipped, prepared


def report_markdown(reports: list[ChecklistReport], findings: list[dict[str, Any]], files: list[str]) -> str:
    """The downloadable report: every checklist report, then every linter finding."""
    lines = ["# Pipeline review", "", f"Files: {', '.join(f'`{f}`' for f in files)}", ""]
    for report in reports:
        # Each checklist report is a document of its own: demote its headings under this one.
        lines += [re.sub(r"^(#+) ", r"#\1 ", line) for line in report.to_markdown().rstrip().splitlines()] + [""]
    lines += ["## Linter findings", ""]
    if sum(len(line) + 1 for line in lines) > MAX_REPORT_CHARS:
        lines = _clip(lines)
    if not findings:
        lines.append("The linter found nothing to report in these files.")
    else:
        lines += ["| Status | Rule | File:line | Message | Evidence |", "|---|---|---|---|---|"]
        for f in findings:
            where = f"{f['path']}:{f['line']}" if f.get("line") else str(f["path"])
            lines.append(f"| {f['status']} | {f['rule']} | {where} | {_cell(f['message'])} | {_cell(f.get('evidence'))} |")
    if sum(len(line) + 1 for line in lines) > MAX_REPORT_CHARS:
        lines = _clip(lines)
    return "\n".join(lines) + "\n"


def _clip(lines: list[str]) -> list[str]:
    """The report's first lines up to ``MAX_REPORT_CHARS``, with a note of what was cut."""
    kept, size = [], 0
    for line in lines:
        if size + len(line) + 1 > MAX_REPORT_CHARS - 200:
            break
        kept.append(line)
        size += len(line) + 1
    return [*kept, "", f"*The report is cut at {MAX_REPORT_CHARS // 1024} KB ({len(lines) - len(kept)} more lines); "
                       "review fewer files at once for the rest.*"]


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")[:300]


def drive_checklist(engine: Engine, thread_id: str, checklist_id: str, relative: list[str]) -> list[TurnResult]:
    """Run ``*execute-checklist`` in the thread on the saved files, answering its own questions.

    Returns:
        The turns, in order (empty when a question was already waiting, so the
        user's task is never interrupted by a review).

    """
    config = engine.config(thread_id)
    if engine.graph.get_state(config).interrupts:
        return []
    turns = [engine.turn(thread_id, f"*execute-checklist {checklist_id}")]
    for _ in range(4):
        waiting = engine.graph.get_state(config).next
        if "ask_checklist_mode" in waiting:
            turns.append(engine.turn(thread_id, "2"))  # all at once: one report
        elif "ask_checklist_target" in waiting:
            turns.append(engine.turn(thread_id, " ".join(relative)))
        elif "review_item" in waiting:
            turns.append(engine.turn(thread_id, "#yolo"))
        else:
            break
    return turns


def run_review(engine: Engine, thread_id: str, uploaded: list[str], selection: str) -> Review:
    """Save the uploads, judge them, write the report and (for one checklist, when free) run it in the thread.

    Args:
        engine: the app's engine.
        thread_id: the session's thread whose workspace receives the files.
        uploaded: the uploaded files (Gradio's cache paths).
        selection: a checklist id, or ``ALL`` for every checklist.

    """
    review = Review()
    if selection != ALL and selection not in engine.pack.checklists:
        review.problems.append(f"{selection!r} is not a checklist of this role.")
        return review
    checklist_ids = list(engine.pack.checklists) if selection == ALL else [selection]
    workspace = engine.workspace(thread_id)
    review.saved, review.problems = save_uploads(workspace, uploaded)
    if not review.saved:
        if not uploaded:
            review.problems.append("Drop one or more pipeline files first.")
        return review
    with time_budget(REVIEW_SECONDS):
        review.reports, skipped, prepared = judge(engine, workspace, review.saved, checklist_ids)
        if prepared.cut:
            review.problems.append(f"The review's time ran out ({REVIEW_SECONDS:.0f} s) while reading the files: "
                                   f"{'; '.join(prepared.cut)}; review fewer or smaller files at once.")
        if skipped:
            review.problems.append(f"The review's time ran out ({REVIEW_SECONDS:.0f} s) before {len(skipped)} "
                                   f"checklist(s): {', '.join(skipped)}; pick one of them to run it on its own.")
        review.findings = lint(workspace, prepared.results)
        try:
            workspace.write(f"reviews/{selection}-review.md",
                            report_markdown(review.reports, review.findings, review.saved))
            review.report_path = f"reviews/{selection}-review.md"
        except (WorkspaceError, OSError) as exc:
            review.problems.append(f"The report could not be written: {exc}")
        # In the conversation too (its judgement reuses this preparation), unless the budget is spent.
        if selection != ALL and not out_of_time():
            review.turns = drive_checklist(engine, thread_id, selection, review.saved)
    return review


def _colour(status: Any) -> str:
    colour = STATUS_COLOURS.get(str(status))
    return f"background-color: {colour}; font-weight: 600" if colour else ""


def items_table(reports: list[ChecklistReport]) -> Any:
    """Every judged checklist item as a table, the status cell coloured."""
    columns = ["Status", "Checklist", "Item", "Evidence / reason"]
    rows = [[i.status, short(r.title), i.text, "; ".join(i.evidence[:3]) or i.reason] for r in reports for i in r.items]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.style.map(_colour, subset=["Status"]) if rows else frame


def findings_table(findings: list[dict[str, Any]]) -> Any:
    """The linter findings as a table, the status cell coloured."""
    columns = ["Status", "Rule", "Topic", "File:line", "Message", "Evidence"]
    rows = [[f["status"], f["rule"], f["topic"], f"{f['path']}:{f['line']}" if f.get("line") else str(f["path"]),
             f["message"], f.get("evidence") or ""] for f in findings]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.style.map(_colour, subset=["Status"]) if rows else frame


def _band(rate: float) -> str:
    names = list(BANDS)
    return names[0] if rate >= 80 else names[1] if rate >= 50 else names[2]


def short(title: str) -> str:
    """The English half of a bilingual title ("流式就绪 · Streaming readiness" → "Streaming readiness")."""
    title = re.sub(r"\s*[（(][^)）]*[)）]\s*$", "", str(title))
    return title.split(" · ", 1)[1] if " · " in title else title


def sections_frame(reports: list[ChecklistReport]) -> pd.DataFrame:
    """Pass rate (%) per checklist section, for the bar chart; sections with nothing applicable are left out."""
    rows = []
    for report in reports:
        for name, rate, _items in report.sections():
            if rate is not None:
                rows.append([short(name), round(rate * 100, 1), _band(rate * 100)])
    return pd.DataFrame(rows, columns=["Section", "Pass rate (%)", "Band"])


def summary_markdown(review: Review) -> str:
    """A short summary above the chart and the tables."""
    lines = []
    if review.reports:
        items = [i for r in review.reports for i in r.items]
        counts = " · ".join(f"**{s}** {sum(1 for i in items if i.status == s)}" for s in STATUS_COLOURS
                            if any(i.status == s for i in items))
        judged = [i for i in items if i.status in ("PASS", "FAIL", "PARTIAL")]
        score = sum(1.0 if i.status == "PASS" else 0.5 if i.status == "PARTIAL" else 0.0 for i in judged)
        title = review.reports[0].title if len(review.reports) == 1 else f"{len(review.reports)} checklists"
        lines.append(f"### Review: {title}")
        lines.append(f"Files: {', '.join(f'`{s}`' for s in review.saved)}")
        lines.append(counts + (f" — pass rate **{score / len(judged):.0%}**" if judged else ""))
        failing = sum(1 for f in review.findings if f["status"] == "FAIL")
        lines.append(f"Linter: {len(review.findings)} finding(s), {failing} FAIL.")
        skipped = [short(name) for r in review.reports for name, rate, _ in r.sections() if rate is None]
        if skipped:
            lines.append(f"Nothing applicable (not charted): {', '.join(skipped)}.")
        if review.turns:
            lines.append("The review also ran as `*execute-checklist` in this thread (see the chat); "
                         "`*release-gate` will count it.")
        elif len(review.reports) > 1:
            lines.append("Pick a single checklist to also run it in the conversation for `*release-gate`.")
        else:
            lines.append("A question is waiting in the chat, so the review was not added to the conversation; "
                         "answer it (or leave the task) and review again to have `*release-gate` count it.")
    if review.problems:
        lines.append("\n".join(f"- ⚠️ {p}" for p in review.problems))
    return "\n\n".join(lines)
