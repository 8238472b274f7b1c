"""The side panel: what state the thread is in (mode, task, waiting question) and what to click.

``view_of`` reads the thread's graph state once (``view_from`` builds the
same view from a finished turn's state); the render functions turn
that view into Markdown/HTML and into the choices of the clickable list.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from agent.session import Engine

MODE_BADGES = {
    "commands": ("⌨️ commands", "#2563eb"),
    "kb-mode": ("📚 kb-mode", "#7c3aed"),
    "task": ("📝 task — a question is waiting", "#d97706"),
    "inactive": ("💤 role ended (*activate)", "#6b7280"),
}
_MARKUP_RE = re.compile(r"[`*_]")


@dataclass
class View:
    """A thread's state as the panel shows it."""

    thread_id: str
    mode: str = "commands"
    yolo: bool = False
    persona_active: bool = True
    task: dict[str, Any] | None = None
    question: str | None = None
    options: list[str] = field(default_factory=list)
    default: str | None = None
    question_kind: str = ""
    menu: list[dict[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def view_of(engine: Engine, thread_id: str) -> View:
    """Read the thread's state (mode, task, waiting question, last menu) and its workspace files."""
    snapshot = engine.graph.get_state(engine.config(thread_id))
    waiting = snapshot.interrupts[0].value if snapshot.interrupts else None
    return view_from(engine, thread_id, snapshot.values or {}, waiting)


def view_from(engine: Engine, thread_id: str, values: dict[str, Any], waiting: Any) -> View:
    """The view of state ``values`` and the waiting question's interrupt value (``None`` when none waits).

    A turn's result carries both, so the panel after a turn needs no second read of the checkpoint.
    """
    view = View(thread_id=thread_id, mode=values.get("mode") or "commands", yolo=bool(values.get("yolo")),
                persona_active=bool(values.get("persona_active", True)), task=values.get("task"),
                menu=list(values.get("menu") or []))
    if not view.persona_active:
        view.mode = "inactive"
    if waiting is not None:
        view.mode = "task"
        if isinstance(waiting, dict):
            view.question = str(waiting.get("question") or "")
            view.options = [str(o) for o in waiting.get("options") or []]
            view.default = None if waiting.get("default") is None else str(waiting.get("default"))
            view.question_kind = str(waiting.get("kind") or "")
        else:
            view.question = str(waiting)
    view.files = engine.workspace(thread_id).files()
    return view


def plain(label: str) -> str:
    """A menu label without Markdown markup (radio labels are plain text)."""
    return _MARKUP_RE.sub("", label).strip()


def choices(view: View) -> list[tuple[str, str]]:
    """The clickable entries: the waiting question's options, else the last numbered list.

    Each choice sends its number, exactly as if typed, so the graph resolves it
    against the list it showed last.
    """
    if view.question is not None:
        return [(f"{n}. {plain(option)}", str(n)) for n, option in enumerate(view.options, start=1)]
    if view.mode == "inactive":
        return []
    return [(f"{n}. {plain(option.get('label', ''))}", str(n)) for n, option in enumerate(view.menu, start=1)]


def progress(task: dict[str, Any] | None) -> tuple[int, int, str] | None:
    """``(done, total, what)`` of the running task, checklist review or document, if it has steps to count."""
    if not task:
        return None
    questions = task.get("questions") or []
    index = int(task.get("index") or 0)
    if questions and index < len(questions):
        return index, len(questions), "questions answered"
    if task.get("items"):
        return int(task.get("item_index") or 0), len(task["items"]), "items reviewed"
    if task.get("sections"):
        return int(task.get("section_index") or 0), len(task["sections"]), "sections done"
    if questions:
        return len(questions), len(questions), "questions answered"
    return None


def status_html(view: View) -> str:
    """The mode badge, YOLO and thread line."""
    label, colour = MODE_BADGES.get(view.mode, (view.mode, "#374151"))
    yolo = ('<span class="se-badge" style="background:#dc2626">⚡ YOLO on</span>' if view.yolo
            else '<span class="se-badge" style="background:#9ca3af">YOLO off</span>')
    return (
        f'<div class="se-status"><span class="se-badge" style="background:{colour}">{html.escape(label)}</span> {yolo}'
        f'<div class="se-thread">Thread <code>{html.escape(view.thread_id)}</code> · {len(view.files)} file(s)</div></div>'
    )


def task_html(view: View) -> str:
    """The active task, its progress and the waiting question."""
    task = view.task
    if not task and view.question is None:
        return '<div class="se-task se-idle">No task running. Pick a command from the palette or the list.</div>'
    parts = ['<div class="se-task">']
    if task:
        kind = {"task": "Task", "checklist": "Checklist", "create-doc": "Document"}.get(str(task.get("kind")), "Task")
        parts.append(f"<div class='se-task-title'>{kind}: <b>{html.escape(str(task.get('title') or ''))}</b></div>")
        counted = progress(task)
        if counted:
            done, total, what = counted
            parts.append(f'<progress max="{total}" value="{done}"></progress>'
                         f"<div class='se-progress'>{done} of {total} {what}</div>")
    if view.question is not None:
        first = view.question.strip().splitlines()[0] if view.question.strip() else ""
        parts.append(f"<div class='se-question'>❓ Waiting: {html.escape(plain(first))[:240]}</div>")
        if view.default:
            parts.append(f"<div class='se-default'>Default: <code>{html.escape(view.default[:120])}</code></div>")
    parts.append("</div>")
    return "".join(parts)


def placeholder(view: View) -> str:
    """The message box hint, which says what the next message will do."""
    if view.question is not None:
        hint = "Type your answer"
        if view.default:
            hint += f" — or type default to take {view.default[:40]}"
        if view.options:
            hint += ", or click an option below"
        return hint
    if view.mode == "kb-mode":
        return "Ask a streaming question (answered with sources) — *exit leaves kb-mode"
    if view.mode == "inactive":
        return "The role has left — *activate brings it back"
    return "Message — *help, a command, a list number, or a question"
