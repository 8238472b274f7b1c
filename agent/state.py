"""The graph's state: what a thread remembers between turns."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Mode = Literal["commands", "kb-mode", "task", "inactive"]

KEEP_MESSAGES = 40
"""Messages a thread's state keeps: the model reads at most the last few turns (a 600-token budget),
and every turn loads and stores the state, so a state that grew with the thread made each turn slower
(a 90-turn thread: 6 ms more per turn). The whole conversation is kept in ``agent.transcript``."""


def add_recent_messages(left: list[AnyMessage], right: list[AnyMessage] | AnyMessage) -> list[AnyMessage]:
    """``add_messages``, then only the last ``KEEP_MESSAGES``."""
    merged = add_messages(left, right)
    return merged[-KEEP_MESSAGES:] if len(merged) > KEEP_MESSAGES else merged


class MenuOption(TypedDict):
    """One entry of a numbered list; choosing it routes ``value`` as if typed."""

    label: str
    value: str


class State(TypedDict, total=False):
    """A thread's state.

    Attributes:
        messages: the recent conversation, as chat messages (the last ``KEEP_MESSAGES``).
        input: the user's text of this turn (screened by the driver).
        input_error: why the driver refused the raw input, if it did.
        request: the parsed command of this turn (name, args).
        activated: whether the greeting was shown on this thread.
        persona_active: whether the role speaks (False after ``*exit``).
        mode: commands, kb-mode, task or inactive.
        yolo: skip confirmations and elicitation menus.
        menu: the last numbered list shown.
        task: the running task, command flow or checklist run.
        artifacts: workspace-relative paths of files produced in the thread.
        current_doc: the document ``*doc-out`` prints.
        checklist_results: summaries of every checklist run (for the release gate).
        heard_id: id of the last user message taken as a turn, so a turn sent as standard chat ``messages``
            (LangGraph Server, agent-chat-ui) is told apart from one sent as ``input``.
        design: the thread's pipeline design (``tools.design.Design.to_dict``), read and extended by every task.

    """

    messages: Annotated[list[AnyMessage], add_recent_messages]
    input: str
    input_error: str
    request: dict[str, Any]
    activated: bool
    persona_active: bool
    mode: Mode
    yolo: bool
    menu: list[MenuOption]
    task: dict[str, Any] | None
    artifacts: list[str]
    current_doc: str | None
    checklist_results: list[dict[str, Any]]
    heard_id: str
    design: dict[str, Any]
