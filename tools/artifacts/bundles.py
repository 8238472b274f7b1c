"""Databricks Asset Bundle pieces shared by the tasks that deploy something.

Field names follow the Jobs / Pipelines APIs and the bundle reference as summarised in the
pack's jobs-asset-bundles article: ``continuous`` (``pause_status``, ``task_retry_mode``),
``trigger.file_arrival``, ``schedule``, ``email_notifications`` / ``webhook_notifications``,
``health.rules``, ``max_concurrent_runs``, ``environments`` (serverless) and ``job_clusters``
(classic), ``pipeline_task``.

Every bundle has the same two targets, so what ``databricks bundle validate`` checks holds
for all of them (``tests/unit_tests/test_bundles_deploy.py`` proves it with the
``databricks-bundles`` models):

- ``dev``: ``mode: development`` and no explicit ``UNPAUSED`` (development mode then pauses
  every schedule and trigger); its own catalog and checkpoint root, so a dev deployment
  never reads or writes a production table's checkpoint or writes a production table.
- ``prod``: ``mode: production`` with ``workspace.root_path`` (one copy per workspace) and
  ``run_as`` a service principal found by name; schedules and continuous jobs unpaused
  here, explicitly.

The target's catalog, schema and checkpoint root are bundle variables, passed to code as
job parameters (``--catalog``, ``--schema``, ``--checkpoint-root``) or as the pipeline's
``configuration``; the generated code moves what it writes into them (``TARGET_HELPERS``).
"""

from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, field
from typing import Any

from tools.artifacts.base import Duration, channels, comment_safe, py, slug, table_name

CLASSIC = "classic"
SERVERLESS = "serverless"
DEV_USER = "${workspace.current_user.short_name}"
DEFAULT_SERVICE_PRINCIPAL = "streaming-prod"
SERVERLESS_ENVIRONMENT_VERSION = "2"
PROD_ROOT_PATH = "/Workspace/Users/${var.service_principal}/.bundle/${bundle.name}/${bundle.target}"
# Job parameters every deployed stream module understands (see TARGET_HELPERS).
TARGET_PARAMETERS = ["--catalog", "${var.catalog}", "--schema", "${var.schema}",
                     "--checkpoint-root", "${var.checkpoint_root}"]
# Pipeline configuration keys read by a deployed declarative pipeline module.
PIPELINE_CONF_PREFIX = "streaming_engineer"


# -- where each target puts its data ------------------------------------------------------

@dataclass(frozen=True)
class Namespace:
    """Where one bundle target writes: the catalog and schema of its tables, and its checkpoint root."""

    catalog: str
    schema: str
    checkpoint_root: str


@dataclass(frozen=True)
class Targets:
    """The bundle's production namespace (from the answers), its dev namespace, and who runs prod."""

    prod: Namespace
    dev: Namespace
    service_principal: str = DEFAULT_SERVICE_PRINCIPAL

    @classmethod
    def for_output(cls, table: str, checkpoint_root: str = "",
                   service_principal: str = DEFAULT_SERVICE_PRINCIPAL) -> Targets:
        """Targets for a bundle whose main output is ``table`` and whose checkpoints live under ``checkpoint_root``.

        No ``checkpoint_root`` (a declarative pipeline keeps its own checkpoints): the bundle has no such variable.
        """
        catalog, schema = table_namespace(table)
        prod = Namespace(catalog, schema, checkpoint_root.rstrip("/") or checkpoint_root)
        return cls(prod=prod, dev=dev_namespace(prod), service_principal=service_principal)


def table_namespace(table: str) -> tuple[str, str]:
    """``(catalog, schema)`` of a three-part table name (``main``, ``default`` when it has fewer parts)."""
    parts = [p.strip("`") for p in table_name(table).split(".")]
    if len(parts) >= 3:
        return parts[0], parts[1]
    return "main", parts[0] if len(parts) == 2 else "default"


def dev_namespace(prod: Namespace) -> Namespace:
    """The dev namespace: a catalog of its own (``<catalog>_dev``), the same schema, a per-user checkpoint root.

    A Unity Catalog volume path moves into the dev catalog as well; any other root gets a
    ``dev`` folder. Either way no dev query ever opens a production checkpoint. Each developer
    gets a folder of their own when the root is a volume (or deeper), where a folder may be made.
    """
    catalog = f"{prod.catalog}_dev"
    root = prod.checkpoint_root
    if not root:
        return Namespace(catalog, prod.schema, "")
    parts = root.split("/")
    if root.startswith("/Volumes/"):
        if len(parts) > 2 and parts[2] == prod.catalog:
            parts[2] = catalog
        else:  # a volume of another catalog: a dev folder beside the production checkpoints
            parts.append("dev")
        root = "/".join(parts)
        per_user = len(parts) >= 5  # /Volumes/<catalog>/<schema>/<volume>: folders can be made below it
    else:
        root, per_user = f"{root}/dev", True
    return Namespace(catalog, prod.schema, f"{root}/{DEV_USER}" if per_user else root)


def common_root(paths: list[str]) -> str:
    """The folder that holds every checkpoint in ``paths`` (the production checkpoint root)."""
    parents = [posixpath.dirname(p.rstrip("/")) or "/" for p in paths if p]
    if not parents:
        return "/Volumes/main/streaming/checkpoints"
    try:
        return posixpath.commonpath(parents) or parents[0]
    except ValueError:  # mixed absolute and relative, or different schemes
        return parents[0]


def compute_kind(answers: dict[str, str], default: str = CLASSIC) -> str:
    """``serverless`` or ``classic`` from a ``compute`` answer, else the thread design's compute, else ``default``.

    A thread that chose its compute in an earlier command deploys every later bundle on the same kind.
    """
    from tools.design import current  # imported here: the design module imports the generator families

    text = str(answers.get("compute") or answers.get("compute_kind") or current().compute or "").strip().lower()
    if text.startswith("serverless"):
        return SERVERLESS
    if text.startswith("classic") or "cluster" in text:
        return CLASSIC
    return default


# -- code the deployed modules carry ------------------------------------------------------

TARGET_HELPERS = '''def add_target_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The bundle target's namespace as job parameters; the defaults are the production values."""
    parser.add_argument("--catalog", default=PROD_CATALOG, help="catalog of the tables this job writes")
    parser.add_argument("--schema", default=PROD_SCHEMA, help="schema of the main output table")
    parser.add_argument("--checkpoint-root", default=PROD_CHECKPOINT_ROOT, help="folder of this job's checkpoints")
    return parser


def in_target(table: str, catalog: str, schema: str) -> str:
    """A table this module writes, moved from production into the target (dev never writes a prod table)."""
    parts = table.split(".")
    if len(parts) != 3 or parts[0] != PROD_CATALOG:
        return table
    return ".".join([catalog, schema if parts[1] == PROD_SCHEMA else parts[1], parts[2]])


def checkpoint_in_target(path: str, root: str) -> str:
    """A checkpoint moved under the target's checkpoint root (dev never opens a prod checkpoint)."""
    if path.startswith(PROD_CHECKPOINT_ROOT + "/"):
        return root.rstrip("/") + path[len(PROD_CHECKPOINT_ROOT):]
    return root.rstrip("/") + "/" + path.rstrip("/").rsplit("/", 1)[-1]'''


def target_constants(prod: Namespace) -> list[tuple[str, str, str]]:
    """The constants ``TARGET_HELPERS`` reads (for ``skeleton.constants``)."""
    return [
        ("PROD_CATALOG", py(prod.catalog), "production catalog; a bundle target passes its own with --catalog"),
        ("PROD_SCHEMA", py(prod.schema), "production schema of the main output; --schema replaces it"),
        ("PROD_CHECKPOINT_ROOT", py(prod.checkpoint_root), "production checkpoint root; --checkpoint-root replaces it"),
    ]


def pipeline_target_block(prod: Namespace, tables: list[str]) -> str:
    """Module-level lines that move a declarative pipeline's datasets into the target's catalog and schema.

    The bundle passes the target in the pipeline ``configuration``; outside a pipeline
    (tests, an IDE) there is no active session and the production names stay.
    """
    conf = PIPELINE_CONF_PREFIX
    lines = [
        "# -- deployment target: the bundle's pipeline configuration moves every dataset -----------",
        f"PROD_CATALOG = {py(prod.catalog)}",
        f"PROD_SCHEMA = {py(prod.schema)}",
        "",
        "",
        "def _target(key: str, default: str) -> str:",
        '    """A value of the pipeline configuration (the bundle target), or ``default`` outside a pipeline."""',
        "    active = SparkSession.getActiveSession()",
        f'    return active.conf.get(f"{conf}.{{key}}", default) if active is not None else default',
        "",
        "",
        "def in_target(table: str) -> str:",
        '    """A dataset of this pipeline moved from production into the target (dev never writes a prod table)."""',
        '    catalog, schema = _target("catalog", PROD_CATALOG), _target("schema", PROD_SCHEMA)',
        '    parts = table.split(".")',
        "    if len(parts) != 3 or parts[0] != PROD_CATALOG:",
        "        return table",
        '    return ".".join([catalog, schema if parts[1] == PROD_SCHEMA else parts[1], parts[2]])',
        "",
        "",
    ]
    lines += [f"{name} = in_target({name})" for name in tables]
    return "\n".join(lines)


# -- jobs ----------------------------------------------------------------------------------

@dataclass
class JobSpec:
    """What one job needs."""

    name: str
    task_key: str
    python_file: str = ""
    cluster_key: str = "job_cluster"
    trigger: str = "continuous"  # continuous | file arrival | scheduled | none
    parameters: list[str] = field(default_factory=list)
    notify: str = ""  # "email:a@x.com, webhook:<destination-id>, slack:#x"
    max_retries: int = 3
    backlog_threshold: Duration | None = None  # continuous: STREAMING_BACKLOG_SECONDS rule
    run_duration_warning: Duration | None = None  # scheduled / file arrival: RUN_DURATION_SECONDS rule
    schedule_every: Duration | None = None
    file_arrival_url: str = ""
    pause_status: str = ""  # "" = development mode pauses it, production runs it; "PAUSED" = paused everywhere
    tags: dict[str, str] = field(default_factory=dict)
    use_pool: bool = False
    compute: str = CLASSIC
    pipeline_key: str = ""  # set: a pipeline_task that updates this bundle's pipeline instead of a Python file


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


def _task(spec: JobSpec) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": spec.task_key}
    if spec.pipeline_key:
        # The pipeline brings its own compute; the task only starts an update.
        task["pipeline_task"] = {"pipeline_id": f"${{resources.pipelines.{spec.pipeline_key}.id}}"}
        return task
    if spec.compute == SERVERLESS:
        task["environment_key"] = "default"
    else:
        task["job_cluster_key"] = spec.cluster_key
    python: dict[str, Any] = {"python_file": spec.python_file}
    if spec.parameters:
        python["parameters"] = list(spec.parameters)
    task["spark_python_task"] = python
    return task


def _compute(job: dict[str, Any], spec: JobSpec) -> None:
    if spec.pipeline_key:
        return
    if spec.compute == SERVERLESS:
        job["environments"] = [{"environment_key": "default",
                                "spec": {"environment_version": SERVERLESS_ENVIRONMENT_VERSION}}]
        return
    cluster: dict[str, Any] = {
        "spark_version": "${var.spark_version}",
        "num_workers": "${var.num_workers}",
        "policy_id": "${var.cluster_policy_id}",
        "data_security_mode": "SINGLE_USER",  # Unity Catalog; the cluster runs as the job's run_as identity
    }
    if spec.use_pool:
        cluster["instance_pool_id"] = "${var.instance_pool_id}"
    else:
        cluster["node_type_id"] = "${var.node_type_id}"
    job["job_clusters"] = [{"job_cluster_key": spec.cluster_key, "new_cluster": cluster}]


def job_resource(spec: JobSpec) -> dict[str, Any]:
    """The ``resources.jobs.<key>`` mapping for ``spec``.

    Continuous jobs get ``task_retry_mode: ON_FAILURE`` (exponential backoff, no
    ``max_retries``); scheduled and file-arrival jobs are bounded runs (the stream uses
    ``availableNow``), so they get retries and a timeout but no ``retry_on_timeout``: a run
    that times out is a signal, not something to repeat blindly.
    """
    job: dict[str, Any] = {"name": spec.name, "max_concurrent_runs": 1}
    task = _task(spec)
    events = ["on_failure"]
    if spec.trigger == "continuous":
        job["continuous"] = {"task_retry_mode": "ON_FAILURE"}
        if spec.pause_status:
            job["continuous"]["pause_status"] = spec.pause_status
        events.append("on_streaming_backlog_exceeded")
        if spec.backlog_threshold is not None:
            job["health"] = {"rules": [{"metric": "STREAMING_BACKLOG_SECONDS", "op": "GREATER_THAN",
                                        "value": spec.backlog_threshold.whole_seconds}]}
    else:
        if spec.trigger == "file arrival":
            job["trigger"] = {"file_arrival": {"url": spec.file_arrival_url, "min_time_between_triggers_seconds": 60,
                                               "wait_after_last_change_seconds": 60}}
        elif spec.trigger == "scheduled":
            job["schedule"] = {"quartz_cron_expression": quartz_every(spec.schedule_every or Duration(15, "minutes")),
                               "timezone_id": "UTC"}
        for block in ("trigger", "schedule"):
            if block in job and spec.pause_status:
                job[block]["pause_status"] = spec.pause_status
        task.update(max_retries=spec.max_retries, min_retry_interval_millis=60000)
        if spec.run_duration_warning is not None:
            task["timeout_seconds"] = spec.run_duration_warning.whole_seconds * 3
            job["health"] = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN",
                                        "value": spec.run_duration_warning.whole_seconds}]}
            events.append("on_duration_warning_threshold_exceeded")
    job.update(notifications(spec.notify, events))
    _compute(job, spec)
    job["tasks"] = [task]
    if spec.tags:
        job["tags"] = dict(spec.tags)
    return job


# -- pipelines -----------------------------------------------------------------------------

PIPELINE_ALERTS = ["on-update-failure", "on-update-fatal-failure", "on-flow-failure"]


def pipeline_resource(name: str, library: str, continuous: bool, recipients: list[str],
                      compute: str = SERVERLESS) -> dict[str, Any]:
    """The ``resources.pipelines.<key>`` mapping: the target's catalog and schema, no development flag.

    ``development`` is left out on purpose: development mode sets it to true, production
    mode requires it to be false (its default).
    """
    pipeline: dict[str, Any] = {
        "name": name,
        "catalog": "${var.catalog}",
        "schema": "${var.schema}",
        "continuous": continuous,
        "channel": "CURRENT",
        "libraries": [{"file": {"path": f"./{library}"}}],
        "configuration": {f"{PIPELINE_CONF_PREFIX}.catalog": "${var.catalog}",
                          f"{PIPELINE_CONF_PREFIX}.schema": "${var.schema}"},
        "notifications": [{"email_recipients": recipients, "alerts": list(PIPELINE_ALERTS)}],
    }
    if compute == SERVERLESS:
        pipeline["serverless"] = True
    else:
        pipeline["clusters"] = [{"label": "default", "policy_id": "${var.cluster_policy_id}",
                                 "num_workers": "${var.num_workers}", "node_type_id": "${var.node_type_id}"}]
    return pipeline


# -- variables and the whole bundle ---------------------------------------------------------

def target_variables() -> dict[str, Any]:
    """Variables every target sets: its namespace, and the service principal prod runs as."""
    return {
        "catalog": {"description": "Catalog of the tables this bundle writes (per target)"},
        "schema": {"description": "Schema of the main output table (per target)"},
        "checkpoint_root": {"description": "Folder of this bundle's streaming checkpoints (per target, never shared)"},
        "service_principal": {"description": "Application id of the service principal production runs as "
                                             "(looked up by name in the prod target)"},
    }


def bundle_variables(policy: str, pool: str | None = None, compute: str = CLASSIC) -> dict[str, Any]:
    """Bundle variables: the target namespace, plus the classic cluster's policy, pool and shape."""
    variables = target_variables()
    if compute == SERVERLESS:
        return variables
    variables.update({
        "cluster_policy_id": {"description": "Cluster policy that caps size and enforces cost tags",
                              "lookup": {"cluster_policy": policy}},
        "spark_version": {"description": "Databricks Runtime of the job cluster", "default": "15.4.x-scala2.12"},
        "num_workers": {"description": "Fixed size: streaming jobs do not use classic autoscaling", "default": 2},
    })
    if pool:
        variables["instance_pool_id"] = {"description": "Instance pool the job cluster draws from",
                                         "lookup": {"instance_pool": pool}}
    else:
        variables["node_type_id"] = {"description": "Node type (cloud specific: i3.xlarge on AWS, "
                                                    "Standard_D4ds_v5 on Azure, n2-highmem-4 on GCP)",
                                     "default": "i3.xlarge"}
    return variables


def _prod_unpause(jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Prod target overrides that unpause every schedule, trigger and continuous job left unset."""
    out: dict[str, Any] = {}
    for key, job in jobs.items():
        for block in ("continuous", "schedule", "trigger"):
            if block in job and "pause_status" not in job[block]:
                out.setdefault(key, {})[block] = {"pause_status": "UNPAUSED"}
    return out


def bundle(name: str, resources: dict[str, dict[str, Any]], variables: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """A whole ``databricks.yml``: variables, resources, and the dev / prod targets described in the module doc."""
    def namespace(ns: Namespace) -> dict[str, Any]:
        values = {"catalog": ns.catalog, "schema": ns.schema, "checkpoint_root": ns.checkpoint_root}
        return {k: v for k, v in values.items() if v}

    variables = {k: v for k, v in variables.items() if k != "checkpoint_root" or targets.prod.checkpoint_root}

    prod: dict[str, Any] = {
        "mode": "production",
        "workspace": {"root_path": PROD_ROOT_PATH},
        "run_as": {"service_principal_name": "${var.service_principal}"},
        "variables": {**namespace(targets.prod),
                      "service_principal": {"lookup": {"service_principal": targets.service_principal}}},
    }
    unpause = _prod_unpause(resources.get("jobs", {}))
    if unpause:
        prod["resources"] = {"jobs": unpause}
    dev = {"mode": "development", "default": True,
           # Not used in dev (development mode runs as whoever deploys); set so every variable has a value.
           "variables": {**namespace(targets.dev), "service_principal": "${workspace.current_user.userName}"}}
    return {
        "bundle": {"name": slug(name, "-")},
        "variables": variables,
        "resources": copy.deepcopy(resources),
        "targets": {"dev": dev, "prod": prod},
    }


def target_header(targets: Targets) -> list[str]:
    """Header lines that say what each target touches and what must exist before deploying."""
    prod, dev = targets.prod, targets.dev

    def where(ns: Namespace) -> str:
        return f"{ns.catalog}.*" + (f" (checkpoints under {ns.checkpoint_root})" if ns.checkpoint_root else "")

    return [
        f"Targets: dev writes {where(dev)}; prod writes {where(prod)}. Create the dev catalog with the same schemas "
        "first; sources are read, never written, from either target.",
        f"prod runs as the service principal named {comment_safe(targets.service_principal)} (looked up by name) and "
        "deploys to its home folder; development mode pauses every schedule and trigger in dev.",
    ]


def entry_point_path(text: str, default: str = "src/ingest_stream.py") -> str:
    """A job's Python file as a path inside the bundle folder (no leading ``/``, no ``..``, ends in ``.py``)."""
    parts = [p for p in str(text or "").replace("\\", "/").split("/") if p not in ("", ".", "..")]
    path = "/".join(parts) or default
    return path if path.endswith(".py") else path + ".py"


def volume_catalog(path: str, default: str = "main") -> str:
    """The catalog of a ``/Volumes/<catalog>/...`` path (``default`` for any other path)."""
    parts = [p for p in str(path).split("/") if p]
    return parts[1] if len(parts) > 1 and parts[0] == "Volumes" else default
