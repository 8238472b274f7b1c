"""Load a knowledge pack folder into typed, read-only objects.

The pack is data (see ``knowledge/pack/README.md``); this module is the only
place that knows its file layout. Adding a task, template, checklist or
knowledge file to a pack needs no code change: everything found is loaded.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACK_DIR = Path(__file__).resolve().parent / "pack"
"""The Streaming Engineer pack shipped with the project."""

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*(?:\|([^{}]*))?\}\}")
"""``{{name}}`` or ``{{name|default}}``; secret references such as
``{{secrets/scope/key}}`` do not match because ``/`` is not a name character."""

META_SUFFIX = ".meta.yaml"


class PackError(ValueError):
    """A pack or bundle that cannot be loaded (the message says why)."""


@dataclass(frozen=True)
class Text:
    """A bilingual text: the bundle's Chinese and English beside it."""

    zh: str = ""
    en: str = ""

    @classmethod
    def of(cls, value: Any) -> Text:
        """Build from a ``{zh, en}`` mapping or a plain string."""
        if isinstance(value, Text):
            return value
        if isinstance(value, dict):
            return cls(str(value.get("zh") or "").strip(), str(value.get("en") or "").strip())
        text = str(value or "").strip()
        return cls(zh=text, en="") if _has_cjk(text) else cls(zh="", en=text)

    def __str__(self) -> str:
        if self.zh and self.en and self.zh != self.en:
            return f"{self.zh} · {self.en}"
        return self.zh or self.en

    @property
    def search_text(self) -> str:
        """Both languages, for matching."""
        return f"{self.zh} {self.en}".strip()


@dataclass(frozen=True)
class Command:
    """One ``*command`` of the role."""

    name: str
    description: Text
    args: tuple[str, ...] = ()
    task: str | None = None
    handler: str | None = None

    @property
    def usage(self) -> str:
        """The command as typed, with its arguments."""
        return " ".join([f"*{self.name}", *(f"{{{a}}}" for a in self.args)])


@dataclass(frozen=True)
class Question:
    """A value a task asks the user for."""

    key: str
    ask: Text
    kind: str = "text"
    default: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """A task of the role: purpose, inputs, steps, outputs."""

    id: str
    title: str
    title_zh: str
    doc_output_location: str
    purpose: Text
    steps: tuple[Text, ...]
    templates: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    other_inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    checklists: tuple[str, ...] = ()
    questions: tuple[Question, ...] = ()
    command: str | None = None


@dataclass(frozen=True)
class Placeholder:
    """A ``{{name|default}}`` slot of a template."""

    name: str
    default: str | None
    ask: Text
    kind: str = "text"
    example: str | None = None


@dataclass(frozen=True)
class Template:
    """A template file of the pack."""

    name: str
    text: str
    title: str
    title_zh: str = ""
    description: Text = field(default_factory=Text)
    placeholders: tuple[Placeholder, ...] = ()

    @property
    def format(self) -> str:
        """``json``, ``yaml`` or ``markdown`` from the file name."""
        suffix = self.name.rsplit(".", 1)[-1].lower()
        return {"json": "json", "yaml": "yaml", "yml": "yaml"}.get(suffix, "markdown")


@dataclass(frozen=True)
class Facet:
    """One thing a checklist item asks for, with its evidence pattern.

    ``pattern`` is matched against the *facts* of an artefact (calls, options,
    settings, SQL statements, answers, concrete decisions), never its prose;
    ``kinds`` are the artefact kinds that can show it (empty: any kind).
    """

    name: str
    pattern: str
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChecklistItem:
    """One bullet of a checklist."""

    id: str
    text: Text
    topic: str = ""
    recommendation: str = ""
    applies_when: str | None = None
    facets: tuple[Facet, ...] = ()
    required_in: tuple[str, ...] = ()  # artefact kinds that must show every facet (missing → FAIL)


@dataclass(frozen=True)
class ChecklistSection:
    """A titled group of checklist items."""

    title: Text
    items: tuple[ChecklistItem, ...]


@dataclass(frozen=True)
class Checklist:
    """A checklist of the role."""

    id: str
    title: str
    title_zh: str
    sections: tuple[ChecklistSection, ...]

    @property
    def items(self) -> list[ChecklistItem]:
        """Every item, in order."""
        return [item for section in self.sections for item in section.items]


@dataclass(frozen=True)
class KnowledgeDoc:
    """A knowledge file or article: front matter and Markdown body."""

    id: str
    kind: str  # "knowledge" (the bundle's data files) or "article"
    title: str
    title_zh: str
    body: str
    path: str
    topics: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    sources: tuple[dict, ...] = ()


@dataclass(frozen=True)
class ElicitationMethod:
    """A refinement method offered after each section by ``*create-doc``."""

    id: str
    name: Text
    instruction: str
    suits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Agent:
    """The role: persona, principles, commands and quality gates."""

    id: str
    name: str
    title: str
    title_en: str
    icon: str
    when_to_use: Text
    customization: str
    activation_instructions: tuple[str, ...]
    role: Text
    style: Text
    identity: Text
    focus: tuple[Text, ...]
    core_principles: tuple[Text, ...]
    commands: tuple[Command, ...]
    definition_of_ready: tuple[Text, ...] = ()
    definition_of_done: tuple[Text, ...] = ()
    dependencies: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pack:
    """A whole loaded pack."""

    root: Path
    agent: Agent
    tasks: dict[str, Task]
    templates: dict[str, Template]
    checklists: dict[str, Checklist]
    knowledge: dict[str, KnowledgeDoc]
    articles: dict[str, KnowledgeDoc]
    methods: tuple[ElicitationMethod, ...] = ()
    core_methods: tuple[str, ...] = ()

    def command(self, name: str) -> Command | None:
        """The command called ``name`` (without ``*``), if any."""
        for command in self.agent.commands:
            if command.name == name:
                return command
        return None

    def task_for(self, command: Command) -> Task | None:
        """The task a command runs, if it runs one."""
        return self.tasks.get(command.task) if command.task else None


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader, through libyaml when PyYAML has it: about ten times faster, and every process that
converses parses the pack's ~180 YAML and Markdown files at start."""


def load_yaml(text: str) -> Any:
    """Plain data from YAML text, with the safe loader (no Python objects)."""
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - SAFE_LOADER is SafeLoader or its C twin


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PackError(f"{path.name}: cannot be read as YAML ({exc.__class__.__name__}: {exc})") from exc


def _texts(values: Any) -> tuple[Text, ...]:
    return tuple(Text.of(v) for v in (values or []))


def split_front_matter(text: str) -> tuple[dict, str]:
    """Split ``---`` YAML front matter from a Markdown body."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            meta = load_yaml(text[3:end]) or {}
            body = text[end + 4 :].lstrip("\n")
            if isinstance(meta, dict):
                return meta, body
    return {}, text


def template_placeholders(text: str) -> list[tuple[str, str | None]]:
    """The placeholders of a template text, in order of first appearance."""
    seen: dict[str, str | None] = {}
    for match in PLACEHOLDER_RE.finditer(text):
        name, default = match.group(1), match.group(2)
        if name not in seen:
            seen[name] = default
        elif seen[name] is None and default is not None:
            seen[name] = default
    return list(seen.items())


def _load_agent(root: Path) -> Agent:
    path = root / "agent.yaml"
    if not path.is_file():
        raise PackError(f"{root}: no agent.yaml")
    raw = _read_yaml(path) or {}
    if not isinstance(raw, dict) or not raw.get("commands"):
        raise PackError("agent.yaml: no commands")
    persona = raw.get("persona") or {}
    gates = raw.get("quality_gates") or {}
    commands = []
    for entry in raw["commands"]:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise PackError(f"agent.yaml: a command without a name: {entry!r}")
        commands.append(
            Command(
                name=str(entry["name"]),
                description=Text.of(entry.get("description")),
                args=tuple(entry.get("args") or ()),
                task=entry.get("task"),
                handler=entry.get("handler"),
            )
        )
    return Agent(
        id=str(raw.get("id") or root.name),
        name=str(raw.get("name") or raw.get("id") or "Agent"),
        title=str(raw.get("title") or ""),
        title_en=str(raw.get("title_en") or ""),
        icon=str(raw.get("icon") or ""),
        when_to_use=Text.of(raw.get("when_to_use")),
        customization=str(raw.get("customization") or ""),
        activation_instructions=tuple(raw.get("activation_instructions") or ()),
        role=Text.of(persona.get("role")),
        style=Text.of(persona.get("style")),
        identity=Text.of(persona.get("identity")),
        focus=_texts(persona.get("focus")),
        core_principles=_texts(raw.get("core_principles")),
        commands=tuple(commands),
        definition_of_ready=_texts(gates.get("definition_of_ready")),
        definition_of_done=_texts(gates.get("definition_of_done")),
        dependencies=dict(raw.get("dependencies") or {}),
    )


def _load_task(path: Path) -> Task:
    raw = _read_yaml(path) or {}
    inputs = raw.get("inputs") or {}
    questions = tuple(
        Question(
            key=str(q["key"]),
            ask=Text.of(q.get("ask")),
            kind=str(q.get("kind") or "text"),
            default=None if q.get("default") is None else str(q.get("default")),
            choices=tuple(str(c) for c in (q.get("choices") or ())),
        )
        for q in (raw.get("questions") or [])
        if isinstance(q, dict) and q.get("key")
    )
    task_id = str(raw.get("id") or path.stem)
    return Task(
        id=task_id,
        title=str(raw.get("title") or task_id),
        title_zh=str(raw.get("title_zh") or ""),
        doc_output_location=str(raw.get("doc_output_location") or f"docs/{task_id}.md"),
        purpose=Text.of(raw.get("purpose")),
        steps=_texts(raw.get("steps")),
        templates=tuple(inputs.get("templates") or ()),
        data=tuple(inputs.get("data") or ()),
        other_inputs=tuple(inputs.get("other") or ()),
        outputs=tuple(raw.get("outputs") or ()),
        checklists=tuple(raw.get("checklists") or ()),
        questions=questions,
        command=raw.get("command"),
    )


def _load_template(path: Path) -> Template:
    text = path.read_text(encoding="utf-8")
    meta_path = path.with_name(path.name + META_SUFFIX)
    meta = (_read_yaml(meta_path) or {}) if meta_path.is_file() else {}
    described = meta.get("placeholders") or {}
    placeholders = []
    for name, default in template_placeholders(text):
        info = described.get(name) or {}
        placeholders.append(
            Placeholder(
                name=name,
                default=default,
                ask=Text.of(info.get("ask") or name.replace("_", " ")),
                kind=str(info.get("kind") or "text"),
                example=None if info.get("example") is None else str(info.get("example")),
            )
        )
    title = str(meta.get("title") or _first_heading(text) or path.name)
    return Template(
        name=path.name,
        text=text,
        title=title,
        title_zh=str(meta.get("title_zh") or ""),
        description=Text.of(meta.get("description")),
        placeholders=tuple(placeholders),
    )


def _first_heading(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip() or None
    return None


def _load_checklist(path: Path) -> Checklist:
    raw = _read_yaml(path) or {}
    sections = []
    for section in raw.get("sections") or []:
        items = []
        for index, item in enumerate(section.get("items") or [], start=1):
            facets = tuple(
                Facet(name=str(f.get("name") or "evidence"), pattern=str(f["pattern"]),
                      kinds=tuple(str(k) for k in (f.get("kinds") or ())))
                for f in (item.get("facets") or [])
                if isinstance(f, dict) and f.get("pattern")
            )
            for facet in facets:
                try:
                    re.compile(facet.pattern)
                except re.error as exc:
                    raise PackError(f"{path.name}: facet {facet.name!r} has a bad pattern: {exc}") from exc
            items.append(
                ChecklistItem(
                    id=str(item.get("id") or f"item-{index}"),
                    text=Text(str(item.get("zh") or ""), str(item.get("en") or "")),
                    topic=str(item.get("topic") or ""),
                    recommendation=str(item.get("recommendation") or ""),
                    applies_when=item.get("applies_when"),
                    facets=facets,
                    required_in=tuple(str(k) for k in (item.get("required_in") or ())),
                )
            )
        sections.append(ChecklistSection(title=Text.of(section.get("title")), items=tuple(items)))
    checklist_id = str(raw.get("id") or path.stem)
    return Checklist(
        id=checklist_id,
        title=str(raw.get("title") or checklist_id),
        title_zh=str(raw.get("title_zh") or ""),
        sections=tuple(sections),
    )


def _load_doc(path: Path, root: Path, kind: str) -> KnowledgeDoc:
    meta, body = split_front_matter(path.read_text(encoding="utf-8"))
    return KnowledgeDoc(
        id=str(meta.get("id") or path.stem),
        kind=kind,
        title=str(meta.get("title") or _first_heading(body) or path.stem),
        title_zh=str(meta.get("title_zh") or ""),
        body=body,
        path=path.relative_to(root).as_posix(),
        topics=tuple(meta.get("topics") or ()),
        related=tuple(meta.get("related") or ()),
        sources=tuple(s for s in (meta.get("sources") or ()) if isinstance(s, dict)),
    )


def _load_methods(root: Path) -> tuple[tuple[ElicitationMethod, ...], tuple[str, ...]]:
    path = root / "elicitation-methods.yaml"
    if not path.is_file():
        return (), ()
    raw = _read_yaml(path) or {}
    methods = tuple(
        ElicitationMethod(
            id=str(m["id"]),
            name=Text.of(m.get("name")),
            instruction=str(m.get("instruction") or ""),
            suits=tuple(m.get("suits") or ()),
        )
        for m in (raw.get("methods") or [])
        if isinstance(m, dict) and m.get("id")
    )
    return methods, tuple(raw.get("core") or ())


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []


def load_pack(root: Path | str = PACK_DIR) -> Pack:
    """Load every file of a pack folder.

    Args:
        root: the pack folder.

    Returns:
        The loaded pack.

    Raises:
        PackError: when a file is missing or malformed (the message names it).

    """
    root = Path(root).resolve()
    agent = _load_agent(root)
    tasks = {t.id: t for t in map(_load_task, _files(root / "tasks", "*.yaml"))}
    templates = {
        p.name: _load_template(p)
        for p in _files(root / "templates", "*")
        if not p.name.endswith(META_SUFFIX) and not p.name.startswith(".")
    }
    checklists = {c.id: c for c in map(_load_checklist, _files(root / "checklists", "*.yaml"))}
    knowledge = {d.id: d for d in (_load_doc(p, root, "knowledge") for p in _files(root / "data", "*.md"))}
    articles = {d.id: d for d in (_load_doc(p, root, "article") for p in _files(root / "articles", "*.md"))}
    methods, core = _load_methods(root)
    for command in agent.commands:
        if command.task and command.task not in tasks:
            raise PackError(f"agent.yaml: command *{command.name} runs task {command.task!r}, which the pack lacks")
    return Pack(root, agent, tasks, templates, checklists, knowledge, articles, methods, core)


@functools.lru_cache(maxsize=8)
def cached_pack(root: str) -> Pack:
    """``load_pack`` once per folder per process (the pack is read-only)."""
    return load_pack(root)
