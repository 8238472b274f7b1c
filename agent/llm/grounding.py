"""The passages one model turn may cite: retrieval, numbering, citation checks.

Every passage the model sees in a turn, whether given up front or found by
its ``search_knowledge`` calls, gets one number for the whole turn, so ``[n]``
means the same passage everywhere and the app can check that each cited
number was really retrieved. Retrieval goes through the same relevance gate
as the offline composer (``knowledge.answer.is_relevant``): when it finds
nothing relevant the model is told "no passages found", so with a model or
without, the knowledge base either answers or plainly does not.

The passages block is delimited by a tag with a random suffix drawn per turn
(``<passages-1f0c9a2e>``), and any passages tag inside a passage is removed
until none is left: an ingested document cannot close the block and speak
as instructions, whatever it nests (``</pass</passages>ages>``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.llm import prompts
from knowledge.answer import _source_line, arrange_passages, is_relevant
from knowledge.documents import ZH_SUMMARY_PREFIXES
from knowledge.retrieval import Hit

PASSAGE_CHARS = 900
"""Characters of each passage shown to the model: the pack's sections state
their main fact first, and the whole bundle is never sent."""
MAX_SEARCH_K = 5

SearchFn = Callable[[str, int], Sequence[Hit]]
_HEADING = re.compile(r"#{1,6}\s")
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_BLOCK_TAG = re.compile(r"<\s*/?\s*passages[^<>]*>", re.I)


def passage_text(text: str, keep_zh: bool) -> str:
    """A passage as the model reads it.

    Headings go (the title carries them), and so does the Chinese summary
    line unless the question is Chinese: for an English question it repeats
    the section. Lines inside code blocks are kept as they are.
    """
    kept, in_code = [], False
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            in_code = not in_code
        elif not in_code and (_HEADING.match(stripped) or (not keep_zh and stripped.startswith(ZH_SUMMARY_PREFIXES))):
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def without_block_tags(text: str) -> str:
    """``text`` with every passages tag removed, repeatedly, until removing one forms no new one."""
    while True:
        cleaned = _BLOCK_TAG.sub("", text)
        if cleaned == text:
            return text
        text = cleaned


def _clip(text: str, limit: int) -> str:
    text = without_block_tags(text.strip())  # a passage cannot open or close the data block
    if len(text) <= limit:
        return text
    cut = text[:limit]
    # End at a line or sentence boundary when one is near, so a fact is not cut mid-word.
    boundary = max(cut.rfind("\n"), cut.rfind(". "))
    return (cut[: boundary + 1] if boundary > limit * 0.6 else cut).rstrip() + " …"


@dataclass
class Sources:
    """The numbered passages of one model turn.

    Attributes:
        search: ``search(query, k) -> hits`` over the knowledge base.
        keep_zh: show passages' Chinese summary lines (for a Chinese question).
        hits: retrieved passages; citation ``[n]`` is ``hits[n-1]``.
        searches: how many retrieval calls ran (repeats are answered from memory).
        tag: the passages block's tag for this turn (random, so no passage can guess it).

    """

    search: SearchFn
    keep_zh: bool = False
    hits: list[Hit] = field(default_factory=list)
    searches: int = 0
    tag: str = field(default_factory=lambda: f"passages-{secrets.token_hex(4)}")
    _memo: dict[tuple[str, int], list[Hit]] = field(default_factory=dict)

    def find(self, query: str, k: int) -> list[tuple[int, Hit, bool]]:
        """Relevant passages for ``query``: ``(number, hit, new)`` each; nothing when none is relevant.

        Raises:
            ValueError: for a query retrieval refuses (empty, too long).

        """
        key = (query.strip(), k)
        if key not in self._memo:
            self.searches += 1
            found = list(self.search(query, k))
            # The model reads the passages in the order the offline answer uses them: the one that answers
            # the question's kind (the setting, the cause, ...) first.
            self._memo[key] = arrange_passages(query, found) if is_relevant(query, found) else []
        return [self._register(hit) for hit in self._memo[key]]

    def _register(self, hit: Hit) -> tuple[int, Hit, bool]:
        for number, known in enumerate(self.hits, start=1):
            if known.id == hit.id:
                return number, known, False
        self.hits.append(hit)
        return len(self.hits), hit, True

    def render(self, entries: Sequence[tuple[int, Hit, bool]], chars: int = PASSAGE_CHARS) -> str:
        """Passages as the model reads them: ``[n] title`` then the text."""
        blocks = []
        for number, hit, new in entries:
            if new:
                title = without_block_tags(hit.title)
                blocks.append(f"[{number}] {title}\n{_clip(passage_text(hit.text, self.keep_zh), chars)}")
            else:
                blocks.append(prompts.KNOWN_PASSAGE.format(number=number, title=hit.title))
        return "\n\n".join(blocks)

    def prompt_block(self, entries: Sequence[tuple[int, Hit, bool]], searchable: bool = True,
                     chars: int = PASSAGE_CHARS) -> str:
        """The passages section of the prompt (``searchable``: the model has ``search_knowledge``), each clipped to ``chars``."""
        if not entries:
            return prompts.NO_PASSAGES if searchable else prompts.NO_PASSAGES_PLAIN
        opening, closing = prompts.PASSAGES_OPEN.format(tag=self.tag), prompts.PASSAGES_CLOSE.format(tag=self.tag)
        return f"{opening}\n{self.render(entries, chars)}\n{closing}"

    def search_tool_result(self, query: str, k: int = 3) -> str:
        """What the ``search_knowledge`` tool returns to the model."""
        try:
            entries = self.find(query, max(1, min(int(k), MAX_SEARCH_K)))
        except ValueError as exc:
            return f"error: {exc}"
        return self.render(entries) if entries else prompts.NO_PASSAGES_FOUND

    def check_citations(self, text: str) -> tuple[str, list[tuple[int, Hit]]]:
        """Drop citations of numbers never retrieved; return the text and the cited passages in order."""
        cited: list[int] = []

        def keep(match: re.Match) -> str:
            numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
            valid = [n for n in numbers if 1 <= n <= len(self.hits)]
            cited.extend(n for n in valid if n not in cited)
            return f"[{', '.join(str(n) for n in valid)}]" if valid else ""

        checked = _CITATION.sub(keep, text)
        checked = re.sub(r"[ \t]+([.,;:])", r"\1", checked)  # tidy the space a dropped citation leaves
        return checked, [(n, self.hits[n - 1]) for n in sorted(cited)]


_SOURCE_LINES: dict[tuple[str, str, str], str] = {}


def source_line(number: int, hit: Hit) -> str:
    """``[n] title — path — official page`` (the offline format), its page chosen once per passage."""
    key = (hit.id, hit.title, hit.path)
    if key not in _SOURCE_LINES:
        # Choosing the official page tokenizes the passage: worth doing once, not every turn.
        _SOURCE_LINES[key] = _source_line(0, hit).removeprefix("[0]")
    return f"[{number}]{_SOURCE_LINES[key]}"


def sources_block(cited: Sequence[tuple[int, Hit]]) -> str:
    """The ``Sources:`` list under a model answer (same line format as offline answers)."""
    if not cited:
        return ""
    return "\n\nSources:\n" + "\n".join(source_line(number, hit) for number, hit in cited)
