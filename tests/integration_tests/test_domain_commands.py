"""The 22 domain commands through ``streaming-engineer run --script``: real documents and reviewed artefacts.

Each task runs once with ``#yolo`` (every default) and once with custom values; several tasks share
one process, because every process opens the knowledge index.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path, PurePosixPath

import pytest
import yaml

from agent.nodes.tasks import design_questions, task_questions
from knowledge.loader import load_pack
from tests.conftest import run_script
from tests.unit_tests.test_artifacts import CUSTOM, DOMAIN
from tools.artifacts import DIAGRAMS, generate
from tools.artifacts.base import artifact_dir, config_path
from tools.design import Design
from tools.lint import check_text
from tools.values import check_value

PACK = load_pack()
COMMAND = {c.task: c.name for c in PACK.agent.commands if c.task}
LINT_KINDS = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".sql": "sql"}


def answers_in_order(task_id: str, answers: dict[str, str], design: Design | None = None) -> list[str]:
    """One line per question of the task, in the order they are asked ("default" where none given).

    ``design`` is the thread's design so far: the compute is asked by the first task that generates
    stream code and then known (not asked again).
    """
    design = design if design is not None else Design()
    questions, known = design_questions(task_id, task_questions(PACK, PACK.tasks[task_id]), design)
    design.learn_answers({**known, **{q["key"]: str(answers.get(q["key"], q["default"])) for q in questions}})
    return [answers.get(q["key"], "default") for q in questions]


def written_as(path: str, rel: str) -> bool:
    """Whether the written ``path`` is ``rel`` or a new version of it (``name.v2.ext``) kept beside it."""
    if path.endswith(rel):
        return True
    parent, name = PurePosixPath(rel).parent, PurePosixPath(rel).name
    stem, _, suffix = name.partition(".")
    written = PurePosixPath(path)
    return str(written.parent).endswith(str(parent)) and bool(
        re.fullmatch(rf"{re.escape(stem)}\.v\d+\.{re.escape(suffix)}", written.name))


def defaults_for(task_id: str) -> dict[str, str]:
    """What #yolo answers."""
    return {q["key"]: q["default"] for q in task_questions(PACK, PACK.tasks[task_id]) if q["default"] is not None}


def artefact_paths(task_id: str, answers: dict[str, str]) -> list[str]:
    """Workspace-relative paths of the task's artefacts for these answers."""
    return [a.path for a in generate(task_id, answers, {}, PACK.tasks[task_id].doc_output_location)]


def review_file(path: Path, allow_partial: bool) -> None:
    """The written file compiles or parses and passes our own check."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        compile(text, str(path), "exec")
    elif path.suffix in (".yaml", ".yml"):
        yaml.safe_load(text)
    elif path.suffix == ".json":
        json.loads(text)
    kind = LINT_KINDS.get(path.suffix)
    if kind:
        result = check_text(text, kind, str(path))
        assert result.error is None, (path, result.error)
        bad = {"FAIL"} if allow_partial else {"FAIL", "PARTIAL"}
        assert not [f for f in result.findings if f.status in bad], (path, [
            (f.rule, f.status, f.message) for f in result.findings if f.status in bad])


def check_task_result(task_id: str, done: dict, answers: dict[str, str], allow_partial: bool) -> tuple[str, dict[str, str]]:
    """Assert the document's sections and the artefacts on disk; return the document and the files by name."""
    task = PACK.tasks[task_id]
    assert done["pending_question"] is None and done["mode"] == "commands", (task_id, done["output"][:300])
    by_rel = {}
    for path in done["artifacts"]:
        for rel in [task.doc_output_location, *artefact_paths(task_id, answers)]:
            if written_as(path, rel):
                by_rel[rel] = Path(path)
    assert task.doc_output_location in by_rel, (task_id, done["output"][:300])
    doc = by_rel[task.doc_output_location].read_text(encoding="utf-8")
    for section in ("## Purpose · 目的", "## Inputs · 输入", "## Steps · 步骤", "## Artefacts · 产物",
                    "## Checklist results · 检查结果"):
        assert section in doc, (task_id, section)
    assert doc.count("**For your inputs · 本次决定:**") == len(task.steps), task_id
    assert "Sources:" in doc, task_id  # each step's guidance is cited
    if task_id in DIAGRAMS:
        assert "## Data flow · 数据流\n\n```mermaid\nflowchart LR" in doc, task_id
    files = {}
    folder = str(artifact_dir(task.doc_output_location))
    for rel in artefact_paths(task_id, answers):
        assert rel in by_rel, (task_id, rel, "not written")
        assert rel.startswith(folder + "/") or rel in {config_path(task.doc_output_location, t) for t in task.templates}
        path = by_rel[rel]
        review_file(path, allow_partial)
        files[PurePosixPath(rel).name] = path.read_text(encoding="utf-8")
        assert f"### `{rel}`" in doc, (task_id, rel)
    assert files, task_id
    return doc, files


def run_tasks(home: Path, tasks: list[str], custom: bool) -> dict[str, tuple[str, dict[str, str]]]:
    """Run ``tasks`` one after another in one process; return each task's document and files."""
    script: list[str] = []
    ends: dict[str, int] = {}
    design = Design()
    for task_id in tasks:
        script.append(f"*{COMMAND[task_id]}")
        script += answers_in_order(task_id, CUSTOM[task_id][0], design) if custom else ["#yolo"]
        ends[task_id] = len(script) - 1
    turns = run_script(script, home)
    assert len(turns) == len(script)
    for turn in turns:
        assert "Traceback" not in turn["output"]
    return {task_id: check_task_result(task_id, turns[end], {**defaults_for(task_id), **(CUSTOM[task_id][0] if custom else {})},
                                       allow_partial=custom)
            for task_id, end in ends.items()}


def test_every_domain_command_with_defaults(indexed_home: Path) -> None:
    results = run_tasks(indexed_home, DOMAIN, custom=False)
    assert set(results) == set(DOMAIN)
    doc, files = results["kafka-connector-setup"]
    assert 'TOPIC = "orders.events.v1"' in files["kafka_source.py"] and "secret `streaming/kafka-username`" in doc
    doc, files = results["jobs-continuous-triggers"]
    assert "continuous:" in files["databricks.yml"] and "STREAMING_BACKLOG_SECONDS" in files["databricks.yml"]
    doc, files = results["dlt-streaming-pipeline"]
    assert "from pyspark import pipelines as dp" in files["dlt_pipeline.py"]


@pytest.mark.parametrize("half", [0, 1])
def test_every_domain_command_with_custom_values(indexed_home: Path, half: int) -> None:
    tasks = DOMAIN[half::2]
    results = run_tasks(indexed_home, tasks, custom=True)
    for task_id in tasks:
        answers, expected = CUSTOM[task_id]
        doc, files = results[task_id]
        for name, needle in expected:
            assert name in files, (task_id, name, sorted(files))
            assert needle in files[name], (task_id, name, needle)
        # The answers table shows every answer, normalised by its kind.
        asked, _ = design_questions(task_id, task_questions(PACK, PACK.tasks[task_id]), Design())
        questions = {q["key"]: q for q in asked}  # the pack's questions and those the code adds (SASL mechanism)
        for key, value in answers.items():
            shown = check_value(questions[key]["kind"] or "text", value, tuple(questions[key]["choices"] or ())).value
            assert f"| {shown} |" in doc or f"secret `{shown}`" in doc, (task_id, key, shown)


def test_bad_answers_are_asked_again_without_losing_earlier_ones(indexed_home: Path) -> None:
    turns = run_script(["*watermark-lateness", "soon", "", "x" * 10_000, "7 minutes", "banana", "sliding", "#yolo"],
                       indexed_home)
    assert "[1/" in turns[0]["pending_question"]
    for turn in turns[1:4]:  # wrong kind, empty, 10 kB: the same question again
        assert turn["pending_question"] and "[1/" in turn["pending_question"], turn["output"][:200]
    assert "[2/" in turns[4]["pending_question"]
    assert "[2/" in turns[5]["pending_question"] and "banana" in turns[5]["output"]
    assert "[3/" in turns[6]["pending_question"]
    answers = {**defaults_for("watermarks-and-lateness"), "observed_p99_lateness": "7 minutes", "window_type": "sliding"}
    doc, files = check_task_result("watermarks-and-lateness", turns[7], answers, allow_partial=False)
    assert "| 7 minutes |" in doc and "| sliding |" in doc
    assert 'SLIDE_DURATION = "150 seconds"' in files["watermark_window.py"]  # half of the 5-minute window
    assert "Observed p99 lateness 7 minutes" in doc


def test_exit_in_the_middle_of_a_task_leaves_cleanly(indexed_home: Path) -> None:
    turns = run_script(["*idempotency-dedup", "1", "*exit", "*activate", "*idempotency-dedup"], indexed_home)
    assert "[2/" in turns[1]["pending_question"]
    left = turns[2]
    assert "Goodbye" in left["output"] and not left["persona_active"] and left["mode"] == "inactive"
    assert left["pending_question"] is None
    assert not any(a.endswith("docs/streaming/dedup-idempotency.md") for a in left["artifacts"])
    assert turns[3]["persona_active"]
    assert "[1/" in turns[4]["pending_question"]  # a fresh start, not the abandoned run


def test_a_restart_in_the_middle_of_a_task_resumes_at_the_same_question(indexed_home: Path) -> None:
    thread = "domain-restart-" + uuid.uuid4().hex[:6]
    first = run_script(["*dlt-streaming", "/Volumes/acme/raw/clicks/", "evt_ts"], indexed_home, thread)
    assert "[3/" in first[-1]["pending_question"]
    second = run_script(["15 minutes", "#yolo"], indexed_home, thread)  # a new process, same thread
    assert "[4/" in second[0]["pending_question"]
    answers = {**defaults_for("dlt-streaming-pipeline"), "source": "/Volumes/acme/raw/clicks/"}
    doc, files = check_task_result("dlt-streaming-pipeline", second[1], answers, allow_partial=False)
    assert "| /Volumes/acme/raw/clicks/ |" in doc and "| evt_ts |" in doc and "| 15 minutes |" in doc
    code = files["dlt_pipeline.py"]
    assert 'SOURCE = "/Volumes/acme/raw/clicks/"' in code and 'EVENT_TIME = "evt_ts"' in code
    assert 'ALLOWED_LATENESS = "15 minutes"' in code
