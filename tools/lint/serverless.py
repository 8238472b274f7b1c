"""SE406: code run by a serverless job task that uses a trigger serverless compute does not support.

On serverless compute for notebooks and jobs a ``writeStream`` query may only
use ``trigger(availableNow=True)`` (or the deprecated ``once``); the
processing-time, continuous and real-time triggers fail. Which code runs on
serverless is written in the job spec, not in the code, so this rule joins
the two: a job task with no cluster (no ``new_cluster``, ``existing_cluster_id``
or ``job_cluster_key``) runs on serverless, and the notebook or Python file it
names is read (relative paths from the spec's folder, as bundles resolve them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tools.lint.catalog import make_finding
from tools.lint.config_loader import ConfigError, LDict, LList, load_json, load_yaml
from tools.lint.model import FileResult

_UNSUPPORTED = re.compile(r"\.trigger\(\s*(?P<kind>processingTime|continuous|realTime)\s*=")
_CODE_SUFFIXES = ("", ".py", ".sql", ".ipynb")
_COMPUTE_KEYS = ("new_cluster", "existing_cluster_id", "job_cluster_key")


def _jobs(document: Any) -> list[LDict]:
    """Job specs in a document: bundle ``resources.jobs.*``, Jobs API payloads and ``settings`` wrappers."""
    jobs: list[LDict] = []
    if not isinstance(document, LDict):
        return jobs
    resources = document.get("resources")
    if isinstance(resources, LDict) and isinstance(resources.get("jobs"), LDict):
        jobs += [job for job in resources["jobs"].values() if isinstance(job, LDict)]
    for candidate in (document, document.get("settings"), document.get("new_settings")):
        if isinstance(candidate, LDict) and isinstance(candidate.get("tasks"), LList):
            jobs.append(candidate)
    return jobs


def _code_path(task: LDict) -> str | None:
    for key, field in (("notebook_task", "notebook_path"), ("spark_python_task", "python_file")):
        block = task.get(key)
        if isinstance(block, LDict) and isinstance(block.get(field), str):
            return block[field]
    return None


def _resolve(config: Path, reference: str) -> Path | None:
    """The file a task names, relative to the spec's folder; ``None`` for workspace or repo paths we cannot see."""
    if reference.startswith(("/", "dbfs:", "${")) or "://" in reference:
        return None
    base = (config.parent / reference).resolve()
    for suffix in _CODE_SUFFIXES:
        candidate = base.with_name(base.name + suffix) if suffix else base
        if candidate.is_file():
            return candidate
    return None


def check_serverless_triggers(results: list[FileResult]) -> None:
    """Add SE406 findings to the code files (or, when not checked, the job specs) of ``results``, in place."""
    by_path = {Path(r.path).resolve(): r for r in results}
    for result in results:
        path = Path(result.path)
        if path.suffix.lower() not in (".yml", ".yaml", ".json") or result.error:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "tasks" not in text or ("notebook_path" not in text and "python_file" not in text):
            continue  # no job task that names code: nothing to join
        try:
            documents = load_yaml(text) if path.suffix.lower() != ".json" else load_json(text)
        except ConfigError:
            continue
        lines = text.splitlines()
        for document in documents:
            for job in _jobs(document):
                for task in job.get("tasks") or []:
                    if isinstance(task, LDict) and not any(k in task for k in _COMPUTE_KEYS):
                        _check_task(path, task, lines, result, by_path)


def _check_task(config: Path, task: LDict, lines: list[str], result: FileResult,
                by_path: dict[Path, FileResult]) -> None:
    reference = _code_path(task)
    code = _resolve(config, reference) if reference else None
    if code is None:
        return
    try:
        code_lines = code.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    task_key = task.get("task_key", "?")
    for number, line in enumerate(code_lines, start=1):
        match = _UNSUPPORTED.search(line)
        if not match:
            continue
        kind = match.group("kind")
        detail = (f"trigger({kind}=...) in code that job task '{task_key}' ({config.name}) runs on serverless "
                  "compute, which supports only availableNow for streaming queries: the query fails to start.")
        target = by_path.get(code.resolve())
        if target is not None:
            target.findings.append(make_finding("SE406", "FAIL", number, detail, line))
            target.findings.sort(key=lambda f: (f.line or 0, f.rule, f.status))
        else:
            task_line = task.key_line("task_key")
            evidence = lines[task_line - 1] if task_line and 0 < task_line <= len(lines) else ""
            result.findings.append(make_finding("SE406", "FAIL", task_line, f"{detail} (at {code.name}:{number})",
                                                evidence))
