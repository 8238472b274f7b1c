"""kb-mode: topic menu, grounded answers with citations, leaving kb-mode."""

from __future__ import annotations

from langgraph.runtime import Runtime

from agent import prompts
from agent.context import Context
from agent.nodes.common import consult, fill, icon, numbered, pack_of, say
from agent.state import MenuOption, State


def topic_menu(runtime: Runtime[Context]) -> list[MenuOption]:
    """The knowledge files of the pack as a numbered topic list."""
    pack = pack_of(runtime)
    return [
        {"label": f"{doc.title_zh} · {doc.title}" if doc.title_zh else doc.title, "value": f"?topic:{doc.id}"}
        for doc in pack.knowledge.values()
    ]


def enter_kb_mode(state: State, runtime: Runtime[Context]) -> dict:
    """``*kb-mode``: welcome and the topic menu."""
    menu = topic_menu(runtime)
    reply = fill(runtime, prompts.KB_WELCOME) + "\n" + numbered(menu)
    return {"mode": "kb-mode", "menu": menu, "messages": [say(reply)]}


def leave_kb_mode(state: State, runtime: Runtime[Context]) -> dict:
    """Leave kb-mode, reminding how to come back."""
    from agent.nodes.persona import command_menu

    return {"mode": "commands", "menu": command_menu(pack_of(runtime)), "messages": [say(fill(runtime, prompts.KB_LEAVE))]}


def answer_kb(state: State, runtime: Runtime[Context]) -> dict:
    """Answer a kb-mode question (or a chosen topic) from the knowledge base, with citations."""
    pack = pack_of(runtime)
    request = state.get("request") or {}
    topic_id = request.get("topic")
    if topic_id and topic_id in pack.knowledge:
        doc = pack.knowledge[topic_id]
        question = f"{doc.title} {doc.title_zh} {' '.join(doc.topics)}"
        heading = f"**{doc.title_zh} · {doc.title}**\n\n" if doc.title_zh else f"**{doc.title}**\n\n"
    else:
        question = request.get("question") or ""
        heading = ""
    answer = consult(runtime, question, k=5)
    menu = topic_menu(runtime)
    if not answer.found:
        reply = fill(runtime, prompts.KB_NO_ANSWER) + "\n\n" + answer.text
    else:
        reply = f"{icon(runtime)} {heading}{answer.text}"
    reply += "\n\nTopics:\n" + numbered(menu)
    return {"mode": "kb-mode", "menu": menu, "messages": [say(reply)]}
