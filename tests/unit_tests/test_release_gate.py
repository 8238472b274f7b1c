"""The release gate: Go / Conditional Go / No-Go from the thread's artefacts, and a deploy script that obeys it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.nodes.gate import gate_document
from knowledge.loader import load_pack
from tools.release_gate import CONDITIONAL, DEPLOY_SCRIPT, GO, NO_GO, decide, deploy_script

PACK = load_pack()

SILVER = '''from pyspark.sql import functions as F

CHECKPOINT = "/Volumes/main/ops/checkpoints/orders_silver"


def read_stream(spark):
    user = dbutils.secrets.get(scope="streaming", key="kafka-user")
    password = dbutils.secrets.get(scope="streaming", key="kafka-password")
    jaas = ("kafkashaded.org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{password}";')
    return (spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", "broker-1.example.com:9093")
            .option("kafka.security.protocol", "SASL_SSL")
            .option("kafka.sasl.mechanism", "PLAIN")
            .option("kafka.sasl.jaas.config", jaas)
            .option("subscribe", "orders.events.v1")
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", 200000)
            .option("minPartitions", 48)
            .load())


def start(df):
    events = (df.select(F.from_json(F.col("value").cast("string"), "event_id STRING, event_time TIMESTAMP").alias("e"))
              .select("e.*")
              .withWatermark("event_time", "10 minutes")
              .dropDuplicatesWithinWatermark(["event_id"]))
    return (events.writeStream
            .option("checkpointLocation", CHECKPOINT)
            .queryName("orders_silver")
            .trigger(processingTime="1 minute")
            .toTable("main.silver.orders"))
'''
VERIFY = "SELECT count(*) AS rows, count(DISTINCT event_id) AS ids FROM main.silver.orders;\n"
CONNECTOR = "topic: orders.events.v1\npartitions: 48\nthroughput: 20000 rows/s\nrotation_period: 90 days\n"
BUNDLE = '''bundle:
  name: orders
resources:
  jobs:
    orders_silver:
      name: orders-silver
      max_concurrent_runs: 1
      tasks:
        - task_key: silver
          spark_python_task:
            python_file: src/orders_silver.py
'''
RAN = [{"checklist": "exactly-once-checklist", "title": "Exactly-Once Checklist", "targets": ["inputs"],
        "counts": {"PASS": 2}, "source": "docs/streaming/kafka-connector.md"},
       {"checklist": "source-connector-checklist", "title": "Source Connector Checklist", "targets": ["inputs"],
        "counts": {"PASS": 3}, "source": "docs/streaming/kafka-connector.md"}]


def thread_files(**changes: str | None) -> dict[str, str]:
    files = {"pipelines/orders/src/orders_silver.py": SILVER, "pipelines/orders/verify.sql": VERIFY,
             "pipelines/orders/connector.yaml": CONNECTOR, "pipelines/orders/databricks.yml": BUNDLE,
             # What the gate must not read as evidence: a report that claims everything passed.
             "docs/checklists/exactly-once-checklist-report.md": "# Checklist report\n\n| PASS | all | 1 |\n"}
    for path, text in changes.items():
        key = next(k for k in files if k.endswith(path.replace("__", ".")))
        if text is None:
            del files[key]
        else:
            files[key] = text
    return files


def test_all_pass_gives_go_and_the_script_deploys_the_bundles(tmp_path: Path) -> None:
    decision = decide(PACK, thread_files(), RAN)
    assert decision.verdict == GO, [(r["checklist"], r["failed"], r["review_reasons"]) for r in decision.results]
    assert decision.bundles == ["pipelines/orders"]
    assert all(r["source"] == "judged now on the thread's artefacts" for r in decision.results)
    assert "docs/checklists/exactly-once-checklist-report.md" not in [a.path for a in decision.artefacts]
    log = run_deploy(tmp_path, thread_files(), decision)
    assert log.returncode == 0, log.stderr
    assert log.calls == [f"{tmp_path}/pipelines/orders: bundle validate -t prod",
                         f"{tmp_path}/pipelines/orders: bundle deploy -t prod"]


def test_a_go_is_for_the_judged_files_only(tmp_path: Path) -> None:
    decision = decide(PACK, thread_files(), RAN)
    edited = thread_files(**{"orders_silver__py": SILVER.replace('"1 minute"', '"0 seconds"')})
    log = run_deploy(tmp_path, edited, decision)
    assert log.returncode != 0 and log.calls == []


def test_open_review_items_give_conditional_go_with_named_conditions(tmp_path: Path) -> None:
    decision = decide(PACK, thread_files(**{"verify__sql": None}), RAN)
    assert decision.verdict == CONDITIONAL
    assert any("端到端幂等验证" in c and "not evidenced by these files: verification" in c for c in decision.conditions)
    assert decision.actions == []
    document = gate_document(decision, "> header", ["done"])
    assert "## Verdict · 结论: **Conditional Go**" in document and "## Conditions · 放行条件" in document
    log = run_deploy(tmp_path, thread_files(**{"verify__sql": None}), decision)
    assert log.returncode == 1 and log.calls == [] and "not Go: nothing is deployed" in log.stderr
    assert "端到端幂等验证" in log.stderr


def test_a_partial_gives_conditional_go() -> None:
    no_rate_limit = SILVER.replace('            .option("maxOffsetsPerTrigger", 200000)\n', "")
    decision = decide(PACK, thread_files(**{"orders_silver__py": no_rate_limit}), [
        *RAN, {"checklist": "backpressure-retries-checklist", "targets": ["inputs"], "counts": {}}])
    assert decision.verdict == CONDITIONAL
    assert any(c.startswith("**PARTIAL**") and "maxOffsetsPerTrigger" in c for c in decision.conditions)


def test_a_fail_gives_no_go_with_action_items(tmp_path: Path) -> None:
    broken = SILVER.replace('            .option("checkpointLocation", CHECKPOINT)\n', "")
    decision = decide(PACK, thread_files(**{"orders_silver__py": broken}), RAN)
    assert decision.verdict == NO_GO
    assert any("**FAIL**" in a and "checkpointLocation" in a for a in decision.actions)
    document = gate_document(decision, "> header", ["done"])
    assert "**No-Go**" in document and "## Action items · 行动项 (blocking: No-Go)" in document
    log = run_deploy(tmp_path, thread_files(**{"orders_silver__py": broken}), decision)
    assert log.returncode == 1 and log.calls == []


def test_no_evidence_is_no_go() -> None:
    assert decide(PACK, {}, []).verdict == NO_GO
    # A report alone is no evidence either, whatever it claims.
    assert decide(PACK, {"docs/checklists/x-report.md": "| PASS | everything |"}, []).verdict == NO_GO


def test_the_reviewers_overrides_are_applied_again() -> None:
    stored = [{**RAN[0], "overrides": {"端到端幂等验证 · End-to-end idempotency has been verified": "PASS"}}, RAN[1]]
    decision = decide(PACK, thread_files(**{"verify__sql": None}), stored)
    assert decision.verdict == GO
    result = next(r for r in decision.results if r["checklist"] == "exactly-once-checklist")
    assert result["counts"]["PASS"] == 2 and result["counts"]["REVIEW"] == 0


def test_results_on_pasted_text_are_kept() -> None:
    pasted = {"checklist": "exactly-once-checklist", "title": "Exactly-Once Checklist", "targets": ["pasted.py"],
              "counts": {"FAIL": 1, "PASS": 1}, "source": "docs/checklists/exactly-once-checklist-report.md",
              "failed": [{"status": "FAIL", "text": "接入/处理/输出端一致性", "reason": "no checkpointLocation",
                          "recommendation": ""}]}
    decision = decide(PACK, thread_files(), [*RAN, pasted])
    assert decision.verdict == NO_GO and pasted in decision.results


class DeployRun:
    """The deploy script's exit code, stderr and the databricks CLI calls it made."""

    def __init__(self, process: subprocess.CompletedProcess, calls: list[str]) -> None:
        self.returncode, self.stderr, self.calls = process.returncode, process.stderr, calls


def run_deploy(root: Path, files: dict[str, str], decision) -> DeployRun:
    """Write the files and the gate's deploy script under ``root``; run it with a recording ``databricks``."""
    if shutil.which("bash") is None or shutil.which("sha256sum") is None:
        pytest.skip("bash and sha256sum are needed to run the deploy script")
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    script = root / DEPLOY_SCRIPT
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(deploy_script(decision, "docs/gates/streaming-release.md"), encoding="utf-8")
    bin_dir = root / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    log = root / "calls.log"
    fake = bin_dir / "databricks"
    fake.write_text(f'#!/usr/bin/env bash\necho "$PWD: $*" >> {log}\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    process = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd="/", check=False,
                             timeout=60)
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return DeployRun(process, calls)
