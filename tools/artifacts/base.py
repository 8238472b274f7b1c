"""Shared pieces of the artefact generators: the artefact record, inputs, quoting.

Generators write code and configs as text. Every user value passes through one
of the quoting helpers here before it lands in a file, so a table name, a topic
or a free-text answer can never break the syntax of the file it is written to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from tools.workspace import Workspace


@dataclass(frozen=True)
class Artifact:
    """One generated file.

    Attributes:
        path: workspace-relative path (beside the task's document).
        content: the file's text (bytes for images such as PNG charts).
        language: python | yaml | json | sql | markdown | shell | png.
        description: one line for the document and the chat.
    """

    path: str
    content: str | bytes
    language: str
    description: str


Generator = Callable[[dict[str, str], dict[str, str], str, "Workspace | None"], list[Artifact]]
Diagram = Callable[[dict[str, str]], str]
StepNotes = Callable[[dict[str, str]], list[str]]

GENERATORS: dict[str, Generator] = {}
DIAGRAMS: dict[str, Diagram] = {}
STEP_NOTES: dict[str, StepNotes] = {}


def artifact_dir(doc_location: str) -> PurePosixPath:
    """The folder for a task's artefacts: beside the document, named after it.

    A folder per document keeps files that must have fixed names (a bundle's
    ``databricks.yml``) from colliding when one thread runs several tasks.
    """
    doc = PurePosixPath(doc_location)
    return doc.parent / doc.stem


# -- durations, percentages, secret references ----------------------------------------

_UNIT_SECONDS = {"milliseconds": 0.001, "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_UNIT_ALIASES = {
    "ms": "milliseconds", "millisecond": "milliseconds", "s": "seconds", "sec": "seconds", "secs": "seconds",
    "second": "seconds", "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "h": "hours",
    "hr": "hours", "hrs": "hours", "hour": "hours", "d": "days", "day": "days",
    "秒": "seconds", "分钟": "minutes", "小时": "hours", "天": "days",
}


@dataclass(frozen=True)
class Duration:
    """A duration as the user gave it (``10 minutes``), with conversions."""

    amount: float
    unit: str  # plural English unit: seconds, minutes, hours, days, milliseconds

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``"10 minutes"``, ``"1 hour"``, ``"30s"``; raise ``ValueError`` otherwise."""
        match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z\u4e00-\u9fff]+)\s*$", text or "")
        if not match:
            raise ValueError(f"not a duration: {text!r}")
        unit = match.group(2).lower()
        unit = _UNIT_ALIASES.get(unit, unit)
        if unit not in _UNIT_SECONDS:
            raise ValueError(f"unknown unit in {text!r}")
        return cls(float(match.group(1)), unit)

    @property
    def seconds(self) -> float:
        """The duration in seconds."""
        return self.amount * _UNIT_SECONDS[self.unit]

    @property
    def whole_seconds(self) -> int:
        """The duration in whole seconds (at least 1)."""
        return max(1, round(self.seconds))

    @property
    def minutes(self) -> float:
        """The duration in minutes."""
        return self.seconds / 60

    @property
    def spark(self) -> str:
        """The interval string Spark accepts (``withWatermark``, ``trigger``): ``10 minutes``."""
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        unit = self.unit[:-1] if amount == 1 else self.unit
        return f"{amount} {unit}"

    @property
    def sql_interval(self) -> str:
        """A SQL ``INTERVAL`` literal: ``INTERVAL 10 MINUTES`` (whole units, seconds below one minute)."""
        if self.amount == int(self.amount) and self.unit != "milliseconds":
            return f"INTERVAL {int(self.amount)} {self.unit.upper()}"
        return f"INTERVAL {self.whole_seconds} SECONDS"

    def scaled(self, factor: float) -> Duration:
        """This duration times ``factor``, in the most readable whole unit."""
        return Duration.of_seconds(self.seconds * factor)

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        """The largest unit that expresses ``seconds`` as a whole number (seconds otherwise)."""
        seconds = max(1.0, round(seconds))
        for unit in ("days", "hours", "minutes"):
            size = _UNIT_SECONDS[unit]
            if seconds % size == 0:
                return cls(seconds / size, unit)
        return cls(seconds, "seconds")


def parse_percent(text: str) -> float:
    """``"0.5%"`` or ``"0.5"`` → 0.5 (a percentage, not a fraction)."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$", text or "")
    if not match:
        raise ValueError(f"not a percentage: {text!r}")
    return float(match.group(1))


def format_percent(value: float) -> str:
    """0.5 → ``"0.5%"``; 1.0 → ``"1%"``."""
    return f"{value:g}%"


def split_secret(ref: str) -> tuple[str, str]:
    """``"scope/key"`` (or ``{{secrets/scope/key}}``) → ``("scope", "key")``."""
    clean = (ref or "").strip().removeprefix("{{secrets/").removesuffix("}}")
    scope, _, key = clean.partition("/")
    if not scope or not key:
        raise ValueError(f"not a secret reference: {ref!r}")
    return scope, key


# -- inputs ---------------------------------------------------------------------------


class Inputs:
    """The user's answers, with each generator's own fallbacks for what is missing.

    Answers arrive validated (``tools.values``) or as the task's raw defaults
    (``#yolo``); the accessors accept both forms and fall back to the
    generator's default when an answer is absent or unreadable.
    """

    def __init__(self, answers: dict[str, str], defaults: dict[str, str]) -> None:
        """Keep ``answers`` (by question key) and the generator's ``defaults``."""
        self.answers = {k: v for k, v in (answers or {}).items() if v is not None and str(v).strip()}
        self.defaults = defaults

    def text(self, key: str) -> str:
        """The answer as one line of text (runs of whitespace, newlines included, become one space).

        Every value lands in a one-line context (a constant, a comment, a YAML
        scalar, a SQL identifier), so a newline must never reach a file.
        """
        return " ".join(str(self.answers.get(key, self.defaults.get(key, ""))).split())

    def _typed(self, key: str, parse: Callable[[str], Any]) -> Any:
        try:
            return parse(self.text(key))
        except (ValueError, TypeError):
            return parse(str(self.defaults[key]))

    def int(self, key: str) -> int:
        """The answer as a positive whole number."""
        return self._typed(key, lambda t: int(t.replace(",", "").replace("_", "")))

    def duration(self, key: str) -> Duration:
        """The answer as a ``Duration``."""
        return self._typed(key, Duration.parse)

    def percent(self, key: str) -> float:
        """The answer as a percentage (``5`` for 5%)."""
        return self._typed(key, parse_percent)

    def secret(self, key: str) -> tuple[str, str]:
        """The answer as a secret ``(scope, key)``."""
        return self._typed(key, split_secret)

    def choice(self, key: str) -> str:
        """The chosen option, lower case (choices are compared case-insensitively)."""
        return self.text(key).lower()


# -- quoting --------------------------------------------------------------------------


def py(value: str) -> str:
    """A Python string literal for ``value`` (JSON escapes are valid Python escapes)."""
    return json.dumps(str(value), ensure_ascii=False)


def sql_str(value: str) -> str:
    """A SQL string literal for ``value``."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


_SIMPLE_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_ident(name: str) -> str:
    """A SQL column identifier: bare when simple, back-quoted otherwise."""
    name = str(name).strip()
    if _SIMPLE_IDENT.match(name):
        return name
    return "`" + name.strip("`").replace("`", "``") + "`"


def table_name(value: str) -> str:
    """A table name as validated by the ``table`` kind (already safe as SQL)."""
    return str(value).strip()


def slug(value: str, sep: str = "_") -> str:
    """A lower-case identifier made of letters, digits and ``sep``."""
    text = re.sub(r"[^a-z0-9]+", sep, str(value).lower()).strip(sep)
    return text or "stream"


def short_name(table: str) -> str:
    """The last part of a table name (``main.silver.events`` → ``events``)."""
    return table_name(table).split(".")[-1].strip("`")


def query_name(layer: str, table: str) -> str:
    """A stable streaming query name from the layer and the target table (``bronze_events``)."""
    name = slug(short_name(table))
    return name if name.startswith(f"{layer}_") else f"{layer}_{name}"


def comment_safe(value: str) -> str:
    """Text safe inside a one-line ``#`` / ``--`` comment."""
    return " ".join(str(value).split())


def dump_yaml(data: Any, header: list[str] | None = None) -> str:
    """YAML text with ``#`` comment lines on top; keys keep their order."""
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    lines = [f"# {comment_safe(line)}" if line else "#" for line in header or []]
    return "\n".join([*lines, body]) if lines else body


def dump_json(data: Any) -> str:
    """Pretty JSON text ending with a newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def channels(text: str) -> list[tuple[str, str]]:
    """``"email:a@x.com, slack:#alerts"`` → ``[("email", "a@x.com"), ("slack", "#alerts")]``.

    A bare e-mail address counts as ``email``; anything else without a
    ``kind:`` prefix is kept as ``other``.
    """
    found = []
    for part in re.split(r"[,;\n]+", text or ""):
        part = part.strip()
        if not part:
            continue
        kind, sep, target = part.partition(":")
        if sep and re.match(r"^[A-Za-z_-]+$", kind.strip()):
            found.append((kind.strip().lower(), target.strip()))
        elif "@" in part:
            found.append(("email", part))
        else:
            found.append(("other", part))
    return found


def emails(text: str) -> list[str]:
    """The e-mail addresses among the channels in ``text``."""
    return [target for kind, target in channels(text) if kind == "email" and "@" in target]


def register(task_id: str, generator: Generator | None = None, diagram: Diagram | None = None,
             notes: StepNotes | None = None) -> None:
    """Register a task's generator, diagram and step notes."""
    if generator is not None:
        GENERATORS[task_id] = generator
    if diagram is not None:
        DIAGRAMS[task_id] = diagram
    if notes is not None:
        STEP_NOTES[task_id] = notes


def config_path(doc_location: str, template_name: str) -> str:
    """Where the rendered pack template ``template_name`` is written (beside the document, without ``-tmpl``).

    A generator that writes a config at this path supersedes the pack's sample: the config is then rendered
    from the same values as the code (the samples fix values such as ``startingOffsets: latest``).
    """
    doc = PurePosixPath(doc_location)
    return str(doc.parent / template_name.replace("-tmpl", ""))
