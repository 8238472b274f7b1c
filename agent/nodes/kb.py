"""kb-mode: topic menu, grounded answers with citations, leaving kb-mode."""

from __future__ import annotations

from langgraph.runtime import Runtime

from agent import prompts
from agent.context import Context
from agent.llm import chat_model
from agent.llm.turns import answer_text, kb_reply, with_failure_notice
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
    """Answer a kb-mode question (or a chosen topic) from the knowledge base, with citations.

    With a model configured the model answers from retrieved passages; offline (or when the model fails,
    after a plain notice) the extractive composer does.
    """
    pack = pack_of(runtime)
    request = state.get("request") or {}
    topic_id = request.get("topic")
    if topic_id and topic_id in pack.knowledge:
        doc = pack.knowledge[topic_id]
        question = f"{doc.title} {doc.title_zh} {' '.join(doc.topics)}"
        heading = f"**{doc.title_zh} · {doc.title}**\n\n" if doc.title_zh else f"**{doc.title}**\n\n"
        asked = f"Give me an overview of {doc.title}."
    else:
        question = request.get("question") or ""
        heading = ""
        asked = question
    menu = topic_menu(runtime)
    failed = None
    model = chat_model()
    if model is not None:
        reply = kb_reply(model, state, runtime, asked)
        # State decides grounding: a model answer counts only when passages were retrieved; otherwise the
        # plain offline "no answer" below is said, whatever the model wrote.
        if reply.text is not None and reply.sources is not None and reply.sources.hits:
            text = f"{icon(runtime)} {heading}{answer_text(reply)}\n\nTopics:\n{numbered(menu)}"
            return {"mode": "kb-mode", "menu": menu, "messages": [say(text)]}
        failed = reply if reply.failure else None
    answer = consult(runtime, question, k=5)
    if not answer.found:
        text = fill(runtime, prompts.KB_NO_ANSWER) + "\n\n" + answer.text
    else:
        text = f"{icon(runtime)} {heading}{answer.text}"
    text += "\n\nTopics:\n" + numbered(menu)
    update = {"mode": "kb-mode", "menu": menu, "messages": [say(text)]}
    return with_failure_notice(update, runtime, failed) if failed else update
