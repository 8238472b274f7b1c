"""Turn a BMad-Method web agent bundle into a knowledge pack folder.

A web bundle is one text file of resources, each between
``==================== START: <path> ====================`` and the matching
``END:`` line. The agent definition is a YAML block inside ``agents/<id>.md``.
Converting to the pack format (instead of keeping a second in-memory model)
lets the same loader, retriever and engine serve any agent of the pack.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from knowledge.loader import Pack, PackError, load_pack

MAX_BUNDLE_BYTES = 5 * 1024 * 1024
_MARK_RE = re.compile(r"^=+ (START|END): (\S+) =+\s*$")
_YAML_BLOCK_RE = re.compile(r"```ya?ml\s*\n(.*?)\n```", re.S)
_TASK_REF_RE = re.compile(r"(?:tasks/)?([\w.-]+?)\.md\b")
_BUILTINS = {"help", "kb-mode", "create-doc", "execute-checklist", "shard-doc", "doc-out", "exit", "yolo"}


def parse_resources(text: str) -> dict[str, str]:
    """Split a web bundle into ``{resource path: content}``.

    Raises:
        PackError: when the file has no resources, or one is never closed.

    """
    resources: dict[str, str] = {}
    current: str | None = None
    start_line = 0
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _MARK_RE.match(line.strip())
        if not match:
            if current is not None:
                lines.append(line)
            continue
        kind, path = match.groups()
        if kind == "START":
            if current is not None:
                raise PackError(f"resource {current} (line {start_line}) has no END line before {path} starts")
            current, start_line, lines = path, number, []
        else:
            if current != path:
                raise PackError(f"line {number}: END of {path} without its START")
            resources[path] = "\n".join(lines).strip("\n") + "\n"
            current = None
    if current is not None:
        raise PackError(f"resource {current} starts at line {start_line} but never ends: the bundle looks truncated")
    if not resources:
        raise PackError("not a BMad web bundle: no START:/END: resource markers found")
    return resources


_SAFE_NAME = re.compile(r"[\w][\w.-]{0,150}")


def _kind_and_name(path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/")
    kind = parts[-2] if len(parts) >= 2 else ""
    return kind, parts[-1]


def _checked_name(path: str) -> tuple[str, str]:
    """A resource's kind and file name, refusing names that are not plain file names (``..``, ``.``, too long)."""
    kind, name = _kind_and_name(path)
    if kind in ("agents", "tasks", "templates", "checklists", "data") and not _SAFE_NAME.fullmatch(name):
        raise PackError(f"resource {path!r}: {name!r} is not a plain file name")
    return kind, name


def _doc_location(name: str, value: str) -> str:
    """A task's ``docOutputLocation``, refused when it would not be a file inside the workspace."""
    text = value.strip().strip("\"'")
    parts = text.replace("\\", "/").split("/")
    if (not text or text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", text) or ".." in parts
            or text.endswith("/") or parts[-1] in ("", ".")):
        raise PackError(f"task {name}: docOutputLocation {value!r} must be a file path inside the workspace "
                        "(such as docs/plan.md), without '..'")
    return text


def _stem(name: str) -> str:
    return name[:-3] if name.endswith(".md") else name.rsplit(".", 1)[0]


def _agent_yaml(markdown: str, path: str) -> dict:
    block = _YAML_BLOCK_RE.search(markdown)
    if not block:
        raise PackError(f"{path}: no ```yaml block with the agent definition")
    try:
        # An agent definition has no use for aliases, and a few of them nested ("billion laughs") expand
        # to gigabytes once the data is built or printed: refuse them before anything is constructed.
        for event in yaml.parse(block.group(1), Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise PackError(f"{path}: the agent YAML uses an alias (*{event.anchor}, line {line} of the block); "
                                "aliases are refused, write the values out")
        raw = yaml.safe_load(block.group(1))
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: the agent YAML is malformed: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("agent"), dict):
        raise PackError(f"{path}: the agent YAML has no 'agent:' section")
    for key, kind in _SHAPES.items():
        value = raw.get(key)
        if value is not None and not isinstance(value, kind):
            raise PackError(f"{path}: '{key}' must be {_KIND_NAMES[kind]}, not {_describe(value)}")
    for key in ("focus", "core_principles"):
        value = (raw.get("persona") or {}).get(key)
        if value is not None and not isinstance(value, (list, str)):
            raise PackError(f"{path}: 'persona.{key}' must be a list or a text, not {_describe(value)}")
    for key, value in (raw.get("dependencies") or {}).items():
        if value is not None and not isinstance(value, list):
            raise PackError(f"{path}: 'dependencies.{key}' must be a list, not {_describe(value)}")
    return raw


_SHAPES: dict[str, type] = {
    "commands": list, "persona": dict, "dependencies": dict, "activation-instructions": list,
    "quality-gates": dict, "quality_gates": dict, "core_principles": list,
}
_KIND_NAMES = {list: "a list", dict: "a mapping (key: value lines)"}


def _describe(value: Any) -> str:
    kinds = {str: "a text", int: "a number", float: "a number", bool: "true/false", list: "a list",
             dict: "a mapping"}
    return kinds.get(type(value), type(value).__name__)


def _command_entries(raw_commands: Any) -> list[tuple[str, list[str], str]]:
    entries = []
    for entry in raw_commands or []:
        if isinstance(entry, dict):
            for key, value in entry.items():
                entries.append((str(key), str(value or "")))
        elif isinstance(entry, str):
            key, _, value = entry.partition(":")
            entries.append((key, value))
    commands = []
    for key, description in entries:
        words = key.strip().lstrip("*").split()
        if not words:
            continue
        args = [w.strip("{}") for w in words[1:] if w.startswith("{")]
        commands.append((words[0], args, description.strip()))
    return commands


def _task_for(name: str, description: str, task_ids: set[str]) -> str | None:
    if name in _BUILTINS:
        return None
    for ref in _TASK_REF_RE.findall(description):
        if ref in task_ids:
            return ref
    return name if name in task_ids else None


def _section_map(markdown: str) -> tuple[str, dict[str, list[str]]]:
    title = ""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in markdown.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            current = line[3:].strip().lower()
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return title, sections


def _bullets(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        stripped = line.strip()
        match = re.match(r"^(?:[-*+]|\d+\.)\s+(?:\[[ xX]\]\s*)?(.*)$", stripped)
        if match and match.group(1).strip():
            out.append(match.group(1).strip())
    return out


def _paragraph(lines: list[str]) -> str:
    return " ".join(line.strip() for line in lines if line.strip() and not line.strip().startswith("#")).strip()


def _task(name: str, markdown: str) -> dict:
    title, sections = _section_map(markdown)
    location = re.search(r"^docOutputLocation:\s*(\S+)", markdown, re.M)
    inputs = _bullets(sections.get("inputs", []))
    templates = [i.split("/", 1)[1] for i in inputs if i.startswith("templates/")]
    data = [_stem(i.split("/", 1)[1]) for i in inputs if i.startswith("data/")]
    other = [i for i in inputs if not i.startswith(("templates/", "data/"))]
    steps = _bullets(sections.get("steps", [])) or [h for h in sections if h][:8]
    purpose = _paragraph(sections.get("purpose", [])) or _paragraph(sections.get("", [])[:20])
    return {
        "id": name,
        "title": title or name,
        "doc_output_location": _doc_location(name, location.group(1)) if location else f"docs/{name}.md",
        "purpose": purpose,
        "inputs": {"templates": templates, "data": data, "other": other},
        "steps": steps,
        "outputs": _bullets(sections.get("outputs", [])),
    }


def _checklist(name: str, markdown: str) -> dict:
    title, sections = _section_map(markdown)
    out = []
    for heading, lines in sections.items():
        items = _bullets(lines)
        if items:
            out.append({
                "title": heading or title or name,
                "items": [{"id": f"item-{i}", "zh" if _cjk(t) else "en": t} for i, t in enumerate(items, 1)],
            })
    return {"id": name, "title": title or name, "sections": out}


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _bi(value: Any) -> dict:
    text = str(value or "").strip()
    return {"zh": text} if _cjk(text) else {"en": text}


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def bundle_to_pack_dir(text: str, dest: Path) -> Path:
    """Write the pack folder for a bundle's text into ``dest``.

    Returns:
        ``dest``.

    Raises:
        PackError: for a bundle that is truncated or malformed.

    """
    resources = parse_resources(text)
    agents = [(p, c) for p, c in resources.items() if _kind_and_name(p)[0] == "agents"]
    if not agents:
        raise PackError("the bundle has no agents/<id>.md resource")
    agent_path, agent_md = agents[0]
    raw = _agent_yaml(agent_md, agent_path)
    by_kind: dict[str, dict[str, str]] = {}
    for path, content in resources.items():
        kind, name = _checked_name(path)
        by_kind.setdefault(kind, {})[name] = content

    tasks = {_stem(n): _task(_stem(n), c) for n, c in by_kind.get("tasks", {}).items()}
    for task in tasks.values():
        _dump(dest / "tasks" / f"{task['id']}.yaml", task)
    for name, content in by_kind.get("templates", {}).items():
        (dest / "templates").mkdir(parents=True, exist_ok=True)
        (dest / "templates" / name).write_text(content, encoding="utf-8")
    for name, content in by_kind.get("checklists", {}).items():
        _dump(dest / "checklists" / f"{_stem(name)}.yaml", _checklist(_stem(name), content))
    for name, content in by_kind.get("data", {}).items():
        title, _ = _section_map(content)
        front = yaml.safe_dump({"id": _stem(name), "title": title or _stem(name)}, allow_unicode=True)
        (dest / "data").mkdir(parents=True, exist_ok=True)
        (dest / "data" / f"{_stem(name)}.md").write_text(f"---\n{front}---\n{content}", encoding="utf-8")

    agent = raw["agent"]
    persona = raw.get("persona") or {}
    gates = raw.get("quality-gates") or raw.get("quality_gates") or {}
    commands = []
    for name, args, description in _command_entries(raw.get("commands")):
        command: dict[str, Any] = {"name": name, "description": _bi(description)}
        if args:
            command["args"] = args
        task = _task_for(name, description, set(tasks))
        if task:
            command["task"] = task
        commands.append(command)
    if not commands:
        raise PackError(f"{agent_path}: the agent defines no commands")
    if "exit" not in {c["name"] for c in commands}:
        commands.append({"name": "exit", "description": {"en": "Say goodbye and leave the role"}})
    deps = raw.get("dependencies") or {}
    _dump(dest / "agent.yaml", {
        "id": str(agent.get("id") or _stem(_kind_and_name(agent_path)[1])),
        "name": str(agent.get("name") or agent.get("id") or "Agent"),
        "title": str(agent.get("title") or ""),
        "icon": str(agent.get("icon") or ""),
        "when_to_use": _bi(agent.get("whenToUse")),
        "customization": str(agent.get("customization") or ""),
        "activation_instructions": [str(x) for x in (raw.get("activation-instructions") or [])],
        "persona": {
            "role": _bi(persona.get("role")),
            "style": _bi(persona.get("style")),
            "identity": _bi(persona.get("identity")),
            "focus": [_bi(f) for f in (persona.get("focus") or [])]
            if isinstance(persona.get("focus"), list) else [_bi(persona.get("focus"))] if persona.get("focus") else [],
        },
        "core_principles": [_bi(p) for p in (persona.get("core_principles") or raw.get("core_principles") or [])],
        "commands": commands,
        "dependencies": {k: [_stem(str(v)) if k != "templates" else str(v) for v in (vals or [])]
                         for k, vals in deps.items() if isinstance(vals, list)},
        "quality_gates": {
            "definition_of_ready": [_bi(x) for x in (gates.get("definition-of-ready") or [])],
            "definition_of_done": [_bi(x) for x in (gates.get("definition-of-done") or [])],
        },
    })
    return dest


def load_bundle(path: Path | str, home: Path) -> Pack:
    """Load a web bundle file as a pack (materialised under ``home/bundles``).

    Args:
        path: the bundle file.
        home: the app's home folder; the converted pack is cached there by content hash.

    Raises:
        PackError: with a message that names the problem.

    """
    from tools.workspace import WorkspaceError, read_regular

    path = Path(path)
    try:
        # A regular file, read with a bound: a named pipe blocked here forever and /dev/zero filled memory.
        data = read_regular(path, MAX_BUNDLE_BYTES)
    except WorkspaceError as exc:
        raise PackError(f"cannot use bundle {path.name}: {exc}") from exc
    except OSError as exc:
        raise PackError(f"cannot read bundle {path}: {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise PackError(f"bundle {path.name} is binary, not a text web bundle")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackError(f"bundle {path.name} is not UTF-8 text") from exc
    digest = hashlib.sha256(data).hexdigest()[:16]
    dest = Path(home) / "bundles" / digest
    if not (dest / "agent.yaml").is_file():
        staging = dest.with_name(f"{digest}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            bundle_to_pack_dir(text, staging)
            try:
                staging.replace(dest)
            except OSError:
                if not (dest / "agent.yaml").is_file():  # not another process having converted it meanwhile
                    raise
        except PackError:
            raise
        except (TypeError, AttributeError, ValueError, KeyError, OSError, RecursionError) as exc:
            # The checks above name the usual mistakes; anything else the bundle gets wrong is still its fault.
            raise PackError(f"bundle {path.name} is malformed: {type(exc).__name__}: {str(exc)[:200]}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return load_pack(dest)
