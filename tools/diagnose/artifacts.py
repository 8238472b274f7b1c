"""Diagnosis artefacts for ``*backpressure-tune``, ``*latency-slo`` and ``*state-store``.

When the task's ``progress_log`` answer names a file (or folder) of the
thread's workspace — uploads land in ``uploads/`` — the task's document gets a
stream-health report and its charts. The task's other answers sharpen the
diagnosis: the trigger interval, the rate limit and the target batch duration
(``*backpressure-tune``), the latency and freshness objectives and the rendered
SLO template (``*latency-slo``), the state store provider and the planned
number of keys (``*state-store``).

The files go beside the document (``docs/streaming/latency-slo-health.md``,
``docs/streaming/latency-slo-health-<query>-rates.png``) so the document's
image links, which are relative to the document, resolve.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tools.diagnose import FileDiagnosis, ProgressError, Settings, chart_file_name, diagnose_file, discover, parse_duration_ms
from tools.diagnose import report as reports
from tools.diagnose import slo as slos

if TYPE_CHECKING:
    from tools.artifacts import Artifact
    from tools.workspace import Workspace

TASKS = ("backpressure-and-throughput", "latency-slo-and-alerts", "state-store-management")
QUESTION = "progress_log"
SLO_TEMPLATE = "latency-slo-tmpl.yaml"
NO_ANSWER = {"", "none", "no", "n/a", "na", "-", "skip", "default", "无", "没有", "否"}
MAX_FILES = 20  # a folder of logs: enough for a few queries, never a whole bucket


def wants_diagnosis(task_id: str, answers: dict[str, str]) -> bool:
    """Whether the task is one of the three and its answer names a progress log."""
    return task_id in TASKS and str(answers.get(QUESTION) or "").strip().lower() not in NO_ANSWER


def _ms(text: object) -> float | None:
    try:
        return parse_duration_ms(str(text)) if text not in (None, "") else None
    except ValueError:
        return None


def _int(text: object) -> int | None:
    try:
        return int(str(text).replace(",", "").replace("_", "").strip())
    except ValueError:
        return None


def settings_for(task_id: str, answers: dict[str, str], rendered: dict[str, str]) -> Settings:
    """The diagnosis settings the task's answers imply."""
    if task_id == "backpressure-and-throughput":
        return Settings(trigger_ms=_ms(answers.get("trigger_interval")),
                        rate_limit=_int(answers.get("max_offsets_per_trigger")),
                        target_batch_ms=_ms(answers.get("target_batch_duration")))
    if task_id == "latency-slo-and-alerts":
        try:
            slo = slos.from_text(rendered[SLO_TEMPLATE], f"the rendered {SLO_TEMPLATE}") if rendered.get(
                SLO_TEMPLATE) else slos.load()
        except ValueError:
            slo = slos.load()
        latency, freshness = _ms(answers.get("latency_objective")), _ms(answers.get("freshness_objective"))
        changes = {}
        if latency:
            changes["latency_p95_ms"] = latency
        if freshness:
            changes["freshness_p95_min"] = freshness / 60000
        if changes:
            slo = slos.SloThresholds(**{**slo.__dict__, **changes, "source": slo.source + " and your objectives"})
        return Settings(slo=slo)
    if task_id == "state-store-management":
        provider = str(answers.get("state_store_provider") or "").lower()
        return Settings(state_provider="RocksDB" if "rocksdb" in provider else "HDFS-backed" if provider else None,
                        expected_state_keys=_int(answers.get("expected_state_keys")))
    return Settings()


def _note(doc_location: str, answer: str, reason: str) -> list[Artifact]:
    from tools.artifacts import Artifact

    doc = PurePosixPath(doc_location)
    text = (f"# Stream health diagnosis\n\nThe progress log `{answer}` could not be read: {reason}\n\n"
            "Upload a `query.recentProgress` dump (JSON array), a StreamingQueryListener log (JSON Lines) or the "
            "pipeline event log's flow_progress rows to `uploads/`, then run the command again with its path.\n")
    return [Artifact(str(doc.parent / f"{doc.stem}-health.md"), text, "markdown",
                     f"Stream health diagnosis: `{answer}` could not be read")]


def diagnosis_artifacts(task_id: str, answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                        workspace: Workspace | None) -> list[Artifact]:
    """The report and charts for the progress log the task's answer names (none when it names none)."""
    if not wants_diagnosis(task_id, answers) or workspace is None:
        return []
    from tools.artifacts import Artifact
    from tools.diagnose.charts import render
    from tools.workspace import WorkspaceError

    answer = str(answers[QUESTION]).strip()
    try:
        target = workspace.resolve(answer)
    except WorkspaceError as exc:
        return _note(doc_location, answer, str(exc))
    if not target.exists():
        return _note(doc_location, answer, "there is no such file in this thread's workspace")
    settings = settings_for(task_id, answers, rendered)
    results: list[FileDiagnosis] = []
    problems = []
    for path in discover([target])[:MAX_FILES]:
        try:
            results.append(diagnose_file(path, settings))
        except ProgressError as exc:
            problems.append(str(exc).replace(str(workspace.root) + "/", ""))
    if not results:
        return _note(doc_location, answer, "; ".join(problems) or "the folder holds no .json/.jsonl/.log files")
    doc = PurePosixPath(doc_location)
    prefix = f"{doc.stem}-health"
    artifacts, links = [], {}
    for result in results:
        relative = workspace.relative(Path(result.path))
        result.path = relative  # the report names workspace paths, never the server's folders
        for diagnosis in result.diagnoses:
            names = {}
            for chart, png in render(diagnosis).items():
                name = chart_file_name(prefix, diagnosis.query, chart)
                names[chart] = name
                artifacts.append(Artifact(str(doc.parent / name), png, "png",
                                          f"{reports.CHART_TITLES[chart]} of `{diagnosis.query}` ({relative})"))
            links[(relative, diagnosis.query)] = names
    text = reports.markdown([(r.path, r.diagnoses) for r in results], links,
                            title=f"Stream health diagnosis · 流健康诊断 (`{answer}`)")
    if problems:
        text += "\nFiles left out: " + "; ".join(problems) + "\n"
    verdicts = [d.verdict for r in results for d in r.diagnoses]
    summary = verdicts[0] if len(verdicts) == 1 else f"{sum(v == 'healthy' for v in verdicts)} of {len(verdicts)} healthy"
    report = Artifact(str(doc.parent / f"{prefix}.md"), text, "markdown",
                      f"Stream health diagnosis of `{answer}`: {summary}")
    return [report, *artifacts]
