"""The bundle-producing commands through the real engine: what is written to disk validates and deploys.

Same checks as ``tests/unit_tests/test_bundles_deploy.py`` (the ``databricks-bundles`` models, the
production-mode rules, variables, files, dev/prod isolation run through the generated code), applied
to the files ``streaming-engineer run --script`` wrote, with every default and with custom answers.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
import yaml

from tests.conftest import run_script
from tests.integration_tests.test_domain_commands import COMMAND, PACK, answers_in_order
from tests.unit_tests.test_artifacts import CUSTOM
from tests.unit_tests.test_bundles_deploy import BUNDLE_TASKS, bundle_problems, written_by_target
from tools.artifacts.base import artifact_dir


def written_files(turn: dict, task_id: str) -> tuple[dict[str, str], PurePosixPath]:
    """The files the task wrote, workspace-relative path → text, and the bundle folder."""
    doc_rel = PACK.tasks[task_id].doc_output_location
    doc = next(Path(p) for p in turn["artifacts"] if p.endswith(doc_rel))
    root = Path(str(doc)[: -len(doc_rel)])
    folder = artifact_dir(doc_rel)
    files = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel.startswith(f"{folder}/"):
            files[rel] = path.read_text(encoding="utf-8")
    return files, folder


@pytest.mark.parametrize("custom", [False, True], ids=["defaults", "custom"])
def test_bundles_written_by_the_engine_deploy(indexed_home: Path, custom: bool) -> None:
    script: list[str] = []
    ends: dict[str, int] = {}
    for task_id in BUNDLE_TASKS:
        script.append(f"*{COMMAND[task_id]}")
        script += answers_in_order(task_id, CUSTOM[task_id][0]) if custom else ["#yolo"]
        ends[task_id] = len(script) - 1
    turns = run_script(script, indexed_home)
    assert len(turns) == len(script)
    for task_id, end in ends.items():
        turn = turns[end]
        assert turn["pending_question"] is None, (task_id, turn["output"][:300])
        files, folder = written_files(turn, task_id)
        config = yaml.safe_load(files[f"{folder}/databricks.yml"])
        assert bundle_problems(config, folder, files) == [], task_id
        dev, prod = written_by_target(config, folder, files, "dev"), written_by_target(config, folder, files, "prod")
        assert dev and prod and not dev & prod, (task_id, dev, prod)
