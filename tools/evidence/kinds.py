"""Artefact kinds: what sort of file a checklist target is, and so what it can show.

A checklist item is evidenced by what an artefact *does* or *declares*, and
different kinds of artefact declare different things: a PySpark file shows its
trigger and rate limit, never a budget; a job bundle shows retries and a
cluster policy, never an idempotency key; a runbook shows escalation, never a
watermark. Each facet of a pack checklist names the kinds that can evidence it
(``kinds:``); an item none of whose facets the targets' kinds can show is N/A
for those targets.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import yaml

CODE, SQL, CONFIG, JOB, DOC, RUNBOOK, ANSWERS, SCRIPT, REPORT = (
    "code", "sql", "config", "job", "doc", "runbook", "answers", "script", "report")

# Kinds whose facts can evidence a checklist item (a report of a checklist run never can).
EVIDENCE_KINDS: tuple[str, ...] = (CODE, SQL, CONFIG, JOB, DOC, RUNBOOK, ANSWERS, SCRIPT)
KINDS: tuple[str, ...] = (*EVIDENCE_KINDS, REPORT)

LABELS: dict[str, str] = {
    CODE: "a code file",
    SQL: "a SQL file",
    CONFIG: "a settings file",
    JOB: "a job / bundle / pipeline config",
    DOC: "a design document",
    RUNBOOK: "a runbook",
    ANSWERS: "the task's answers",
    SCRIPT: "a shell script",
    REPORT: "a checklist or gate report",
}
SHORT: dict[str, str] = {CODE: "code", SQL: "SQL", CONFIG: "settings file", JOB: "job/bundle config",
                         DOC: "design document", RUNBOOK: "runbook", ANSWERS: "answers", SCRIPT: "script",
                         REPORT: "report"}

_JOB_KEYS = frozenset({"bundle", "resources", "targets", "tasks", "job_clusters", "continuous", "schedule",
                       "trigger", "max_concurrent_runs", "email_notifications", "webhook_notifications",
                       "libraries", "clusters", "development", "pipeline_task", "new_cluster"})
_RUNBOOK_WORDS = re.compile(r"runbook|playbook|on-?call|值守|值班|运行手册", re.I)
_REPORT_NAME = re.compile(r"(^|/)docs/(checklists|gates)/|-report\.md$|(^|/)streaming-release\.md$")


def _is_job_config(data: object) -> bool:
    if not isinstance(data, dict):
        return False
    return bool(_JOB_KEYS & set(map(str, data)))


def _load_config(text: str, suffix: str) -> list[object]:
    try:
        if suffix == ".json":
            return [json.loads(text)]
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (ValueError, yaml.YAMLError, RecursionError):
        return []


def classify(name: str, text: str) -> str:
    """The kind of one target, from its name (and, for configs and Markdown, its content).

    Args:
        name: the target's name (a workspace path, a file name, ``inputs`` for a task's
            answers, ``pasted text``).
        text: its content.

    Returns:
        One of ``KINDS``.

    """
    posix = name.replace("\\", "/")
    suffix = PurePosixPath(posix).suffix.lower()
    if posix == "inputs":
        return ANSWERS
    if suffix == ".md" and _REPORT_NAME.search(posix):
        return REPORT
    if suffix in (".py", ".ipynb"):
        return CODE
    if suffix == ".sql":
        return SQL
    if suffix in (".sh", ".bash"):
        return SCRIPT
    if suffix in (".yaml", ".yml", ".json"):
        documents = _load_config(text, suffix)
        return JOB if any(_is_job_config(d) for d in documents) else CONFIG
    title = next((line for line in text.splitlines() if line.startswith("# ")), "")
    if _RUNBOOK_WORDS.search(PurePosixPath(posix).name) or _RUNBOOK_WORDS.search(title):
        return RUNBOOK
    return DOC


def held_by(kinds: list[str] | set[str] | tuple[str, ...]) -> str:
    """``a code file`` for one kind, ``these code and SQL files`` for several: who holds the evidence."""
    named = [k for k in KINDS if k in kinds]
    if len(named) == 1:
        return LABELS[named[0]]
    return "these " + describe(named).replace(" or ", " and ") + " files" if named else "the target"


def describe(kinds: list[str] | set[str] | tuple[str, ...]) -> str:
    """``code, SQL or runbook`` for a set of kinds, in ``KINDS`` order."""
    names = [SHORT[k] for k in KINDS if k in kinds]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]
