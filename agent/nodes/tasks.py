"""Running a task: gather inputs, render, retrieve guidance, compose, check, save.

Each question is one ``interrupt()`` in the small ``ask_input`` node, so a
resumed run re-enters exactly at the question that was waiting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agent import prompts
from agent.context import Context
from agent.llm import extract_value
from agent.llm import prompts as llm_prompts
from agent.nodes.common import (
    add_artifacts,
    ask_payload,
    consult,
    describe_input_error,
    fill,
    heard,
    icon,
    pack_of,
    read_answer,
    say,
    workspace_of,
)
from agent.screening import ACCEPT_DEFAULT, SECRET_VALUE_ERROR, refused_secret
from agent.state import State
from knowledge.loader import Pack, Task, Template
from tools.artifacts import diagram, generate, step_notes
from tools.checklist import Target, run_checklist
from tools.design import COMPUTE_QUESTIONS, COMPUTE_TASKS, EXTRA_QUESTIONS, SUPERSEDED_QUESTIONS, Design
from tools.secrets import REMOVED
from tools.templates import TemplateError, render
from tools.values import KIND_HINTS, check_value

HELD_A_SECRET = ("That answer held what looks like a secret, which I removed and kept nowhere; give the value without "
                 "it (credentials go in a secret scope, asked for separately)")


def template_questions(pack: Pack, names: list[str], taken: set[str]) -> list[dict[str, Any]]:
    """Questions for the placeholders of ``names``; a name two templates share is keyed per template."""
    counts: dict[str, int] = {}
    for name in names:
        for placeholder in pack.templates[name].placeholders:
            counts[placeholder.name] = counts.get(placeholder.name, 0) + 1
    questions = []
    for name in names:
        stem = name.split(".", 1)[0]
        for p in pack.templates[name].placeholders:
            key = p.name if counts[p.name] == 1 else f"{stem}:{p.name}"
            if key in taken:
                continue
            taken.add(key)
            ask = p.ask if (p.ask.en or p.ask.zh) != p.name.replace("_", " ") else None
            questions.append({
                "key": key,
                "ask": str(ask) if ask else f"{p.name.replace('_', ' ')} (for {name})",
                "kind": p.kind,
                "default": p.default if p.default is not None else p.example,
                "choices": [],
            })
    return questions


def task_questions(pack: Pack, task: Task) -> list[dict[str, Any]]:
    """The task's own questions, then its templates' placeholders."""
    taken: set[str] = set()
    questions = []
    for q in task.questions:
        taken.add(q.key)
        questions.append({"key": q.key, "ask": str(q.ask), "kind": q.kind, "default": q.default,
                          "choices": list(q.choices)})
    names = [t for t in task.templates if t in pack.templates]
    return questions + template_questions(pack, names, taken)


def design_questions(task_id: str, questions: list[dict[str, Any]],
                     design: Design) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The questions still to ask and the answers the thread's design already gives.

    Tasks that generate stream code also ask the compute (serverless or classic, and the runtime) once per
    thread. A fact the design holds for every task (compute, event-time and id columns) is not asked again;
    tables and paths of earlier commands become the offered defaults.
    """
    questions = [dict(q) for q in questions if (task_id, q["key"]) not in SUPERSEDED_QUESTIONS]
    keys = {q["key"] for q in questions}
    questions += [dict(q) for q in EXTRA_QUESTIONS.get(task_id, []) if q["key"] not in keys]
    if task_id in COMPUTE_TASKS:
        questions += [dict(q) for q in COMPUTE_QUESTIONS if q["key"] not in keys]
    examples = {q["key"]: q.get("default") for q in questions}  # the pack's own, before the design's
    to_ask, known = [], {}
    for question in questions:
        answer = design.known_answer(question["key"])
        if answer:
            known[question["key"]] = answer
            continue
        question["default"] = design.default_for(task_id, question["key"], question.get("default"))
        to_ask.append(question)
    for n, question in enumerate(to_ask):
        design.follow(question["key"], examples[question["key"]], question["default"], to_ask[n + 1:])
    return to_ask, known


def start_task(state: State, runtime: Runtime[Context]) -> Command[Literal["ask_input"]]:
    """Begin a domain task: say what it does, then gather its inputs."""
    pack = pack_of(runtime)
    name = (state.get("request") or {}).get("command", "")
    command = pack.command(name)
    task = pack.task_for(command)
    design = Design.from_dict(state.get("design"))
    questions, known = design_questions(task.id, task_questions(pack, task), design)
    run = {
        "kind": "task", "command": name, "task_id": task.id, "title": task.title,
        "templates": [t for t in task.templates if t in pack.templates],
        "questions": questions, "index": 0, "answers": dict(known), "known": dict(known), "yolo": False,
    }
    intro = fill(runtime, prompts.TASK_INTRO, task_title=task.title,
                 title_zh=f"（{task.title_zh}）" if task.title_zh else "", purpose=task.purpose, count=len(questions))
    steps = "\n".join(f"{n}. {step}" for n, step in enumerate(task.steps, start=1))
    text = f"{intro}\n\nSteps:\n{steps}"
    if known:
        text += "\n\nKnown from this thread's design (not asked again): " + ", ".join(
            f"{key} = `{value}`" for key, value in known.items())
    return Command(goto="ask_input", update={"task": run, "mode": "task", "messages": [say(text)]})


def _question_text(question: dict[str, Any], progress: str) -> str:
    default = f" [{question['default']}]" if question.get("default") else ""
    choices = f" ({' / '.join(question['choices'])})" if question.get("choices") else ""
    kind = question.get("kind") or "text"
    # Free text has no format to explain: a hint would only be the placeholder "some text".
    hint = "" if kind == "text" else KIND_HINTS.get(kind, "")
    if kind == "secret_ref":
        hint += " — I never store secret values"
    text = prompts.QUESTION.format(progress=progress, ask=question["ask"], default=default, choices=choices, hint=hint)
    return text if hint else text.removesuffix("\n__")


def _after_inputs(run: dict[str, Any]) -> str:
    return "render_templates"


def ask_input(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "ask_input", "render_templates", "route", "exit_role"]]:
    """Ask the next question (an interrupt) and validate the answer by its kind."""
    run = dict(state.get("task") or {})
    questions = run.get("questions") or []
    index = int(run.get("index") or 0)
    answers = dict(run.get("answers") or {})
    if run.get("yolo"):
        for question in questions[index:]:
            if question.get("default") is not None:
                answers.setdefault(question["key"], question["default"])
        index = len(questions)
    if index >= len(questions):
        run.update(index=index, answers=answers)
        return Command(goto=_after_inputs(run), update={"task": run})

    question = questions[index]
    progress = f"{index + 1}/{len(questions)}"
    value = interrupt(ask_payload(_question_text(question, progress), question.get("choices") or None,
                                  key=question["key"], kind=question.get("kind"), default=question.get("default")))
    text, error = read_answer(value)
    if not error and refused_secret(question.get("kind"), text):
        # Most likely the secret itself: not heard, not kept, not sent to a model; the question is asked again.
        text, error = "", describe_input_error(SECRET_VALUE_ERROR)
    elif not error and REMOVED in text:
        # The answer held a secret, already taken out: what is left is no value to write into configs and code.
        error = HELD_A_SECRET
    stripped = text.strip()
    messages: list = [heard(stripped)] if stripped and not error else []
    if error:
        messages.append(say(fill(runtime, prompts.ANSWER_INVALID, error=error)))
        return Command(goto="ask_input", update={"messages": messages})
    if stripped.lower().startswith("#yolo"):
        run.update(yolo=True, answers=answers, index=index)
        return Command(goto="ask_input", update={"task": run, "messages": messages})
    if stripped.startswith("*") and len(stripped) > 1:
        left = say(fill(runtime, prompts.TASK_LEFT, task_title=run.get("title", "")))
        update = {"task": None, "mode": "commands", "messages": [left]}
        if stripped.split()[0].lower() == "*exit":
            return Command(goto="exit_role", update=update)
        return Command(goto="route", update={**update, "input": stripped})
    if stripped.lower() in ACCEPT_DEFAULT and question.get("default") is not None:
        stripped = str(question["default"])
    kind, choices = question.get("kind") or "text", tuple(question.get("choices") or ())
    checked = check_value(kind, stripped, choices)
    if not checked.ok:
        # With a model, read the value out of prose ("about ten minutes"); it is validated like typed text.
        extracted = extract_value(str(question["ask"]), kind, stripped, choices)
        if extracted is not None and (rechecked := check_value(kind, extracted, choices)).ok:
            checked = rechecked
            messages.append(say(fill(runtime, llm_prompts.EXTRACTED, value=checked.value)))
    if not checked.ok:
        messages.append(say(fill(runtime, prompts.ANSWER_INVALID, error=checked.error[:1].upper() + checked.error[1:])))
        return Command(goto="ask_input", update={"messages": messages})
    answers[question["key"]] = checked.value
    questions = [dict(q) for q in questions]
    Design.from_dict(state.get("design")).follow(question["key"], question.get("default"), checked.value,
                                                 questions[index + 1:])
    run.update(answers=answers, index=index + 1, questions=questions)
    return Command(goto="ask_input", update={"task": run, "messages": messages})


def values_for(template: Template, answers: dict[str, str]) -> dict[str, str]:
    """The answers that fill ``template`` (per-template keys win over shared ones)."""
    stem = template.name.split(".", 1)[0]
    values = {}
    for placeholder in template.placeholders:
        for key in (f"{stem}:{placeholder.name}", placeholder.name):
            if key in answers:
                values[placeholder.name] = answers[key]
                break
    return values


def render_templates(state: State, runtime: Runtime[Context]) -> Command[Literal[
        "retrieve_guidance", "draft_sections", "save_document"]]:
    """Render the task's templates with the answers; secrets become secret references."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    rendered, notices, errors = {}, [], []
    for name in run.get("templates") or []:
        template = pack.templates[name]
        try:
            result = render(template, values_for(template, run.get("answers") or {}))
        except TemplateError as exc:
            errors.append(str(exc))
            continue
        rendered[name] = result.text
        notices += result.notices
        if result.missing:
            notices.append(f"{name}: still to fill before use: {', '.join(result.missing)}")
    run.update(rendered=rendered, notices=notices, errors=errors)
    messages = [say(f"{icon(runtime)} {n}") for n in notices if "secret" in n]
    if run["kind"] == "create-doc":
        fmt = pack.templates[run["templates"][0]].format
        return Command(goto="draft_sections" if fmt == "markdown" else "save_document",
                       update={"task": run, "messages": messages})
    return Command(goto="retrieve_guidance", update={"task": run, "messages": messages})


def _hit_record(hit: Any) -> dict[str, Any]:
    return {"id": hit.id, "title": hit.title, "path": hit.path,
            "sources": list(getattr(hit, "sources", None) or [])}


def guidance_for(runtime: Runtime[Context], query: str, k: int = 3) -> dict[str, Any]:
    """A short cited passage of guidance from the knowledge base for ``query``."""
    answer = consult(runtime, query, k=k)
    return {"text": answer.body if answer.found else "", "citations": [_hit_record(h) for h in answer.citations]}


def retrieve_guidance(state: State, runtime: Runtime[Context]) -> dict:
    """Retrieve cited guidance from the knowledge base for each step of the task."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    task = pack.tasks[run["task_id"]]
    run["guidance"] = [guidance_for(runtime, f"{task.title}: {step.en or step.zh}") for step in task.steps]
    return {"task": run}


def _answers_table(run: dict[str, Any]) -> str:
    lines = ["| Question | Answer |", "|---|---|"]
    for question in run.get("questions") or []:
        answer = (run.get("answers") or {}).get(question["key"], "(not given)")
        if question.get("kind") == "secret_ref" and answer != "(not given)":
            answer = f"secret `{answer}`"
        lines.append(f"| {question['ask'].replace('|', '/')} | {str(answer).replace('|', '/')} |")
    for key, value in (run.get("known") or {}).items():
        lines.append(f"| {key} (from this thread's design) | {str(value).replace('|', '/')} |")
    return "\n".join(lines)


def output_path_for(doc_location: str, template_name: str) -> str:
    """Where a rendered template is written: beside the document, without ``-tmpl``."""
    folder = PurePosixPath(doc_location).parent
    path = folder / template_name.replace("-tmpl", "")
    if str(path) == doc_location:  # dedup-idempotency-tmpl.md would overwrite the task's own document
        path = path.with_name(f"{path.stem}-template{path.suffix}")
    return str(path)


def _citations(block: dict[str, Any]) -> str:
    return "\n".join(f"  - [{n}] {c['title']} (`{c['path']}`)" for n, c in enumerate(block["citations"], start=1))


def compose_document(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Compose the task's document: purpose, inputs, each step with guidance, rendered templates."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    task = pack.tasks[run["task_id"]]
    title = f"{task.title}（{task.title_zh}）" if task.title_zh else task.title
    parts = [
        f"# {title}", "",
        f"> {pack.agent.icon} {pack.agent.name} · `*{run['command']}` · {dt.date.today().isoformat()}", "",
        "## Purpose · 目的", "", str(task.purpose.zh or task.purpose.en), "",
    ]
    if task.purpose.zh and task.purpose.en:
        parts += [task.purpose.en, ""]
    parts += ["## Inputs · 输入", "", _answers_table(run), ""]
    parts += ["## Steps · 步骤", ""]
    design = Design.from_dict(state.get("design"))
    design.notices = []
    decisions = step_notes(run["task_id"], run.get("answers") or {}, design)
    for n, step in enumerate(task.steps, start=1):
        parts += [f"### {n}. {step.zh or step.en}", ""]
        if step.zh and step.en:
            parts += [step.en, ""]
        if n - 1 < len(decisions):
            parts += [f"**For your inputs · 本次决定:** {decisions[n - 1]}", ""]
        block = (run.get("guidance") or [])[n - 1] if n - 1 < len(run.get("guidance") or []) else None
        if block and block["text"]:
            parts += ["Guidance from the knowledge base:", "", block["text"], "", "Sources:", _citations(block), ""]
    flow = diagram(run["task_id"], run.get("answers") or {}, design)
    if flow:
        parts += ["## Data flow · 数据流", "", "```mermaid", flow.rstrip("\n"), "```", ""]
    artifacts = generate(run["task_id"], run.get("answers") or {}, run.get("rendered") or {}, task.doc_output_location,
                         workspace_of(runtime, config), design)
    run["generated"] = [asdict(a) for a in artifacts]
    run["design"] = design.to_dict()
    # A config the generator rendered from the same values as the code replaces the pack's sample of it.
    generated_paths = {a.path for a in artifacts}
    rendered = {name: text for name, text in (run.get("rendered") or {}).items()
                if output_path_for(task.doc_output_location, name) not in generated_paths}
    if len(rendered) != len(run.get("rendered") or {}):
        run["rendered"] = rendered
    if design.notices:
        run["notices"] = [*run.get("notices", []), *design.notices]
    if artifacts:
        parts += ["## Artefacts · 产物", ""]
        for artifact in artifacts:
            if isinstance(artifact.content, bytes):  # an image: link it
                name = PurePosixPath(artifact.path).name
                parts += [f"### `{artifact.path}`", "", artifact.description, "", f"![{name}](./{name})", ""]
                continue
            parts += [f"### `{artifact.path}`", "", artifact.description, "", f"```{artifact.language}",
                      artifact.content.rstrip("\n"), "```", ""]
    if run.get("rendered"):
        parts += ["## Rendered templates · 模板产物", ""]
        for name, text in run["rendered"].items():
            fence = {"json": "json", "yaml": "yaml"}.get(pack.templates[name].format, "markdown")
            parts += [f"### `{output_path_for(task.doc_output_location, name)}`", "", f"```{fence}", text.rstrip("\n"),
                      "```", ""]
    if run.get("notices") or run.get("errors"):
        parts += ["## Notices", ""] + [f"- {n}" for n in [*run.get("notices", []), *run.get("errors", [])]] + [""]
    run["doc"] = "\n".join(parts)
    return {"task": run}


def review_targets(run: dict[str, Any], doc_location: str) -> list[Target]:
    """What the task's checklists judge: the rendered artefacts and the user's answers (not retrieved guidance)."""
    targets = [Target(output_path_for(doc_location, name), text) for name, text in (run.get("rendered") or {}).items()]
    targets += [Target(a["path"], a["content"]) for a in run.get("generated") or [] if isinstance(a["content"], str)]
    answers = "\n".join(f"{k}: {v}" for k, v in (run.get("answers") or {}).items())
    if answers:
        targets.append(Target("inputs", answers))
    return targets


def run_task_checklists(state: State, runtime: Runtime[Context]) -> dict:
    """Run the task's checklists on what it produced and add the results to the document."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    task = pack.tasks[run["task_id"]]
    targets = review_targets(run, task.doc_output_location)
    summaries, parts = [], ["## Checklist results · 检查结果", ""]
    for checklist_id in task.checklists:
        checklist = pack.checklists.get(checklist_id)
        if checklist is None or not targets:
            continue
        report = run_checklist(checklist, targets)
        summary = report.summary()
        summary["source"] = task.doc_output_location
        summaries.append(summary)
        counts = " · ".join(f"{s} {n}" for s, n in report.counts().items() if n)
        rate = report.pass_rate()
        parts += [f"### {report.title}", "", f"{counts}" + (f" — pass rate {rate:.0%}" if rate is not None else ""), "",
                  f"_{report.scope()}_", "", "| Status | Item | Evidence / reason |", "|---|---|---|"]
        for item in report.items:
            evidence = "; ".join(item.evidence[:2]) or item.reason
            parts.append(f"| {item.status} | {item.text} | {evidence.replace('|', '/')[:240]} |")
        parts.append("")
    if summaries:
        run["doc"] = run.get("doc", "") + "\n" + "\n".join(parts)
    run["checklists"] = summaries
    return {"task": run}


def versioned_path(workspace: Any, path: str, content: str | bytes) -> str:
    """``path`` when it is free or holds the same content; else the first free ``name.vN.ext`` beside it."""
    target = workspace.resolve(path)
    if not target.is_file() or target.read_bytes() == (content.encode("utf-8") if isinstance(content, str) else content):
        return path
    pure = PurePosixPath(path)
    stem, suffix = pure.name.split(".", 1)[0], "".join(pure.suffixes)
    for n in range(2, 1000):
        candidate = str(pure.with_name(f"{stem}.v{n}{suffix}"))
        found = workspace.resolve(candidate)
        if not found.is_file() or found.read_bytes() == (
                content.encode("utf-8") if isinstance(content, str) else content):
            return candidate
    raise ValueError(f"too many versions of {path}")


def bundle_moves(workspace: Any, artifacts: list[dict[str, Any]]) -> dict[str, str]:
    """New folders for bundles that would collide with an earlier run's bundle: ``{folder: folder.vN}``.

    Versioning file by file would leave ``databricks.v2.yml`` (which the CLI never reads) beside the first
    bundle, still naming the first run's ``src/ingest_stream.py``; a bundle moves as a whole instead.
    """
    moves = {}
    for folder in sorted({str(PurePosixPath(a["path"]).parent) for a in artifacts
                          if PurePosixPath(a["path"]).name == "databricks.yml"}):
        members = [a for a in artifacts if a["path"].startswith(folder + "/")]
        if not _fits(workspace, members, folder, folder):
            moves[folder] = next(f"{folder}.v{n}" for n in range(2, 1000)
                                 if _fits(workspace, members, folder, f"{folder}.v{n}"))
    return moves


def _fits(workspace: Any, members: list[dict[str, Any]], folder: str, home: str) -> bool:
    """Whether the bundle's files (now under ``folder``) can be written under ``home`` without a ``.vN`` rename."""
    return all(versioned_path(workspace, home + a["path"][len(folder):], a["content"]) == home + a["path"][len(folder):]
               for a in members)


def change_summary(workspace: Any, path: str, content: str | bytes) -> str:
    """``+a −b lines`` between the file at ``path`` and ``content`` (or "binary")."""
    if isinstance(content, bytes):
        return "binary content differs"
    import difflib

    try:
        old = workspace.read(path).splitlines()
    except Exception:  # unreadable as text: say so rather than guess
        return "content differs"
    diff = list(difflib.unified_diff(old, content.splitlines(), lineterm="", n=0))
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    sample = next((line for line in diff if line.startswith("-") and not line.startswith("---")), "")
    return f"+{added} −{removed} lines" + (f"; first removed line: {sample[1:80].strip()!r}" if sample else "")


def save_document(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Write the document and its artefacts into the thread's workspace."""
    pack = pack_of(runtime)
    run = dict(state.get("task") or {})
    workspace = workspace_of(runtime, config)
    written, kept = [], []

    def write(path: str, content: str | bytes) -> None:
        """Write ``path``, or a new version beside it when an earlier file there has other content."""
        final = versioned_path(workspace, path, content)
        workspace.write(final, content)
        written.append(final)
        if final != path:
            kept.append(f"`{path}` already held other content ({change_summary(workspace, path, content)}); it is "
                        f"kept and this run wrote `{final}`.")
    if run["kind"] == "create-doc":
        name = run["templates"][0]
        location = f"docs/support/{name.replace('-tmpl', '')}"
        content = run.get("doc") or run["rendered"].get(name, "")
        write(location, content if content.endswith("\n") else content + "\n")
    else:
        location = pack.tasks[run["task_id"]].doc_output_location
        write(location, run.get("doc", ""))
        for name, text in (run.get("rendered") or {}).items():
            write(output_path_for(location, name), text if text.endswith("\n") else text + "\n")
        generated = run.get("generated") or []
        moves = bundle_moves(workspace, generated)
        for folder, home in moves.items():
            kept.append(f"`{folder}/` already holds another bundle; it is kept and this run wrote its whole bundle "
                        f"to `{home}/` (deploy from there).")
        for artifact in generated:
            path = artifact["path"]
            folder = next((f for f in moves if path.startswith(f + "/")), None)
            write(moves[folder] + path[len(folder):] if folder else path, artifact["content"])
    results = list(state.get("checklist_results") or []) + list(run.get("checklists") or [])
    extra = "" if len(written) == 1 else " with " + ", ".join(f"`{p}`" for p in written[1:])
    lines = [fill(runtime, prompts.TASK_DONE, task_title=run.get("title", ""), path=written[0], extra=extra)]
    for summary in run.get("checklists") or []:
        counts = " · ".join(f"{s} {n}" for s, n in summary["counts"].items() if n)
        lines.append(f"- {summary['title']}: {counts}")
    lines += [f"- {note}" for note in kept]
    lines.append("`*doc-out` prints the document; `*help` shows the commands.")
    update_design = {"design": run["design"]} if run.get("design") is not None else {}
    return {
        **update_design,
        "messages": [say("\n".join(lines))],
        "artifacts": add_artifacts(state, *written),
        "current_doc": written[0],
        "checklist_results": results,
        "task": None,
        "mode": "commands",
    }
