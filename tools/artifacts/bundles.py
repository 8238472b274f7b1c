"""Databricks Asset Bundle pieces shared by the job-producing tasks.

Field names follow the Jobs API and bundle reference as summarised in the
pack's jobs-asset-bundles article: ``continuous`` (``pause_status``,
``task_retry_mode``), ``trigger.file_arrival``, ``schedule``,
``email_notifications`` / ``webhook_notifications`` (``on_failure``,
``on_duration_warning_threshold_exceeded``, ``on_streaming_backlog_exceeded``),
``health.rules`` and ``max_concurrent_runs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.artifacts.base import Duration, channels, slug


@dataclass
class JobSpec:
    """What one streaming job needs."""

    name: str
    task_key: str
    python_file: str
    cluster_key: str
    trigger: str = "continuous"  # continuous | file arrival | scheduled
    parameters: list[str] = field(default_factory=list)
    notify: str = ""  # "email:a@x.com, webhook:<destination-id>, slack:#x"
    max_retries: int = 3
    backlog_threshold: Duration | None = None  # continuous: STREAMING_BACKLOG_SECONDS rule
    run_duration_warning: Duration | None = None  # scheduled / file arrival: RUN_DURATION_SECONDS rule
    schedule_every: Duration | None = None
    file_arrival_url: str = ""
    pause_status: str = "UNPAUSED"
    tags: dict[str, str] = field(default_factory=dict)
    use_pool: bool = False


def quartz_every(every: Duration) -> str:
    """A Quartz cron expression that fires every ``every`` (minutes or hours; at least one minute)."""
    minutes = max(1, round(every.seconds / 60))
    if minutes < 60:
        return f"0 0/{minutes} * * * ?"
    hours = max(1, round(minutes / 60))
    return f"0 0 0/{hours} * * ?" if hours < 24 else "0 0 0 * * ?"


def notifications(text: str, events: list[str]) -> dict[str, Any]:
    """``email_notifications`` / ``webhook_notifications`` for ``events`` from a channel list.

    ``email:`` targets become e-mail recipients; ``webhook:<id>`` targets become
    system-destination ids. Other channels (Slack, PagerDuty) need a
    notification destination created first; the bundle header lists them.
    """
    out: dict[str, Any] = {}
    mails = [target for kind, target in channels(text) if kind == "email" and "@" in target]
    hooks = [target for kind, target in channels(text) if kind == "webhook" and target]
    if mails:
        out["email_notifications"] = {event: list(mails) for event in events}
    if hooks:
        out["webhook_notifications"] = {event: [{"id": hook} for hook in hooks] for event in events}
    return out


def other_channels(text: str) -> list[str]:
    """Channels that are neither e-mail nor webhook ids (they need a notification destination)."""
    return [f"{kind}:{target}" for kind, target in channels(text) if kind not in ("email", "webhook")]


def job_resource(spec: JobSpec) -> dict[str, Any]:
    """The ``resources.jobs.<key>`` mapping for ``spec``."""
    job: dict[str, Any] = {"name": spec.name, "max_concurrent_runs": 1}
    task: dict[str, Any] = {
        "task_key": spec.task_key,
        "job_cluster_key": spec.cluster_key,
        "spark_python_task": {"python_file": spec.python_file, **({"parameters": spec.parameters}
                                                                   if spec.parameters else {})},
    }
    if spec.trigger == "continuous":
        job["continuous"] = {"pause_status": spec.pause_status, "task_retry_mode": "ON_FAILURE"}
        events = ["on_failure", "on_streaming_backlog_exceeded"]
        if spec.backlog_threshold is not None:
            job["health"] = {"rules": [{"metric": "STREAMING_BACKLOG_SECONDS", "op": "GREATER_THAN",
                                        "value": spec.backlog_threshold.whole_seconds}]}
    else:
        if spec.trigger == "file arrival":
            job["trigger"] = {"pause_status": spec.pause_status,
                              "file_arrival": {"url": spec.file_arrival_url, "min_time_between_triggers_seconds": 60,
                                               "wait_after_last_change_seconds": 60}}
        else:
            job["schedule"] = {"quartz_cron_expression": quartz_every(spec.schedule_every or Duration(15, "minutes")),
                               "timezone_id": "UTC", "pause_status": spec.pause_status}
        task.update(max_retries=spec.max_retries, min_retry_interval_millis=60000, retry_on_timeout=True)
        if spec.run_duration_warning is not None:
            task["timeout_seconds"] = spec.run_duration_warning.whole_seconds * 3
            job["health"] = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN",
                                        "value": spec.run_duration_warning.whole_seconds}]}
        events = ["on_failure", "on_duration_warning_threshold_exceeded"]
    job.update(notifications(spec.notify, events))
    cluster: dict[str, Any] = {
        "spark_version": "${var.spark_version}",
        "num_workers": "${var.num_workers}",
        "policy_id": "${var.cluster_policy_id}",
    }
    if spec.use_pool:
        cluster["instance_pool_id"] = "${var.instance_pool_id}"
    else:
        cluster["node_type_id"] = "${var.node_type_id}"
    job["job_clusters"] = [{"job_cluster_key": spec.cluster_key, "new_cluster": cluster}]
    job["tasks"] = [task]
    if spec.tags:
        job["tags"] = dict(spec.tags)
    return job


def bundle_variables(policy: str, pool: str | None = None) -> dict[str, Any]:
    """Bundle variables: the policy (and pool) looked up by name, cluster shape with defaults to override."""
    variables: dict[str, Any] = {
        "cluster_policy_id": {"description": "Cluster policy that caps size and enforces cost tags",
                              "lookup": {"cluster_policy": policy}},
        "spark_version": {"description": "Databricks Runtime of the job cluster", "default": "15.4.x-scala2.12"},
        "num_workers": {"description": "Fixed size: streaming jobs do not use classic autoscaling", "default": 2},
    }
    if pool:
        variables["instance_pool_id"] = {"description": "Instance pool the job cluster draws from",
                                         "lookup": {"instance_pool": pool}}
    else:
        variables["node_type_id"] = {"description": "Node type (cloud specific: i3.xlarge on AWS, "
                                                    "Standard_D4ds_v5 on Azure, n2-highmem-4 on GCP)",
                                     "default": "i3.xlarge"}
    return variables


def bundle(name: str, jobs: dict[str, dict[str, Any]], variables: dict[str, Any]) -> dict[str, Any]:
    """A whole ``databricks.yml`` with dev (development mode) and prod (production mode) targets."""
    return {
        "bundle": {"name": slug(name, "-")},
        "variables": variables,
        "resources": {"jobs": jobs},
        "targets": {"dev": {"mode": "development", "default": True}, "prod": {"mode": "production"}},
    }
