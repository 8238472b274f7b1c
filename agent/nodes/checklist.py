"""``*execute-checklist``: pick a checklist, a mode and a target; judge; report."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agent import prompts
from agent.context import Context
from agent.nodes.common import (
    add_artifacts,
    ask_payload,
    fill,
    heard,
    icon,
    numbered,
    pack_of,
    read_answer,
    say,
    workspace_of,
)
from agent.routing import best_named
from agent.state import MenuOption, State
from knowledge.loader import Pack
from tools.budget import time_budget
from tools.checklist import ChecklistReport, ItemResult, Target, run_checklist
from tools.workspace import WorkspaceError, read_regular, regular_files

MAX_TARGET_FILE_BYTES = 2 * 1024 * 1024
MAX_TARGET_FILES = 50
MAX_TARGET_BYTES = 2 * 1024 * 1024
"""What one checklist run judges, whole or not at all: at most this many files and bytes in all (each costs CPU)."""
CHECKLIST_SECONDS = 45.0
"""A checklist run's time budget (``tools.budget``): what it leaves no time for is reported as not judged."""
_OVERRIDES = {"PASS", "FAIL", "PARTIAL", "N/A", "NA"}
REVIEWER_MARK = "set by the reviewer"


def checklist_menu(pack: Pack) -> list[MenuOption]:
    """Every checklist as a numbered list."""
    return [{"label": f"`{c.id}` — {c.title}" + (f"（{c.title_zh}）" if c.title_zh else ""),
             "value": f"*execute-checklist {c.id}"} for c in pack.checklists.values()]


def _leave(runtime: Runtime[Context], run: dict, text: str) -> Command:
    update = {"task": None, "mode": "commands",
              "messages": [say(fill(runtime, prompts.TASK_LEFT, task_title=run.get("title", "")))]}
    if text.split()[0].lower() == "*exit":
        return Command(goto="exit_role", update=update)
    return Command(goto="route", update={**update, "input": text})


def start_checklist(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "ask_checklist_mode", "ask_checklist_target", "__end__"]]:
    """Fuzzy-match the checklist (numbered list when none or several match)."""
    pack = pack_of(runtime)
    query = " ".join((state.get("request") or {}).get("args") or [])
    names = list(pack.checklists)
    name, candidates = best_named(names, query)
    if name is None and query:
        # Titles and Chinese titles match too ("exactly once", "水位").
        for checklist in pack.checklists.values():
            if query.lower() in f"{checklist.title} {checklist.title_zh}".lower():
                candidates = [*candidates, checklist.id] if checklist.id not in candidates else candidates
        if len(candidates) == 1:
            name, candidates = candidates[0], []
    if name is None:
        menu = checklist_menu(pack) if not candidates else [
            m for m in checklist_menu(pack) if m["value"].split(" ", 1)[1] in candidates]
        lead = "Which checklist?" if not query else f"No single checklist matches {query!r}. Which one?"
        return Command(goto="__end__", update={"menu": menu, "messages": [say(f"{icon(runtime)} {lead}\n{numbered(menu)}")]})
    checklist = pack.checklists[name]
    run = {"kind": "checklist", "checklist": name, "title": checklist.title, "interactive": False}
    count = len(checklist.items)
    intro = f"{icon(runtime)} Running **{checklist.title}** ({count} items)."
    goto = "ask_checklist_target" if state.get("yolo") else "ask_checklist_mode"
    return Command(goto=goto, update={"task": run, "mode": "task", "messages": [say(intro)]})


def ask_checklist_mode(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "ask_checklist_mode", "ask_checklist_target", "route", "exit_role"]]:
    """Interactive (item by item) or all at once."""
    run = dict(state.get("task") or {})
    options = ["Interactive — item by item", "All at once — one report"]
    value = interrupt(ask_payload(prompts.CHECKLIST_MODE_QUESTION.format(checklist_title=run["title"]), options))
    text, _ = read_answer(value)
    text = text.strip()
    if text.startswith("*") and len(text) > 1:
        return _leave(runtime, run, text)
    lowered = text.lower()
    if lowered in ("1", "interactive", "item by item", "i") or lowered.startswith("inter"):
        run["interactive"] = True
    elif lowered in ("2", "all", "all at once", "a", "#yolo") or lowered.startswith("all"):
        run["interactive"] = False
    else:
        return Command(goto="ask_checklist_mode",
                       update={"messages": [say(fill(runtime, prompts.ANSWER_INVALID, error="Choose 1 or 2"))]})
    return Command(goto="ask_checklist_target", update={"task": run, "messages": [heard(text)]})


def _file_target(path: Path, name: str) -> Target:
    data = read_regular(path, MAX_TARGET_FILE_BYTES)  # regular files only: /dev/zero never ends
    if b"\x00" in data[:8192]:
        raise WorkspaceError(f"{name} is a binary file")
    try:
        return Target(name, data.decode("utf-8"), path)
    except UnicodeDecodeError as exc:
        raise WorkspaceError(f"{name} is not UTF-8 text") from exc


def resolve_targets(text: str, state: State, runtime: Runtime[Context], config: RunnableConfig) -> list[Target]:
    """Turn the user's answer into targets: a thread document, a file, or pasted text."""
    workspace = workspace_of(runtime, config)
    artifacts = list(state.get("artifacts") or [])
    stripped = text.strip()
    if stripped.isdigit():
        number = int(stripped)
        if not 1 <= number <= len(artifacts):
            raise WorkspaceError(f"{number} is not on the list of documents (1-{len(artifacts)})")
        rel = artifacts[number - 1]
        return [_file_target(workspace.resolve(rel), rel)]
    words = re.split(r"[\s,]+", stripped)
    if "\n" not in stripped and len(words) <= 20:
        targets = []
        for word in words:
            candidate = None
            try:
                inside = workspace.resolve(word)
                candidate = inside if inside.exists() else None
            except WorkspaceError:
                candidate = None
            if candidate is None and runtime.context.allow_local_files:
                local = Path(word).expanduser()
                candidate = local if local.exists() else None
            if candidate is None:
                targets = []
                break
            if candidate.is_dir():
                files = regular_files(candidate, MAX_TARGET_FILES, MAX_TARGET_BYTES)
            else:
                files = [candidate]
            for file in files:
                # Named relative to what the user typed: never the server's absolute path.
                inner = file.relative_to(candidate).as_posix() if file != candidate else ""
                name = word if not inner else inner if word.strip("/") in (".", "") else f"{word.rstrip('/')}/{inner}"
                try:
                    targets.append(_file_target(file, name))
                except WorkspaceError:
                    if file == candidate:
                        raise
                    continue
                if sum(len(t.text) for t in targets) > MAX_TARGET_BYTES:
                    raise WorkspaceError(f"those files hold more than {MAX_TARGET_BYTES // (1024 * 1024)} MB; "
                                         "I judge at most that much at once — name fewer")
        if targets:
            return targets
        if len(words) == 1 and ("/" in stripped or "." in stripped) and len(stripped) < 200:
            raise WorkspaceError(f"{stripped!r} is not a file I can read here")
    if len(stripped) < 20:
        raise WorkspaceError("that is too short to review; paste the text, give a file path, or pick a number")
    return [Target(pasted_name(stripped), stripped)]


def pasted_name(text: str) -> str:
    """Name pasted text by what it parses as, so the linter reviews pasted code and configs too."""
    import json

    import yaml

    from tools.lint.engine import parse_python

    try:
        parse_python(text)
        if re.search(r"\b(spark|readStream|writeStream|dlt|pipelines|def |import )", text):
            return "pasted.py"
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    if re.search(r"^\s*(CREATE|SELECT|INSERT|MERGE)\b", text, re.I | re.M):
        return "pasted.sql"
    try:
        json.loads(text)
        return "pasted.json"
    except (ValueError, RecursionError):
        pass
    try:
        if isinstance(yaml.safe_load(text), dict):
            return "pasted.yaml"
    except (yaml.YAMLError, RecursionError):
        pass
    return "pasted text"


def ask_checklist_target(state: State, runtime: Runtime[Context], config: RunnableConfig) -> Command[Literal[
        "ask_checklist_target", "judge_checklist", "route", "exit_role"]]:
    """Ask what to check (an interrupt) and read it."""
    run = dict(state.get("task") or {})
    artifacts = list(state.get("artifacts") or [])
    value = interrupt(ask_payload(prompts.CHECKLIST_TARGET_QUESTION, artifacts or None))
    text, error = read_answer(value)
    if error:
        return Command(goto="ask_checklist_target",
                       update={"messages": [say(fill(runtime, prompts.ANSWER_INVALID, error=error))]})
    stripped = text.strip()
    if stripped.startswith("*") and len(stripped) > 1 and "\n" not in stripped:
        return _leave(runtime, run, stripped)
    try:
        targets = resolve_targets(stripped, state, runtime, config)
    except (WorkspaceError, OSError) as exc:
        message = say(fill(runtime, prompts.ANSWER_INVALID, error=str(exc)[:1].upper() + str(exc)[1:]))
        return Command(goto="ask_checklist_target", update={"messages": [message]})
    run["targets"] = [{"name": t.name, "text": t.text, "path": str(t.path) if t.path else None} for t in targets]
    shown = stripped if len(stripped) < 200 else stripped[:200] + "…"
    return Command(goto="judge_checklist", update={"task": run, "messages": [heard(shown)]})


def judge_checklist(state: State, runtime: Runtime[Context]) -> Command[Literal["review_item", "report_checklist"]]:
    """Judge every item with evidence."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    targets = [Target(t["name"], t["text"], Path(t["path"]) if t.get("path") else None) for t in run["targets"]]
    with time_budget(CHECKLIST_SECONDS):
        report = run_checklist(pack.checklists[run["checklist"]], targets)
    run.update(items=[asdict(i) for i in report.items], item_index=0, target_names=report.targets,
               report_title=report.title, target_kinds=report.kinds, cut=report.cut,
               targets=[{"name": t.name, "text": "", "path": None} for t in targets])
    return Command(goto="review_item" if run.get("interactive") else "report_checklist", update={"task": run})


def review_item(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "review_item", "report_checklist", "route", "exit_role"]]:
    """Interactive mode: show one judged item (an interrupt); accept, override or annotate it."""
    run = dict(state.get("task") or {})
    items = [dict(i) for i in run["items"]]
    index = int(run.get("item_index") or 0)
    if index >= len(items) or run.get("yolo"):
        return Command(goto="report_checklist", update={"task": run})
    item = items[index]
    evidence = "\n".join(f"  - {e}" for e in item["evidence"][:3]) or f"  - {item['reason']}"
    shown = prompts.CHECKLIST_ITEM.format(progress=f"{index + 1}/{len(items)}", status=item["status"],
                                          text=item["text"], evidence=evidence)
    value = interrupt(ask_payload(f"{shown}\n\n{prompts.CHECKLIST_ITEM_QUESTION}"))
    text, _ = read_answer(value)
    text = text.strip()
    if text.startswith("*") and len(text) > 1:
        return _leave(runtime, run, text)
    if text.lower().startswith("#yolo"):
        run["yolo"] = True
        return Command(goto="review_item", update={"task": run, "messages": [heard(text)]})
    upper = text.upper()
    if upper in _OVERRIDES:
        item["status"] = "N/A" if upper == "NA" else upper
        item["reason"] = f"{REVIEWER_MARK} (automated judgement was {run['items'][index]['status']})"
    elif text and text not in ("1", "ok", "y", "yes"):
        item["reason"] = f"{item['reason']} — reviewer note: {text}"
    items[index] = item
    run.update(items=items, item_index=index + 1)
    return Command(goto="review_item", update={"task": run, "messages": [heard(text)] if text else []})


def report_from(run: dict[str, Any]) -> ChecklistReport:
    """Rebuild the report object from the run stored in state."""
    return ChecklistReport(run["checklist"], run.get("report_title") or run["title"], run.get("target_names") or [],
                           [ItemResult(**i) for i in run["items"]], dict(run.get("target_kinds") or {}),
                           list(run.get("cut") or []))


def report_checklist(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Write the report and summarise it in the chat."""
    run = dict(state.get("task") or {})
    report = report_from(run)
    workspace = workspace_of(runtime, config)
    location = f"docs/checklists/{run['checklist']}-report.md"
    workspace.write(location, report.to_markdown())
    summary = report.summary()
    summary["source"] = location
    # The reviewer's item-by-item decisions outlive this run: *release-gate applies them again.
    summary["overrides"] = {i.text: i.status for i in report.items if i.reason.startswith(REVIEWER_MARK)}
    counts = " · ".join(f"{s} {n}" for s, n in report.counts().items() if n)
    rate = report.pass_rate()
    lines = [f"{icon(runtime)} **{report.title}** on {', '.join(report.targets)}: {counts}"
             + (f" — pass rate {rate:.0%}" if rate is not None else "")]
    lines.append(report.scope())
    for name, section_rate, _items in report.sections():
        lines.append(f"- {name}: " + (f"{section_rate:.0%}" if section_rate is not None else "n/a"))
    for item in [i for i in report.items if i.status in ("FAIL", "PARTIAL")][:8]:
        lines.append(f"- **{item.status}** {item.text}: {item.reason}")
        if item.recommendation:
            lines.append(f"  - fix: {item.recommendation}")
    lines.append(f"Report written to `{location}`.")
    return {
        "messages": [say("\n".join(lines))],
        "artifacts": add_artifacts(state, location),
        "current_doc": location,
        "checklist_results": [*(state.get("checklist_results") or []), summary],
        "task": None,
        "mode": "commands",
    }
