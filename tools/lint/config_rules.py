"""Rules for YAML/JSON configs: connector option maps, job and pipeline specs.

Recognised shapes:

- connector option maps anywhere in a document (Kafka, Event Hubs, Kinesis,
  Auto Loader keys, or ``{format: kafka, options: {...}}``);
- Databricks jobs: Asset Bundle ``resources.jobs.<name>``, Jobs API payloads
  (``{name, tasks}``, ``{settings: ...}``, ``{new_settings: ...}``) and the
  bundle template's ``workflow:`` block;
- Lakeflow / DLT pipelines: ``resources.pipelines.<name>`` and Pipelines API
  payloads (``{libraries, continuous, ...}``, ``{spec: ...}``);
- any ``checkpoint_location`` / ``checkpointLocation`` value.
"""

from __future__ import annotations

import re
from typing import Any

from tools.budget import check_time
from tools.lint.catalog import make_finding
from tools.lint.config_loader import LDict, LList
from tools.lint.model import Finding
from tools.lint.source_rules import OptionValue, SourceSpec, check_source, source_kind

_STREAMING_TOKENS = frozenset({"stream", "streaming", "streams", "kafka", "autoloader", "cloudfiles", "eventhub",
                               "eventhubs", "kinesis"})
_CHECKPOINT_KEY = re.compile(r"^checkpoint[_-]?location$", re.I)
_EPHEMERAL_PREFIXES = ("/tmp/", "dbfs:/tmp/", "file:/tmp/", "/dbfs/tmp/", "/local_disk0/")
_PIPELINE_KEYS = frozenset({"continuous", "development", "edition", "channel", "catalog", "target", "clusters",
                            "photon", "serverless"})
_PIPELINE_FAILURE_ALERTS = frozenset({"on-update-failure", "on-update-fatal-failure", "on-flow-failure"})


def _first_line(mapping: LDict) -> int | None:
    """The line of a mapping's first key: better evidence than a JSON ``{`` line."""
    lines = getattr(mapping, "key_lines", None)
    return min(lines.values()) if lines else mapping.line


def _text(value: Any) -> str | None:
    """A scalar as option text (YAML ``true`` becomes ``"true"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


class _ConfigChecker:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.findings: list[Finding] = []
        self.checkpoints: dict[str, int] = {}
        self._handled: set[int] = set()

    def evidence(self, line: int | None) -> str:
        return self.lines[line - 1].strip() if line and 1 <= line <= len(self.lines) else ""

    def emit(self, rule: str, status: str, line: int | None, detail: str) -> None:
        self.findings.append(make_finding(rule, status, line, detail, self.evidence(line)))

    # -- document walk ------------------------------------------------------
    def check_document(self, document: Any) -> None:
        if isinstance(document, LDict):
            self._check_root_shapes(document)
        stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
        while stack:
            value, path = stack.pop()
            if isinstance(value, LDict):
                self._check_mapping(value, path)
                stack.extend((child, (*path, str(key))) for key, child in reversed(list(value.items())))
            elif isinstance(value, LList):
                stack.extend((child, (*path, "[]")) for child in reversed(value))

    def _check_root_shapes(self, root: LDict) -> None:
        if isinstance(root.get("tasks"), LList):
            self._check_job(root, root.key_line("tasks"))
        for key in ("settings", "new_settings"):
            if isinstance(root.get(key), LDict) and isinstance(root[key].get("tasks"), LList):
                self._check_job(root[key], root.key_line(key))
        workflow = root.get("workflow")
        if isinstance(workflow, LDict) and "tasks" in workflow:
            self._check_job(workflow, root.key_line("workflow"))
        if isinstance(root.get("libraries"), LList) and _PIPELINE_KEYS & set(root):
            self._check_pipeline(root, root.key_line("libraries"))
        if isinstance(root.get("spec"), LDict) and "libraries" in root["spec"]:
            self._check_pipeline(root["spec"], root.key_line("spec"))

    def _check_mapping(self, mapping: LDict, path: tuple[str, ...]) -> None:
        if len(path) == 3 and path[0] == "resources" and path[1] == "jobs":
            self._check_job(mapping, mapping.line)
        if len(path) == 3 and path[0] == "resources" and path[1] == "pipelines":
            self._check_pipeline(mapping, mapping.line)
        for key, value in mapping.items():
            if isinstance(key, str) and _CHECKPOINT_KEY.match(key) and isinstance(value, str):
                self._check_checkpoint(value, mapping.key_line(key))
        self._check_option_map(mapping)

    # -- checkpoints ----------------------------------------------------------
    def _check_checkpoint(self, path: str, line: int | None) -> None:
        if re.fullmatch(r"\s*\{\{[^}]*\}\}\s*", path):
            return  # an unrendered template field, not a path
        if path.startswith(_EPHEMERAL_PREFIXES):
            self.emit("SE203", "PARTIAL", line, f"Checkpoint '{path}' is on ephemeral storage.")
        key = path.rstrip("/")
        if key in self.checkpoints:
            self.emit("SE202", "FAIL", line, f"Checkpoint '{path}' is also used at line {self.checkpoints[key]}.")
        else:
            self.checkpoints[key] = line or 0

    # -- connector option maps ------------------------------------------------
    def _check_option_map(self, mapping: LDict) -> None:
        if id(mapping) in self._handled:
            return
        options = mapping.get("options")
        fmt = mapping.get("format")
        if isinstance(options, LDict) and isinstance(fmt, str) and source_kind(fmt) != "other":
            self._handled.add(id(options))
            option_keys = {str(k).lower() for k in options}
            if source_kind(fmt) == "kafka" and not option_keys & {"subscribe", "subscribepattern", "assign"}:
                return  # a Kafka sink's options ("topic"), not a reader
            self._source(options, source_kind(fmt), mapping.key_line("format"), fmt)
            return
        keys = {str(k).lower() for k in mapping}
        kind = None
        # A Kafka reader's option map names what it reads (subscribe / subscribePattern / assign); connection
        # settings kept elsewhere (a framework's source_details, a sink's options) are not a reader.
        if keys & {"subscribe", "subscribepattern", "assign"} and (
            "kafka.bootstrap.servers" in keys or any(k.startswith("kafka.") for k in keys)
        ):
            kind = "kafka"
        elif "eventhubs.connectionstring" in keys:
            kind = "eventhubs"
        elif "streamname" in keys and keys & {"initialposition", "region", "aws.region"}:
            kind = "kinesis"
        elif any(k.startswith("cloudfiles.") for k in keys):
            kind = "autoloader"
        if kind is not None:
            self._source(mapping, kind, _first_line(mapping), None)

    def _source(self, mapping: LDict, kind: str, line: int | None, fmt: str | None) -> None:
        options: dict[str, OptionValue] = {}
        for key, value in mapping.items():
            key_line = mapping.key_line(key)
            options[str(key).lower()] = OptionValue(_text(value), key_line, self.evidence(key_line))
        file_format = options.get("cloudfiles.format")
        spec = SourceSpec(
            kind=kind,  # type: ignore[arg-type]
            line=line,
            evidence=self.evidence(line),
            context="config",
            options=options,
            schema_given=True if "schema" in options else None,
            file_format=(file_format.value or "").lower() if file_format else (fmt or "").lower() or None,
        )
        self.findings.extend(check_source(spec))

    # -- jobs -----------------------------------------------------------------
    def _check_job(self, job: LDict, line: int | None) -> None:
        tasks = [t for t in job.get("tasks") or [] if isinstance(t, LDict)]
        continuous = isinstance(job.get("continuous"), LDict) or job.get("trigger") == "continuous"
        continuous_line = job.key_line("continuous") if "continuous" in job else job.key_line("trigger")
        if not continuous and not self._names_streaming(job, tasks):
            return  # a batch job: not this linter's business
        if continuous and not self._job_notifies_failure(job, tasks):
            self.emit("SE901", "PARTIAL", continuous_line,
                      "Continuous job has no on_failure email or webhook notification.")
        if continuous:
            retrying = next((t for t in tasks if "max_retries" in t), None)
            if retrying is not None:
                self.emit("SE902", "REVIEW", retrying.key_line("max_retries"),
                          "max_retries is set on a continuous job, which does not use task retry policies.")
        elif "schedule" in job or isinstance(job.get("trigger"), dict):
            # Retries matter for a job that runs by itself (schedule, file arrival, table update);
            # a job started by hand is watched by whoever started it.
            for task in tasks:
                retries = task.get("max_retries")
                if retries in (None, 0):
                    self.emit("SE902", "PARTIAL", task.key_line("task_key"),
                              f"Streaming task '{task.get('task_key', '?')}' has no retry policy (max_retries).")
        concurrent = job.get("max_concurrent_runs")
        if isinstance(concurrent, int) and not isinstance(concurrent, bool) and concurrent > 1:
            self.emit("SE204", "FAIL", job.key_line("max_concurrent_runs"),
                      f"max_concurrent_runs is {concurrent}: concurrent runs would share the streaming checkpoint.")
        for task in tasks:
            if "existing_cluster_id" in task:
                self.emit("SE903", "PARTIAL", task.key_line("existing_cluster_id"),
                          f"Task '{task.get('task_key', '?')}' runs on an all-purpose cluster.")
        clusters = [(t, t.get("new_cluster")) for t in tasks]
        clusters += [(c, c.get("new_cluster")) for c in job.get("job_clusters") or [] if isinstance(c, LDict)]
        for owner, cluster in clusters:
            if isinstance(cluster, LDict) and "policy_id" not in cluster:
                self.emit("SE904", "REVIEW", owner.key_line("new_cluster"), "new_cluster has no policy_id.")
        if continuous and not self._has_backlog_rule(job):
            self.emit("SE905", "REVIEW", continuous_line,
                      "Continuous job has no STREAMING_BACKLOG_* health rule.")

    @staticmethod
    def _names_streaming(job: LDict, tasks: list[LDict]) -> bool:
        """A scheduled job counts as streaming when its name, a task key or a task's code path says so as a word.

        Searching the whole JSON for "stream" counted a Markdown notebook task
        (``.../Streaming-Intro``) or a description as a streaming job.
        """
        texts = [str(job.get("name", ""))]
        for task in tasks:
            texts.append(str(task.get("task_key", "")))
            for key in ("notebook_task", "spark_python_task", "python_wheel_task"):
                block = task.get(key)
                if isinstance(block, dict):
                    texts.append(str(block.get("notebook_path") or block.get("python_file") or ""))
        words = {w for text in texts for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", text).lower())}
        return bool(words & _STREAMING_TOKENS)

    @staticmethod
    def _job_notifies_failure(job: LDict, tasks: list[LDict]) -> bool:
        for owner in (job, *tasks):
            for key in ("email_notifications", "webhook_notifications"):
                block = owner.get(key)
                if isinstance(block, dict) and block.get("on_failure"):
                    return True
        return False

    @staticmethod
    def _has_backlog_rule(job: LDict) -> bool:
        health = job.get("health")
        rules = health.get("rules") if isinstance(health, dict) else None
        return any(
            isinstance(rule, dict) and str(rule.get("metric", "")).upper().startswith("STREAMING_BACKLOG")
            for rule in rules or []
        )

    # -- pipelines --------------------------------------------------------------
    def _check_pipeline(self, pipeline: LDict, line: int | None) -> None:
        if pipeline.get("continuous") is True:
            alerts: set[str] = set()
            for notification in pipeline.get("notifications") or []:
                if isinstance(notification, dict) and notification.get("email_recipients"):
                    alerts.update(str(a) for a in notification.get("alerts") or [])
            if not alerts & _PIPELINE_FAILURE_ALERTS:
                self.emit("SE901", "PARTIAL", pipeline.key_line("continuous"),
                          "Continuous pipeline has no failure notifications (on-update-failure / on-flow-failure).")
        if pipeline.get("development") is True:
            self.emit("SE906", "REVIEW", pipeline.key_line("development"), "Pipeline runs in development mode.")
        if pipeline.get("serverless") is not True:
            for cluster in pipeline.get("clusters") or []:
                if isinstance(cluster, LDict) and "policy_id" not in cluster:
                    self.emit("SE904", "REVIEW", _first_line(cluster), "Pipeline cluster has no policy_id.")


def check_config(documents: list[Any], lines: list[str]) -> list[Finding]:
    """All config-rule findings for the loaded documents of one file.

    Args:
        documents: output of ``load_yaml`` / ``load_json``.
        lines: the file's lines, for evidence.

    Returns:
        Findings before suppression.

    """
    checker = _ConfigChecker(lines)
    for document in documents:
        check_time()
        checker.check_document(document)
    return checker.findings
