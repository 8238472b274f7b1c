"""Run eval cases against the same compiled graph every front end drives.

One :class:`agent.session.Engine` (one app home, its index built once)
serves the whole run; every case gets fresh thread ids, and its threads are
deleted afterwards. A turn's trajectory is recorded from
``Engine.stream_turn`` (one ``("step", node)`` per node that finished), with
the node that stopped on a question appended, so ``*kafka-connector`` reads
``route → start_task → ask_input``.

Tool calls are the model's (``AIMessage.tool_calls`` in the state's new
messages) plus, for the nodes of the offline engine, the tool each node
calls directly — the same functions the LangChain tools wrap
(``tools/langchain_tools.py``), so one expectation holds for both backends.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.assertions import (
    Check,
    Observation,
    ToolCall,
    check_turn,
    in_role_check,
    parse_error,
    route_checks,
    text_checks,
)
from evals.datasets import Case, Datasets

ENGINE_TOOLS: dict[str, tuple[str, ...]] = {
    "show_help": ("list_commands",),
    "answer_kb": ("search_knowledge",),
    "converse": ("search_knowledge",),
    "retrieve_guidance": ("search_knowledge",),
    "render_templates": ("render_template",),
    "run_task_checklists": ("run_checklist",),
    "judge_checklist": ("run_checklist",),
    "release_gate": ("run_checklist", "write_doc"),
    "save_document": ("write_doc",),
    "report_checklist": ("write_doc",),
    "shard_document": ("shard_doc",),
    "output_document": ("doc_out",),
}
"""The tool each offline node calls directly, by the name its LangChain wrapper has."""

MODEL_ENV = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")
"""A key in any of these makes the app use a model; the offline run hides them."""
NOT_FOUND_MARKERS = ("no answer", "could not find", "not in the knowledge base", "don't know", "do not know",
                     "没有找到", "没有答案")
"""Ways a declined knowledge question reads (offline text first; a model may phrase it otherwise)."""
MAX_RECORDED_CHARS = 2000
"""Outputs are cut to this in reports: enough to see what went wrong."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|(?<=[。！？])")


def first_sentence(answer: str) -> str:
    """The first sentence an answer shows: its first line without the icon and bullet, cut at the first full stop."""
    for line in answer.strip().splitlines():
        line = re.sub(r"^[^\w`(\[\u3400-\u9fff]+", "", line).strip()  # icon, "- ", "**"
        if line:
            return _SENTENCE_END.split(line, maxsplit=1)[0].strip()
    return ""


@dataclass
class RunOptions:
    """How to run.

    Attributes:
        backend: ``offline`` (no model, keys hidden) or ``openai`` (the configured endpoint).
        repeat: run every case this many times (variance with a model).
        k: a labelled source must rank within the top ``k`` (recall@k).
        depth: how deep the reciprocal rank is read (MRR@depth).
        keep_threads: keep the eval threads and their workspaces (for debugging).

    """

    backend: str = "offline"
    repeat: int = 1
    k: int = 5
    depth: int = 10
    keep_threads: bool = False


@dataclass
class TurnRecord:
    """One turn as the report shows it."""

    input: str
    output: str
    route: list[str]
    tool_calls: list[str]
    mode: str
    pending: bool
    seconds: float
    failures: list[str] = field(default_factory=list)


@dataclass
class CaseResult:
    """The outcome of one case in one repeat.

    Attributes:
        status: passed | failed | error.
        checks: every assertion's outcome.
        turns: the conversation as it went (conversation and knowledge cases).
        metrics: the case's contribution to suite metrics (rank, key facts, lint counts...).
        error: the traceback when the case raised.

    """

    case: Case
    repeat: int
    status: str
    seconds: float
    checks: list[Check] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    thread: str = ""

    @property
    def failures(self) -> list[Check]:
        """The assertions that failed."""
        return [c for c in self.checks if not c.ok]

    @property
    def passed(self) -> bool:
        """Whether the case passed."""
        return self.status == "passed"


@dataclass
class RunResult:
    """Everything a run produced, for metrics and reports."""

    run_id: str
    backend: str
    model: str
    started: str
    seconds: float
    home: str
    index_seconds: float
    repeat: int
    results: list[CaseResult]
    suites: list[str]
    skipped: list[str] = field(default_factory=list)
    cache: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def hidden_env(names: tuple[str, ...]) -> Iterator[None]:
    """Hide environment variables for the duration (the offline run must not reach a model)."""
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class EvalRunner:
    """Runs cases on one engine and one index.

    Args:
        home: the app home (index, checkpoints, workspaces) — reused, so the
            index is built at most once.
        pack_dir: the pack (default: the shipped one).
        options: how to run.
        judge: scores an answer's groundedness in its passages (with a model), or ``None``.
        progress: called with a line of progress text.
        model_calls: returns (and forgets) the tool calls the model made since the
            last call — the caching proxy sees them all; without it they are read
            from the state's messages.

    """

    def __init__(self, home: Path | str, pack_dir: Path | str | None = None, options: RunOptions | None = None,
                 judge: Any = None, progress: Callable[[str], None] | None = None,
                 model_calls: Callable[[], list[str]] | None = None) -> None:
        self.home = Path(home)
        self.pack_dir = pack_dir
        self.options = options or RunOptions()
        self.judge = judge
        self.model_calls = model_calls
        self.progress = progress or (lambda _line: None)
        self.run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:4]
        self._counter = 0
        self.engine: Any = None

    # -- setup --------------------------------------------------------------

    def _open_engine(self) -> Any:
        from agent.session import Engine

        # Named pipeline files are pasted by the datasets; the engine never reads the eval host's files.
        return Engine(home=self.home, pack_dir=self.pack_dir, allow_local_files=False)

    def retriever(self) -> Any:
        """The retriever the graph itself uses (one per home and pack, cached per process)."""
        from agent.context import retriever_for

        return retriever_for(str(self.home), self.engine.context.pack_dir)

    def prepare(self) -> float:
        """Open the engine and make sure the index is built; the seconds that took."""
        started = time.perf_counter()
        self.engine = self._open_engine()
        try:
            _ = self.retriever().lexical  # builds or updates the index once, before any case
        except Exception as exc:  # noqa: BLE001 - a broken index is reported by the cases that need it
            self.progress(f"knowledge index unavailable: {exc}")
        return time.perf_counter() - started

    # -- the run ------------------------------------------------------------

    def run(self, datasets: Datasets, model: str = "", cache_stats: Callable[[], dict[str, int]] | None = None,
            notes: list[str] | None = None, on_repeat: Callable[[int], None] | None = None) -> RunResult:
        """Run every case of ``datasets`` ``repeat`` times (``on_repeat(n)`` before repeat ``n``)."""
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        started = time.perf_counter()
        context = hidden_env(MODEL_ENV) if self.options.backend == "offline" else contextlib.nullcontext()
        results: list[CaseResult] = []
        with context:
            index_seconds = self.prepare()
            self.progress(f"engine and index ready in {index_seconds:.1f} s (home {self.home})")
            for repeat in range(self.options.repeat):
                if on_repeat is not None:
                    on_repeat(repeat)
                for suite in datasets.order():
                    cases = datasets.suites[suite]
                    suite_started = time.perf_counter()
                    outcomes = [self.run_case(case, repeat) for case in cases]
                    results += outcomes
                    passed = sum(1 for r in outcomes if r.passed)
                    label = f" (repeat {repeat + 1}/{self.options.repeat})" if self.options.repeat > 1 else ""
                    self.progress(f"{suite}{label}: {passed}/{len(outcomes)} passed "
                                  f"in {time.perf_counter() - suite_started:.1f} s")
                    for outcome in outcomes:
                        if not outcome.passed:
                            first = (outcome.failures[0].message if outcome.failures
                                     else (outcome.error.strip().splitlines() or ["error"])[-1])
                            self.progress(f"  {outcome.status.upper()} {outcome.case.key}: {first}")
        return RunResult(
            run_id=self.run_id, backend=self.options.backend, model=model, started=started_at,
            seconds=time.perf_counter() - started, home=str(self.home), index_seconds=index_seconds,
            repeat=self.options.repeat, results=results, suites=datasets.order(), skipped=list(datasets.skipped),
            cache=cache_stats() if cache_stats else None, notes=list(notes or []),
        )

    def run_case(self, case: Case, repeat: int = 0) -> CaseResult:
        """Run one case; an exception makes it an ``error`` result, never stops the run."""
        started = time.perf_counter()
        result = CaseResult(case=case, repeat=repeat, status="passed", seconds=0.0)
        try:
            handler = {"conversation": self._conversation, "knowledge": self._knowledge, "lint": self._lint,
                       "render": self._render}[case.kind]
            handler(case, result)
            result.status = "failed" if result.failures else "passed"
        except Exception:  # noqa: BLE001 - one broken case must not hide the others' results
            result.status = "error"
            result.error = traceback.format_exc(limit=8)
        finally:
            if result.thread and not self.options.keep_threads:
                with contextlib.suppress(Exception):
                    self.engine.delete_thread(result.thread)
        result.seconds = time.perf_counter() - started
        return result

    # -- conversations --------------------------------------------------------

    def new_thread(self) -> str:
        """A thread id unique to this run (short: workspace folder names are cut at 80 characters)."""
        self._counter += 1
        return f"eval-{self.run_id}-{self._counter:05d}"

    def turn(self, thread: str, text: str) -> Observation:
        """Run one turn through the graph and observe it."""
        engine = self.engine
        config = engine.config(thread)
        before = {m.id for m in engine.graph.get_state(config).values.get("messages") or []}
        route: list[str] = []
        outcome = None
        if self.model_calls:
            self.model_calls()  # forget calls made outside this turn (the judge's, an earlier turn's)
        started = time.perf_counter()
        for kind, value in engine.stream_turn(thread, text):
            if kind == "step":
                route.append(value)
            elif kind == "done":
                outcome = value
        seconds = time.perf_counter() - started
        snapshot = engine.graph.get_state(config)
        if snapshot.interrupts:
            route += list(snapshot.next)  # an interrupted node never reports a step: it stopped, waiting
        calls = [ToolCall(name, "engine") for node in route for name in ENGINE_TOOLS.get(node, ())]
        if self.model_calls:
            calls += [ToolCall(name, "model") for name in self.model_calls()]
        else:
            for message in [m for m in snapshot.values.get("messages") or [] if m.id not in before]:
                for call in getattr(message, "tool_calls", None) or []:
                    calls.append(ToolCall(str(call.get("name", "")), "model"))
        return Observation(
            input=text, output=outcome.output, mode=outcome.mode, persona_active=outcome.persona_active,
            pending_question=outcome.pending_question, artifacts=list(outcome.artifacts), route=route,
            tool_calls=calls, workspace=engine.workspace(thread).root, icon=engine.pack.agent.icon or "",
            seconds=seconds,
        )

    def _record(self, obs: Observation, checks: list[Check]) -> TurnRecord:
        return TurnRecord(
            input=obs.input[:300], output=obs.output[:MAX_RECORDED_CHARS], route=obs.route,
            tool_calls=[c.name for c in obs.tool_calls], mode=obs.mode, pending=bool(obs.pending_question),
            seconds=round(obs.seconds, 4), failures=[c.message for c in checks if not c.ok],
        )

    def _conversation(self, case: Case, result: CaseResult) -> None:
        result.thread = self.new_thread()
        for number, turn in enumerate(case.turns, start=1):
            if turn.restart:
                # A new engine on the same home: the thread must come back from its checkpoint.
                self.engine = self._open_engine()
            obs = self.turn(result.thread, turn.input)
            checks = [Check(f"turn {number}: {c.name}", c.ok, c.message)
                      for c in check_turn(obs, turn.expectations(self.options.backend))]
            result.checks += checks
            result.turns.append(self._record(obs, checks))
            if any(not c.ok for c in checks):
                break  # later turns build on this one: their failures would only echo it

    # -- knowledge ------------------------------------------------------------

    def _knowledge(self, case: Case, result: CaseResult) -> None:
        from knowledge.index import IndexUnavailableError
        from knowledge.retrieval import QueryError

        spec = case.spec
        question = spec["question"]
        try:
            hits = self.retriever().search(question, k=max(self.options.k, self.options.depth))
        except (QueryError, IndexUnavailableError) as exc:
            hits = []
            result.metrics["retrieval_error"] = str(exc)
        ids = [h.id for h in hits]
        result.metrics["top"] = ids[: self.options.k]
        result.thread = self.new_thread()
        self.turn(result.thread, "*kb-mode")
        obs = self.turn(result.thread, question)
        checks = route_and_role(obs)
        if spec["answerable"]:
            rank = first_rank(ids[: self.options.depth], spec["sources"])
            result.metrics.update(rank=rank, answerable=True)
            in_top = rank is not None and rank <= self.options.k
            checks.append(Check(f"source in top {self.options.k}", in_top,
                                "" if in_top else f"no labelled source {spec['sources']} in top {self.options.k}: "
                                                  f"{ids[: self.options.k]}"))
            missing = [f for f in spec["key_facts"] if f.lower() not in obs.output.lower()]
            result.metrics["key_facts"] = not missing
            lead = first_sentence(obs.output).lower()
            result.metrics["first_sentence_fact"] = any(f.lower() in lead for f in spec["key_facts"])
            checks.append(Check("key facts", not missing, f"the answer lacks {missing}" if missing else ""))
            cites = re.search(r"\[\d+\]", obs.output) is not None
            checks.append(Check("cites sources", cites, "" if cites else "the answer cites no source"))
        else:
            lowered = obs.output.lower()
            declined = any(m in lowered for m in NOT_FOUND_MARKERS) and not re.search(r"\[\d+\]", obs.output)
            result.metrics.update(answerable=False, declined=declined)
            checks.append(Check("declines", declined, "" if declined else "answered a question the knowledge base "
                                                                         "does not cover"))
        if self.judge is not None and spec["answerable"]:
            # Recorded even when None: a judge that was asked and could not score must show in the metric.
            result.metrics["groundedness"] = self.judge.score(question, obs.output, [h.text for h in hits[: self.options.k]])
        result.checks += checks
        result.turns.append(self._record(obs, checks))

    # -- lint -----------------------------------------------------------------

    def _lint(self, case: Case, result: CaseResult) -> None:
        from tools.lint import check_file, check_text
        from tools.lint.engine import SUFFIX_KINDS
        from tools.lint.model import ACTIONABLE

        spec = case.spec
        if spec.get("path"):
            outcome = check_file(spec["path"])
        else:
            kind = SUFFIX_KINDS.get(Path(spec["name"]).suffix.lower(), "python")
            outcome = check_text(spec["text"], kind, spec["name"])
        got = {(f.rule, f.status, f.line) for f in outcome.findings if f.status in ACTIONABLE}
        want = {(f["rule"], f["status"], f.get("line")) for f in spec.get("findings") or []}
        if any(f.get("line") is None for f in spec.get("findings") or []):
            # A finding without a line matches that rule and status on any line.
            loose = {(r, s) for r, s, line in want if line is None}
            got_loose = {(r, s, None) for r, s, _line in got if (r, s) in loose}
            got = {g for g in got if (g[0], g[1]) not in loose} | got_loose
        unexpected, missing = sorted(got - want, key=str), sorted(want - got, key=str)
        result.metrics.update(tp=len(got & want), fp=len(unexpected), fn=len(missing))
        result.checks.append(Check("no missing findings", not missing, f"missing {missing}" if missing else ""))
        result.checks.append(Check("no unexpected findings", not unexpected,
                                   f"unexpected {unexpected}" if unexpected else ""))
        passes = {f.rule for f in outcome.findings if f.status == "PASS"}
        absent = sorted(set(spec.get("pass") or []) - passes)
        result.checks.append(Check("positive evidence", not absent, f"no PASS evidence for {absent}" if absent else ""))
        if "error" in spec:
            ok = bool(outcome.error) == bool(spec["error"])
            result.checks.append(Check("error", ok, "" if ok else f"error is {outcome.error!r}"))

    # -- templates ------------------------------------------------------------

    def _render(self, case: Case, result: CaseResult) -> None:
        from tools.templates import TemplateError, render

        spec = case.spec
        expect = spec["expect"]
        template = self.engine.pack.templates.get(spec["template"])
        if template is None:
            result.checks.append(Check("template", False, f"no template {spec['template']!r} in the pack"))
            return
        values = {str(k): str(v) for k, v in (spec.get("values") or {}).items()}
        try:
            rendered = render(template, values)
        except TemplateError as exc:
            wanted = expect.get("raises")
            ok = bool(wanted) and str(wanted).lower() in str(exc).lower()
            result.checks.append(Check("raises", ok, "" if ok else f"render failed: {exc}"))
            return
        if "raises" in expect:
            result.checks.append(Check("raises", False, f"render did not fail with {expect['raises']!r}"))
        text_expect = {k: v for k, v in expect.items() if k != "parses"}
        result.checks += text_checks(rendered.text, text_expect, what="rendered text")
        if "parses" in expect:
            error = parse_error(rendered.text, str(expect["parses"]))
            result.checks.append(Check("parses", error is None, f"does not parse as {expect['parses']}: {error}"
                                       if error else ""))
        if "missing" in expect:
            want = sorted(str(m) for m in expect["missing"] or [])
            ok = sorted(rendered.missing) == want
            result.checks.append(Check("missing", ok, "" if ok else f"missing {sorted(rendered.missing)}, want {want}"))
        if "secrets_replaced" in expect:
            want = sorted(str(m) for m in expect["secrets_replaced"] or [])
            ok = sorted(rendered.secrets_replaced) == want
            result.checks.append(Check("secrets_replaced", ok, "" if ok else
                                       f"secrets replaced in {sorted(rendered.secrets_replaced)}, want {want}"))
        for needle in expect.get("notices") or []:
            ok = any(str(needle).lower() in n.lower() for n in rendered.notices)
            result.checks.append(Check("notices", ok, "" if ok else f"no notice mentions {needle!r}"))


def route_and_role(obs: Observation) -> list[Check]:
    """A kb answer's route and role: ``route → answer_kb``, in kb-mode, the role speaking."""
    return route_checks(obs.route, {"route": ["route", "answer_kb"]}) + [in_role_check(obs, True)]


def label_matches(hit_id: str, label: str) -> bool:
    """Whether a hit id satisfies a source label (the rule of ``kb_questions.yaml``'s header)."""
    if hit_id == label or hit_id.startswith(label + "#"):
        return True
    return "#" in label and hit_id.startswith(label)


def first_rank(ids: list[str], labels: list[str]) -> int | None:
    """1-based rank of the first hit matching any label, or ``None``."""
    for rank, hit_id in enumerate(ids, start=1):
        if any(label_matches(hit_id, label) for label in labels):
            return rank
    return None
