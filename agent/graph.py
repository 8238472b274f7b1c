"""The Streaming Engineer state machine.

``route`` reads each turn and hands it to the node that serves it; task runs
loop through small interrupt nodes for their questions. Every front end
(Gradio, the terminal, ``run --script``, evals) drives this same graph.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

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
from agent.nodes.persona import activate_role, converse, exit_role, route, show_help, toggle_yolo
from agent.nodes.tasks import (
    ask_input,
    compose_document,
    render_templates,
    retrieve_guidance,
    run_task_checklists,
    save_document,
    start_task,
)
from agent.state import State

_TERMINAL = [
    show_help, toggle_yolo, exit_role, activate_role, enter_kb_mode, leave_kb_mode, answer_kb, converse,
    save_document, report_checklist, shard_document, output_document, release_gate,
]
_ROUTING = [
    route, start_task, ask_input, render_templates, choose_template, elicit_section, apply_method,
    start_checklist, ask_checklist_mode, ask_checklist_target, judge_checklist, review_item,
]


def build_graph() -> StateGraph:
    """The uncompiled graph (compile it with a checkpointer)."""
    builder = StateGraph(State, context_schema=Context)
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
