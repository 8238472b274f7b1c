"""Markdown documents: shard at level-2 headings and join back, losslessly."""

from __future__ import annotations

import re
from dataclasses import dataclass

SHARD_MARKER = "<!-- shard-doc: sections -->"
MAX_SLUG_BYTES = 120
_HEADING = re.compile(r"^(#{1,6})(\s.*)?$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


@dataclass(frozen=True)
class Shard:
    """One level-2 section, as its own file."""

    filename: str
    heading: str
    text: str  # promoted one level


def slugify(heading: str) -> str:
    """lowercase-dash-case file stem for a heading (keeps CJK characters)."""
    text = re.sub(r"[`*_~\[\]()<>#:!?'\".,/\\|{}]+", " ", heading.lower())
    text = re.sub(r"\s+", "-", text.strip())
    text = re.sub(r"-{2,}", "-", text).strip("-")
    # A file name has at most 255 bytes; a heading can be any length (CJK takes 3 bytes a character).
    while len(text.encode("utf-8")) > MAX_SLUG_BYTES:
        text = text[:-1]
    return text.strip("-") or "section"


def _fenced_flags(lines: list[str]) -> list[bool]:
    """Whether each line sits inside (or opens/closes) a code fence."""
    flags, fence = [], None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            flags.append(True)
        elif fence is not None:
            flags.append(True)
            if line.strip().startswith(fence):
                fence = None
        else:
            flags.append(False)
    return flags


def _shift_headings(text: str, delta: int) -> str:
    lines = text.split("\n")
    flags = _fenced_flags(lines)
    out = []
    for line, fenced in zip(lines, flags, strict=True):
        match = None if fenced else _HEADING.match(line)
        if match:
            level = len(match.group(1)) + delta
            if 1 <= level <= 6:
                line = "#" * level + (match.group(2) or "")
        out.append(line)
    return "\n".join(out)


def split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split at ``## `` headings outside code fences.

    Returns:
        The preamble and ``[(heading, section text)]``; concatenating them
        gives back ``text`` exactly.

    """
    lines = text.split("\n")
    flags = _fenced_flags(lines)
    starts = [i for i, (line, fenced) in enumerate(zip(lines, flags, strict=True))
              if not fenced and line.startswith("## ")]
    if not starts:
        return text, []
    preamble = "\n".join(lines[: starts[0]])
    sections = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        body = "\n".join(lines[start:end])
        sections.append((lines[start][3:].strip(), body))
    return preamble, sections


def shard(text: str) -> tuple[str, list[Shard]]:
    """Shard a Markdown document.

    Returns:
        The ``index.md`` text (title, preamble and links) and the shards.

    Raises:
        ValueError: when the document has no level-2 heading to split at.

    """
    preamble, sections = split_sections(text)
    if not sections:
        raise ValueError("the document has no '## ' headings to split at")
    used: dict[str, int] = {}
    shards = []
    for heading, body in sections:
        stem = slugify(heading)
        used[stem] = used.get(stem, 0) + 1
        if used[stem] > 1:
            stem = f"{stem}-{used[stem]}"
        # A shard's own '#' lines cannot be promoted further; a level-1 line would not round-trip.
        shards.append(Shard(f"{stem}.md", heading, _shift_headings(body, -1)))
    links = "\n".join(f"- [{s.heading}](./{s.filename})" for s in shards)
    # Sections are joined with "\n"; the preamble keeps its own trailing text exactly.
    index = f"{preamble}\n{SHARD_MARKER}\n{links}\n"
    return index, shards


def join(index: str, shards: dict[str, str]) -> str:
    """Re-join ``index.md`` and its shard files into the original document."""
    if SHARD_MARKER not in index:
        raise ValueError("index.md has no shard-doc marker; it was not written by shard-doc")
    preamble, _, links = index.partition(f"\n{SHARD_MARKER}\n")
    names = re.findall(r"\]\(\./([^)]+)\)", links)
    missing = [n for n in names if n not in shards]
    if missing:
        raise ValueError(f"missing shard files: {', '.join(missing)}")
    return "\n".join([preamble, *(_shift_headings(shards[n], +1) for n in names)])
