"""Routing and the persona's own nodes: help, yolo, exit, activate, converse."""

from __future__ import annotations

from typing import Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import prompts
from agent.context import Context
from agent.llm import chat_model
from agent.llm.turns import answer_text, converse_reply, with_failure_notice
from agent.nodes.common import consult, fill, heard, icon, numbered, pack_of, say
from agent.routing import clear_match, looks_like_injection, parse, suggest
from agent.state import MenuOption, State
from knowledge.loader import Pack

Destination = Literal[
    "show_help", "toggle_yolo", "exit_role", "activate_role", "enter_kb_mode", "leave_kb_mode", "answer_kb",
    "start_task", "choose_template", "start_checklist", "shard_document", "output_document", "release_gate",
    "converse", "__end__",
]

_BUILTIN_NODES = {
    "help": "show_help",
    "yolo": "toggle_yolo",
    "kb-mode": "enter_kb_mode",
    "create-doc": "choose_template",
    "execute-checklist": "start_checklist",
    "shard-doc": "shard_document",
    "doc-out": "output_document",
}


def command_menu(pack: Pack) -> list[MenuOption]:
    """The numbered command list, generated from the agent definition."""
    return [
        {"label": f"`{c.usage}` — {c.description}", "value": f"*{c.name}"}
        for c in pack.agent.commands
    ]


def help_text(runtime: Runtime[Context], yolo: bool) -> str:
    """The ``*help`` text: header, numbered commands, footer."""
    pack = pack_of(runtime)
    return "\n".join([
        fill(runtime, prompts.HELP_HEADER),
        numbered(command_menu(pack)),
        "",
        prompts.HELP_FOOTER.format(yolo="on" if yolo else "off"),
    ])


def _error_message(runtime: Runtime[Context], error: str) -> str:
    kind, _, detail = error.partition(":")
    if kind == "too_long":
        size, _, limit = detail.partition("/")
        return fill(runtime, prompts.TOO_LONG, size=size, limit=limit)
    if kind == "binary":
        return fill(runtime, prompts.BINARY_INPUT)
    return fill(runtime, prompts.EMPTY_INPUT)


def route(state: State, runtime: Runtime[Context]) -> Command[Destination]:
    """Read the turn's input and send it to the node that handles it."""
    pack = pack_of(runtime)
    text = state.get("input") or ""
    error = state.get("input_error") or ""
    messages = [heard(text)] if text else []
    update: dict = {"input_error": "", "request": {}}
    parsed = parse(text)

    if not state.get("activated"):
        greeting = fill(runtime, prompts.GREETING)
        messages += [say(greeting), say(help_text(runtime, bool(state.get("yolo"))))]
        update.update(activated=True, persona_active=True, mode="commands", menu=command_menu(pack))
        if (parsed.kind == "empty" and not error) or (parsed.kind == "command" and parsed.name == "help"):
            return Command(goto=END, update={**update, "messages": messages})
        state = {**state, "mode": "commands", "persona_active": True, "menu": command_menu(pack)}

    if not state.get("persona_active", True):
        if parsed.kind == "command" and parsed.name == "activate":
            return Command(goto="activate_role", update={**update, "messages": messages})
        return Command(goto=END, update={**update, "messages": [*messages, say(prompts.INACTIVE)]})

    if error or parsed.kind == "empty":
        return Command(goto=END, update={**update, "messages": [*messages, say(_error_message(runtime, error))]})

    if parsed.kind == "number":
        menu = state.get("menu") or []
        if not menu:
            return Command(goto=END, update={**update, "messages": [*messages, say(fill(runtime, prompts.NO_MENU))]})
        if not 1 <= parsed.number <= len(menu):
            reply = fill(runtime, prompts.NUMBER_OUT_OF_RANGE, number=parsed.number, count=len(menu))
            return Command(goto=END, update={**update, "messages": [*messages, say(reply)]})
        value = menu[parsed.number - 1]["value"]
        if value.startswith("?topic:"):
            update["request"] = {"topic": value.split(":", 1)[1]}
            return Command(goto="answer_kb", update={**update, "messages": messages})
        if value == "?no":
            reply = fill(runtime, prompts.HELP_HEADER) + "\n" + numbered(command_menu(pack))
            return Command(goto=END, update={**update, "menu": command_menu(pack), "messages": [*messages, say(reply)]})
        parsed = parse(value)

    if parsed.kind == "command":
        return _dispatch(state, runtime, parsed.name, list(parsed.args), update, messages)

    # Free text. A task's questions are interrupts, so "#yolo" reaching the router means none is waiting.
    if parsed.text.lower().startswith("#yolo"):
        reply = fill(runtime, prompts.YOLO_NO_TASK, yolo="on" if state.get("yolo") else "off")
        return Command(goto=END, update={**update, "messages": [*messages, say(reply)]})
    if state.get("mode") == "kb-mode":
        update["request"] = {"question": parsed.text}
        return Command(goto="answer_kb", update={**update, "messages": messages})
    if looks_like_injection(parsed.text):
        return Command(goto=END, update={**update, "messages": [*messages, say(fill(runtime, prompts.INJECTION))]})
    command, candidates = clear_match(pack, parsed.text)
    if command:
        menu: list[MenuOption] = [
            {"label": f"Yes — run `{command.usage}`", "value": f"*{command.name}"},
            {"label": "No — show all commands", "value": "?no"},
        ]
        reply = fill(runtime, prompts.OFFER_ONE, command=command.name, description=command.description)
        reply += f"\n{prompts.OFFER_CONFIRM}\n{numbered(menu)}"
        return Command(goto=END, update={**update, "menu": menu, "messages": [*messages, say(reply)]})
    if candidates:
        menu = [{"label": f"`{c.usage}` — {c.description}", "value": f"*{c.name}"} for c in candidates]
        reply = fill(runtime, prompts.OFFER_MANY) + "\n" + numbered(menu)
        return Command(goto=END, update={**update, "menu": menu, "messages": [*messages, say(reply)]})
    update["request"] = {"question": parsed.text}
    return Command(goto="converse", update={**update, "messages": messages})


def _dispatch(state: State, runtime: Runtime[Context], name: str, args: list[str], update: dict,
              messages: list) -> Command[Destination]:
    pack = pack_of(runtime)
    update["request"] = {"command": name, "args": args}
    in_kb = state.get("mode") == "kb-mode"
    if name == "exit":
        return Command(goto="leave_kb_mode" if in_kb else "exit_role", update={**update, "messages": messages})
    if name == "activate":
        return Command(goto="activate_role", update={**update, "messages": messages})
    command = pack.command(name)
    if name not in _BUILTIN_NODES and name != "yolo" and command is None:
        close = suggest(pack, name)
        reply = fill(runtime, prompts.UNKNOWN_COMMAND, command=name)
        menu = [{"label": f"`{c.usage}` — {c.description}", "value": f"*{c.name}"} for c in close]
        if menu:
            reply += f" {prompts.DID_YOU_MEAN}\n{numbered(menu)}"
        else:
            reply += " `*help` lists them all."
            menu = state.get("menu") or []
        return Command(goto=END, update={**update, "menu": menu, "messages": [*messages, say(reply)]})
    if in_kb and name != "kb-mode":
        # Any other command leaves kb-mode first, with the reminder.
        messages = [*messages, say(fill(runtime, prompts.KB_LEAVE))]
        update["mode"] = "commands"
    if name in _BUILTIN_NODES:
        goto = _BUILTIN_NODES[name]
    elif command is not None and command.handler == "release_gate":
        goto = "release_gate"
    elif command is not None and command.task:
        goto = "start_task"
    else:
        goto = "converse"  # a command of another bundle with no task: explain and help in character
    return Command(goto=goto, update={**update, "messages": messages})


def show_help(state: State, runtime: Runtime[Context]) -> dict:
    """``*help``: the numbered command list from the agent definition."""
    pack = pack_of(runtime)
    return {"messages": [say(help_text(runtime, bool(state.get("yolo"))))], "menu": command_menu(pack)}


def toggle_yolo(state: State, runtime: Runtime[Context]) -> dict:
    """``*yolo``: toggle skipping confirmations."""
    yolo = not state.get("yolo", False)
    return {"yolo": yolo, "messages": [say(fill(runtime, prompts.YOLO_ON if yolo else prompts.YOLO_OFF))]}


def exit_role(state: State, runtime: Runtime[Context]) -> dict:
    """``*exit``: goodbye as the role, then out of it."""
    return {
        "messages": [say(fill(runtime, prompts.GOODBYE))],
        "persona_active": False,
        "mode": "inactive",
        "task": None,
        "menu": [],
    }


def activate_role(state: State, runtime: Runtime[Context]) -> dict:
    """``*activate``: come back into the role (after ``*exit``)."""
    pack = pack_of(runtime)
    opening = prompts.ACTIVATE_AGAIN if not state.get("persona_active", True) else prompts.GREETING
    return {
        "messages": [say(fill(runtime, opening)), say(help_text(runtime, bool(state.get("yolo"))))],
        "persona_active": True,
        "mode": "commands",
        "menu": command_menu(pack),
    }


def converse(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Free text in commands mode: an in-character answer, or a redirect.

    With a model configured the model answers (with tools); offline, or when the model fails (after a
    plain notice), the offline engine answers from retrieval.
    """
    model = chat_model()
    if model is None:
        return _converse_offline(state, runtime)
    pack = pack_of(runtime)
    request = state.get("request") or {}
    command = pack.command(request["command"]) if request.get("command") else None
    if command is not None:
        question = f"*{command.name}: {command.description}"
        lead = f"`*{command.name}` — {command.description}\n\n"
    else:
        question, lead = request.get("question") or "", ""
    reply = converse_reply(model, state, runtime, config, question, command=command.name if command else None)
    if reply.text is None:
        return with_failure_notice(_converse_offline(state, runtime), runtime, reply)
    text = f"{icon(runtime)} {lead}{answer_text(reply)}"
    related_command, candidates = clear_match(pack, question) if command is None else (None, [])
    related = [related_command] if related_command else candidates
    menu: list[MenuOption] = [{"label": f"`{c.usage}` — {c.description}", "value": f"*{c.name}"} for c in related]
    if menu:
        return {"messages": [say(f"{text}\n\nRelated commands:\n{numbered(menu)}")], "menu": menu}
    return {"messages": [say(text)]}


def _converse_offline(state: State, runtime: Runtime[Context]) -> dict:
    """Free text in commands mode, offline: a short grounded answer, or an in-character redirect."""
    pack = pack_of(runtime)
    request = state.get("request") or {}
    if request.get("command"):
        command = pack.command(request["command"])
        question = f"{command.name.replace('-', ' ')} {command.description.search_text}" if command else ""
        lead = f"{icon(runtime)} `*{request['command']}` — {command.description if command else ''}\n\n"
    else:
        question = request.get("question") or ""
        lead = ""
    answer = consult(runtime, question, k=4)
    if not answer.found and not lead:
        menu = command_menu(pack)
        reply = fill(runtime, prompts.OFF_ROLE) + "\n" + numbered(menu)
        return {"messages": [say(reply)], "menu": menu}
    text = lead + (answer.text if answer.found else "")
    if not lead:
        text = f"{icon(runtime)} {text}"
    command, candidates = clear_match(pack, question)
    related = [command] if command else candidates
    menu: list[MenuOption] = [{"label": f"`{c.usage}` — {c.description}", "value": f"*{c.name}"} for c in related]
    if menu:
        text += "\n\nRelated commands:\n" + numbered(menu)
        return {"messages": [say(text)], "menu": menu}
    return {"messages": [say(text)]}
