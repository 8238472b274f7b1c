"""Every generated PySpark stream module runs on local Spark and keeps what it claims.

The modules come from ``tools.artifacts.generate`` with each task's default
answers. Stream modules (the edge convention) run through ``harness``;
declarative pipeline modules (``from pyspark import pipelines as dp``) through
``declarative``, a small stand-in for the pipeline runtime. A deliberately
broken copy of a module (watermark removed; plain append in foreachBatch)
must fail the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tools.artifacts import generate

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "knowledge" / "pack" / "tasks"


def _generated(keep: Callable[[str], bool]) -> dict[str, tuple[str, str]]:
    """Generated Python files that ``keep`` accepts, by file name: (task id, source)."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(TASKS.glob("*.yaml")):
        task = yaml.safe_load(path.read_text(encoding="utf-8"))
        answers = {q["key"]: str(q["default"]) for q in task.get("questions") or []}
        for artifact in generate(task["id"], answers, {}, task["doc_output_location"], None):
            text = artifact.content if isinstance(artifact.content, str) else ""
            if artifact.path.endswith(".py") and keep(text):
                found[Path(artifact.path).name] = (task["id"], text)
    return found


def _is_stream_module(text: str) -> bool:
    return all(f"def {f}(" in text for f in ("read_stream", "transform", "start"))


STREAM_MODULES = _generated(_is_stream_module)


def _run(spark, tmp_path: Path, name: str, source: str, claims_of: str | None = None,
         claims: list[str] | None = None):
    from tests.spark.harness import load_module, run_module, shape_of

    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    module = load_module(path)
    if claims_of is not None:  # a broken copy is held to the claims of the module it was made from
        original = tmp_path / f"original_{name}"
        original.write_text(claims_of, encoding="utf-8")
        claims = shape_of(load_module(original)).claims
    return run_module(spark, module, tmp_path / "run", name=name, claims=claims)


def test_the_domain_commands_generate_stream_modules() -> None:
    assert len(STREAM_MODULES) >= 10, sorted(STREAM_MODULES)
    assert {"kafka_source.py", "autoloader_ingest.py", "dedup_idempotent_sink.py", "watermark_window.py"} <= set(
        STREAM_MODULES)


@pytest.mark.parametrize("name", sorted(STREAM_MODULES))
def test_generated_module_keeps_its_claims(spark, tmp_path: Path, name: str) -> None:
    task_id, source = STREAM_MODULES[name]
    outcome = _run(spark, tmp_path, name, source)
    print(outcome.summary(), f"\n  ({outcome.seconds:.1f} s)")
    assert outcome.check("runs") and outcome.check("runs").passed, outcome.summary()
    assert len(outcome.checks) >= 2, outcome.summary()  # at least one property besides running
    assert not outcome.failed, f"{task_id}\n{outcome.summary()}"


def _watermark_removed(source: str) -> str:
    broken = re.sub(r"\.withWatermark\([^()]*\)", "", source)
    return broken.replace("dropDuplicatesWithinWatermark", "dropDuplicates")


def _plain_append(source: str) -> str:
    return re.sub(r"\n\s*\.option\(\"txn(AppId|Version)\", [^\n]*\)", "", source)


def test_watermark_removed_from_a_dedup_fails_state_bounded(spark, tmp_path: Path) -> None:
    # Kafka Bronze drops producer retries with dropDuplicatesWithinWatermark under a watermark on the ingest time:
    # nothing is ever late, so its code claims no late-row behaviour, but its state must still stay bounded.
    name = "kafka_source.py"
    source = STREAM_MODULES[name][1]
    assert ".dropDuplicatesWithinWatermark(" in source
    broken = _watermark_removed(source)
    assert broken != source and "withWatermark" not in broken
    outcome = _run(spark, tmp_path, f"broken_{name}", broken, claims=["watermark", "dedup", "restart"])
    print(outcome.summary())
    assert outcome.check("runs").passed, outcome.summary()
    assert not outcome.check("state-bounded").passed, outcome.summary()


def test_watermark_removed_from_a_window_fails_the_watermark_checks(spark, tmp_path: Path) -> None:
    source = STREAM_MODULES["watermark_window.py"][1]
    broken = _watermark_removed(source)
    assert "withWatermark" not in broken
    outcome = _run(spark, tmp_path, "broken_watermark_window.py", broken, claims_of=source)
    print(outcome.summary())
    # Spark refuses an append-mode aggregation without a watermark: the run itself is the failed check.
    assert not outcome.check("runs").passed, outcome.summary()
    assert "watermark" in outcome.check("runs").detail.lower(), outcome.summary()


def test_plain_append_in_foreach_batch_fails_exactly_once(spark, tmp_path: Path) -> None:
    source = STREAM_MODULES["autoloader_ingest.py"][1]
    broken = _plain_append(source)
    assert "txnAppId" in source and "txnVersion" not in broken
    outcome = _run(spark, tmp_path, "broken_autoloader_ingest.py", broken, claims_of=source)
    print(outcome.summary())
    assert outcome.check("runs").passed, outcome.summary()
    assert not outcome.check("exactly-once").passed, outcome.summary()
    assert "repeated" in outcome.check("exactly-once").detail


DECLARATIVE_MODULES = {name: source for name, (_, source) in _generated(lambda text: "pipelines as dp" in text).items()}


@pytest.mark.parametrize("name", sorted(DECLARATIVE_MODULES))
def test_generated_declarative_pipeline_keeps_its_claims(spark, tmp_path: Path, name: str) -> None:
    from tests.spark.declarative import run_pipeline

    path = tmp_path / name
    path.write_text(DECLARATIVE_MODULES[name], encoding="utf-8")
    outcome = run_pipeline(spark, path, tmp_path / "run", name)
    print(outcome.summary(), f"\n  ({outcome.seconds:.1f} s)")
    assert outcome.check("runs").passed, outcome.summary()
    assert len(outcome.checks) >= 3, outcome.summary()
    assert not outcome.failed, outcome.summary()
