"""The model's part of the ``converse`` and ``answer_kb`` nodes.

The nodes keep deciding everything stateful (mode, menus, routing, *exit);
these functions only produce the text of an answer, with its sources, or a
failure that the node answers offline with a plain notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agent.context import Context
from agent.llm import prompts
from agent.llm.conversation import ModelReply, respond, search_tool, workspace_tools
from agent.llm.grounding import Sources, sources_block
from agent.nodes.common import fill, pack_of, say, workspace_of
from agent.state import State
from knowledge.documents import has_cjk
from knowledge.retrieval import Hit


def search_fn(runtime: Runtime[Context]):
    """``search(query, k)`` over this run's knowledge index; an index that cannot open finds nothing."""
    from agent import context  # looked up at call time, like ``consult``, so tests can stub retrieval once for both
    from knowledge.index import IndexUnavailableError

    def search(query: str, k: int) -> Sequence[Hit]:
        try:
            return context.retriever_for(runtime.context.home, runtime.context.pack_dir).search(query[:4000], k=k)
        except IndexUnavailableError:
            return []

    return search


def _step(state: State, default: str) -> str:
    run = state.get("task") or {}
    if run.get("questions"):
        return prompts.STEP_TASK.format(title=run.get("title", ""), index=int(run.get("index") or 0) + 1,
                                        count=len(run["questions"]))
    return default


def converse_reply(model: BaseChatModel, state: State, runtime: Runtime[Context], config: RunnableConfig,
                   question: str, command: str | None = None) -> ModelReply:
    """The model's in-character answer to free text (or to a command with no task), with tools."""
    pack = pack_of(runtime)
    sources = Sources(search_fn(runtime), keep_zh=has_cjk(question))
    tools = workspace_tools(runtime.context.pack_dir, str(workspace_of(runtime, config).root))
    step = prompts.STEP_COMMAND.format(command=command) if command else _step(state, prompts.STEP_CONVERSE)
    return respond(model, pack, question=question, history=state.get("messages") or [], mode="commands",
                   step=step, sources=sources, tools=[search_tool(sources), *tools])


def kb_reply(model: BaseChatModel, state: State, runtime: Runtime[Context], question: str) -> ModelReply:
    """The model's kb-mode answer: grounded in passages, citing them; only ``search_knowledge`` is bound."""
    pack = pack_of(runtime)
    sources = Sources(search_fn(runtime), keep_zh=has_cjk(question))
    return respond(model, pack, question=question, history=state.get("messages") or [], mode="kb-mode",
                   step=prompts.STEP_KB, sources=sources, tools=[search_tool(sources)], k=4)


def answer_text(reply: ModelReply) -> str:
    """The answer followed by the list of the passages it cites."""
    return f"{reply.text}{sources_block(reply.cited)}"


def with_failure_notice(update: dict[str, Any], runtime: Runtime[Context], reply: ModelReply) -> dict[str, Any]:
    """The offline node's update, preceded by the plain notice that the model failed this turn (if it did)."""
    if not reply.failure:  # the model was not asked: the offline answer is the answer
        return update
    notice = say(fill(runtime, prompts.MODEL_FAILED, reason=reply.failure))
    return {**update, "messages": [notice, *(update.get("messages") or [])]}
