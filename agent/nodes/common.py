"""Small helpers every node uses: speaking, menus, the workspace, answers."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agent.context import Context
from agent.state import MenuOption
from knowledge.loader import Pack
from tools.workspace import Workspace


def pack_of(runtime: Runtime[Context]) -> Pack:
    """The pack of this run."""
    return runtime.context.pack


def fill(runtime: Runtime[Context], template: str, **values: Any) -> str:
    """Format a prompt constant with the role's identity fields."""
    agent = pack_of(runtime).agent
    return template.format(
        icon=agent.icon or "•",
        name=agent.name,
        title=agent.title or agent.name,
        title_en=agent.title_en or agent.name,
        identity=str(agent.identity),
        **values,
    )


def icon(runtime: Runtime[Context]) -> str:
    """The role's icon, which opens every message the role says."""
    return pack_of(runtime).agent.icon or "•"


def say(text: str) -> AIMessage:
    """A message from the role."""
    return AIMessage(content=text)


def heard(text: str) -> HumanMessage:
    """The user's message, as stored in the conversation."""
    return HumanMessage(content=text)


def numbered(options: list[MenuOption]) -> str:
    """Render a numbered list."""
    return "\n".join(f"{n}. {option['label']}" for n, option in enumerate(options, start=1))


def workspace_of(runtime: Runtime[Context], config: RunnableConfig) -> Workspace:
    """The thread's workspace."""
    thread_id = str((config.get("configurable") or {}).get("thread_id") or "default")
    return Workspace.for_thread(runtime.context.home, thread_id)


def describe_input_error(code: str) -> str:
    """A readable reason for the driver's input error code."""
    kind, _, detail = code.partition(":")
    if kind == "too_long":
        size, _, limit = detail.partition("/")
        return f"That message is {size} characters; I take at most {limit}, so I did not read it"
    if kind == "binary":
        return "That looks like binary data, not text, so I did not read it"
    if kind == "secret_value":
        return "That is not a secret scope and key (scope/key), so I did not keep it anywhere"
    return code


def read_answer(value: Any) -> tuple[str, str]:
    """Unpack a resume value: ``(screened text, readable error)``.

    The driver sends ``{"text", "error"}`` already screened; a client of the graph itself (LangGraph Server,
    Studio) resumes with any value, so the text is screened here too (screening twice changes nothing).
    """
    from agent.screening import screen

    if isinstance(value, dict):
        text, error = str(value.get("text") or ""), str(value.get("error") or "")
    else:
        text, error = str(value or ""), ""
    if not error:
        text, error, _secret = screen(text)
    return text, describe_input_error(error) if error else ""


def ask_payload(question: str, options: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """The value passed to ``interrupt()``: what front ends show and wait on."""
    text = question
    if options:
        text += "\n" + "\n".join(f"{n}. {label}" for n, label in enumerate(options, start=1))
    return {"question": text, "options": list(options or []), **extra}


def add_artifacts(state: dict, *paths: str) -> list[str]:
    """The thread's artefact list with ``paths`` added once each."""
    artifacts = list(state.get("artifacts") or [])
    for path in paths:
        if path not in artifacts:
            artifacts.append(path)
    return artifacts


def consult(runtime: Runtime[Context], question: str, k: int = 4) -> Any:
    """Search the knowledge base and compose a short cited answer (``knowledge.answer.Answer``).

    An empty or oversized query, or an index that cannot be opened, gives an
    answer with ``found`` False rather than an exception in the middle of a turn.
    """
    from agent.context import retriever_for
    from knowledge.answer import compose_answer
    from knowledge.index import IndexUnavailableError
    from knowledge.retrieval import QueryError

    try:
        hits = retriever_for(runtime.context.home, runtime.context.pack_dir).search(question[:4000], k=k)
    except (QueryError, IndexUnavailableError):
        hits = []
    return compose_answer(question, hits)
