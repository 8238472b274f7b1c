"""``streaming-engineer mcp``: the role's tools, pack and task commands as a Model Context Protocol server.

Tools (:mod:`agent.mcp_tools`), resources (the pack's articles, knowledge
files, templates and checklists, and ingested documents) and prompts (one per
task command, so a client can start ``*kafka-connector`` as a prompt), served
over stdio (IDE agents start it as a subprocess) or streamable HTTP. HTTP
binds 127.0.0.1; any other address needs a bearer token, except inside
Databricks Apps, whose proxy authenticates every request before it arrives.
"""

# No ``from __future__ import annotations``: the SDK reads the tool signatures, whose types are imported locally.
import argparse
import hmac
import ipaddress
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

from knowledge.loader import PACK_DIR

SERVER_NAME = "streaming-engineer"
URI_SCHEME = "streaming-engineer"
TOKEN_ENV = "STREAMING_ENGINEER_MCP_TOKEN"
DEFAULT_PORT = 8765
DATABRICKS_PORT_ENV = "DATABRICKS_APP_PORT"
DATABRICKS_USER_HEADERS = (b"x-forwarded-user", b"x-forwarded-email", b"x-forwarded-preferred-username")
"""Set by the Databricks Apps proxy on every request it authenticated."""

INSTRUCTIONS = """\
Streaming Engineer (数据流工程师): tools for Databricks streaming pipelines (Auto Loader, Structured Streaming,
Lakeflow Declarative Pipelines / DLT, Kafka, Event Hubs, Kinesis).
- `check` reviews PySpark, SQL and YAML/JSON pipeline files (or pasted code) against the role's checklists:
  findings with rule, line, evidence and the fix.
- `diagnose` reads StreamingQueryProgress JSON and says whether a stream keeps up, and which setting fixes it.
- `search_knowledge` and `ask` answer from a curated knowledge base; cite the passage ids they return.
- `render_template` fills the role's config and document templates (secrets become secret references);
  `run_checklist` judges a file item by item with evidence.
- `list_commands` / `describe_command` explain the role's commands; each task command is also a prompt.
Files are read only inside the server's allowed root."""

TASK_PROMPT = """\
Act as the Streaming Engineer (数据流工程师) and run the `*{command}` task with me: {description}.

Purpose: {purpose}

Ask me, one question at a time, for what you do not know yet:
{questions}

Then work through the task's steps:
{steps}

Use the streaming-engineer tools: `render_template` for {templates}; `run_checklist` with {checklists} on what you
produce; `check` on any pipeline code; `search_knowledge` or `ask` for facts, citing the passage ids.
The finished document belongs at `{doc}`.{details}"""


# ---------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``mcp`` arguments on ``parser``."""
    parser.description = (
        "Serve the Streaming Engineer's tools (check, diagnose, search_knowledge, ask, list_commands, describe_command, "
        "render_template, run_checklist), the pack's articles, templates and checklists as resources, and the task "
        "commands as prompts, over MCP: stdio by default (for IDE agents), streamable HTTP with --http."
    )
    parser.add_argument("--root", metavar="DIR", default=None,
                        help="the only folder whose files the tools may read (default: the current folder)")
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1; another address needs a token)")
    parser.add_argument("--port", type=int, default=None, help=f"HTTP port (default {DEFAULT_PORT})")
    parser.add_argument("--token", default=None,
                        help=f"bearer token every HTTP request must carry (or ${TOKEN_ENV}); required beyond 127.0.0.1")
    parser.add_argument("--databricks-app", action="store_true",
                        help=f"run as a Databricks App: HTTP on 0.0.0.0:${DATABRICKS_PORT_ENV}, requests accepted only "
                             "as forwarded by the Apps proxy (which authenticates users)")


def _usage_error(message: str) -> int:
    print(f"streaming-engineer mcp: error: {message}", file=sys.stderr)
    return 2


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Start the server described by parsed ``args``; returns the exit code."""
    from agent.context import default_home

    root = Path(args.root or os.getcwd()).expanduser()
    if not root.is_dir():
        return _usage_error(f"--root {root} is not a folder")
    home = Path(getattr(args, "home", None) or default_home())
    pack_dir: Path | str = PACK_DIR
    if getattr(args, "bundle", None):
        from knowledge.bundle import load_bundle
        from knowledge.loader import PackError

        try:
            pack_dir = load_bundle(args.bundle, home).root
        except PackError as exc:
            return _usage_error(f"cannot load bundle {args.bundle}: {exc}")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    host, port = args.host, args.port or DEFAULT_PORT
    if args.databricks_app:
        if DATABRICKS_PORT_ENV not in os.environ:
            return _usage_error(f"--databricks-app runs only inside Databricks Apps (${DATABRICKS_PORT_ENV} is not set)")
        host, port = "0.0.0.0", int(os.environ[DATABRICKS_PORT_ENV])
    elif args.http and not _is_loopback(host) and not token:
        return _usage_error(f"serving on {host} needs a token: pass --token or set ${TOKEN_ENV} "
                            "(clients then send 'Authorization: Bearer <token>')")
    server = build_server(root, home, pack_dir)
    if not (args.http or args.databricks_app):
        server.run("stdio")
        return 0
    print(f"streaming-engineer MCP server: http://{host}:{port}/mcp (files readable under {root.resolve()})",
          file=sys.stderr)
    serve_http(server, host, port, token=token, behind_databricks_proxy=args.databricks_app)
    return 0


# ---------------------------------------------------------------------------
# the server


def build_server(root: Path | str, home: Path | str, pack_dir: Path | str = PACK_DIR) -> Any:
    """The MCP server with every tool, resource and prompt registered.

    Args:
        root: the only folder the tools read files from.
        home: the app home (knowledge index, ingested documents).
        pack_dir: the knowledge pack.

    Returns:
        An ``mcp.server.mcpserver.MCPServer``.

    """
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from agent.mcp_tools import Toolbox

    box = Toolbox(root, home, pack_dir)
    pack = box.pack
    server = MCPServer(SERVER_NAME, title=f"{pack.agent.title} · {pack.agent.title_en}", instructions=INSTRUCTIONS,
                       version=_version(), log_level="WARNING")
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
    for tool in _tools(box):
        server.add_tool(tool, annotations=read_only, structured_output=True)
    _add_resources(server, box)
    _add_prompts(server, box)
    threading.Thread(target=box.warm_up, name="mcp-warm-up", daemon=True).start()
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streaming-engineer")
    except PackageNotFoundError:
        return "0"


def _tools(box: Any) -> list[Any]:
    """The tool functions, with their argument schemas (types, limits, descriptions) in the signatures."""
    from typing import Literal

    from pydantic import Field

    from agent import mcp_tools as t

    # Text arguments are plain ``str`` ("" = not given): the SDK would parse a JSON-looking ``str | None`` value
    # (a pasted JSON config, a progress array) into an object and then refuse it.
    Code = Annotated[str, Field(max_length=t.MAX_CODE_CHARS, description="pasted code or config text")]
    Lang = Annotated[t.Language | None, Field(description="the language of `code`")]
    Name = Annotated[str, Field(max_length=200, description="a file name to report pasted code under")]

    def check(
        paths: Annotated[list[str] | None, Field(max_length=t.MAX_PATHS, description=(
            "files or folders inside the allowed root (relative to it, or absolute); folders are walked"))] = None,
        code: Code = "",
        language: Lang = None,
        name: Name = "",
        ignore: Annotated[list[str] | None, Field(description="rule ids to leave out, e.g. ['SE402']")] = None,
    ) -> t.CheckReport:
        """Review Databricks streaming pipeline code and configs (PySpark, DLT / Lakeflow Python, SQL, YAML/JSON job,
        pipeline and connector specs) against the Streaming Engineer checklists. Give `paths` or `code` + `language`.
        Returns the same findings as `streaming-engineer check --format json`: rule, topic, status, line, message, evidence.
        """  # noqa: D205
        return box.check(paths=paths, code=code or None, language=language, name=name or None, ignore=ignore)

    def diagnose(
        progress: Annotated[str, Field(description=(
            "StreamingQueryProgress JSON: a query.recentProgress array, a StreamingQueryListener log (JSON Lines) or "
            "event-log flow_progress rows"))] = "",
        path: Annotated[str, Field(description="a progress file or folder inside the allowed root")] = "",
        trigger: Annotated[str, Field(max_length=40, description="the processingTime trigger, e.g. '1 minute'")] = "",
        rate_limit: Annotated[int | None, Field(ge=1, description="maxOffsetsPerTrigger / maxFilesPerTrigger")] = None,
    ) -> t.DiagnoseReport:
        """Diagnose stream health from progress JSON: falling behind, batch duration vs trigger, state growth, rows
        dropped by the watermark, source lag and latency-SLO compliance, each with the setting that fixes it.
        """  # noqa: D205
        return box.diagnose(progress=progress or None, path=path or None, trigger=trigger or None, rate_limit=rate_limit)

    def search_knowledge(
        query: Annotated[str, Field(min_length=1, max_length=4000, description="question or keywords (English or Chinese)")],
        k: Annotated[int, Field(ge=1, le=t.MAX_K, description="number of passages")] = 5,
        kinds: Annotated[list[Literal["article", "knowledge", "template", "checklist", "task", "user"]] | None,
                         Field(description="only these passage kinds ('user' = ingested documents)")] = None,
    ) -> t.SearchResult:
        """Search the streaming knowledge base (articles checked against official docs, the role's knowledge files,
        templates, checklists, tasks and the team's ingested documents). Cite passages by id.
        """  # noqa: D205
        return box.search_knowledge(query, k=k, kinds=list(kinds) if kinds else None)

    def ask(
        question: Annotated[str, Field(min_length=1, max_length=4000, description="the question (English or Chinese)")],
        k: Annotated[int, Field(ge=1, le=10, description="passages to draw from")] = 5,
    ) -> t.Answer:
        """Answer a streaming question from the knowledge base with numbered citations ([n] is sources[n-1]);
        says plainly when the knowledge base does not cover it.
        """  # noqa: D205
        return box.ask(question, k=k)

    def list_commands() -> t.CommandList:
        """The Streaming Engineer's commands (*help order) with what each does and the task it runs."""
        return box.list_commands()

    def describe_command(
        name: Annotated[str, Field(min_length=1, max_length=100, description="a command, e.g. kafka-connector")],
    ) -> t.CommandDetails:
        """What one command does: purpose, the questions it asks, steps, templates, checklists, output location."""
        return box.describe_command(name)

    def render_template(
        name: Annotated[str, Field(min_length=1, max_length=200, description="a template file name, e.g. "
                                   "kafka-connector-config-tmpl.json (resources list them)")],
        values: Annotated[dict[str, str] | None, Field(description=(
            "placeholder values by name; for secret_ref fields give scope/key, never the secret"))] = None,
        secret_scope: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$", description=(
            "the Databricks secret scope named when a value has to be replaced by a reference"))] = "streaming",
    ) -> t.RenderedTemplate:
        """Render one of the role's templates (connector configs, job/pipeline specs, DQ expectations, runbooks, plans).
        Values are validated by kind; a value that looks like a secret is never written: the text gets a
        {{secrets/scope/key}} reference instead, and `notices` says how to store the secret.
        """  # noqa: D205
        return box.render_template(name, values, secret_scope=secret_scope)

    def run_checklist(
        checklist: Annotated[str, Field(min_length=1, max_length=200, description=(
            "a checklist id, e.g. exactly-once-checklist (or a unique part of it)"))],
        path: Annotated[str, Field(description="a file inside the allowed root")] = "",
        code: Code = "",
        name: Name = "",
        language: Lang = None,
    ) -> t.ChecklistRun:
        """Judge every item of a checklist against a file or pasted text: PASS / FAIL / PARTIAL / N/A / REVIEW, each
        with evidence (file:line) from the linter and the item's patterns; REVIEW means a person must judge it.
        """  # noqa: D205
        return box.run_checklist(checklist, path=path or None, code=code or None, name=name or None, language=language)

    return [check, diagnose, search_knowledge, ask, list_commands, describe_command, render_template, run_checklist]


def _add_resources(server: Any, box: Any) -> None:
    """The pack's documents, templates and checklists, and the ingested documents, as resources."""
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError
    from mcp.server.mcpserver.resources import TextResource

    pack = box.pack
    for kind, docs in (("articles", pack.articles), ("knowledge", pack.knowledge)):
        for doc in docs.values():
            title = f"{doc.title} · {doc.title_zh}" if doc.title_zh else doc.title
            server.add_resource(TextResource(uri=f"{URI_SCHEME}://{kind}/{doc.id}", name=f"{kind}/{doc.id}", title=title,
                                             description=f"{kind[:-1] if kind == 'articles' else kind} · {doc.path}",
                                             mime_type="text/markdown", text=_document_text(doc)))
    mime = {"json": "application/json", "yaml": "application/yaml", "markdown": "text/markdown"}
    for template in pack.templates.values():
        fields = ", ".join(p.name for p in template.placeholders)
        server.add_resource(TextResource(uri=f"{URI_SCHEME}://templates/{template.name}", name=f"templates/{template.name}",
                                         title=template.title, description=f"template; placeholders: {fields or '-'}",
                                         mime_type=mime[template.format], text=template.text))
    for checklist in pack.checklists.values():
        server.add_resource(TextResource(uri=f"{URI_SCHEME}://checklists/{checklist.id}", name=f"checklists/{checklist.id}",
                                         title=checklist.title, description="checklist (run it with run_checklist)",
                                         mime_type="text/markdown", text=_checklist_text(checklist)))

    @server.resource(f"{URI_SCHEME}://ingested/{{source}}", name="ingested", mime_type="text/markdown",
                     description="a document source your team ingested (`streaming-engineer ingest DIR`)")
    def ingested(source: str) -> str:
        from knowledge.index import load_ingested

        passages = load_ingested(box.home).get(source)
        if passages is None:
            raise ResourceNotFoundError(f"no ingested source {source!r}")
        return "\n\n".join(f"## {p.title}\n\n_{p.path}_\n\n{p.text}" for p in passages)

    from knowledge.index import load_ingested

    for source, passages in load_ingested(box.home).items():
        server.add_resource(TextResource(uri=f"{URI_SCHEME}://ingested/{source}", name=f"ingested/{source}",
                                         title=source, description=f"ingested documents ({len(passages)} passages)",
                                         mime_type="text/markdown", text=ingested(source)))


def _document_text(doc: Any) -> str:
    text = doc.body.strip()
    if not text.startswith("#"):
        text = f"# {doc.title}\n\n{text}"
    urls = [f"- [{s.get('title') or s.get('url')}]({s.get('url')})" for s in doc.sources if s.get("url")]
    if urls and not any(s.get("url") in text for s in doc.sources):
        text += "\n\n## Sources\n\n" + "\n".join(urls)
    return text + "\n"


def _checklist_text(checklist: Any) -> str:
    lines = [f"# {checklist.title}" + (f" · {checklist.title_zh}" if checklist.title_zh else ""), ""]
    for section in checklist.sections:
        lines += [f"## {section.title}", ""]
        lines += [f"- [ ] {item.text}" + (f" — {item.recommendation}" if item.recommendation else "") for item in section.items]
        lines.append("")
    return "\n".join(lines)


def _add_prompts(server: Any, box: Any) -> None:
    """One prompt per task command: the task's purpose, questions and steps, pointing at the tools."""
    from mcp.server.mcpserver.prompts import Prompt

    pack = box.pack
    for command in pack.agent.commands:
        task = pack.task_for(command)
        if task is None or not task.questions and not task.templates:
            continue  # create-doc, execute-checklist, shard-doc: driven by the chat, not a fixed task
        server.add_prompt(Prompt.from_function(_task_prompt(command, task), name=command.name,
                                               title=f"*{command.name}", description=str(command.description)))


def _task_prompt(command: Any, task: Any) -> Any:
    from pydantic import Field

    def prompt(details: Annotated[str, Field(description=(
            "what you already know: sources, tables, event time, ids, targets..."))] = "") -> str:
        questions = "\n".join(f"- {q.ask}" + (f" (default: {q.default})" if q.default else "") for q in task.questions)
        return TASK_PROMPT.format(
            command=command.name, description=command.description, purpose=task.purpose,
            questions=questions or "- (nothing: the task starts from what you tell me)",
            steps="\n".join(f"{n}. {s}" for n, s in enumerate(task.steps, 1)),
            templates=", ".join(task.templates) or "the task's documents",
            checklists=", ".join(task.checklists) or "the matching checklist",
            doc=task.doc_output_location,
            details=f"\n\nWhat I know already: {details.strip()}" if details.strip() else "",
        )

    return prompt


# ---------------------------------------------------------------------------
# streamable HTTP


class RequestGate:
    """ASGI middleware: only authorised HTTP requests reach the MCP app.

    With a token, every request must carry ``Authorization: Bearer <token>``
    (compared in constant time). Behind the Databricks Apps proxy, every
    request must carry the user headers the proxy adds after it authenticated
    the caller.
    """

    def __init__(self, app: Any, token: str | None = None, behind_databricks_proxy: bool = False) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None
        self.behind_databricks_proxy = behind_databricks_proxy

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass authorised requests (and the lifespan) to the app; answer the rest 401."""
        if scope.get("type") == "http":
            headers = dict(scope.get("headers") or [])
            refused = None
            if self.expected is not None and not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
                refused = b'{"error": "missing or wrong bearer token"}'
            elif self.behind_databricks_proxy and not any(headers.get(h) for h in DATABRICKS_USER_HEADERS):
                refused = b'{"error": "requests must come through the Databricks Apps proxy"}'
            if refused is not None:
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": refused})
                return
        await self.app(scope, receive, send)


def http_app(server: Any, host: str = "127.0.0.1", token: str | None = None, behind_databricks_proxy: bool = False) -> Any:
    """The ASGI app serving ``server`` at ``/mcp``, behind :class:`RequestGate`.

    On a loopback address the SDK's DNS-rebinding protection admits only
    local Host and Origin headers; behind the Databricks proxy (which rewrites
    Host to the app's own URL) the proxy's authentication stands instead.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    if _is_loopback(host):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    else:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=host)
    if token or behind_databricks_proxy:
        return RequestGate(app, token=token, behind_databricks_proxy=behind_databricks_proxy)
    return app


def serve_http(server: Any, host: str, port: int, token: str | None = None, behind_databricks_proxy: bool = False) -> None:
    """Serve streamable HTTP until interrupted."""
    import uvicorn

    uvicorn.run(http_app(server, host, token, behind_databricks_proxy), host=host, port=port, log_level="warning")
