"""The Streaming Engineer state machine.

``route`` reads each turn and hands it to the node that serves it; task runs
loop through small interrupt nodes for their questions. Every front end
(Gradio, the terminal, ``run --script``, evals) drives this same graph, with
a turn as ``{"input": text}``; standard chat clients (LangGraph Server,
agent-chat-ui, Studio) send ``{"messages": [...]}``, whose last user message
``route_turn`` takes as the same input.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from agent.context import Context
from agent.nodes.checklist import (
    ask_checklist_mode,
    ask_checklist_target,
    judge_checklist,
    report_checklist,
    review_item,
    start_checklist,
)
from agent.nodes.create_doc import apply_method, choose_template, draft_sections, elicit_section
from agent.nodes.documents import output_document, shard_document
from agent.nodes.gate import release_gate
from agent.nodes.kb import answer_kb, enter_kb_mode, leave_kb_mode
from agent.nodes.persona import Destination, activate_role, converse, exit_role, route, show_help, toggle_yolo
from agent.nodes.tasks import (
    ask_input,
    compose_document,
    render_templates,
    retrieve_guidance,
    run_task_checklists,
    save_document,
    start_task,
)
from agent.screening import screen
from agent.state import State

_TERMINAL = [
    show_help, toggle_yolo, exit_role, activate_role, enter_kb_mode, leave_kb_mode, answer_kb, converse,
    save_document, report_checklist, shard_document, output_document, release_gate,
]
_ROUTING = [
    start_task, ask_input, render_templates, choose_template, elicit_section, apply_method,
    start_checklist, ask_checklist_mode, ask_checklist_target, judge_checklist, review_item,
]


def message_text(message: Any) -> str:
    """The text of a chat message whose content is a string or a list of content blocks."""
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    parts = [part if isinstance(part, str) else part.get("text", "") for part in content or []
             if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text")]
    return "\n".join(p for p in parts if p)


def taken_message(state: State) -> dict:
    """What a new user message at the end of ``messages`` makes of this turn: its text as ``input`` (screened
    like typed input) and its id as ``heard_id``; only ``heard_id: ""`` for a turn sent as ``{"input": text}``,
    which leaves the last message one the graph already heard.
    """  # noqa: D205
    messages = state.get("messages") or []
    last = messages[-1] if messages else None
    if not isinstance(last, HumanMessage) or not last.id or last.id == state.get("heard_id"):
        return {"heard_id": ""}
    text, error, _secret = screen(message_text(last))
    return {"input": text, "input_error": error, "heard_id": last.id}


def route_turn(state: State, runtime: Runtime[Context]) -> Command[Destination]:
    """``route`` for a turn sent either way, keeping one stored user message per turn.

    For a turn sent as ``messages`` the user's message is already stored: the screened copy ``route`` records
    replaces it (same id) instead of following it. For an ``input`` turn, the copy's id is remembered.
    """
    taken = taken_message(state)
    command = route({**state, **taken}, runtime)
    update = {**taken, **(command.update if isinstance(command.update, dict) else {})}
    said = update.get("messages") or []
    if said and isinstance(said[0], HumanMessage):
        from_messages = bool(taken["heard_id"])
        said[0].id = taken["heard_id"] if from_messages else uuid.uuid4().hex
        update["heard_id"] = said[0].id
    return dataclasses.replace(command, update=update)


def build_graph() -> StateGraph:
    """The uncompiled graph (compile it with a checkpointer)."""
    builder = StateGraph(State, context_schema=Context)
    builder.add_node("route", route_turn)
    for node in _TERMINAL + _ROUTING:
        builder.add_node(node.__name__, node)
    for node in (retrieve_guidance, compose_document, run_task_checklists, draft_sections):
        builder.add_node(node.__name__, node)
    builder.add_edge(START, "route")
    for node in _TERMINAL:
        builder.add_edge(node.__name__, END)
    builder.add_edge("retrieve_guidance", "compose_document")
    builder.add_edge("compose_document", "run_task_checklists")
    builder.add_edge("run_task_checklists", "save_document")
    builder.add_edge("draft_sections", "elicit_section")
    return builder


graph = build_graph().compile(name="Streaming Engineer")
"""The compiled graph for ``langgraph dev`` / LangGraph Studio (which brings its own checkpointer)."""
