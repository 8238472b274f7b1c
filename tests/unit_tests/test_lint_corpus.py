"""The linter against the pipeline corpus and its expected findings.

``tests/fixtures/pipelines/expected.yaml`` lists, for every corpus file, the
FAIL / PARTIAL / REVIEW findings a reviewer expects (rule, status, line) and
the rules that should report positive evidence (PASS).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from tools.lint import FileResult, check_paths
from tools.lint.model import ACTIONABLE
from tools.lint.notebook import split_ipynb

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))["files"]


@cache
def corpus_results() -> dict[str, FileResult]:
    """Lint the whole corpus once (walking the folder, as the CLI does)."""
    results = check_paths([CORPUS])
    return {Path(r.path).relative_to(CORPUS).as_posix(): r for r in results if not r.path.endswith("expected.yaml")}


def actionable(result: FileResult) -> set[tuple[str, str, int | None]]:
    return {(f.rule, f.status, f.line) for f in result.findings if f.status in ACTIONABLE}


def test_corpus_size_and_mix():
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.name != "expected.yaml"]
    assert len(files) >= 30
    assert {p.relative_to(CORPUS).as_posix() for p in files} == set(EXPECTED), "every corpus file has expectations"
    suffixes = {p.suffix for p in files}
    assert {".py", ".sql", ".ipynb", ".json", ".yml", ".yaml"} <= suffixes
    clean = sum(1 for e in EXPECTED.values() if e["clean"])
    assert 0.25 <= clean / len(EXPECTED) <= 0.45, "about a third of the corpus is clean"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_lines_point_at_their_text(name: str):
    text = (CORPUS / name).read_text(encoding="utf-8")
    # A .ipynb finding's line is a line of its code cells laid out as a script.
    lines = split_ipynb(text).lines if name.endswith(".ipynb") else text.splitlines()
    for finding in EXPECTED[name]["findings"]:
        assert finding["at"] in lines[finding["line"] - 1], f"{name}:{finding['line']} lost its anchor {finding['at']!r}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_findings_match_expectations(name: str):
    expected = EXPECTED[name]
    result = corpus_results()[name]
    want = {(f["rule"], f["status"], f["line"]) for f in expected["findings"]}
    got = actionable(result)
    assert got == want, f"unexpected: {sorted(got - want)}; missing: {sorted(want - got)}"
    passes = sorted({f.rule for f in result.findings if f.status == "PASS"})
    assert passes == expected["pass"]
    assert bool(result.error) == bool(expected.get("error"))
    assert len(result.warnings) == expected.get("warnings", 0), result.warnings


def test_precision_and_recall_over_the_corpus():
    true_positive = reported = relevant = 0
    for name, expected in EXPECTED.items():
        want = {(f["rule"], f["status"], f["line"]) for f in expected["findings"]}
        got = actionable(corpus_results()[name])
        true_positive += len(got & want)
        reported += len(got)
        relevant += len(want)
    precision = true_positive / reported
    recall = true_positive / relevant
    assert precision >= 0.9, f"precision {precision:.3f}"
    assert recall >= 0.9, f"recall {recall:.3f}"


def test_no_fail_on_a_clean_file():
    for name, expected in EXPECTED.items():
        if expected["clean"]:
            result = corpus_results()[name]
            assert not result.has_fail, name
            assert not actionable(result), name


def test_every_rule_fires_somewhere_in_the_corpus():
    from tools.lint import RULES

    fired = {f.rule for r in corpus_results().values() for f in r.findings if f.status in ACTIONABLE}
    # SE406 joins a job spec with the code it runs: the eval suite lints corpus files one by one, so its
    # fixture (tests/fixtures/serverless) sits outside the corpus and has its own test.
    cross_file = {"SE406"}
    assert fired == set(RULES) - cross_file, f"rules never exercised by the corpus: {sorted(set(RULES) - fired)}"


def test_the_serverless_fixture_joins_job_spec_and_code():
    results = {Path(r.path).name: r for r in check_paths([CORPUS.parent / "serverless"])}
    failing = [(f.rule, f.line) for f in results["ingest_readings.py"].findings if f.status == "FAIL"]
    assert failing == [("SE406", 6)]
    assert not results["hourly_rollup.py"].has_fail and not results["serverless_job.yml"].has_fail


def test_corpus_findings_follow_the_contract():
    from tools.lint import RULES, STATUSES, TOPICS

    for result in corpus_results().values():
        for finding in result.findings:
            rule = RULES[finding.rule]
            assert finding.topic == rule.topic in TOPICS
            assert finding.status in STATUSES and finding.status in rule.statuses
            assert finding.severity in ("error", "warning", "info")
            assert finding.checklist == rule.checklist and finding.item == rule.item
            assert finding.message and finding.evidence
            assert "Fix:" in finding.message or finding.status == "PASS"
