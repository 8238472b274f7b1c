"""The tools as LangChain tools, for a model to call through ``bind_tools``.

Each wraps the same function the offline engine calls directly, bound to one
thread's pack and workspace, and answers a refusal as text (never raises) so a
model can read what went wrong and recover.
"""

from __future__ import annotations

import json

from langchain_core.tools import BaseTool, StructuredTool

from knowledge.loader import Pack
from tools.budget import time_budget
from tools.checklist import Target, run_checklist
from tools.docs import join, shard
from tools.templates import TemplateError, render
from tools.workspace import Workspace, WorkspaceError

CHECKLIST_TOOL_SECONDS = 20.0
"""The time budget of one ``run_checklist`` call by a model (items it leaves no time for are "not judged")."""


def make_tools(pack: Pack, workspace: Workspace, search=None) -> list[BaseTool]:
    """LangChain tools bound to a pack, a thread's workspace and (optionally) a search function.

    Args:
        pack: the role's pack.
        workspace: the thread's workspace; every write stays inside it.
        search: ``search(query, k) -> list[Hit]`` over the knowledge base.
    """

    def render_template(name: str, values: dict[str, str] | None = None) -> str:
        """Render a pack template with placeholder values; secrets become secret references."""
        template = pack.templates.get(name)
        if template is None:
            return f"error: no template {name!r}; templates: {', '.join(pack.templates)}"
        try:
            result = render(template, dict(values or {}))
        except TemplateError as exc:
            return f"error: {exc}"
        return json.dumps({"text": result.text, "missing": result.missing, "unknown": result.unknown,
                           "notices": result.notices}, ensure_ascii=False)

    def run_checklist_tool(checklist: str, target: str) -> str:
        """Judge every item of a checklist against a workspace file path or pasted text; returns the report."""
        found = pack.checklists.get(checklist)
        if found is None:
            return f"error: no checklist {checklist!r}; checklists: {', '.join(pack.checklists)}"
        try:
            path = workspace.resolve(target)
            # workspace.read: regular files only, bounded (a model names the target, not the user).
            targets = [Target(target, workspace.read(target), path)] if path.is_file() else []
        except (WorkspaceError, OSError):
            targets = []
        targets = targets or [Target("pasted text", target)]
        with time_budget(CHECKLIST_TOOL_SECONDS):  # a model may call it several times in one turn
            return run_checklist(found, targets).to_markdown()

    def write_doc(path: str, content: str) -> str:
        """Write a document into the thread's workspace (paths outside it are refused)."""
        try:
            return f"written: {workspace.relative(workspace.write(path, content))}"
        except WorkspaceError as exc:
            return f"error: {exc}"

    def shard_doc(document: str, destination: str) -> str:
        """Split a Markdown document at level-2 headings into one file per section plus index.md."""
        try:
            text = workspace.read(document)
            index, shards = shard(text)
            workspace.write(f"{destination}/index.md", index)
            for piece in shards:
                workspace.write(f"{destination}/{piece.filename}", piece.text)
            exact = join(index, {p.filename: p.text for p in shards}) == text
        except (WorkspaceError, ValueError) as exc:
            return f"error: {exc}"
        return f"sharded into {len(shards)} files under {destination} (re-joins exactly: {exact})"

    def doc_out(path: str) -> str:
        """Return the full text of a document of the thread's workspace."""
        try:
            return workspace.read(path)
        except WorkspaceError as exc:
            return f"error: {exc}"

    def list_commands() -> str:
        """The role's commands, numbered, with their descriptions."""
        return "\n".join(f"{n}. {c.usage} — {c.description}" for n, c in enumerate(pack.agent.commands, 1))

    def describe_command(name: str) -> str:
        """What one command does: its task's purpose, steps, templates, checklists and output location."""
        command = pack.command(name.lstrip("*"))
        if command is None:
            return f"error: no command {name!r}"
        task = pack.task_for(command)
        if task is None:
            return f"{command.usage}: {command.description}"
        steps = "\n".join(f"- {s}" for s in task.steps)
        return (f"{command.usage}: {command.description}\nPurpose: {task.purpose}\nSteps:\n{steps}\n"
                f"Templates: {', '.join(task.templates) or '-'}\nChecklists: {', '.join(task.checklists) or '-'}\n"
                f"Document: {task.doc_output_location}")

    tools = [
        StructuredTool.from_function(render_template),
        StructuredTool.from_function(run_checklist_tool, name="run_checklist"),
        StructuredTool.from_function(write_doc),
        StructuredTool.from_function(shard_doc),
        StructuredTool.from_function(doc_out),
        StructuredTool.from_function(list_commands),
        StructuredTool.from_function(describe_command),
    ]
    if search is not None:

        def search_knowledge(query: str, k: int = 5) -> str:
            """Search the streaming knowledge base; returns numbered passages with their ids and paths."""
            try:
                hits = search(query, k=max(1, min(int(k), 10)))
            except ValueError as exc:
                return f"error: {exc}"
            if not hits:
                return "no passages found"
            return "\n\n".join(f"[{n}] {h.title} ({h.id}, {h.path})\n{h.text[:1500]}" for n, h in enumerate(hits, 1))

        tools.append(StructuredTool.from_function(search_knowledge))
    return tools
