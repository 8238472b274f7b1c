"""Artefacts a domain task produces beside its document: code, job specs, diagrams.

``generate`` is the one entry point the task runner calls. Generators are
registered per task id by the family modules (``sources``, ``pipelines``,
``operations``; diagrams in ``diagrams``); a task without one produces only
its document and rendered templates. ``CONVENTIONS.md`` describes the shape
of every generated PySpark module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.artifacts.base import DIAGRAMS, GENERATORS, STEP_NOTES, Artifact, Generator
from tools.design import Design, using

if TYPE_CHECKING:
    from tools.workspace import Workspace

__all__ = ["DIAGRAMS", "GENERATORS", "STEP_NOTES", "Artifact", "Generator", "diagram", "generate", "step_notes"]


def generate(task_id: str, answers: dict[str, str], rendered: dict[str, str], doc_location: str,
             workspace: Workspace | None = None, design: Design | None = None) -> list[Artifact]:
    """The artefacts of ``task_id`` for the user's answers.

    Args:
        task_id: the pack task id (e.g. ``kafka-connector-setup``).
        answers: the validated answers by question key.
        rendered: rendered templates by template file name.
        doc_location: the task's ``docOutputLocation`` (artefacts go beside it).
        workspace: the thread's workspace, for inputs the user put there (read only).
        design: the thread's design; the generators read it (compute, columns of earlier tables) and record
            what they write into it (tables, DLQ, query names). A fresh one when not given.
    """
    generator = GENERATORS.get(task_id)
    design = design if design is not None else Design()
    design.learn_answers(answers or {}, task_id)
    with using(design, task_id):
        artifacts = generator(answers, rendered, doc_location, workspace) if generator else []
    # *backpressure-tune, *latency-slo, *state-store: a stream-health diagnosis of the progress log the user
    # named (report + PNG charts); nothing for other tasks or when no log was named. Imported here, not at the
    # top, to keep this module's imports to the generator families; matplotlib loads only when a chart is drawn.
    from tools.diagnose.artifacts import diagnosis_artifacts

    return artifacts + diagnosis_artifacts(task_id, answers, rendered, doc_location, workspace)


def diagram(task_id: str, answers: dict[str, str], design: Design | None = None) -> str | None:
    """A Mermaid flowchart of the data flow the task describes, if it describes one.

    Drawn with the thread's design, as the code is generated: a pipeline on the thread's Bronze table draws no
    second Bronze.
    """
    draw = DIAGRAMS.get(task_id)
    if not draw:
        return None
    design = Design.from_dict(design.to_dict()) if design is not None else Design()
    design.learn_answers(answers or {})
    with using(design, task_id):
        return draw(answers)


def step_notes(task_id: str, answers: dict[str, str], design: Design | None = None) -> list[str]:
    """One line per step of the task: the decision taken for the user's values (may be empty)."""
    notes = STEP_NOTES.get(task_id)
    if not notes:
        return []
    # A copy: notes only read the design (compute, earlier tables); generate() is what extends it.
    design = Design.from_dict(design.to_dict()) if design is not None else Design()
    design.learn_answers(answers or {}, task_id)
    with using(design, task_id):
        return notes(answers)


# Importing the families registers their generators (kept last: they import ``base``).
from tools.artifacts import (  # noqa: E402, F401
    diagrams,
    operations,
    pipelines,
    recovery,
    releases,
    sources,
    standards,
    stateful,
    tuning,
)
