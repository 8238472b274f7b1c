"""Artefacts a domain task produces beside its document: code, job specs, diagrams.

``generate`` is the one entry point the task runner calls. Generators are
registered per task id; a task without one produces only its document and
rendered templates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.workspace import Workspace


@dataclass(frozen=True)
class Artifact:
    """One generated file.

    Attributes:
        path: workspace-relative path (beside the task's document).
        content: the file's text (bytes for images such as PNG charts).
        language: python | yaml | json | sql | markdown | png.
        description: one line for the document and the chat.
    """

    path: str
    content: str | bytes
    language: str
    description: str


Generator = Callable[[dict[str, str], dict[str, str], str, "Workspace | None"], list[Artifact]]
GENERATORS: dict[str, Generator] = {}
DIAGRAMS: dict[str, Callable[[dict[str, str]], str]] = {}


def generate(task_id: str, answers: dict[str, str], rendered: dict[str, str], doc_location: str,
             workspace: Workspace | None = None) -> list[Artifact]:
    """The artefacts of ``task_id`` for the user's answers.

    Args:
        task_id: the pack task id (e.g. ``kafka-connector-setup``).
        answers: the validated answers by question key.
        rendered: rendered templates by template file name.
        doc_location: the task's ``docOutputLocation`` (artefacts go beside it).
        workspace: the thread's workspace, for inputs the user put there (read only).
    """
    generator = GENERATORS.get(task_id)
    return generator(answers, rendered, doc_location, workspace) if generator else []


def diagram(task_id: str, answers: dict[str, str]) -> str | None:
    """A Mermaid flowchart of the data flow the task describes, if it describes one."""
    draw = DIAGRAMS.get(task_id)
    return draw(answers) if draw else None
