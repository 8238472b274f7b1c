"""The ``check`` command: exit codes, output formats, folder walking, mounting."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.lint import RULES
from tools.lint.cli import add_arguments, main, run

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "pipelines"
FAILING = CORPUS / "pyspark" / "kafka_orders_window_agg.py"
CLEAN = CORPUS / "pyspark" / "clean_kafka_orders_to_delta.py"
FINDING_KEYS = {"rule", "topic", "checklist", "status", "severity", "line", "message", "evidence"}


def test_exit_codes(capsys: pytest.CaptureFixture[str]):
    assert main([str(FAILING)]) == 1
    assert main([str(CLEAN)]) == 0
    capsys.readouterr()
    assert main([]) == 2
    assert "no PATH given" in capsys.readouterr().err
    assert main([str(CORPUS / "does-not-exist.py")]) == 2
    assert "path not found" in capsys.readouterr().err
    assert main([str(CLEAN), "--ignore", "SE999"]) == 2
    assert main([str(CLEAN), "--format", "xml"]) == 2


def test_a_file_that_cannot_be_analysed_exits_2_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert main([str(CLEAN), str(broken)]) == 2
    out = capsys.readouterr().out
    assert f"{broken.as_posix()}: ERROR not analysed: Python syntax error at line 1" in out
    assert "1 could not be analysed" in out
    assert main([str(CLEAN), str(broken), "--allow-unanalysed"]) == 0
    assert main([str(FAILING), str(broken), "--allow-unanalysed"]) == 1
    notes = tmp_path / "notes.txt"
    notes.write_text("not code\n")
    assert main([str(notes)]) == 2, "a file named on the command line that cannot be checked"
    assert "unsupported file type" in capsys.readouterr().out


def test_partial_and_review_do_not_fail_the_build(tmp_path: Path):
    config = tmp_path / "kafka.json"
    config.write_text('{"kafka.bootstrap.servers": "b:9092", "subscribe": "t"}')
    assert main([str(config)]) == 0


def test_json_output_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert main([str(FAILING), str(CLEAN), str(broken), "--format", "json"]) == 2, "a file was not analysed"
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"files"}
    assert [Path(f["path"]).name for f in data["files"]] == ["kafka_orders_window_agg.py",
                                                               "clean_kafka_orders_to_delta.py", "broken.py"]
    for entry in data["files"]:
        assert set(entry) <= {"path", "findings", "error", "warnings"} and {"path", "findings"} <= set(entry)
        for finding in entry["findings"]:
            assert FINDING_KEYS <= set(finding) and set(finding) - FINDING_KEYS <= {"item"}
            assert finding["topic"] in {"watermark", "idempotency", "checkpoint", "dlq", "schema", "security",
                                        "trigger", "backpressure", "state", "observability", "dq", "cost"}
            assert finding["status"] in {"PASS", "FAIL", "PARTIAL", "N/A", "REVIEW"}
    assert "error" in data["files"][2] and "error" not in data["files"][0]
    statuses = {f["status"] for f in data["files"][1]["findings"]}
    assert statuses == {"PASS"}, "json keeps PASS evidence"


def test_sarif_output_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert main([str(FAILING), str(CLEAN), str(broken), "--format", "sarif"]) == 2
    log = json.loads(capsys.readouterr().out)
    assert log["version"] == "2.1.0" and "sarif" in log["$schema"]
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(RULES)
    assert all(r["defaultConfiguration"]["level"] in ("error", "warning", "note") for r in rules)
    assert run_["results"], "the failing file has results"
    for result in run_["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert result["properties"]["status"] != "PASS"
    notifications = run_["invocations"][0]["toolExecutionNotifications"]
    assert len(notifications) == 1 and "syntax error" in notifications[0]["message"]["text"]
    main([str(CLEAN), "--format", "sarif", "--verbose"])
    verbose = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert verbose and all(r["kind"] == "pass" for r in verbose)


def test_text_output_hides_pass_unless_verbose(capsys: pytest.CaptureFixture[str]):
    main([str(CLEAN)])
    out = capsys.readouterr().out
    assert ": PASS " not in out and "5 PASS (shown with --verbose)" in out and "no problems found" in out
    main([str(CLEAN), "--verbose"])
    assert "PASS SE101" in capsys.readouterr().out
    main([str(FAILING)])
    out = capsys.readouterr().out
    assert f"{FAILING.as_posix()}:41: FAIL SE104 [error] state:" in out
    assert 'password="****"' in out and "Xk2#pQ9v" not in out


def test_ignore_and_list_rules(capsys: pytest.CaptureFixture[str]):
    main([str(FAILING), "--format", "json", "--ignore", "SE101,se104"])
    rules = {f["rule"] for f in json.loads(capsys.readouterr().out)["files"][0]["findings"]}
    assert "SE101" not in rules and "SE104" not in rules and "SE201" in rules
    assert main(["--list-rules"]) == 0
    table = capsys.readouterr().out
    assert all(f"| {rule_id} |" in table for rule_id in RULES)


def test_folders_are_walked_skipping_tool_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    for folder in (".git", ".venv", "node_modules", "__pycache__", "src/__pycache__"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "x.py").write_text("spark.readStream.table('s').writeStream.toTable('t')\n")
    (tmp_path / "src" / "job.py").write_text("spark.readStream.table('s').writeStream.toTable('t')\n")
    (tmp_path / "README.md").write_text("# not checked\n")
    assert main([str(tmp_path), "--format", "json"]) == 1
    paths = [f["path"] for f in json.loads(capsys.readouterr().out)["files"]]
    assert paths == [(tmp_path / "src" / "job.py").as_posix()]


def test_mounted_as_a_subcommand(capsys: pytest.CaptureFixture[str]):
    parser = argparse.ArgumentParser(prog="streaming-engineer")
    commands = parser.add_subparsers(dest="command")
    add_arguments(commands.add_parser("check"))
    args = parser.parse_args(["check", str(FAILING), "--format", "json"])
    assert run(args) == 1
    assert json.loads(capsys.readouterr().out)["files"][0]["findings"]


def test_python_dash_m_entry_point_for_pre_commit():
    completed = subprocess.run(
        [sys.executable, "-m", "tools.lint", str(FAILING), str(CLEAN)], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "FAIL SE801" in completed.stdout


def test_pre_commit_hook_definition():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "streaming-engineer-check")
    assert hook["entry"] == "streaming-engineer check"
    assert hook["language"] == "python"
    assert hook["files"] == r"\.(py|sql|ipynb|ya?ml|json)$"


def test_check_starts_without_the_conversation_engine():
    """A linter run in a team's CI should not pay for LangGraph, the checkpointer or Chroma."""
    probe = (
        "import sys\n"
        "from agent.cli import main\n"
        f"code = main(['check', {str(CLEAN)!r}])\n"
        "heavy = sorted(m for m in ('langgraph', 'agent.session', 'agent.persistence', 'chromadb') if m in sys.modules)\n"
        "print('HEAVY', heavy, code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            check=False)
    assert "HEAVY [] 0" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
