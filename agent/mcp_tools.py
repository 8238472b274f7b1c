"""What the MCP server's tools do: the role's linter, diagnosis, knowledge base, commands, templates and checklists.

Each method of :class:`Toolbox` takes plain arguments, applies the same limits
and refusals as the command line (sizes, paths inside one allowed root,
secrets), and returns a pydantic model: the tool's structured output, whose
JSON schema MCP clients see. A refusal raises the SDK's ``ToolError``, which a
client receives as a tool error (``isError``), never as a crash. The MCP wiring
(transports, resources, prompts) is in :mod:`agent.mcp_server`.
"""

from __future__ import annotations

import difflib
import threading
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from knowledge.loader import Checklist, Pack, cached_pack
from tools.lint import MAX_FILE_BYTES
from tools.templates import DEFAULT_SECRET_SCOPE, find_secret

Language = Literal["python", "sql", "yaml", "json"]
Status = Literal["PASS", "FAIL", "PARTIAL", "N/A", "REVIEW"]

MAX_PATHS = 50
"""Paths one ``check`` call may name (folders count once; their files are walked)."""
MAX_CODE_CHARS = MAX_FILE_BYTES
"""Pasted code or config: the linter's own per-file limit."""
MAX_PROGRESS_BYTES = 20 * 1024 * 1024
"""Progress JSON, as text or as a file: a long listener log, never a whole bucket."""
MAX_PROGRESS_FILES = 20
"""Progress files a folder may contribute (as ``*backpressure-tune`` reads them)."""
MAX_K = 20

_LANGUAGE_SUFFIX = {"python": ".py", "sql": ".sql", "yaml": ".yaml", "json": ".json"}


# ---------------------------------------------------------------------------
# structured outputs


class LintFinding(BaseModel):
    """One judgement of one linter rule (the ``check --format json`` shape)."""

    rule: str = Field(description="rule id, e.g. SE101 (see `streaming-engineer check --list-rules`)")
    topic: str = Field(description="watermark, idempotency, checkpoint, dlq, schema, security, trigger, ...")
    checklist: str = Field(description="the checklist the rule serves")
    status: Status
    severity: Literal["error", "warning", "info"]
    line: int | None = Field(description="1-based line, or null for a whole-file finding")
    message: str = Field(description="what is wrong and how to fix it")
    evidence: str = Field(description="the source text the judgement rests on (anything that looks like a secret removed)")
    item: str = Field(default="", description="the checklist item, verbatim")


class CheckedFile(BaseModel):
    """Everything the linter says about one file."""

    path: str = Field(description="relative to the allowed root (or the name given to pasted code)")
    findings: list[LintFinding]
    error: str | None = Field(default=None, description="why the file could not be (fully) checked")


class CheckReport(BaseModel):
    """The result of ``check``."""

    files: list[CheckedFile]
    counts: dict[str, int] = Field(description="findings per status")
    has_fail: bool = Field(description="true when any finding FAILs (the CLI exits 1 then)")


class QueryHealth(BaseModel):
    """One streaming query's diagnosis (the ``diagnose --json`` query shape)."""

    query: str
    verdict: Literal["healthy", "unhealthy"]
    summary: str
    causes: list[Any]
    trigger_ms: float | None
    trigger_source: str | None
    stats: dict[str, Any]
    findings: list[dict[str, Any]] = Field(description="each with severity, what was seen and the setting that fixes it")
    slo: list[dict[str, Any]] = Field(description="latency-SLO checks")


class DiagnosedFile(BaseModel):
    """The queries found in one progress input."""

    path: str
    format: str = Field(description="recentProgress dump, StreamingQueryListener log or pipeline event log")
    skipped_records: int
    queries: list[QueryHealth]


class DiagnoseReport(BaseModel):
    """The result of ``diagnose``."""

    files: list[DiagnosedFile]
    healthy: bool
    report: str = Field(description="the stream-health report as Markdown")


class Passage(BaseModel):
    """One retrieved passage."""

    id: str = Field(description="stable passage id, cite it")
    title: str
    path: str = Field(description="pack-relative path, or the ingested source's path")
    kind: str
    score: float
    text: str


class SearchResult(BaseModel):
    """The result of ``search_knowledge`` (the ``search --json`` shape)."""

    results: list[Passage]


class Citation(BaseModel):
    """A source an answer cites; ``[n]`` in the answer is ``sources[n-1]``."""

    id: str
    title: str
    path: str
    score: float
    urls: list[str] = Field(default_factory=list, description="official pages the passage was checked against")


class Answer(BaseModel):
    """The result of ``ask`` (the ``ask --json`` shape, plus ``found``)."""

    answer: str = Field(description="the answer with numbered citations, sources and related topics")
    found: bool = Field(description="false when the knowledge base has nothing on the question")
    sources: list[Citation]
    related: list[str] = Field(description="related topic ids to explore next")


class CommandInfo(BaseModel):
    """One ``*command`` of the role."""

    name: str
    usage: str = Field(description="as typed in the chat, e.g. *kafka-connector")
    description: str
    task: str | None = Field(description="the task it runs, if any")


class CommandList(BaseModel):
    """The result of ``list_commands``."""

    commands: list[CommandInfo]


class TaskQuestion(BaseModel):
    """A value the task asks for."""

    key: str
    ask: str
    kind: str = Field(description="duration, table, topic, positive_int, percent, url, path, secret_ref, choice or text")
    default: str | None
    choices: list[str]


class CommandDetails(CommandInfo):
    """The result of ``describe_command``."""

    purpose: str
    steps: list[str]
    questions: list[TaskQuestion]
    templates: list[str]
    checklists: list[str]
    doc_output_location: str | None


class RenderedTemplate(BaseModel):
    """The result of ``render_template``."""

    name: str
    format: Literal["json", "yaml", "markdown"]
    text: str = Field(description="the rendered file (JSON/YAML output is checked to parse)")
    missing: list[str] = Field(description="placeholders without a value or default (left as {{name}})")
    unknown: list[str] = Field(description="values given for names the template does not have")
    secrets_replaced: dict[str, str] = Field(
        description="fields whose value looked like a secret, with the secret reference written instead")
    notices: list[str]


class ChecklistItemResult(BaseModel):
    """One checklist item, judged."""

    id: str
    text: str
    section: str
    topic: str
    status: Status
    evidence: list[str] = Field(description="file:line and the text or linter finding it rests on")
    reason: str
    recommendation: str


class ChecklistRun(BaseModel):
    """The result of ``run_checklist``."""

    checklist: str
    title: str
    targets: list[str]
    counts: dict[str, int]
    pass_rate: float | None = Field(description="PASS over applicable items, PARTIAL counting half")
    items: list[ChecklistItemResult]
    report: str = Field(description="the checklist report as Markdown")


# ---------------------------------------------------------------------------
# the tools


class Toolbox:
    """The role's tools over one pack, one app home and one allowed root.

    Args:
        root: the only folder whose files the tools may read (paths outside
            it, also through symlinks, are refused).
        home: the app home (knowledge index, ingested documents).
        pack_dir: the knowledge pack the role is defined by.
    """

    def __init__(self, root: Path | str, home: Path | str, pack_dir: Path | str) -> None:
        self.root = Path(root).resolve()
        self.home = str(home)
        self.pack_dir = str(pack_dir)

    @property
    def pack(self) -> Pack:
        """The loaded pack (cached per folder)."""
        return cached_pack(self.pack_dir)

    # -- paths ---------------------------------------------------------------

    def inside_root(self, raw: str) -> Path:
        """Resolve a user-given path (relative to the root, or absolute) that must stay inside the root.

        Raises:
            ToolError: for an empty path, one outside the root, or one that does not exist.

        """
        text = str(raw or "").strip()
        if not text or "\x00" in text:
            raise ToolError("a path is needed")
        candidate = Path(text)
        resolved = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise ToolError(f"{text!r} is outside the allowed root {self.root}; this server reads files only inside it")
        if not resolved.exists():
            raise ToolError(f"{text!r}: no such file or folder under {self.root}")
        return resolved

    def shown(self, path: Path) -> str:
        """A path as reported: relative to the root, POSIX style."""
        resolved = Path(path).resolve()
        return resolved.relative_to(self.root).as_posix() if resolved != self.root else "."

    # -- check -------------------------------------------------------------------

    def check(self, paths: list[str] | None = None, code: str | None = None, language: Language | None = None,
              name: str | None = None, ignore: list[str] | None = None) -> CheckReport:
        """Review pipeline code and configs with the streaming linter (``streaming-engineer check``)."""
        from tools.lint import RULES, check_file, check_text
        from tools.lint.engine import iter_files

        ignored = {r.strip().upper() for r in ignore or [] if r.strip()}
        unknown = sorted(ignored - set(RULES))
        if unknown:
            raise ToolError(f"unknown rule id(s) in ignore: {', '.join(unknown)}")
        if bool(paths) == (code is not None):
            raise ToolError("give either paths (files or folders inside the allowed root) or code with its language")
        if code is not None:
            if language is None:
                raise ToolError("code needs its language: python, sql, yaml or json")
            if len(code) > MAX_CODE_CHARS:
                raise ToolError(f"code is {len(code):,} characters; the limit is {MAX_CODE_CHARS:,}")
            label = _label(name, language)
            results = [check_text(code, language, label)]
        else:
            if len(paths or []) > MAX_PATHS:
                raise ToolError(f"{len(paths or [])} paths; one call checks at most {MAX_PATHS}")
            targets = [self.inside_root(p) for p in paths or []]
            results = []
            for path, _explicit in iter_files(targets):
                try:
                    self.inside_root(str(path))  # a symlink met while walking a folder may lead out
                except ToolError as exc:
                    from tools.lint import FileResult

                    results.append(FileResult(str(path), [], str(exc)))
                    continue
                result = check_file(path)
                result.path = self.shown(path)
                results.append(result)
        files = []
        counts: dict[str, int] = {}
        for result in results:
            findings = [f for f in result.findings if f.rule not in ignored]
            for finding in findings:
                counts[finding.status] = counts.get(finding.status, 0) + 1
            files.append(CheckedFile(path=result.path, error=result.error, findings=[
                LintFinding(**{**f.to_dict(), "evidence": _without_secrets(f.evidence)}) for f in findings]))
        return CheckReport(files=files, counts=counts, has_fail=counts.get("FAIL", 0) > 0)

    # -- diagnose --------------------------------------------------------------

    def diagnose(self, progress: str | None = None, path: str | None = None, trigger: str | None = None,
                 rate_limit: int | None = None) -> DiagnoseReport:
        """Diagnose stream health from StreamingQueryProgress JSON (``streaming-engineer diagnose``)."""
        from tools.diagnose import ProgressError, Settings, diagnose_file, diagnose_text, discover, parse_duration_ms
        from tools.diagnose import report as reports
        from tools.diagnose import slo as slos

        if (progress is None) == (path is None):
            raise ToolError("give either progress (the JSON text) or path (a file or folder inside the allowed root)")
        try:
            settings = Settings(trigger_ms=parse_duration_ms(trigger), rate_limit=rate_limit, slo=slos.load(None))
        except ValueError as exc:
            raise ToolError(str(exc)) from exc
        try:
            if progress is not None:
                if len(progress.encode("utf-8")) > MAX_PROGRESS_BYTES:
                    raise ToolError(f"progress text is over the {MAX_PROGRESS_BYTES // (1024 * 1024)} MB limit")
                results = [diagnose_text(progress, "<progress>", settings)]
            else:
                target = self.inside_root(str(path))
                found = [p for p in discover([target]) if p.is_file()][:MAX_PROGRESS_FILES]
                results = []
                for file in found:
                    self.inside_root(str(file))
                    if file.stat().st_size > MAX_PROGRESS_BYTES:
                        raise ToolError(f"{self.shown(file)} is over the {MAX_PROGRESS_BYTES // (1024 * 1024)} MB limit")
                    try:
                        result = diagnose_file(file, settings)
                    except ProgressError:
                        if target.is_file():
                            raise
                        continue  # a folder's other JSON files
                    result.path = self.shown(file)
                    results.append(result)
                if not results:
                    raise ToolError(f"no stream progress found in {path!r}")
        except ProgressError as exc:
            raise ToolError(str(exc).replace(str(self.root) + "/", "")) from exc
        files = [DiagnosedFile(path=r.path, format=r.log.origin, skipped_records=r.log.skipped,
                               queries=[QueryHealth(**_query_fields(reports.to_dict(d))) for d in r.diagnoses])
                 for r in results]
        return DiagnoseReport(files=files, healthy=all(d.healthy for r in results for d in r.diagnoses),
                              report=reports.markdown([(r.path, r.diagnoses) for r in results]))

    # -- knowledge -------------------------------------------------------------

    _opening = threading.Lock()

    def retriever(self) -> Any:
        """The shared retriever, opened once: two threads opening the same Chroma store at once fail."""
        from agent.context import retriever_for

        with self._opening:
            return retriever_for(self.home, self.pack_dir)

    def warm_up(self) -> None:
        """Open the index and load the embedding model (a server calls this while the client connects)."""
        from agent.context import retriever_for
        from knowledge.index import IndexUnavailableError

        try:
            with self._opening:  # a search arriving meanwhile waits for this rather than repeating it beside it
                retriever_for(self.home, self.pack_dir).search("水位线 watermark", k=1)
        except (IndexUnavailableError, OSError, RuntimeError, ValueError):
            pass  # only a head start: the first real search reports what is wrong

    def _search(self, query: str, k: int, kinds: list[str] | None = None) -> list[Any]:
        from knowledge.index import IndexUnavailableError
        from knowledge.retrieval import QueryError, validate_query

        try:
            query = validate_query(query)  # before the index opens: a bad query costs nothing
            return self.retriever().search(query, k=k, kinds=kinds or None)
        except QueryError as exc:
            raise ToolError(str(exc)) from exc
        except IndexUnavailableError as exc:
            raise ToolError(f"the knowledge index is unavailable: {exc}") from exc

    def search_knowledge(self, query: str, k: int = 5, kinds: list[str] | None = None) -> SearchResult:
        """The best passages of the knowledge base for a query (``streaming-engineer search``)."""
        return SearchResult(results=[Passage(**h.to_dict()) for h in self._search(query, k, kinds)])

    def ask(self, question: str, k: int = 5) -> Answer:
        """A short answer from the knowledge base with numbered citations (``streaming-engineer ask``)."""
        from knowledge.answer import compose_answer

        answer = compose_answer(question.strip(), self._search(question, k))
        sources = [Citation(id=h.id, title=h.title, path=h.path, score=round(h.score, 4),
                            urls=[s.get("url", "") for s in h.sources if s.get("url")]) for h in answer.citations]
        return Answer(answer=answer.text, found=answer.found, sources=sources, related=list(answer.related))

    # -- commands --------------------------------------------------------------

    def list_commands(self) -> CommandList:
        """The role's commands, in *help order."""
        return CommandList(commands=[CommandInfo(name=c.name, usage=c.usage, description=str(c.description), task=c.task)
                                     for c in self.pack.agent.commands])

    def describe_command(self, name: str) -> CommandDetails:
        """What one command does: purpose, questions, steps, templates, checklists and output location."""
        wanted = name.strip().lstrip("*").strip()
        command = self.pack.command(wanted)
        if command is None:
            names = [c.name for c in self.pack.agent.commands]
            raise ToolError(f"no command {name!r}{_did_you_mean(wanted, names)}; list_commands shows them all")
        task = self.pack.task_for(command)
        questions = [TaskQuestion(key=q.key, ask=str(q.ask), kind=q.kind, default=q.default, choices=list(q.choices))
                     for q in (task.questions if task else ())]
        return CommandDetails(
            name=command.name, usage=command.usage, description=str(command.description), task=command.task,
            purpose=str(task.purpose) if task else str(command.description),
            steps=[str(s) for s in task.steps] if task else [], questions=questions,
            templates=list(task.templates) if task else [], checklists=list(task.checklists) if task else [],
            doc_output_location=task.doc_output_location if task else None,
        )

    # -- templates ---------------------------------------------------------------

    def render_template(self, name: str, values: dict[str, str] | None = None,
                        secret_scope: str = DEFAULT_SECRET_SCOPE) -> RenderedTemplate:
        """Fill a pack template; values are validated by kind and secrets become secret references."""
        from tools.templates import TemplateError, render
        from tools.values import KIND_HINTS, check_value

        template = self.pack.templates.get(name.strip())
        if template is None:
            raise ToolError(f"no template {name!r}{_did_you_mean(name, list(self.pack.templates))}; "
                            f"templates: {', '.join(self.pack.templates)}")
        values = dict(values or {})
        placeholders = {p.name: p for p in template.placeholders}
        problems, prepared = [], {}
        for key, raw in values.items():
            value = str(raw)
            holder = placeholders.get(key)
            # Secret-looking values and secret references go to render(), which writes a reference instead.
            if holder is None or holder.kind == "secret_ref" or find_secret(value):
                prepared[key] = value
                continue
            checked = check_value(holder.kind, value)
            if not checked.ok:
                problems.append(f"{key}: {checked.error} (expected {KIND_HINTS.get(holder.kind, KIND_HINTS['text'])})")
            else:
                prepared[key] = checked.value
        if problems:
            raise ToolError("invalid values — " + "; ".join(problems))
        try:
            result = render(template, prepared, secret_scope=secret_scope)
        except TemplateError as exc:
            raise ToolError(str(exc)) from exc
        return RenderedTemplate(name=template.name, format=template.format, text=result.text, missing=result.missing,
                                unknown=result.unknown, secrets_replaced=dict(result.secrets_replaced),
                                notices=list(result.notices))

    # -- checklists --------------------------------------------------------------

    def find_checklist(self, name: str) -> Checklist:
        """A checklist by id, by id without ``-checklist``, or by a unique part of its id or title."""
        checklists = self.pack.checklists
        wanted = name.strip().lower()
        for key in (wanted, f"{wanted}-checklist"):
            if key in checklists:
                return checklists[key]
        matches = [c for key, c in checklists.items() if wanted and (wanted in key or wanted in c.title.lower())]
        if len(matches) == 1:
            return matches[0]
        hint = f" (it matches {', '.join(c.id for c in matches)})" if matches else _did_you_mean(wanted, list(checklists))
        raise ToolError(f"no single checklist {name!r}{hint}; checklists: {', '.join(checklists)}")

    def run_checklist(self, checklist: str, path: str | None = None, code: str | None = None,
                      name: str | None = None, language: Language | None = None) -> ChecklistRun:
        """Judge every item of a checklist against a file or pasted text, with evidence."""
        from tools.checklist import Target, run_checklist

        found = self.find_checklist(checklist)
        if (path is None) == (code is None):
            raise ToolError("give either path (a file inside the allowed root) or code (pasted text)")
        if code is not None:
            if len(code) > MAX_CODE_CHARS:
                raise ToolError(f"code is {len(code):,} characters; the limit is {MAX_CODE_CHARS:,}")
            targets = [Target(_label(name, language), code)]
        else:
            file = self.inside_root(path or "")
            if not file.is_file():
                raise ToolError(f"{path!r} is a folder; give one file (or call check for a folder)")
            if file.stat().st_size > MAX_FILE_BYTES:
                raise ToolError(f"{path!r} is over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit")
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ToolError(f"{path!r} is not UTF-8 text") from exc
            targets = [Target(self.shown(file), text, file)]
        report = run_checklist(found, targets)
        items = [ChecklistItemResult(id=i.item_id, text=i.text, section=i.section, topic=i.topic, status=i.status,
                                     evidence=[_withhold_secret(e) for e in i.evidence], reason=i.reason,
                                     recommendation=i.recommendation) for i in report.items]
        markdown = report.to_markdown()
        return ChecklistRun(checklist=report.checklist_id, title=report.title, targets=report.targets,
                            counts=report.counts(), pass_rate=report.pass_rate(), items=items,
                            report=markdown if not find_secret(markdown) else _redact_lines(markdown))


def _label(name: str | None, language: str | None) -> str:
    """The name pasted code is reported under; its suffix tells the linter the language."""
    label = Path(str(name or "").strip()).name or "pasted"
    if language and not label.lower().endswith(_LANGUAGE_SUFFIX[language]):
        label += _LANGUAGE_SUFFIX[language]
    return label


def _query_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in QueryHealth.model_fields}


def _did_you_mean(wanted: str, names: list[str]) -> str:
    close = difflib.get_close_matches(wanted.strip().lower(), names, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _without_secrets(text: str) -> str:
    """Linter evidence with anything that looks like a secret removed (as typed chat input is screened).

    The linter's secret rules mask what they report as ``****`` (such evidence is returned as the CLI prints
    it), but other rules quote the whole line, which can still carry the secret.
    """
    if "****" in text or not find_secret(text):
        return text
    from agent.session import screen

    return screen(text)[0]


def _withhold_secret(text: str) -> str:
    reason = find_secret(text)
    return f"[evidence withheld: the line looks like {reason}]" if reason else text


def _redact_lines(text: str) -> str:
    return "\n".join(_withhold_secret(line) for line in text.splitlines()) + "\n"
