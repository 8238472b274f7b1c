"""One model turn in character: prompt, tool loop, grounded reply.

A call carries the persona core, the current mode and step, the recent turns
(trimmed to a token budget), the top retrieved passages and the user's
message — never the whole bundle. The model may call tools; an explicit loop
runs them (at most ``MAX_MODEL_CALLS`` model calls per turn) and answers a
malformed call (unknown tool, arguments that are not JSON or do not fit) with
a tool error the model can recover from. Any failure of the endpoint ends in
a ``ModelReply`` with ``failure`` set, never an exception, so the node can
fall back to the offline engine for that turn.

Every call is bounded and streamed (``agent.llm.calls``). An endpoint that
does not call tools (``agent.llm.capabilities``) gets one plain call: the
passages the app retrieved, the instructions in the user's turn, no tools;
when the app found no passages, it is not asked at all (the offline engine
answers in role: the redirect, or "no answer").
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, ValidationError

from agent import prompts as role_prompts
from agent.llm import capabilities, prompts
from agent.llm.backend import load_config, redact
from agent.llm.calls import Prompt, complete
from agent.llm.failures import IncompleteReply, describe_failure, is_graph_signal
from agent.llm.grounding import PASSAGE_CHARS, Sources
from knowledge.loader import Pack

log = logging.getLogger("streaming_engineer.llm")

MAX_MODEL_CALLS = 4
"""Model calls per turn: up to three rounds of tool calls, then an answer without tools."""
HISTORY_TOKENS = 600
"""Budget (approximate tokens) for the recent turns sent with each call."""
HISTORY_MESSAGE_CHARS = 700
"""A long earlier message (a help list, a document) is clipped to this before trimming."""
MAX_TOOL_RESULT_CHARS = 3000
"""A tool result is clipped to this: a rendered template or report can be long."""
CONVERSE_TOOLS = ("search_knowledge", "describe_command", "list_commands", "render_template", "run_checklist")
"""Tools bound in free conversation. Writing files stays with the commands, which track artefacts in state."""
PLAIN_PASSAGE_CHARS = 600
"""A passage is clipped to this for a model without tools, and ``PLAIN_HISTORY_TOKENS`` bound its earlier turns:
such endpoints are mostly small local models on a CPU, where reading the prompt is most of a turn's time
(Gemma 3 270M on two busy cores reads about ten tokens a second)."""
PLAIN_HISTORY_TOKENS = 300


@dataclass
class ModelReply:
    """What the model said for one turn.

    Attributes:
        text: the answer, citations checked; ``None`` when the model failed, or was not asked (then
            ``failure`` is empty and the offline engine answers without a notice).
        cited: ``(number, hit)`` of each passage the answer cites.
        sources: every passage retrieved in the turn.
        failure: a plain reason when the model failed (never the key).
        steps: the tool calls made, as ``{"name", "args", "ok"}``.
        calls: how many model calls the turn made.
        tools: whether the model was offered tools.

    """

    text: str | None
    cited: list = field(default_factory=list)
    sources: Sources | None = None
    failure: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    tools: bool = True


def persona_prompt(pack: Pack, mode: str, step: str) -> str:
    """The role's core (identity, style, principles) with the current mode and step."""
    agent = pack.agent
    principles = "\n".join(f"- {p.en or p.zh}" for p in agent.core_principles)
    return role_prompts.SYSTEM_PROMPT.format(
        name=agent.name, title=agent.title, title_en=agent.title_en or agent.name, icon=agent.icon,
        role=agent.role.en or agent.role.zh, style=agent.style.en or agent.style.zh,
        identity=agent.identity.en or agent.identity.zh, principles=principles, mode=mode, step=step,
    )


def instructions(pack: Pack, mode: str, step: str, searchable: bool = True) -> str:
    """The persona core and the app's rules: the instructions of every call, the same from turn to turn."""
    rules = prompts.APP_RULES.format(searched=prompts.SEARCHED if searchable else "")
    return f"{persona_prompt(pack, mode, step)}\n\n{rules}"


ROLE_FIELDS = ("name", "title", "title_en", "icon", "role", "style", "identity", "principles")
"""The persona prompt's fields filled from the role's definition: words the role may say (its greeting shows
its identity), so a reply repeating them is no leak."""


def app_wording(mode: str, step: str, searchable: bool = True) -> str:
    """The instructions as the app words them, the role's own fields left out: what no reply may copy back."""
    persona = role_prompts.SYSTEM_PROMPT.format(**dict.fromkeys(ROLE_FIELDS, "\x00"), mode=mode, step=step)
    rules = prompts.APP_RULES.format(searched=prompts.SEARCHED if searchable else "")
    return f"{persona}\n\n{rules}"


_TRAILERS = re.compile(r"\n\n(?:Sources|Topics|Related commands|Related topics):.*", re.S)
_CITED = re.compile(r"\s?\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")


def _answer_only(text: str) -> str:
    """An earlier answer without its source list, menus and ``[n]`` marks.

    Those numbers belonged to that turn's passages; left in, the model could
    cite them again for different passages. Dropping the lists saves tokens too.
    """
    return _CITED.sub("", _TRAILERS.sub("", text)).strip()


def recent_turns(messages: Sequence[AnyMessage], max_tokens: int = HISTORY_TOKENS) -> list[BaseMessage]:
    """The conversation before the current message, clipped and trimmed to ``max_tokens``.

    Only what the user and the role said is kept (no tool traffic), each
    message clipped, then the most recent turns that fit, starting on a user
    message so the model never sees an answer without its question.
    """
    history = list(messages)
    while history and history[-1].type == "human":  # the current message is sent on its own
        history.pop()
    clipped: list[BaseMessage] = []
    chars = 0
    # Newest first, and only as far back as the budget can reach: a long thread's early turns are never
    # sent, so they are not rebuilt on every turn either (twice the budget, as characters/4 underestimates).
    for message in reversed(history):
        if chars > 8 * max_tokens:
            break
        if message.type not in ("human", "ai"):
            continue
        text = str(message.text).strip()
        if message.type == "ai":
            text = _answer_only(text)
        if not text:
            continue
        if len(text) > HISTORY_MESSAGE_CHARS:
            text = text[:HISTORY_MESSAGE_CHARS].rstrip() + " …"
        chars += len(text)
        clipped.append(HumanMessage(text) if message.type == "human" else AIMessage(text))
    if not clipped:
        return []
    clipped.reverse()
    return trim_messages(clipped, max_tokens=max_tokens, token_counter=count_tokens_approximately,
                         strategy="last", start_on="human")


class SearchArgs(BaseModel):
    """Arguments of ``search_knowledge`` (a fixed schema, so the tool is cheap to make per turn)."""

    query: str = Field(description="what to look for: the option, feature or problem, in a few words")
    k: int = Field(default=3, description="how many passages, 1 to 5")


def search_tool(sources: Sources) -> BaseTool:
    """``search_knowledge`` numbered across the turn (replaces the per-call numbering of ``make_tools``)."""
    return StructuredTool(
        name="search_knowledge",
        description="Search the streaming knowledge base; returns numbered passages to cite as [n].",
        args_schema=SearchArgs,
        func=lambda query, k=3: sources.search_tool_result(query, k),
    )


@functools.lru_cache(maxsize=64)
def workspace_tools(pack_dir: str, workspace_root: str) -> tuple[BaseTool, ...]:
    """The pack's conversation tools bound to one thread's workspace, built once per thread.

    Building a tool derives a pydantic schema from its function, which costs
    milliseconds each; a turn should not pay that again.
    """
    from knowledge.loader import cached_pack
    from tools.langchain_tools import make_tools
    from tools.workspace import Workspace

    tools = make_tools(cached_pack(pack_dir), Workspace(Path(workspace_root)))
    return tuple(t for t in tools if t.name in CONVERSE_TOOLS)


_DEFINITIONS: dict[tuple[str, str], dict[str, Any]] = {}


def tool_definitions(tools: Sequence[BaseTool]) -> list[dict[str, Any]]:
    """The OpenAI function definitions of ``tools``, converted once per tool name and description."""
    definitions = []
    for tool in tools:
        key = (tool.name, tool.description)
        if key not in _DEFINITIONS:
            _DEFINITIONS[key] = convert_to_openai_tool(tool)
        definitions.append(_DEFINITIONS[key])
    return definitions


def _clip_result(text: str) -> str:
    return text if len(text) <= MAX_TOOL_RESULT_CHARS else text[:MAX_TOOL_RESULT_CHARS] + "\n… (clipped)"


def _validation_detail(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err.get('loc', ())) or 'arguments'}: {err.get('msg', '')}" for err in exc.errors()]
    return "; ".join(parts)[:300]


def run_tool_call(call: dict[str, Any], tools: dict[str, BaseTool]) -> tuple[ToolMessage, bool]:
    """Run one tool call; a bad call becomes an error message for the model, never an exception."""
    name, call_id = call.get("name") or "", call.get("id") or ""
    tool = tools.get(name)
    if tool is None:
        content = prompts.TOOL_UNKNOWN.format(name=name, available=", ".join(tools) or "none")
        return ToolMessage(content, tool_call_id=call_id, name=name, status="error"), False
    try:
        result = tool.invoke(call.get("args") or {})
    except ValidationError as exc:
        content = prompts.TOOL_BAD_ARGS.format(name=name, detail=_validation_detail(exc))
        return ToolMessage(content, tool_call_id=call_id, name=name, status="error"), False
    except Exception as exc:  # a tool bug must not end the turn: the model reads what failed
        if is_graph_signal(exc):
            raise
        log.warning("tool %s failed: %s", name, type(exc).__name__)
        content = prompts.TOOL_FAILED.format(name=name, detail=type(exc).__name__)
        return ToolMessage(content, tool_call_id=call_id, name=name, status="error"), False
    return ToolMessage(_clip_result(str(result)), tool_call_id=call_id, name=name), True


def _bad_json_message(call: dict[str, Any]) -> ToolMessage:
    name = call.get("name") or "?"
    detail = str(call.get("error") or "could not parse them")[:200]
    content = prompts.TOOL_BAD_JSON.format(name=name, detail=detail)
    return ToolMessage(content, tool_call_id=call.get("id") or "", name=name, status="error")


def _report_step(step: dict[str, Any]) -> None:
    """Tell streaming front ends about a tool step (LangGraph's ``custom`` stream), if one listens."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()({"tool": step})
    except Exception:  # outside a graph run, or no custom stream: nothing to tell
        return


def run_tool_loop(model: BaseChatModel, messages: list[BaseMessage], tools: Sequence[BaseTool],
                  max_calls: int = MAX_MODEL_CALLS,
                  prompt: Prompt | None = None) -> tuple[AIMessage, list[dict[str, Any]], int]:
    """Call the model, run the tools it asks for, repeat; return its final answer.

    Each call is bounded and streamed (``calls.complete``); inside the graph
    node, LangGraph's ``stream_mode="messages"`` passes its tokens on. When
    the budget is spent, one last call with ``tool_choice="none"`` asks for
    the answer. With no tools it is one call. ``prompt`` is what no reply may
    copy back (see ``calls.echoing``).

    Returns:
        ``(final message, tool steps, model calls made)``.

    Raises:
        Exception: whatever the endpoint raised after the client's retries, or
            ``IncompleteReply``; the caller turns it into a fallback.

    """
    by_name = {tool.name: tool for tool in tools}
    definitions = tool_definitions(tools)
    choice: str | None = None
    steps: list[dict[str, Any]] = []
    for call_number in range(1, max_calls + 1):
        if call_number == max_calls and tools:
            messages.append(HumanMessage(prompts.TOOL_CAP))
            choice = "none"
        response = complete(model, messages, kind="answer", tools=definitions, tool_choice=choice, prompt=prompt)
        if not response.tool_calls and not response.invalid_tool_calls:
            return response, steps, call_number
        if call_number == max_calls:
            # A server that ignores tool_choice="none": take whatever text came with the calls.
            return AIMessage(str(response.text)), steps, call_number
        messages.append(response)
        for call in response.tool_calls:
            result, ok = run_tool_call(call, by_name)
            messages.append(result)
            step = {"name": call.get("name"), "args": call.get("args"), "ok": ok}
            steps.append(step)
            _report_step(step)
        for call in response.invalid_tool_calls:
            messages.append(_bad_json_message(call))
            step = {"name": call.get("name"), "args": call.get("args"), "ok": False}
            steps.append(step)
            _report_step(step)
    raise AssertionError("unreachable: the last call always returns")


def _clean_answer(text: str, icon: str) -> str:
    text = text.strip()
    if icon and text.startswith(icon):  # the app adds the icon itself
        text = text[len(icon):].lstrip()
    return text


def _plain_messages(system: str, history: Sequence[BaseMessage], question: str) -> list[BaseMessage]:
    """The prompt for a model without tools: one user turn (see ``PLAIN_MESSAGE``).

    The instructions open it and the earlier turns follow the passages as a
    transcript, so every call starts with the same text: a local server
    that keeps the last prompt's cache (llama.cpp, llama-cpp-python, Ollama)
    then only reads what is new, which on a CPU is most of a turn's time.
    """
    lines = [prompts.TRANSCRIPT_LINE.format(who="User" if m.type == "human" else "You", text=m.text)
             for m in history]
    conversation = prompts.TRANSCRIPT.format(lines="\n".join(lines)) if lines else ""
    return [HumanMessage(prompts.PLAIN_MESSAGE.format(instructions=system, conversation=conversation,
                                                      question=question))]


def respond(model: BaseChatModel, pack: Pack, *, question: str, history: Sequence[AnyMessage], mode: str,
            step: str, sources: Sources, tools: Sequence[BaseTool], k: int = 3) -> ModelReply:
    """One grounded, in-character model answer to ``question``.

    Args:
        model: the chat model.
        pack: the role's pack.
        question: the user's message (or what a chosen topic asks).
        history: the thread's messages so far.
        mode: the current mode, for the system prompt.
        step: the current step, for the system prompt.
        sources: the turn's passage registry (retrieval behind it).
        tools: the tools to bind (``search_knowledge`` should use ``sources``); an
            endpoint that does not call tools gets none and more passages up front.
        k: passages retrieved up front.

    Returns:
        The reply; on any failure ``text`` is ``None`` and ``failure`` says why.

    """
    calls = 0
    offered = bool(tools)
    try:
        config = load_config()
        offered = bool(tools) and capabilities.calls_tools(model, config.tools if config else "auto")
        try:
            entries = sources.find(question, k)
        except ValueError:
            entries = []
        if not offered and not entries:
            # Nothing to ground on and no way to search: such a model could only decline or make something
            # up, and the offline engine's in-role answer (the redirect, "no answer") is what it should say.
            return ModelReply(text=None, sources=sources, tools=False)
        earlier = recent_turns(history, HISTORY_TOKENS if offered else PLAIN_HISTORY_TOKENS)

        def ask(with_tools: bool) -> tuple[AIMessage, list[dict[str, Any]], int]:
            told = instructions(pack, mode, step, with_tools)
            chars = PASSAGE_CHARS if with_tools else PLAIN_PASSAGE_CHARS
            system = f"{told}\n\n{sources.prompt_block(entries, with_tools, chars)}"
            guard = Prompt(instructions=app_wording(mode, step, with_tools), question=question)
            if with_tools:
                return run_tool_loop(model, [SystemMessage(system), *earlier, HumanMessage(question)], tools,
                                     prompt=guard)
            return run_tool_loop(model, _plain_messages(system, earlier, question), [], prompt=guard)

        try:
            final, steps, calls = ask(offered)
        except Exception as exc:
            if not (offered and capabilities.refuses_tools(exc)):
                raise
            # A server that refuses tools only once it sees them: remember, and answer without them.
            capabilities.remember(model, False)
            offered = False
            final, steps, calls = ask(False)
            calls += 1
        text = _clean_answer(str(final.text), pack.agent.icon)
        if not text:
            raise IncompleteReply("the model returned an empty answer")
        text, cited = sources.check_citations(text)
        return ModelReply(text=text, cited=cited, sources=sources, steps=steps, calls=calls, tools=offered)
    except Exception as exc:
        if is_graph_signal(exc):
            raise
        reason = describe_failure(exc)
        log.warning("model turn failed, answering offline: %s (%s)", reason, redact(type(exc).__name__))
        return ModelReply(text=None, sources=sources, failure=reason, calls=calls, tools=offered)
