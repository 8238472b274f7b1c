"""Turn a knowledge pack folder into retrievable passages.

Articles and knowledge files are split at level-2 (``##``) headings, ignoring
``##`` lines inside fenced code blocks; templates, tasks and checklist
sections become one passage each. Every passage gets a stable id derived from
the pack's own names (``article:kafka#starting-offsets``), so re-indexing the
same pack produces the same ids and only changed passages are re-embedded.

This module reads the raw files itself rather than through the engine's
loader: a half-written or malformed file must cost one warning, never the
whole index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.loader import load_yaml

log = logging.getLogger(__name__)

DEFAULT_PACK_DIR = Path(__file__).resolve().parent / "pack"
"""The knowledge pack shipped with the project."""

KINDS = ("article", "knowledge", "template", "checklist", "task", "user")
"""Every passage kind; the id prefix of a passage is its kind."""

ZH_SUMMARY_PREFIXES = ("中文要点", "中文摘要")
"""How the pack marks the Chinese summary line of a section."""

MAX_EMBED_CHARS = 6000
"""Upper bound on the text a passage contributes to its embedding; long
sections are rare and their opening carries the topic."""

_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_H1_RE = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_H2_RE = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of knowledge.

    Attributes:
        id: Stable id, ``<kind>:<doc>[#<section-slug>]``.
        title: Human title (document title and section heading).
        path: File path relative to the pack root (or the ingest source).
        kind: One of :data:`KINDS`.
        text: The passage text shown to users (Markdown).
        sources: Official pages the facts were checked against, as
            ``{"title", "url"}`` dicts (articles); empty when the pack file
            itself is the source.
        doc: Id of the document the passage belongs to (``kafka``).
        section: The section heading, empty for a whole-file passage.
        related: Ids of related documents (from the front matter).
        topics: Topic tags of the document.
        origin: ``"pack"`` or the name of an ingested source.

    """

    id: str
    title: str
    path: str
    kind: str
    text: str
    sources: tuple[dict[str, str], ...] = ()
    doc: str = ""
    section: str = ""
    related: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    origin: str = "pack"

    @property
    def embed_text(self) -> str:
        """The text that is embedded and BM25-indexed: title first, for context."""
        return f"{self.title}\n{self.text}"[:MAX_EMBED_CHARS]

    @property
    def summary_text(self) -> str:
        """A short "what this passage is about" text, embedded as a second vector.

        A long section's single vector is an average of many facts; a second
        vector of just its heading and its "中文要点" line (or, without one,
        its opening) gives questions a sharp target. It is what makes Chinese
        questions find English sections: the 中文要点 line is their Chinese
        counterpart.
        """
        heading = self.section or self.title
        summary_line = ""
        for line in self.text.splitlines():
            stripped = line.strip()
            if stripped.startswith(ZH_SUMMARY_PREFIXES):
                summary_line = stripped
                break
        if not summary_line:
            body = "\n".join(line for line in self.text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
            summary_line = body[:400]
        return f"{heading}\n{summary_line}".strip()

    @property
    def content_hash(self) -> str:
        """Hash of everything stored for the passage; a change means re-embed."""
        payload = json.dumps(
            [
                self.embed_text,
                self.summary_text,
                self.title,
                self.path,
                self.kind,
                self.sources,
                self.related,
                self.topics,
                self.origin,
            ],
            ensure_ascii=False,
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

    def to_metadata(self) -> dict[str, Any]:
        """Flatten to a Chroma metadata dict (scalar values only)."""
        return {
            "title": self.title,
            "path": self.path,
            "kind": self.kind,
            "doc": self.doc,
            "section": self.section,
            "sources": json.dumps(list(self.sources), ensure_ascii=False),
            "related": ",".join(self.related),
            "topics": ",".join(self.topics),
            "origin": self.origin,
            "hash": self.content_hash,
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (used by the ingest manifest)."""
        return {
            "id": self.id,
            "title": self.title,
            "path": self.path,
            "kind": self.kind,
            "text": self.text,
            "sources": list(self.sources),
            "doc": self.doc,
            "section": self.section,
            "related": list(self.related),
            "topics": list(self.topics),
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        """Inverse of :meth:`to_json`."""
        return cls(
            id=data["id"],
            title=data["title"],
            path=data["path"],
            kind=data["kind"],
            text=data["text"],
            sources=tuple(data.get("sources") or ()),
            doc=data.get("doc", ""),
            section=data.get("section", ""),
            related=tuple(data.get("related") or ()),
            topics=tuple(data.get("topics") or ()),
            origin=data.get("origin", "pack"),
        )


@dataclass
class Section:
    """A Markdown section produced by :func:`split_markdown`."""

    heading: str
    text: str
    slug: str = field(default="")


def has_cjk(text: str) -> bool:
    """True when ``text`` contains Chinese (CJK ideograph) characters."""
    return bool(_CJK_RE.search(text))


def slugify(text: str) -> str:
    """GitHub-style anchor: lowercase, punctuation dropped, spaces to dashes.

    Chinese characters are kept, so Chinese headings get readable ids too.
    """
    text = text.strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    text = re.sub(r"[\s_]+", "-", text)
    return re.sub(r"-{2,}", "-", text).strip("-") or "section"


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split ``---`` YAML front matter from a Markdown body.

    Args:
        text: The whole file.

    Returns:
        The front matter (empty when absent or unreadable) and the body.

    """
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            try:
                meta = load_yaml(text[3:end]) or {}
            except yaml.YAMLError as exc:
                log.warning("front matter cannot be read as YAML: %s", exc)
                meta = {}
            body = text[end + 4 :].split("\n", 1)[1] if "\n" in text[end + 4 :] else ""
            if isinstance(meta, dict):
                return meta, body
    return {}, text


def split_markdown(body: str) -> tuple[str, str, list[Section]]:
    """Split Markdown at level-2 headings, ignoring ``##`` inside code fences.

    Args:
        body: Markdown without front matter.

    Returns:
        ``(h1_title, preamble, sections)``: the first level-1 heading (or
        ``""``), the text before the first ``##`` without that heading, and
        the sections with unique slugs in document order.

    """
    title = ""
    preamble: list[str] = []
    chunks: list[tuple[str, list[str]]] = []
    fence: str | None = None
    for line in body.splitlines():
        marker = _FENCE_RE.match(line)
        if marker:
            token = marker.group(1)
            if fence is None:
                fence = token
            elif token[0] == fence[0] and len(token) >= len(fence) and line.strip() == token:
                fence = None
        in_code = fence is not None or marker is not None
        heading = None if in_code else _H2_RE.match(line)
        if heading:
            chunks.append((heading.group(1).strip(), [line]))
        elif chunks:
            chunks[-1][1].append(line)
        elif not title and not in_code and (h1 := _H1_RE.match(line)):
            title = h1.group(1).strip()
        else:
            preamble.append(line)
    sections: list[Section] = []
    seen: dict[str, int] = {}
    for heading, lines in chunks:
        base = slugify(heading)
        seen[base] = seen.get(base, 0) + 1
        slug = base if seen[base] == 1 else f"{base}-{seen[base]}"
        sections.append(Section(heading=heading, text="\n".join(lines).strip(), slug=slug))
    return title, "\n".join(preamble).strip(), sections


def _sources(meta: dict[str, Any]) -> tuple[dict[str, str], ...]:
    out = []
    for item in meta.get("sources") or ():
        if isinstance(item, dict) and item.get("url"):
            out.append({"title": str(item.get("title") or item["url"]), "url": str(item["url"])})
        elif isinstance(item, str) and item.strip():
            out.append({"title": item.strip(), "url": item.strip()})
    return tuple(out)


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return tuple(str(v) for v in (value or ()) if v is not None and str(v).strip())


def markdown_passages(
    text: str,
    *,
    kind: str,
    doc_id: str,
    path: str,
    origin: str = "pack",
    default_title: str = "",
    extra_sources: tuple[dict[str, str], ...] = (),
    use_front_matter_id: bool = True,
) -> list[Passage]:
    """Passages of one Markdown document (front matter optional).

    Args:
        text: The whole file.
        kind: Passage kind (``article``, ``knowledge``, ``user``).
        doc_id: Document id used in passage ids (front matter ``id`` wins).
        path: Path shown in citations.
        origin: ``"pack"`` or an ingest source name.
        default_title: Title when neither front matter nor an H1 gives one.
        extra_sources: Sources added to those of the front matter.
        use_front_matter_id: Let a front-matter ``id`` replace ``doc_id``
            (pack files); user documents keep their path-based id.

    Returns:
        One passage for a non-trivial preamble and one per ``##`` section.

    """
    meta, body = split_front_matter(text)
    if use_front_matter_id:
        doc_id = str(meta.get("id") or doc_id)
    h1, preamble, sections = split_markdown(body)
    # The H1 is the short display name; the front-matter title is often a
    # long search-friendly line, so it is the fallback.
    title = str(h1 or meta.get("title") or default_title or doc_id)
    title_zh = str(meta.get("title_zh") or "")
    common = {
        "path": path,
        "kind": kind,
        "sources": _sources(meta) + extra_sources,
        "doc": doc_id,
        "related": _str_list(meta.get("related")),
        "topics": _str_list(meta.get("topics")),
        "origin": origin,
    }
    passages = []
    full_title = f"{title} ({title_zh})" if title_zh else title
    # Text before the first ## (without the H1) is a passage of its own.
    if preamble:
        passages.append(Passage(id=f"{kind}:{doc_id}", title=full_title, text=preamble, **common))
    for section in sections:
        passages.append(
            Passage(
                id=f"{kind}:{doc_id}#{section.slug}",
                title=f"{title} — {section.heading}",
                text=section.text,
                section=section.heading,
                **common,
            )
        )
    return passages


def _bi(value: Any) -> str:
    """Render a ``{zh, en}`` mapping (or a plain value) as one line."""
    if isinstance(value, dict):
        en, zh = str(value.get("en") or "").strip(), str(value.get("zh") or "").strip()
        return f"{en} ({zh})" if en and zh else en or zh
    return str(value or "").strip()


def _read_yaml(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"))


def _task_passages(path: Path, root: Path) -> list[Passage]:
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        return []
    task_id = str(raw.get("id") or path.stem)
    title = str(raw.get("title") or task_id)
    title_zh = str(raw.get("title_zh") or "")
    lines = [f"Task {task_id}" + (f" (command *{raw['command']})" if raw.get("command") else "")]
    if raw.get("purpose"):
        lines.append(f"Purpose: {_bi(raw['purpose'])}")
    steps = [s for s in (raw.get("steps") or []) if s]
    if steps:
        lines.append("Steps:")
        lines.extend(f"- {_bi(step)}" for step in steps)
    inputs = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
    for key in ("templates", "data", "other"):
        values = _str_list(inputs.get(key))
        if values:
            lines.append(f"Inputs ({key}): {', '.join(values)}")
    questions = [q for q in (raw.get("questions") or []) if isinstance(q, dict)]
    if questions:
        lines.append("Asks:")
        lines.extend(f"- {_bi(q.get('ask'))}" + (f" (default {q['default']})" if q.get("default") else "") for q in questions)
    if raw.get("checklists"):
        lines.append(f"Checklists: {', '.join(_str_list(raw['checklists']))}")
    if raw.get("doc_output_location"):
        lines.append(f"Output: {raw['doc_output_location']}")
    return [
        Passage(
            id=f"task:{task_id}",
            title=f"{title} ({title_zh})" if title_zh else title,
            path=path.relative_to(root).as_posix(),
            kind="task",
            text="\n".join(lines),
            doc=task_id,
            related=_str_list(inputs.get("data")),
        )
    ]


def _checklist_passages(path: Path, root: Path) -> list[Passage]:
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        return []
    cid = str(raw.get("id") or path.stem)
    title = str(raw.get("title") or cid)
    title_zh = str(raw.get("title_zh") or "")
    rel = path.relative_to(root).as_posix()
    passages = []
    seen: dict[str, int] = {}
    for section in raw.get("sections") or []:
        if not isinstance(section, dict):
            continue
        heading = _bi(section.get("title")) or title
        en_heading = section["title"].get("en") if isinstance(section.get("title"), dict) else heading
        base = slugify(str(en_heading or heading))
        seen[base] = seen.get(base, 0) + 1
        slug = base if seen[base] == 1 else f"{base}-{seen[base]}"
        lines = [f"Checklist {cid}: {title}" + (f" ({title_zh})" if title_zh else ""), f"Section: {heading}"]
        topics = set()
        for item in section.get("items") or []:
            if not isinstance(item, dict):
                continue
            en, zh = str(item.get("en") or "").strip(), str(item.get("zh") or "").strip()
            line = f"- {en} ({zh})" if en and zh else f"- {en or zh}"
            if item.get("recommendation"):
                line += f" — {str(item['recommendation']).strip()}"
            lines.append(line)
            if item.get("topic"):
                topics.add(str(item["topic"]))
        passages.append(
            Passage(
                id=f"checklist:{cid}#{slug}",
                title=f"{title} — {heading}",
                path=rel,
                kind="checklist",
                text="\n".join(lines),
                doc=cid,
                section=heading,
                topics=tuple(sorted(topics)),
            )
        )
    return passages


def _template_passages(path: Path, root: Path) -> list[Passage]:
    name = path.name
    meta_path = path.with_name(name + ".meta.yaml")
    meta: dict[str, Any] = {}
    if meta_path.is_file():
        loaded = _read_yaml(meta_path)
        meta = loaded if isinstance(loaded, dict) else {}
    title = str(meta.get("title") or name.rsplit("-tmpl", 1)[0].replace("-", " ").capitalize())
    title_zh = str(meta.get("title_zh") or "")
    lines = [f"Template {name}: {title}" + (f" ({title_zh})" if title_zh else "")]
    if meta.get("description"):
        lines.append(_bi(meta["description"]))
    placeholders = meta.get("placeholders") if isinstance(meta.get("placeholders"), dict) else {}
    for key, spec in placeholders.items():
        if isinstance(spec, dict):
            lines.append(f"- {{{{{key}}}}}: {_bi(spec.get('ask'))}")
    lines.append("")
    lines.append(path.read_text(encoding="utf-8").strip())
    return [
        Passage(
            id=f"template:{name}",
            title=f"{title} template",
            path=path.relative_to(root).as_posix(),
            kind="template",
            text="\n".join(lines),
            doc=name,
        )
    ]


def _doc_passages(path: Path, root: Path, kind: str) -> list[Passage]:
    return markdown_passages(
        path.read_text(encoding="utf-8"),
        kind=kind,
        doc_id=path.stem,
        path=path.relative_to(root).as_posix(),
    )


def _files(folder: Path, patterns: Iterable[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    found = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file() and not p.name.startswith(".")}
    return sorted(found)


def iter_pack_files(pack_dir: Path) -> Iterator[tuple[Path, str]]:
    """Yield ``(file, kind)`` for every indexable file of a pack, sorted."""
    for path in _files(pack_dir / "articles", ["*.md"]):
        yield path, "article"
    for path in _files(pack_dir / "data", ["*.md"]):
        yield path, "knowledge"
    for path in _files(pack_dir / "templates", ["*"]):
        if not path.name.endswith(".meta.yaml"):
            yield path, "template"
    for path in _files(pack_dir / "checklists", ["*.yaml", "*.yml"]):
        yield path, "checklist"
    for path in _files(pack_dir / "tasks", ["*.yaml", "*.yml"]):
        yield path, "task"


def load_pack_passages(pack_dir: Path | str | None = None) -> list[Passage]:
    """All passages of a pack, in a deterministic order.

    A file that cannot be read or parsed is skipped with a warning, so a pack
    being edited still indexes everything else.

    Args:
        pack_dir: Pack root; defaults to :data:`DEFAULT_PACK_DIR`.

    Returns:
        The passages, ids unique (a later duplicate is dropped with a warning).

    """
    root = Path(pack_dir or DEFAULT_PACK_DIR)
    builders = {
        "article": lambda p: _doc_passages(p, root, "article"),
        "knowledge": lambda p: _doc_passages(p, root, "knowledge"),
        "template": lambda p: _template_passages(p, root),
        "checklist": lambda p: _checklist_passages(p, root),
        "task": lambda p: _task_passages(p, root),
    }
    passages: list[Passage] = []
    seen: set[str] = set()
    for path, kind in iter_pack_files(root):
        try:
            found = builders[kind](path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, TypeError, KeyError) as exc:
            log.warning("skipping %s: %s", path.relative_to(root).as_posix(), exc)
            continue
        for passage in found:
            if not passage.text.strip():
                continue
            if passage.id in seen:
                log.warning("duplicate passage id %s in %s; keeping the first", passage.id, passage.path)
                continue
            seen.add(passage.id)
            passages.append(passage)
    return passages
