"""Every generated ``databricks.yml`` deploys: checked against the ecosystem's own models and rules.

Resources are loaded, per target (the target's overrides merged in), into the ``databricks-bundles``
models (``Job.from_dict`` / ``Pipeline.from_dict`` reject unknown fields and bad enum values). The
deployment-mode rules are the ones ``databricks bundle validate`` applies (databricks/cli,
``validate_target_mode.go`` and ``run_as.go``; the deployment-modes docs page):

- production: ``workspace.root_path`` set on the target; ``run_as`` with exactly one identity; no
  pipeline with ``development: true``; no personal (current-user) path;
- development: no ``presets.trigger_pause_status: UNPAUSED``, workspace paths personal.

On top: every ``${var.x}`` is declared and has a value in every target, every ``${resources...}``
exists, every file a task or pipeline names is among the generated artefacts, dev and prod never
share a catalog or a checkpoint root (and the generated code really moves its writes), nothing is
explicitly ``UNPAUSED`` where dev would inherit it, bounded jobs run ``availableNow``, and a triggered
pipeline has a scheduled job with a ``pipeline_task``.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import Job
from databricks.bundles.pipelines import Pipeline

from tests.unit_tests.test_artifacts import CUSTOM, defaults_for
from tools.artifacts import generate
from tools.artifacts.base import artifact_dir
from tools.artifacts.bundles import PIPELINE_CONF_PREFIX, dev_namespace, entry_point_path, table_namespace

PACK_DOCS = {
    "jobs-continuous-triggers": "docs/streaming/jobs-triggers.md",
    "cost-guardrails-streaming": "docs/streaming/cost-guardrails.md",
    "blue-green-deploy": "docs/streaming/blue-green.md",
    "dlt-streaming-pipeline": "docs/streaming/dlt-streaming.md",
}
BUNDLE_TASKS = sorted(PACK_DOCS)
TOP_LEVEL = {"bundle", "variables", "resources", "targets", "include", "workspace", "run_as", "artifacts", "sync",
             "permissions", "presets", "experimental", "scripts", "python"}
TARGET_KEYS = {"mode", "default", "workspace", "run_as", "variables", "resources", "presets", "git", "permissions",
               "artifacts", "sync", "cluster_id", "compute_id", "bundle"}
VARIABLE_KEYS = {"description", "default", "lookup", "type"}
LOOKUP_KINDS = {"alert", "cluster_policy", "cluster", "dashboard", "instance_pool", "job", "metastore",
                "notification_destination", "pipeline", "query", "service_principal", "warehouse"}
WORKSPACE_PATHS = ("root_path", "file_path", "artifact_path", "state_path", "resource_path")
PERSONAL = re.compile(r"\$\{workspace\.current_user\.|^~/")
REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.\[\]-]+)\}")
# Answers beyond the custom ones: the other triggers, compute kinds and criticalities.
VARIANTS: dict[str, list[dict[str, str]]] = {
    "jobs-continuous-triggers": [{"trigger_type": "scheduled (periodic)"}, {"trigger_type": "file arrival"},
                                 {"compute": "serverless"}, {"trigger_type": "scheduled (periodic)",
                                                             "compute": "serverless", "entry_point": "/jobs/../run"}],
    "cost-guardrails-streaming": [{"criticality": "critical (never degrade)"},
                                  {"criticality": "best-effort (may pause or degrade)"}],
    "blue-green-deploy": [{"blue_checkpoint": "/Volumes/acme/a/chk/blue", "green_checkpoint": "/Volumes/acme/b/chk/green",
                           "blue_table": "acme.gold.o_blue", "green_table": "acme.gold.o_green"}],
    "dlt-streaming-pipeline": [{"pipeline_mode": "continuous"}, {"source_format": "kafka", "source": "clicks.v2"},
                               {"compute": "classic"}],
}


# -- the checks --------------------------------------------------------------------------

def deep_merge(base: Any, override: Any) -> Any:
    """Target overrides merged into the top-level mapping, the way the CLI merges a target."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def references(node: Any) -> list[str]:
    """Every ``${...}`` reference in a YAML tree."""
    if isinstance(node, dict):
        return [r for value in node.values() for r in references(value)]
    if isinstance(node, list):
        return [r for value in node for r in references(value)]
    return REFERENCE.findall(node) if isinstance(node, str) else []


def explicit_unpaused(resources: dict[str, Any]) -> list[str]:
    """Jobs whose schedule, trigger or continuous block says UNPAUSED in the shared resources."""
    return [f"{key}.{block}" for key, job in (resources.get("jobs") or {}).items()
            for block in ("schedule", "trigger", "continuous")
            if (job.get(block) or {}).get("pause_status") == "UNPAUSED"]


def bundle_problems(config: dict[str, Any], bundle_dir: PurePosixPath, files: dict[str, str]) -> list[str]:
    """What ``databricks bundle validate`` (or a deploy) would reject, or a reviewer would, for each target.

    Args:
        config: the parsed ``databricks.yml``.
        bundle_dir: its folder (workspace-relative).
        files: every generated file, workspace-relative path → text.
    """
    problems: list[str] = []
    problems += [f"unknown top-level key {k!r}" for k in set(config) - TOP_LEVEL]
    if not (config.get("bundle") or {}).get("name"):
        problems.append("bundle.name is required")
    variables = config.get("variables") or {}
    for name, spec in variables.items():
        problems += [f"variable {name}: unknown key {k!r}" for k in set(spec or {}) - VARIABLE_KEYS]
        lookup = (spec or {}).get("lookup")
        if lookup is not None and (len(lookup) != 1 or set(lookup) - LOOKUP_KINDS):
            problems.append(f"variable {name}: lookup must name one of {sorted(LOOKUP_KINDS)}")
    resources = config.get("resources") or {}
    problems += [f"explicit UNPAUSED in shared resources (dev would run it): {x}" for x in explicit_unpaused(resources)]
    targets = config.get("targets") or {}
    modes = {name: (t or {}).get("mode") for name, t in targets.items()}
    if sorted(modes.values()) != ["development", "production"]:
        problems.append(f"want one development and one production target, got {modes}")
    for ref in references({k: v for k, v in config.items() if k != "targets"}) + references(targets):
        head, _, rest = ref.partition(".")
        if head == "var" and rest.split(".")[0] not in variables:
            problems.append(f"${{{ref}}}: variable not declared")
        if head == "resources":
            kind, key = (rest.split(".") + ["", ""])[:2]
            if key not in (resources.get(kind) or {}):
                problems.append(f"${{{ref}}}: no such resource")
    for name, target in targets.items():
        target = target or {}
        where = f"target {name}"
        problems += [f"{where}: unknown key {k!r}" for k in set(target) - TARGET_KEYS]
        values = target.get("variables") or {}
        problems += [f"{where}: sets undeclared variable {v!r}" for v in set(values) - set(variables)]
        for var, spec in variables.items():
            if var not in values and not {"default", "lookup"} & set(spec or {}):
                problems.append(f"{where}: no value for required variable {var!r}")
        merged = deep_merge(resources, target.get("resources") or {})
        for key, job in (merged.get("jobs") or {}).items():
            try:
                Job.from_dict(copy.deepcopy(job))
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: job {key}: {exc}")
        for key, pipeline in (merged.get("pipelines") or {}).items():
            try:
                Pipeline.from_dict(copy.deepcopy(pipeline))
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: pipeline {key}: {exc}")
        paths = {k: v for k, v in (target.get("workspace") or {}).items() if k in WORKSPACE_PATHS}
        if target.get("mode") == "production":
            problems += production_problems(where, target, config, merged, paths)
        elif target.get("mode") == "development":
            if (target.get("presets") or {}).get("trigger_pause_status") == "UNPAUSED":
                problems.append(f"{where}: development mode cannot unpause triggers by default")
            problems += [f"{where}: {k} must be personal in development mode" for k, v in paths.items()
                         if not PERSONAL.search(str(v))]
    problems += file_problems(resources, bundle_dir, files)
    problems += behaviour_problems(config, bundle_dir, files)
    return problems


def production_problems(where: str, target: dict[str, Any], config: dict[str, Any], merged: dict[str, Any],
                        paths: dict[str, str]) -> list[str]:
    """The production-mode rules of ``bundle validate``."""
    problems = []
    if not paths.get("root_path"):
        problems.append(f"{where}: mode production must set workspace.root_path (one copy per workspace)")
    problems += [f"{where}: {k} is a personal path in production" for k, v in paths.items() if PERSONAL.search(str(v))]
    run_as = target.get("run_as") or config.get("run_as")
    jobs = merged.get("jobs") or {}
    if run_as is None and any("run_as" not in job for job in jobs.values()):
        problems.append(f"{where}: 'run_as' must be set for all jobs when using 'mode: production'")
    if run_as is not None:
        identities = [k for k in ("user_name", "service_principal_name", "group_name") if run_as.get(k)]
        if len(identities) != 1 or set(run_as) - {"user_name", "service_principal_name", "group_name"}:
            problems.append(f"{where}: run_as must specify exactly one identity, got {run_as}")
    for key, pipeline in (merged.get("pipelines") or {}).items():
        if pipeline.get("development") is True:
            problems.append(f"{where}: pipeline {key} has development: true")
    return problems


def python_files(resources: dict[str, Any]) -> list[str]:
    """Every file a job task or a pipeline library names (bundle-relative)."""
    out = []
    for job in (resources.get("jobs") or {}).values():
        for task in job.get("tasks") or []:
            out += [(task.get("spark_python_task") or {}).get("python_file"),
                    (task.get("notebook_task") or {}).get("notebook_path")]
    for pipeline in (resources.get("pipelines") or {}).values():
        for library in pipeline.get("libraries") or []:
            out += [(library.get("file") or {}).get("path"), (library.get("notebook") or {}).get("path")]
    return [p for p in out if p]


def file_problems(resources: dict[str, Any], bundle_dir: PurePosixPath, files: dict[str, str]) -> list[str]:
    """Referenced files that the command did not generate."""
    problems = []
    for path in python_files(resources):
        rel = PurePosixPath(*[p for p in PurePosixPath(path).parts if p != "."])
        if path.startswith("/") or ".." in rel.parts or str(bundle_dir / rel) not in files:
            problems.append(f"{path}: referenced but not generated in {bundle_dir}")
    return problems


def behaviour_problems(config: dict[str, Any], bundle_dir: PurePosixPath, files: dict[str, str]) -> list[str]:
    """Dev/prod isolation, bounded runs, triggered pipelines scheduled."""
    problems = []
    resources = config.get("resources") or {}
    targets = config.get("targets") or {}
    dev = (targets.get("dev") or {}).get("variables") or {}
    prod = (targets.get("prod") or {}).get("variables") or {}
    for var in ("catalog", "checkpoint_root"):
        if var in (config.get("variables") or {}) and dev.get(var) == prod.get(var):
            problems.append(f"dev and prod share {var} = {dev.get(var)!r}")
    jobs = resources.get("jobs") or {}
    for key, job in jobs.items():
        for task in job.get("tasks") or []:
            python = task.get("spark_python_task")
            if python is None:
                continue
            params = python.get("parameters") or []
            for flag, var in (("--catalog", "${var.catalog}"), ("--checkpoint-root", "${var.checkpoint_root}")):
                if flag not in params or params[params.index(flag) + 1] != var:
                    problems.append(f"job {key}: {flag} {var} not passed")
            bounded = "continuous" not in job or "environments" in job
            if bounded and "--available-now" not in params:
                problems.append(f"job {key}: a bounded run (schedule, trigger or serverless) without --available-now")
            source = files.get(str(bundle_dir / PurePosixPath(*PurePosixPath(python["python_file"]).parts)), "")
            if bounded and "availableNow=True" not in source:
                problems.append(f"job {key}: its stream has no availableNow trigger")
            if "timeout_seconds" in task and task.get("retry_on_timeout") and "continuous" not in job:
                problems.append(f"job {key}: retry_on_timeout repeats a run that timed out")
    for key, pipeline in (resources.get("pipelines") or {}).items():
        conf = pipeline.get("configuration") or {}
        if conf.get(f"{PIPELINE_CONF_PREFIX}.catalog") != "${var.catalog}" or pipeline.get("catalog") != "${var.catalog}":
            problems.append(f"pipeline {key}: the target's catalog is not passed")
        if pipeline.get("continuous") is False:
            ref = f"${{resources.pipelines.{key}.id}}"
            scheduled = [k for k, job in jobs.items() if ("schedule" in job or "trigger" in job)
                         and any((t.get("pipeline_task") or {}).get("pipeline_id") == ref for t in job["tasks"])]
            if not scheduled:
                problems.append(f"triggered pipeline {key} has no scheduled job with a pipeline_task")
    return problems


# -- running the generated code's target helpers --------------------------------------------

def module_namespace(source: str) -> dict[str, Any]:
    """Execute a generated module's definitions (importing pyspark only; no session is started)."""
    namespace: dict[str, Any] = {"__name__": "generated_module"}
    exec(compile(source, "generated_module.py", "exec"), namespace)  # noqa: S102 - our own generated file
    return namespace


def pipeline_namespace(source: str, conf: dict[str, str]) -> dict[str, Any]:
    """Evaluate a declarative pipeline module the way the pipeline does: its configuration as Spark conf.

    The test doubles stand in for the pipeline runtime only: an active session whose conf holds the
    pipeline ``configuration``, and decorators that register nothing (no pipeline graph to build here).
    """
    import pyspark
    from pyspark.sql import SparkSession

    session = SimpleNamespace(conf=SimpleNamespace(get=lambda key, default=None: conf.get(key, default)))
    decorators = ModuleType("pyspark.pipelines")
    decorators.__getattr__ = lambda name: (lambda *args, **kwargs: (lambda fn: fn))  # type: ignore[method-assign]
    saved = (sys.modules.get("pyspark.pipelines"), getattr(pyspark, "pipelines", None), SparkSession.getActiveSession)
    sys.modules["pyspark.pipelines"] = decorators
    pyspark.pipelines = decorators  # type: ignore[attr-defined]
    SparkSession.getActiveSession = staticmethod(lambda: session)  # type: ignore[method-assign]
    try:
        return module_namespace(source)
    finally:
        if saved[0] is not None:
            sys.modules["pyspark.pipelines"] = saved[0]
        else:
            sys.modules.pop("pyspark.pipelines", None)
        if saved[1] is not None:
            pyspark.pipelines = saved[1]  # type: ignore[attr-defined]
        SparkSession.getActiveSession = saved[2]  # type: ignore[method-assign]


def resolve(value: str, variables: dict[str, Any]) -> str:
    """``${var.x}`` replaced by the target's value (other references kept)."""
    return REFERENCE.sub(lambda m: str(variables.get(m.group(1)[4:], m.group(0))) if m.group(1).startswith("var.")
                         else m.group(0), value)


def written_by_target(config: dict[str, Any], bundle_dir: PurePosixPath, files: dict[str, str],
                      target: str) -> set[str]:
    """Tables and checkpoints the generated code uses when deployed to ``target``."""
    values = (config["targets"][target] or {}).get("variables") or {}
    out: set[str] = set()
    for job in (config["resources"].get("jobs") or {}).values():
        for task in job["tasks"]:
            if "spark_python_task" not in task:
                continue
            python = task["spark_python_task"]
            ns = module_namespace(files[str(bundle_dir / PurePosixPath(*PurePosixPath(python["python_file"]).parts))])
            parser = ns["add_target_arguments"](argparse.ArgumentParser())
            parser.add_argument("--color")
            parser.add_argument("--available-now", action="store_true")
            args = parser.parse_args([resolve(p, values) for p in python.get("parameters") or []])
            tables = [ns["TABLES"][args.color]] if args.color else [ns["TARGET_TABLE"]]
            checkpoints = [ns["CHECKPOINTS"][args.color]] if args.color else [ns["CHECKPOINT"]]
            out |= {ns["in_target"](t, args.catalog, args.schema) for t in tables}
            out |= {ns["checkpoint_in_target"](c, args.checkpoint_root) for c in checkpoints}
    for pipeline in (config["resources"].get("pipelines") or {}).values():
        library = pipeline["libraries"][0]["file"]["path"]
        source = files[str(bundle_dir / PurePosixPath(*PurePosixPath(library).parts))]
        conf = {k: resolve(v, values) for k, v in (pipeline.get("configuration") or {}).items()}
        ns = pipeline_namespace(source, conf)
        out |= {ns[name] for name in ("BRONZE_TABLE", "SILVER_TABLE", "QUARANTINE_TABLE", "GOLD_TABLE") if name in ns}
    return out


# -- the tests ----------------------------------------------------------------------------

def bundle_of(task_id: str, answers: dict[str, str]) -> tuple[dict[str, Any], PurePosixPath, dict[str, str]]:
    """The parsed bundle, its folder and every generated file (in-process generation)."""
    doc = PACK_DOCS[task_id]
    files = {a.path: a.content for a in generate(task_id, {**defaults_for(task_id), **answers}, {}, doc)
             if isinstance(a.content, str)}
    folder = artifact_dir(doc)
    return yaml.safe_load(files[str(folder / "databricks.yml")]), folder, files


def all_cases() -> list[tuple[str, dict[str, str]]]:
    """Defaults, the custom answers of the domain tests, and the variants above, for every bundle task."""
    cases = []
    for task_id in BUNDLE_TASKS:
        cases += [(task_id, {}), (task_id, CUSTOM[task_id][0])]
        cases += [(task_id, {**CUSTOM[task_id][0], **variant}) for variant in VARIANTS[task_id]]
    return cases


def test_the_pack_docs_are_the_tasks_doc_locations() -> None:
    from knowledge.loader import load_pack

    pack = load_pack()
    assert {t: pack.tasks[t].doc_output_location for t in BUNDLE_TASKS} == PACK_DOCS


@pytest.mark.parametrize(("task_id", "answers"), all_cases(),
                         ids=[f"{t}-{i}" for t in BUNDLE_TASKS for i in range(2 + len(VARIANTS[t]))])
def test_every_bundle_validates_and_isolates_dev(task_id: str, answers: dict[str, str]) -> None:
    config, folder, files = bundle_of(task_id, answers)
    assert bundle_problems(config, folder, files) == []
    dev, prod = written_by_target(config, folder, files, "dev"), written_by_target(config, folder, files, "prod")
    assert dev and prod and not dev & prod, (dev, prod)
    prod_catalog = config["targets"]["prod"]["variables"]["catalog"]
    assert all(not name.startswith(f"{prod_catalog}.") and "/Volumes/" + prod_catalog + "/" not in name
               for name in dev), dev


def test_prod_uses_the_answered_tables_and_checkpoints() -> None:
    config, folder, files = bundle_of("blue-green-deploy", CUSTOM["blue-green-deploy"][0])
    answers = CUSTOM["blue-green-deploy"][0]
    prod = written_by_target(config, folder, files, "prod")
    assert {answers["blue_table"], answers["green_table"], answers["blue_checkpoint"],
            answers["green_checkpoint"]} == prod
    config, folder, files = bundle_of("dlt-streaming-pipeline", CUSTOM["dlt-streaming-pipeline"][0])
    answers = CUSTOM["dlt-streaming-pipeline"][0]
    assert written_by_target(config, folder, files, "prod") == {
        answers[k] for k in ("bronze_table", "table", "quarantine_table", "target_table")}
    assert written_by_target(config, folder, files, "dev") == {
        "acme_dev." + answers[k].split(".", 1)[1] for k in ("bronze_table", "table", "quarantine_table", "target_table")}


def test_the_checks_catch_what_the_review_found() -> None:
    """Each rule fails on the defect the review reported (so a passing bundle means something)."""
    config, folder, files = bundle_of("jobs-continuous-triggers", {"trigger_type": "scheduled (periodic)"})
    key = next(iter(config["resources"]["jobs"]))

    def broken(change: Any) -> list[str]:
        bad = copy.deepcopy(config)
        change(bad)
        return bundle_problems(bad, folder, files)

    assert any("root_path" in p for p in broken(lambda c: c["targets"]["prod"].pop("workspace")))
    assert any("run_as" in p for p in broken(lambda c: c["targets"]["prod"].pop("run_as")))
    assert any("personal" in p for p in broken(lambda c: c["targets"]["prod"]["workspace"].update(
        root_path="/Workspace/Users/${workspace.current_user.userName}/.bundle/x")))
    assert any("UNPAUSED" in p for p in broken(lambda c: c["resources"]["jobs"][key]["schedule"].update(
        pause_status="UNPAUSED")))
    assert any("not generated" in p for p in broken(lambda c: c["resources"]["jobs"][key]["tasks"][0][
        "spark_python_task"].update(python_file="src/ingest_stream_v2.py")))
    assert any("not declared" in p for p in broken(lambda c: c["variables"].pop("checkpoint_root")))
    assert any("required variable" in p for p in broken(lambda c: c["targets"]["dev"]["variables"].pop("catalog")))
    assert any("share catalog" in p for p in broken(lambda c: c["targets"]["dev"]["variables"].update(
        catalog=c["targets"]["prod"]["variables"]["catalog"])))
    assert any("--available-now" in p for p in broken(lambda c: c["resources"]["jobs"][key]["tasks"][0][
        "spark_python_task"]["parameters"].remove("--available-now")))
    assert any("Unexpected field" in p for p in broken(lambda c: c["resources"]["jobs"][key]["tasks"][0].update(
        retry_on_timout=True)))
    assert any("retry_on_timeout" in p for p in broken(lambda c: c["resources"]["jobs"][key]["tasks"][0].update(
        retry_on_timeout=True)))
    dlt, dlt_folder, dlt_files = bundle_of("dlt-streaming-pipeline", {})
    dlt["resources"].pop("jobs")
    dlt["targets"]["prod"].pop("resources")
    assert any("no scheduled job" in p for p in bundle_problems(dlt, dlt_folder, dlt_files))
    dlt["resources"]["pipelines"][next(iter(dlt["resources"]["pipelines"]))]["development"] = True
    assert any("development: true" in p for p in bundle_problems(dlt, dlt_folder, dlt_files))


def test_dev_namespace_never_equals_prod() -> None:
    for table, root in [("main.silver.events", "/Volumes/main/streaming/checkpoints"),
                        ("acme.gold.x", "abfss://chk@acct.dfs.core.windows.net/streams"), ("events", "")]:
        catalog, schema = table_namespace(table)
        from tools.artifacts.bundles import Namespace

        dev = dev_namespace(Namespace(catalog, schema, root))
        assert dev.catalog != catalog and dev.schema == schema
        assert (dev.checkpoint_root != root and "${workspace.current_user.short_name}" in dev.checkpoint_root) or not root


def test_entry_points_stay_inside_the_bundle() -> None:
    assert entry_point_path("src/ingest_stream.py") == "src/ingest_stream.py"
    assert entry_point_path("/etc/../../x") == "etc/x.py"
    assert entry_point_path("") == "src/ingest_stream.py"


def test_deploy_script_deploys_only_after_a_go(tmp_path: Path) -> None:
    """The generated deploy_with_gate.sh, run for real with our linter and a recording `databricks` stand-in."""
    doc = PACK_DOCS["jobs-continuous-triggers"]
    for artifact in generate("jobs-continuous-triggers", defaults_for("jobs-continuous-triggers"), {}, doc):
        target = tmp_path / artifact.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(artifact.content, encoding="utf-8")
    script = tmp_path / artifact_dir(doc) / "deploy_with_gate.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "databricks-calls.txt"
    (bin_dir / "databricks").write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n', encoding="utf-8")
    (bin_dir / "streaming-engineer").write_text(
        f'#!/usr/bin/env bash\nexec {sys.executable} -m agent.cli "$@"\n', encoding="utf-8")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
                    "--allow-empty", "-m", "release"], check=True)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "STREAMING_ENGINEER_HOME": str(tmp_path / "home")}
    gate = tmp_path / "docs/gates/streaming-release.md"

    def deploy() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    first = deploy()
    assert first.returncode != 0 and not calls.exists(), first.stderr  # no gate document yet
    gate.parent.mkdir(parents=True)
    gate.write_text("# Release gate\n\nDecision: **No-Go**\n", encoding="utf-8")
    second = deploy()
    assert second.returncode == 1 and "not Go" in second.stderr and not calls.exists()
    gate.write_text("# Release gate\n\nDecision: **Conditional Go**\n", encoding="utf-8")
    conditional = deploy()
    assert conditional.returncode == 1 and "not Go" in conditional.stderr and not calls.exists()
    gate.write_text("# Release gate\n\nDecision: **Go**\n", encoding="utf-8")
    third = deploy()
    assert third.returncode == 0, third.stdout + third.stderr
    assert calls.read_text(encoding="utf-8").splitlines() == ["bundle validate -t prod", "bundle deploy -t prod"]
    tags = subprocess.run(["git", "-C", str(tmp_path), "tag"], capture_output=True, text=True, check=True).stdout
    assert tags.startswith("deployed-prod-")  # the audit trail of what was deployed
