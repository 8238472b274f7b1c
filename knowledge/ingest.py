"""Add a team's own Markdown and text documents to the knowledge index.

Ingested documents are chunked like the pack (Markdown at ``##`` headings,
long sections and text files at paragraph boundaries), stored with kind
``user``, and searched and cited like everything else. Each ingested folder
is a *source* with a name (the folder name unless given); re-ingesting a
source replaces its passages, and :func:`remove_ingested` takes it out again.

Safety rules: files that cannot be used (binary, not UTF-8, empty, larger
than 1 MB, not .md/.txt) are skipped and named with the reason, and so is a
symbolic link that leads out of the folder (a cloned repository must not pull
in ``~/.aws/credentials``); secret-looking values are redacted before
anything is stored (:mod:`knowledge.safety`); the source's manifest under
``$STREAMING_ENGINEER_HOME/ingested`` is written only after the index update
succeeded, so a failure never loses what was indexed before.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.documents import Passage, markdown_passages
from knowledge.index import KnowledgeIndex, ingested_dir, load_ingested
from knowledge.safety import redact_secrets

MAX_FILE_BYTES = 1024 * 1024
"""Larger files are skipped: a knowledge document is not a megabyte, a log dump is."""
TEXT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text"}
MAX_PASSAGE_CHARS = 2500
"""Longer sections are cut at paragraph boundaries so each passage stays focused."""
_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


class IngestError(ValueError):
    """An ingest request that cannot be carried out (the message says why)."""


@dataclass
class IngestReport:
    """The outcome of :func:`ingest_dir`.

    Attributes:
        added: Files (relative to the folder) that were indexed.
        skipped: ``(path, reason)`` for every file left out.
        source: The source name the files were ingested under.
        passages: Passages indexed for the source.
        replaced: True when the source existed and was replaced.
        redacted: ``(path, reason)`` for every secret-looking value replaced.

    """

    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    passages: int = 0
    replaced: bool = False
    redacted: list[tuple[str, str]] = field(default_factory=list)


def source_name(name: str) -> str:
    """A safe source name (letters, digits, ``.``, ``_``, ``-``)."""
    cleaned = _NAME_RE.sub("-", name.strip()).strip("-.")
    if not cleaned:
        raise IngestError(f"Cannot use {name!r} as a source name; give one with letters or digits.")
    return cleaned[:80]


def _check_file(path: Path, folder: Path) -> tuple[str | None, str]:
    """Read a candidate file of ``folder`` (resolved); return ``(text, "")`` or ``(None, reason)``."""
    suffix = path.suffix.lower()
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling link or a link loop
        return None, "broken symbolic link"
    if not real.is_relative_to(folder):
        return None, "symbolic link to a file outside the folder (not followed)"
    if not real.is_file():
        return None, "not a regular file"
    path = real
    if suffix not in TEXT_SUFFIXES:
        return None, f"unsupported file type ({suffix or 'no extension'}; only .md, .markdown and .txt are ingested)"
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return None, "empty file"
    if size > MAX_FILE_BYTES:
        return None, f"too large ({size / 1024 / 1024:.1f} MB; the limit is 1 MB)"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if b"\x00" in raw[:8192]:
        return None, "binary file"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if not text.strip():
        return None, "empty file (whitespace only)"
    return text, ""


def _paragraph_chunks(text: str, limit: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Group paragraphs into chunks of at most ``limit`` characters.

    A longer paragraph is cut at line, then character, boundaries.
    """
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        while len(paragraph) > limit:
            cut = paragraph.rfind("\n", 0, limit)
            cut = cut if cut > limit // 2 else limit
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            pieces.append(paragraph)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(piece) + 2 <= limit:
            chunks[-1] += "\n\n" + piece
        else:
            chunks.append(piece)
    return chunks


def _split_long(passage: Passage) -> list[Passage]:
    if len(passage.text) <= MAX_PASSAGE_CHARS:
        return [passage]
    chunks = _paragraph_chunks(passage.text)
    out = []
    for number, chunk in enumerate(chunks, start=1):
        suffix = "" if number == 1 else f"-part-{number}"
        pid = passage.id + suffix if "#" in passage.id else f"{passage.id}#part-{number}"
        title = passage.title if number == 1 else f"{passage.title} (part {number})"
        out.append(Passage(**{**passage.__dict__, "id": pid, "title": title, "text": chunk}))
    return out


def file_passages(text: str, rel_path: str, source: str, file_uri: str) -> list[Passage]:
    """Passages of one user document.

    Args:
        text: The file's text.
        rel_path: Path relative to the ingested folder (POSIX).
        source: Source name.
        file_uri: ``file://`` URI of the original, cited as its source.

    Returns:
        The passages, ids ``user:<source>/<rel_path>[#section]``.

    """
    doc_id = f"{source}/{rel_path}"
    stem = Path(rel_path).stem
    sources = ({"title": rel_path, "url": file_uri},)
    if TEXT_SUFFIXES[Path(rel_path).suffix.lower()] == "markdown":
        passages = markdown_passages(
            text,
            kind="user",
            doc_id=doc_id,
            path=doc_id,
            origin=source,
            default_title=stem,
            extra_sources=sources,
            use_front_matter_id=False,
        )
    else:
        chunks = _paragraph_chunks(text)
        passages = [
            Passage(
                id=f"user:{doc_id}" if len(chunks) == 1 else f"user:{doc_id}#part-{n}",
                title=stem if len(chunks) == 1 else f"{stem} (part {n})",
                path=doc_id,
                kind="user",
                text=chunk,
                sources=sources,
                doc=doc_id,
                origin=source,
            )
            for n, chunk in enumerate(chunks, start=1)
        ]
    return [piece for passage in passages for piece in _split_long(passage) if piece.text.strip()]


def _walk(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        # Hidden folders (.git, .venv) are never documents. Linked folders are
        # listed in ``dirs`` but not entered (os.walk's followlinks=False).
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return files


def _write_manifest(home: Path | None, source: str, folder: Path, files: list[str], passages: list[Passage]) -> None:
    target = ingested_dir(home)
    target.mkdir(parents=True, exist_ok=True)
    data = {
        "source": source,
        "folder": str(folder),
        "files": files,
        "passages": [p.to_json() for p in passages],
    }
    path = target / f"{source}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def ingest_dir(
    folder: Path | str,
    *,
    name: str | None = None,
    home: Path | str | None = None,
    pack_dir: Path | str | None = None,
    index: KnowledgeIndex | None = None,
    progress: bool | None = None,
) -> IngestReport:
    """Index the .md/.txt documents of ``folder`` as a user source.

    Args:
        folder: The folder to ingest (searched recursively, hidden entries ignored).
        name: Source name; default the folder's name.
        home: Streaming Engineer home; default from the environment.
        pack_dir: Pack root (the pack stays indexed alongside).
        index: An open index to use (else one is opened).
        progress: Progress bar while embedding; default when stderr is a TTY.

    Returns:
        What was added and what was skipped, with reasons.

    Raises:
        IngestError: The folder does not exist or is not a folder.
        IndexUnavailableError: The index store cannot be reached.

    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise IngestError(f"No such folder: {folder}")
    if not folder.is_dir():
        raise IngestError(f"Not a folder: {folder} (give the folder that holds the documents)")
    folder = folder.resolve()
    source = source_name(name or folder.name)
    report = IngestReport(source=source)
    new_passages: list[Passage] = []
    for path in _walk(folder):
        rel = path.relative_to(folder).as_posix()
        text, reason = _check_file(path, folder)
        if text is None:
            report.skipped.append((rel, reason))
            continue
        text, secrets = redact_secrets(text)
        report.redacted.extend((rel, why) for why in secrets)
        passages = file_passages(text, rel, source, path.as_uri())
        if not passages:
            report.skipped.append((rel, "no text to index"))
            continue
        new_passages.extend(passages)
        report.added.append(rel)
    if not new_passages:
        return report  # nothing usable: leave whatever was indexed before untouched

    index = index or KnowledgeIndex(home=home, pack_dir=pack_dir)
    ingested = load_ingested(index.home)
    report.replaced = source in ingested
    ingested[source] = new_passages
    index.sync(index.desired_passages(ingested), progress=progress)
    _write_manifest(index.home, source, folder, report.added, new_passages)
    report.passages = len(new_passages)
    return report


def list_ingested(home: Path | str | None = None) -> dict[str, int]:
    """Ingested source names and their passage counts."""
    return {name: len(passages) for name, passages in load_ingested(home).items()}


def remove_ingested(
    source_or_all: str | bool,
    *,
    home: Path | str | None = None,
    pack_dir: Path | str | None = None,
    index: KnowledgeIndex | None = None,
) -> list[str]:
    """Remove one ingested source (by name) or all of them (``True``).

    Args:
        source_or_all: A source name, or ``True`` for every source.
        home: Streaming Engineer home.
        pack_dir: Pack root.
        index: An open index to use.

    Returns:
        The names removed.

    Raises:
        IngestError: No source with that name.

    """
    folder = ingested_dir(home)
    ingested = load_ingested(home)
    if source_or_all is True:
        names = sorted(ingested)
    else:
        wanted = str(source_or_all)
        if wanted not in ingested:
            known = ", ".join(sorted(ingested)) or "none"
            raise IngestError(f"No ingested source named {wanted!r} (ingested: {known}).")
        names = [wanted]
    if not names:
        return []
    index = index or KnowledgeIndex(home=home, pack_dir=pack_dir)
    remaining = {k: v for k, v in ingested.items() if k not in names}
    index.sync(index.desired_passages(remaining))
    for source in names:
        (folder / f"{source}.json").unlink(missing_ok=True)
    return names


__all__ = [
    "IngestError",
    "IngestReport",
    "MAX_FILE_BYTES",
    "file_passages",
    "ingest_dir",
    "list_ingested",
    "remove_ingested",
]
