"""Chat bubbles: what the role said, the steps it took, its sources and its waiting question.

Everything here turns engine output into Gradio messages (``gr.ChatMessage``);
nothing here talks to the graph.
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

STEP_LABELS = {
    "route": "Read the message and chose what handles it",
    "show_help": "Listed the commands",
    "toggle_yolo": "Toggled YOLO",
    "exit_role": "Left the role",
    "activate_role": "Took up the role again",
    "enter_kb_mode": "Entered kb-mode",
    "leave_kb_mode": "Left kb-mode",
    "answer_kb": "Searched the knowledge base and answered with citations",
    "converse": "Answered in character",
    "start_task": "Started the task",
    "ask_input": "Recorded the answer / asked the next question",
    "render_templates": "Rendered the templates with the answers",
    "retrieve_guidance": "Searched the knowledge base for guidance",
    "compose_document": "Composed the document",
    "run_task_checklists": "Ran the task's checklists on what was produced",
    "save_document": "Saved the document to the workspace",
    "choose_template": "Chose the template",
    "draft_sections": "Drafted the sections",
    "elicit_section": "Offered the refinement menu",
    "apply_method": "Applied the refinement method",
    "start_checklist": "Picked the checklist",
    "ask_checklist_mode": "Asked how to run the checklist",
    "ask_checklist_target": "Read what to check",
    "judge_checklist": "Judged every checklist item with evidence",
    "review_item": "Reviewed an item",
    "report_checklist": "Wrote the checklist report",
    "shard_document": "Split the document into sections",
    "output_document": "Printed and wrote the current document",
    "release_gate": "Aggregated checklist results into a release decision",
}
TOOL_NODES = {
    "answer_kb": "🔎 knowledge search",
    "retrieve_guidance": "🔎 knowledge search",
    "render_templates": "🧩 render templates",
    "compose_document": "📝 compose document",
    "run_task_checklists": "✅ run checklists",
    "save_document": "💾 write file",
    "judge_checklist": "⚖️ judge checklist",
    "report_checklist": "💾 write report",
    "shard_document": "✂️ shard document",
    "output_document": "💾 write document",
    "release_gate": "🚦 release gate",
}
MAX_SHOWN_TURNS = 300
"""A thread opened again shows at most its last this many turns (a chat of thousands is slow to draw)."""
_SOURCES_RE = re.compile(r"\n\nSources:\n(?P<lines>(?:\[\d+\][^\n]*(?:\n|$))+)")
_TOPICS_RE = re.compile(r"\n\nTopics:\n(?P<lines>(?:\d+\. [^\n]*(?:\n|$))+)\s*$")
_URL_RE = re.compile(r"(https?://[^\s)]+)")
_PATH_RE = re.compile(r"^[\w.@/-]+\.(md|markdown|ya?ml|txt|json|py|sql)$")


def _message(role: str, content: str, **metadata: Any) -> gr.ChatMessage:
    meta = {k: v for k, v in metadata.items() if v is not None}
    return gr.ChatMessage(role=role, content=content, metadata=meta) if meta else gr.ChatMessage(role=role, content=content)


def user_message(text: str) -> gr.ChatMessage:
    """The user's bubble."""
    return _message("user", text)


def split_answer(text: str) -> tuple[str, list[str], list[str]]:
    """Split a role message into ``(body, cited source lines, topic menu lines)``."""
    sources: list[str] = []
    topics: list[str] = []
    match = _TOPICS_RE.search(text)
    if match:
        topics = [line for line in match.group("lines").splitlines() if line.strip()]
        text = text[: match.start()]
    match = _SOURCES_RE.search(text)
    if match:
        sources = [line for line in match.group("lines").splitlines() if line.strip()]
        rest = text[match.end():].strip()
        text = text[: match.start()].rstrip() + (f"\n\n{rest}" if rest else "")
    return text, sources, topics


def _source_item(line: str) -> str:
    """``[n] title — path[ — origin: url]`` as Markdown (a title may itself contain " — ")."""
    number, _, rest = line.partition("] ")
    parts = [p.strip() for p in rest.split(" — ")]
    at = max((i for i, part in enumerate(parts) if i and _PATH_RE.match(part)), default=0)
    if not at:
        return f"{number}] {rest}"
    title, path = " — ".join(parts[:at]), parts[at]
    origin = " — ".join(parts[at + 1:])
    origin = " · " + _URL_RE.sub(r"<\1>", origin) if origin else ""
    return f"{number}] **{title}** · `{path}`{origin}"


def role_messages(text: str) -> list[gr.ChatMessage]:
    """What the role said, with cited sources and the topic menu folded into expandable bubbles."""
    body, sources, topics = split_answer(text)
    messages = [_message("assistant", body)] if body.strip() else []
    if sources:
        content = "\n".join(f"- {_source_item(line)}" for line in sources)
        messages.append(_message("assistant", content, title=f"📚 Sources ({len(sources)}) — click to expand",
                                 status="done"))
    if topics:
        messages.append(_message("assistant", "\n".join(topics),
                                 title=f"🗂️ Topics ({len(topics)}) — pick one from the list under the chat",
                                 status="done"))
    return messages


def question_message(question: str) -> gr.ChatMessage:
    """The question waiting for an answer, marked as such (the next message answers it)."""
    return _message("assistant", f"❓ **Waiting for your answer** — your next message answers this.\n\n{question}")


def steps_message(turn: str, nodes: list[str], *, done: bool, seconds: float | None = None) -> gr.ChatMessage:
    """The collapsible bubble listing the graph steps of one turn."""
    shown = " → ".join(nodes) if nodes else "starting"
    lines = [f"- `{node}` — {STEP_LABELS.get(node, node.replace('_', ' '))}" for node in nodes]
    return _message("assistant", "\n".join(lines) or "…", title=f"⚙️ Steps: {shown}", id=f"steps-{turn}",
                    status="done" if done else "pending", duration=round(seconds, 2) if seconds is not None else None)


def tool_messages(turn: str, nodes: list[str]) -> list[gr.ChatMessage]:
    """One nested bubble per tool-like step of the turn (under the steps bubble)."""
    return [
        _message("assistant", STEP_LABELS.get(node, node), title=f"🛠️ {TOOL_NODES[node]}", parent_id=f"steps-{turn}",
                 status="done", log=node)
        for node in nodes if node in TOOL_NODES
    ]


def turn_messages(output: str, pending: str | None) -> list[gr.ChatMessage]:
    """The bubbles of one turn's output; a waiting question gets a bubble of its own."""
    body = output
    if pending and body.endswith(pending):
        body = body[: -len(pending)].rstrip()
    messages = role_messages(body) if body.strip() else []
    if pending:
        messages.append(question_message(pending))
    return messages


def history_from_state(messages: list[Any], pending: str | None) -> list[gr.ChatMessage]:
    """Rebuild a thread's chat from its checkpointed messages (when a thread is opened again)."""
    history: list[gr.ChatMessage] = []
    for message in messages:
        kind = getattr(message, "type", "")
        content = str(getattr(message, "content", ""))
        if kind == "human":
            if content:
                history.append(user_message(content))
        elif kind == "ai" and content:
            history.extend(role_messages(content))
    if pending:
        history.append(question_message(pending))
    return history


def history_from_transcript(turns: list[dict[str, Any]], pending: str | None) -> list[gr.ChatMessage]:
    """Rebuild a thread's chat from its transcript, from the first turn (when a thread is opened again).

    Questions answered since are shown as what the role said; only the one still waiting is marked.
    """
    history: list[gr.ChatMessage] = []
    if len(turns) > MAX_SHOWN_TURNS:
        history.append(_message("assistant", f"… {len(turns) - MAX_SHOWN_TURNS} earlier turns are not shown here "
                                             "(they stay in the thread's transcript).", title="🕰️ Earlier turns",
                                status="done"))
    skipped = max(0, len(turns) - MAX_SHOWN_TURNS)
    for number, turn in enumerate(turns[skipped:], start=skipped + 1):
        if turn.get("user"):
            history.append(user_message(str(turn["user"])))
        for reply in turn.get("replies") or []:
            if str(reply).strip():
                history.extend(role_messages(str(reply)))
        question = turn.get("question")
        if question and not (pending and number == len(turns)):
            history.extend(role_messages(str(question)))
    if pending:
        history.append(question_message(pending))
    return history
