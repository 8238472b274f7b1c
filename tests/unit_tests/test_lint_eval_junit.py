"""``eval``'s junit.xml stays well-formed XML when a case carries control characters.

The bad-input eval cases paste NUL bytes, escape sequences and form feeds on
purpose; ElementTree writes them as they are, which no XML parser accepts.
The file is checked with expat (strict, what ``ET.fromstring`` uses) and with
``xml.dom.minidom``.
"""

from __future__ import annotations

import xml.dom.minidom
import xml.etree.ElementTree as ET

from evals.assertions import Check
from evals.datasets import Case
from evals.metrics import Threshold
from evals.report import to_junit, xml_safe
from evals.runner import CaseResult, RunResult, TurnRecord

NASTY = "nul\x00 bell\x07 esc\x1b[31m formfeed\x0c vt\x0b ok\ttab\nnewline é 数据 \ufffe end"


def run_with(text: str) -> RunResult:
    turn = TurnRecord(input=text, output=f"echo {text}", route=["route", "answer"], tool_calls=[], mode="persona",
                      pending=False, seconds=0.1)
    failed = CaseResult(Case("robustness", f"bad-input {text[:10]}", "conversation"), 0, "failed", 0.2,
                        checks=[Check("no_crash", False, f"saw {text}")], turns=[turn])
    errored = CaseResult(Case("robustness", "raised", "conversation"), 0, "error", 0.1, error=f"Traceback\n{text}")
    return RunResult(run_id="r", backend="offline", model="", started="now", seconds=1.0, home="h", index_seconds=0.1,
                     repeat=1, results=[failed, errored], suites=["robustness"])


def test_junit_with_control_characters_parses_strictly():
    verdicts = [Threshold(suite="robustness", metric="pass_rate", minimum=1.0, value=0.5, ok=False)]
    document = to_junit(run_with(NASTY), verdicts)
    root = ET.fromstring(document.encode("utf-8"))  # expat: strict XML 1.0
    xml.dom.minidom.parseString(document.encode("utf-8"))
    case = root.find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and "\\x00" in failure.get("message", "") and "\\x1b[31m" in (failure.text or "")
    out = case.find("system-out")
    assert out is not None and "数据" in (out.text or "") and "\ttab\nnewline" in (out.text or ""), "legal text kept"
    assert "\\ufffe" in (out.text or "")


def test_xml_safe_keeps_legal_text_and_marks_the_rest():
    assert xml_safe("plain\ttext\r\n数据") == "plain\ttext\r\n数据"
    assert xml_safe("a\x00b\x1fc") == "a\\x00b\\x1fc"
