"""Every generated stream module takes the job parameters a bundle passes, and honours them.

A bundle job runs a module as ``python module.py --catalog C --schema S --checkpoint-root R
[--available-now]`` (``bundles.TARGET_PARAMETERS``). The module's ``main`` must accept exactly that,
write the target's tables with the target's checkpoints (a dev run never touches production), and
choose the trigger from the run: ``availableNow`` for a bounded (scheduled) run so the job ends,
``processingTime`` for a continuous classic job, ``availableNow`` always on serverless.

The module runs for real down to the writer: ``SparkSession`` and the source edge are replaced by a
recorder of the writer calls, so no Spark is needed and nothing else of the module is changed.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from tests.unit_tests.test_artifacts import CUSTOM, defaults_for
from tools.artifacts import generate
from tools.artifacts.bundles import Namespace, dev_namespace, table_namespace
from tools.design import Design

# The stream modules of every command that generates one, with the constants naming what they write.
MODULES = {
    "autoloader-streaming-ingest": ("autoloader_ingest.py", ["TARGET_TABLE", "DLQ_TABLE"]),
    "kafka-connector-setup": ("kafka_source.py", ["TARGET_TABLE"]),
    "eventhubs-connector-setup": ("eventhubs_source.py", ["TARGET_TABLE"]),
    "kinesis-connector-setup": ("kinesis_source.py", ["TARGET_TABLE"]),
    "watermarks-and-lateness": ("watermark_window.py", ["TARGET_TABLE"]),
    "dedup-and-idempotency": ("dedup_idempotent_sink.py", ["TARGET_TABLE"]),
    "state-store-management": ("stateful_query.py", ["TARGET_TABLE"]),
    "schema-evolution-live": ("shadow_schema_stream.py", ["SHADOW_TABLE"]),
    "dlq-quarantine-ops": ("dlq_router.py", ["TARGET_TABLE", "DLQ_TABLE"]),
    "canary-and-shadow": ("shadow_stream.py", ["SHADOW_TABLE"]),
    "init-streaming-standards": ("reference_stream.py", ["TARGET_TABLE"]),
}


class Recorder:
    """Stands for a DataFrame, its writer and the session: records every call, returns itself."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Any:
        if name in ("writeStream", "builder", "streams", "conf"):
            return self

        def call(*args: Any, **kwargs: Any) -> Recorder:
            self.calls.append((name, args, kwargs))
            return self
        return call

    def trigger_of(self) -> dict:
        return next(kwargs for name, _, kwargs in self.calls if name == "trigger")

    def sink(self) -> tuple[str, tuple]:
        return next((name, args) for name, args, _ in self.calls if name in ("toTable", "start"))


def module_of(task_id: str, answers: dict[str, str], tmp_path: Path, compute: str) -> types.ModuleType:
    """Generate the task (with ``compute``) and import its stream module."""
    name = MODULES[task_id][0]
    answers = {**defaults_for(task_id), **answers, "compute_kind": compute}
    source = next(a.content for a in generate(task_id, answers, {}, "docs/streaming/x.md", None, Design())
                  if a.path.endswith("/" + name))
    path = tmp_path / f"{task_id}_{compute}_{len(answers)}_{name}"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def run_main(module: types.ModuleType, argv: list[str]) -> Recorder:
    """``module.main(argv)`` with the session and the source replaced by a recorder."""
    recorder = Recorder()
    module.SparkSession = recorder
    module.read_stream = lambda spark: recorder
    module.transform = lambda df: df
    module.main(argv)
    return recorder


@pytest.mark.parametrize("task_id", sorted(MODULES))
def test_stream_modules_take_the_bundle_parameters_and_end_a_bounded_run(task_id: str, tmp_path: Path) -> None:
    _, written = MODULES[task_id]
    for answers in ({}, CUSTOM[task_id][0]):
        module = module_of(task_id, answers, tmp_path, "classic")
        prod_tables = {name: getattr(module, name) for name in written}
        prod_checkpoint = module.CHECKPOINT
        merged = {**defaults_for(task_id), **answers}
        # Designed as a bounded stream: Auto Loader's trigger mode, or the standards' default trigger.
        designed_now = "availablenow" in {str(merged.get(k, "")).lower() for k in ("trigger_mode", "default_trigger")}

        # A continuous classic job: no flag, production names, processingTime (unless designed as a bounded run).
        continuous = run_main(module, [])
        assert {n: getattr(module, n) for n in written} == prod_tables and module.CHECKPOINT == prod_checkpoint
        trigger = continuous.trigger_of()
        assert trigger == {"availableNow": True} if designed_now else set(trigger) == {"processingTime"}, trigger

        # A scheduled dev run: the bundle's parameters as databricks.yml passes them.
        module = module_of(task_id, answers, tmp_path, "classic")
        catalog, schema = table_namespace(getattr(module, written[0]))
        dev_catalog = dev_namespace(Namespace(catalog, schema, "")).catalog
        root = "/Volumes/dev_cat/streaming/checkpoints/alice"
        bounded = run_main(module, ["--catalog", dev_catalog, "--schema", schema, "--checkpoint-root", root,
                                    "--available-now"])
        assert bounded.trigger_of() == {"availableNow": True}, task_id
        for name, prod in prod_tables.items():
            moved = getattr(module, name)
            assert moved != prod and moved.split(".")[0] == dev_catalog, (task_id, name, moved)
        assert module.CHECKPOINT.startswith(root + "/"), (task_id, module.CHECKPOINT)
        assert ("checkpointLocation", module.CHECKPOINT) in [args for n, args, _ in bounded.calls if n == "option"]
        sink, args = bounded.sink()
        if sink == "toTable":
            assert args[0] == getattr(module, written[0]), (task_id, args)


@pytest.mark.parametrize("task_id", sorted(MODULES))
def test_serverless_stream_modules_always_drain_and_stop(task_id: str, tmp_path: Path) -> None:
    module = module_of(task_id, {}, tmp_path, "serverless")
    assert run_main(module, []).trigger_of() == {"availableNow": True}
    module = module_of(task_id, {}, tmp_path, "serverless")
    assert run_main(module, ["--available-now"]).trigger_of() == {"availableNow": True}
