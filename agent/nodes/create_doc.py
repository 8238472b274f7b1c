"""``*create-doc``: choose a template, fill it, refine Markdown section by section.

After each section the user gets the elicitation menu: 1 proceed, 2-9 eight
methods from the pack's fixed catalogue (four core, four suited to the
section), or free text as feedback.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agent import prompts
from agent.context import Context
from agent.nodes.common import ask_payload, fill, heard, icon, numbered, pack_of, read_answer, say
from agent.nodes.tasks import guidance_for, template_questions
from agent.routing import best_named
from agent.state import MenuOption, State
from knowledge.loader import ElicitationMethod, Pack
from tools.docs import split_sections


def template_menu(pack: Pack) -> list[MenuOption]:
    """Every template as a numbered list."""
    return [{"label": f"`{t.name}` — {t.title}" + (f"（{t.title_zh}）" if t.title_zh else ""),
             "value": f"*create-doc {t.name}"} for t in pack.templates.values()]


def choose_template(state: State, runtime: Runtime[Context]) -> Command[Literal["ask_input", "__end__"]]:
    """Pick the template (numbered list when none or several match), then gather its placeholders."""
    pack = pack_of(runtime)
    query = " ".join((state.get("request") or {}).get("args") or [])
    name, candidates = best_named(list(pack.templates), query)
    if name is None:
        menu = template_menu(pack) if not candidates else [
            {"label": f"`{n}` — {pack.templates[n].title}", "value": f"*create-doc {n}"} for n in candidates]
        lead = "Which template?" if not query else f"No single template matches {query!r}. Which one?"
        return Command(goto="__end__", update={"menu": menu, "messages": [say(f"{icon(runtime)} {lead}\n{numbered(menu)}")]})
    template = pack.templates[name]
    questions = template_questions(pack, [name], set())
    run = {"kind": "create-doc", "command": "create-doc", "title": template.title, "templates": [name],
           "questions": questions, "index": 0, "answers": {}, "yolo": False}
    intro = (f"{icon(runtime)} Creating **{template.title}** from `{name}`. "
             f"{len(questions)} placeholder(s) to fill; reply `default` to take the value in brackets, `#yolo` for all defaults.")
    return Command(goto="ask_input", update={"task": run, "mode": "task", "messages": [say(intro)]})


def methods_for(pack: Pack, section_text: str) -> list[ElicitationMethod]:
    """Eight methods: the four core ones and the four that best suit the section."""
    by_id = {m.id: m for m in pack.methods}
    core = [by_id[i] for i in pack.core_methods if i in by_id]
    text = section_text.lower()
    others = [m for m in pack.methods if m.id not in pack.core_methods]
    others.sort(key=lambda m: -sum(1 for word in m.suits if word.lower() in text))
    return (core + others)[:8]


def draft_sections(state: State, runtime: Runtime[Context]) -> dict:
    """Split the rendered Markdown into sections and draft empty ones from the knowledge base."""
    run = dict(state.get("task") or {})
    text = run["rendered"][run["templates"][0]]
    preamble, sections = split_sections(text)
    if not sections:
        sections = [("", preamble)]
        preamble = ""
    drafted = []
    for heading, body in sections:
        content = body.rstrip("\n")
        lines = [ln for ln in content.splitlines()[1 if heading else 0:] if ln.strip()]
        if not lines and heading:
            block = guidance_for(runtime, f"{run['title']} {heading}", k=2)
            if block["text"]:
                refs = "; ".join(f"{c['title']} (`{c['path']}`)" for c in block["citations"])
                content += f"\n\n{block['text']}\n\n_Sources: {refs}_"
        drafted.append({"heading": heading or run["title"], "text": content + "\n"})
    run.update(preamble=preamble, sections=drafted, section_index=0)
    return {"task": run}


def _assemble(run: dict[str, Any]) -> str:
    parts = [run.get("preamble") or ""] if run.get("preamble") else []
    parts += [s["text"] for s in run["sections"]]
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def _command_exit(runtime: Runtime[Context], run: dict, text: str) -> Command:
    left = say(fill(runtime, prompts.TASK_LEFT, task_title=run.get("title", "")))
    update = {"task": None, "mode": "commands", "messages": [left]}
    if text.split()[0].lower() == "*exit":
        return Command(goto="exit_role", update=update)
    return Command(goto="route", update={**update, "input": text})


def elicit_section(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "elicit_section", "apply_method", "save_document", "route", "exit_role"]]:
    """Show a drafted section with the 1-9 menu (an interrupt) and act on the reply."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    index = int(run.get("section_index") or 0)
    sections = [dict(s) for s in run["sections"]]
    if state.get("yolo") or run.get("yolo") or index >= len(sections):
        run["doc"] = _assemble(run)
        return Command(goto="save_document", update={"task": run})
    section = sections[index]
    methods = methods_for(pack, section["text"])
    options = ["Proceed to the next section"] + [str(m.name) for m in methods]
    header = (f"[{index + 1}/{len(sections)}]\n\n{section['text'].rstrip()}\n\n"
              + prompts.ELICIT_MENU_TITLE.format(section=section["heading"]))
    value = interrupt(ask_payload(header, options, footer=prompts.ELICIT_PROMPT))
    text, error = read_answer(value)
    text = text.strip()
    if error or not text:
        message = fill(runtime, prompts.ANSWER_INVALID, error=error or "The answer is empty")
        return Command(goto="elicit_section", update={"messages": [say(message)]})
    if text.startswith("*") and len(text) > 1:
        return _command_exit(runtime, run, text)
    if text.lower().startswith("#yolo"):
        run["yolo"] = True
        return Command(goto="elicit_section", update={"task": run, "messages": [heard(text)]})
    if text.isdigit() and 1 <= int(text) <= len(options):
        choice = int(text)
        if choice == 1:
            run["section_index"] = index + 1
            return Command(goto="elicit_section", update={"task": run, "messages": [heard(text)]})
        method = methods[choice - 2]
        block = guidance_for(runtime, f"{section['heading']} {run['title']} {' '.join(method.suits)} {method.name.en}")
        proposal = [f"- {line.strip('- ').strip()}" for line in block["text"].splitlines() if line.strip()]
        run["proposal"] = {"method": str(method.name), "instruction": method.instruction, "lines": proposal,
                           "citations": block["citations"]}
        return Command(goto="apply_method", update={"task": run, "messages": [heard(text)]})
    # Free text is feedback on this section: keep it in the section, then show the menu again.
    section["text"] = section["text"].rstrip("\n") + f"\n\n- {text}\n"
    sections[index] = section
    run["sections"] = sections
    note = say(f"{icon(runtime)} Added your feedback to **{section['heading']}**.")
    return Command(goto="elicit_section", update={"task": run, "messages": [heard(text), note]})


def apply_method(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "elicit_section", "apply_method", "route", "exit_role"]]:
    """Show what a refinement method proposes; 1 apply, 2 back to the menu, 3 discuss."""
    run = dict(state.get("task") or {})
    proposal = run.get("proposal") or {}
    index = int(run.get("section_index") or 0)
    body = "\n".join(proposal.get("lines") or []) or "(the knowledge base has nothing to add here)"
    refs = "\n".join(f"[{n}] {c['title']} (`{c['path']}`)" for n, c in enumerate(proposal.get("citations") or [], 1))
    question = (f"**{proposal.get('method')}** — {proposal.get('instruction')}\n\nProposed changes:\n{body}"
                + (f"\n\nSources:\n{refs}" if refs else ""))
    value = interrupt(ask_payload(question, ["Apply the changes", "Back to the menu", "Discuss"]))
    text, _ = read_answer(value)
    text = text.strip()
    if text.startswith("*") and len(text) > 1:
        return _command_exit(runtime, run, text)
    if text == "1":
        sections = [dict(s) for s in run["sections"]]
        if proposal.get("lines"):
            sections[index]["text"] = sections[index]["text"].rstrip("\n") + "\n\n" + "\n".join(proposal["lines"]) + "\n"
        run.update(sections=sections, proposal=None)
        return Command(goto="elicit_section", update={"task": run, "messages": [heard(text)]})
    if text == "2" or not text:
        run["proposal"] = None
        return Command(goto="elicit_section", update={"task": run, "messages": [heard(text)] if text else []})
    if text == "3":
        detail = f"{icon(runtime)} Why: {proposal.get('instruction')} The proposal draws on:\n{refs or '(no sources)'}"
        return Command(goto="apply_method", update={"messages": [heard(text), say(detail)]})
    sections = [dict(s) for s in run["sections"]]
    sections[index]["text"] = sections[index]["text"].rstrip("\n") + f"\n\n- {text}\n"
    run.update(sections=sections, proposal=None)
    return Command(goto="elicit_section", update={"task": run, "messages": [heard(text)]})
