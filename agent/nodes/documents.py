"""``*shard-doc`` and ``*doc-out``: split a document, print and write the current one."""

from __future__ import annotations

from pathlib import PurePosixPath

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agent import prompts
from agent.context import Context
from agent.nodes.common import add_artifacts, fill, icon, numbered, say, workspace_of
from agent.state import State
from tools.docs import join, shard
from tools.workspace import WorkspaceError


def _doc_menu(state: State, command: str) -> list:
    return [{"label": f"`{p}`", "value": f"*{command} {p}"} for p in (state.get("artifacts") or []) if p.endswith(".md")]


def shard_document(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Split a Markdown document at level-2 headings into one file per section plus ``index.md``."""
    args = list((state.get("request") or {}).get("args") or [])
    document = args[0] if args else state.get("current_doc")
    if not document:
        menu = _doc_menu(state, "shard-doc")
        if not menu:
            return {"messages": [say(fill(runtime, prompts.NO_DOCUMENT))]}
        return {"menu": menu, "messages": [say(f"{icon(runtime)} Which document?\n{numbered(menu)}")]}
    workspace = workspace_of(runtime, config)
    source = PurePosixPath(document)
    destination = args[1] if len(args) > 1 else str(source.parent / source.stem)
    try:
        text = workspace.read(document)
        index, shards = shard(text)
        written = [str(PurePosixPath(destination) / "index.md")]
        workspace.write(written[0], index)
        for piece in shards:
            path = str(PurePosixPath(destination) / piece.filename)
            workspace.write(path, piece.text)
            written.append(path)
        # Prove it is lossless before telling the user so.
        rejoined = join(index, {p.filename: p.text for p in shards})
    except (WorkspaceError, ValueError) as exc:
        return {"messages": [say(icon(runtime) + " I could not shard that document: " + str(exc))]}
    check = "re-joined exactly" if rejoined == text else "WARNING: re-joining differs from the original"
    listing = "\n".join(f"- `{p}`" for p in written)
    reply = f"{icon(runtime)} Sharded `{document}` into {len(shards)} section(s) ({check}):\n{listing}"
    return {"messages": [say(reply)], "artifacts": add_artifacts(state, *written)}


def output_document(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Print the whole current document and write it to its destination (or the one given)."""
    args = list((state.get("request") or {}).get("args") or [])
    current = state.get("current_doc")
    if not current:
        return {"messages": [say(fill(runtime, prompts.NO_DOCUMENT))]}
    workspace = workspace_of(runtime, config)
    destination = args[0] if args else current
    try:
        text = workspace.read(current)
        workspace.write(destination, text)
    except WorkspaceError as exc:
        return {"messages": [say(icon(runtime) + " I could not write the document: " + str(exc))]}
    reply = f"{icon(runtime)} `{destination}`:\n\n{text}"
    return {"messages": [say(reply)], "artifacts": add_artifacts(state, destination), "current_doc": destination}
