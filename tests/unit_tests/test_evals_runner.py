"""The eval runner on a small subset: it passes as shipped, and fails its thresholds when the app breaks.

Two breakages are injected in process: ``*kafka-connector`` routed to free
conversation instead of its task, and a retriever that finds nothing. Each
must turn a passing run into one below the shipped minimums (case counts
aside: a subset is small by design).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from langgraph.types import Command

from agent import cli
from agent.nodes import persona
from evals.cli import evaluate_run
from evals.datasets import load
from evals.metrics import THRESHOLDS_FILE

SUBSET = [
    "task-kafka-connector", "help-lists-every-command", "free-text-question-outside-kb-mode",
    "en-kafka-data-loss", "en-kafka-group-id", "none-sourdough",
    "injection-pirate", "off-role-poem", "exit-then-activate",
    "lint-dedup-without-watermark", "execute-checklist-fuzzy-title",
    "render-kafka-config", "create-doc-fuzzy-name",
]


@pytest.fixture()
def thresholds(tmp_path: Path) -> Path:
    """The shipped minimums without the case counts."""
    data = yaml.safe_load(THRESHOLDS_FILE.read_text(encoding="utf-8"))
    for minimums in data["default"].values():
        minimums.pop("cases", None)
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_subset(home: Path, tmp_path: Path, thresholds: Path):
    datasets = load().select(patterns=SUBSET)
    assert set(datasets.suites) == {"conversations", "knowledge", "role", "checklists", "templates"}
    return evaluate_run(datasets, home, thresholds=thresholds, out=tmp_path / "reports")


def failed_metrics(outcome) -> set[str]:
    return {v.name for v in outcome.verdicts if not v.ok}


def test_subset_passes_and_reports(indexed_home: Path, tmp_path: Path, thresholds: Path):
    outcome = run_subset(indexed_home, tmp_path, thresholds)
    failures = [(r.case.key, [c.message for c in r.failures], r.error[-300:]) for r in outcome.run.results if not r.passed]
    assert outcome.passed, (failed_metrics(outcome), failures)
    assert len(outcome.run.results) == len(SUBSET)
    report = json.loads(outcome.reports["json"].read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert set(report["suites"]) == {"conversations", "knowledge", "role", "checklists", "templates"}
    task = next(c for c in report["cases"] if c["id"] == "task-kafka-connector")
    assert task["turns"][0]["route"] == ["route", "start_task", "ask_input"]
    assert "save_document" in task["turns"][1]["route"]
    assert {"render_template", "run_checklist", "write_doc"} <= set(task["turns"][1]["tool_calls"])
    markdown = outcome.reports["markdown"].read_text(encoding="utf-8")
    assert markdown.startswith("# Eval report — PASSED")
    assert "| knowledge.recall@5 |" in markdown
    suites = ET.parse(outcome.reports["junit"]).getroot()
    assert {s.get("name") for s in suites} >= {"conversations", "knowledge", "thresholds"}
    # The eval threads are cleaned up: their workspaces are gone.
    assert not any((indexed_home / "workspace").glob(f"eval-{outcome.run.run_id}-*"))


def test_removing_a_command_route_fails_the_run(indexed_home: Path, tmp_path: Path, thresholds: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    original = persona._dispatch

    def without_kafka(state, runtime, name, args, update, messages):
        if name == "kafka-connector":  # the route to its task is gone: it falls through to conversation
            return Command(goto="converse", update={**update, "request": {"question": name}, "messages": messages})
        return original(state, runtime, name, args, update, messages)

    monkeypatch.setattr(persona, "_dispatch", without_kafka)
    outcome = run_subset(indexed_home, tmp_path, thresholds)
    assert not outcome.passed
    broken = next(r for r in outcome.run.results if r.case.id == "task-kafka-connector")
    assert broken.status == "failed"
    assert any("start_task" in c.message for c in broken.failures)
    assert {"conversations.pass_rate", "conversations.trajectory"} <= failed_metrics(outcome)


def test_breaking_retrieval_fails_the_run_and_the_cli_exits_1(indexed_home: Path, tmp_path: Path, thresholds: Path,
                                                              monkeypatch: pytest.MonkeyPatch, capsys):
    from knowledge.retrieval import Retriever

    monkeypatch.setattr(Retriever, "search", lambda self, query, k=5, kinds=None, mode="hybrid": [])
    code = cli.main(["--home", str(indexed_home), "eval", "--thresholds", str(thresholds),
                     "--out", str(tmp_path / "cli-reports"), *[arg for case in SUBSET for arg in ("--case", case)]])
    assert code == 1
    printed = capsys.readouterr().out
    assert printed.startswith("# Eval report — FAILED")
    report = json.loads((tmp_path / "cli-reports" / "report.json").read_text(encoding="utf-8"))
    failed = {t["name"] for t in report["thresholds"] if not t["ok"]}
    assert {"knowledge.recall@5", "knowledge.mrr@10", "knowledge.key_facts"} <= failed
    assert report["suites"]["knowledge"]["recall@5"] == 0.0
