"""Compose a short, cited kb answer from retrieved passages, with no model.

The composer does extractive summarisation: it splits the best passages into
units (sentences, bullets, table rows, small code blocks and the pack's
"中文要点" lines), scores each unit by the question's terms it contains,
weighted by how rare each term is among the candidate units, and keeps the
few best, in reading order, each tagged with the number of the passage it
came from. When the retrieved passages do not share enough with the
question, it says so plainly instead of quoting something unrelated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.documents import ZH_SUMMARY_PREFIXES, has_cjk
from knowledge.index import token_set
from knowledge.retrieval import Hit

MAX_PASSAGES = 3
"""Passages an answer may cite."""
MAX_UNITS = 6
"""Sentences, bullets, rows or code blocks in an answer, besides 中文要点 lines."""
MAX_BODY_CHARS = 1400
"""Soft cap on the answer body: a focused answer, not a dump."""
MAX_CODE_LINES = 14
MIN_COVERAGE = 0.4
"""Share of the question's terms the best passages must contain..."""
MIN_DENSE = 0.85
"""...or the dense similarity of one of the best three must reach (mean cosine of
a passage's two e5 vectors). Calibrated on the eval set: off-topic questions
reach at most 0.33 coverage and 0.84 similarity, answerable ones at least
0.4 or 0.85."""
KEEP_RATIO = 0.4
"""A unit must score at least this share of the best unit to be kept."""
CANDIDATE_PASSAGES = 4
"""Hits whose text is considered (the answer still cites at most MAX_PASSAGES)."""
PASSAGE_BUDGET = (4, 2, 2, 1)
"""Most units may come from each candidate passage, by rank."""
LEAD_BONUS = 0.6
"""Score bonus of the best passage's first units."""
LEAD_IN_ITEMS = 6
"""Most list items, rows or code blocks a chosen "...:" unit brings along."""
PRIMARY_KINDS = frozenset({"article", "knowledge", "user"})
"""Passage kinds an answer is drawn from first."""

NO_ANSWER = (
    "I could not find this in the knowledge base. It covers streaming on Databricks: Auto Loader, "
    "triggers, checkpoints, watermarks, state, dedup and idempotency, Kafka, Event Hubs, Kinesis, "
    "Lakeflow Declarative Pipelines, data quality, schema evolution, throughput, monitoring, jobs, "
    "deployment, replay and cost. Try rephrasing with the option or feature name."
)
NO_ANSWER_ZH = "知识库中没有找到答案。"

_BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\"(\[])|(?<=[。！？；])")
_TABLE_SEP_RE = re.compile(r"^\|?[\s:|-]+\|?$")


@dataclass
class Answer:
    """An offline kb answer.

    Attributes:
        text: The full answer to show: body, numbered sources, related topics.
        citations: The cited hits; citation ``[n]`` is ``citations[n-1]``.
        related: Related topic ids (documents) to explore next.
        body: The answer without the sources and related lines.
        found: False when the knowledge base had nothing relevant.

    """

    text: str
    citations: list[Hit] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    body: str = ""
    found: bool = True


@dataclass
class _Unit:
    text: str
    kind: str  # sentence | bullet | row | code | zh
    passage: int  # index into the candidate hits
    order: int
    tokens: frozenset[str] = frozenset()
    score: float = 0.0


def split_units(text: str) -> list[tuple[str, str]]:
    """Split passage Markdown into ``(kind, text)`` answer units, in order.

    Kinds: ``zh`` (the Chinese summary line), ``bullet``, ``row`` (a table
    row, cells joined with " — "), ``code`` (a whole fenced block) and
    ``sentence``. Headings and table separators are dropped.
    """
    units: list[tuple[str, str]] = []
    paragraph: list[str] = []
    code: list[str] | None = None
    fence = ""
    bullet: list[str] | None = None

    def flush_paragraph() -> None:
        if paragraph:
            joined = " ".join(line.strip() for line in paragraph)
            units.extend(("sentence", s.strip()) for s in _SENTENCE_RE.split(joined) if s and s.strip())
            paragraph.clear()

    def flush_bullet() -> None:
        nonlocal bullet
        if bullet:
            units.append(("bullet", " ".join(part.strip() for part in bullet)))
        bullet = None

    for line in text.splitlines():
        marker = _FENCE_RE.match(line)
        if code is not None:
            code.append(line)
            if marker and marker.group(1)[0] == fence[0] and line.strip() == marker.group(1):
                units.append(("code", "\n".join(code)))
                code = None
            continue
        if marker:
            flush_paragraph()
            flush_bullet()
            code, fence = [line], marker.group(1)
            continue
        stripped = line.strip()
        if not stripped:
            flush_paragraph()
            flush_bullet()
            continue
        if stripped.startswith("#"):
            flush_paragraph()
            flush_bullet()
            continue
        if stripped.startswith(ZH_SUMMARY_PREFIXES):
            flush_paragraph()
            flush_bullet()
            units.append(("zh", stripped))
            continue
        if stripped.startswith("|"):
            flush_paragraph()
            flush_bullet()
            if not _TABLE_SEP_RE.match(stripped):
                cells = [c.strip() for c in stripped.strip("|").split("|")]
                units.append(("row", " — ".join(c for c in cells if c)))
            continue
        if _BULLET_RE.match(line):
            flush_paragraph()
            flush_bullet()
            bullet = [_BULLET_RE.sub("", line, count=1)]
            continue
        if bullet is not None and line[:1].isspace():
            bullet.append(stripped)
            continue
        flush_bullet()
        paragraph.append(line)
    if code is not None:  # unterminated fence: keep what there is
        units.append(("code", "\n".join(code)))
    flush_paragraph()
    flush_bullet()
    return units


def _coverage(query_tokens: set[str], hits: Sequence[Hit]) -> float:
    if not query_tokens:
        return 0.0
    seen: set[str] = set()
    for hit in hits:
        seen.update(token_set(f"{hit.title}\n{hit.text}"))
    return len(query_tokens & seen) / len(query_tokens)


def is_relevant(question: str, hits: Sequence[Hit]) -> bool:
    """Whether the hits plausibly answer the question (the "no answer" gate).

    Passes when the best passages contain at least half of the question's
    terms, or when the embedding puts the best passage close to the question
    (this catches paraphrases and Chinese questions over English text).
    """
    if not hits:
        return False
    query_tokens = set(token_set(question))
    if _coverage(query_tokens, hits[:2]) >= MIN_COVERAGE:
        return True
    best_dense = max((h.dense for h in hits[:3] if h.dense is not None), default=None)
    return best_dense is not None and best_dense >= MIN_DENSE


def _best_source(hit: Hit) -> dict[str, str] | None:
    """The cited page that best matches the passage (by shared terms)."""
    if not hit.sources:
        return None
    passage_tokens = token_set(hit.title + " " + hit.text[:1500])
    scored = [
        (len(passage_tokens & token_set(s.get("title", "") + " " + s.get("url", "").replace("-", " "))), -i, s)
        for i, s in enumerate(hit.sources)
    ]
    return max(scored, key=lambda item: (item[0], item[1]))[2]


def _source_line(number: int, hit: Hit) -> str:
    line = f"[{number}] {hit.title} — {hit.path}"
    source = _best_source(hit)
    if source:
        line += f" — {source.get('title', '')}: {source.get('url', '')}"
    return line


def _related(cited: Sequence[Hit], others: Sequence[Hit], limit: int = 4) -> list[str]:
    cited_docs = {h.doc for h in cited}
    out: list[str] = []
    for name in [r for h in cited for r in h.related] + [h.doc for h in others]:
        if name and name not in cited_docs and name not in out:
            out.append(name)
    return out[:limit]


def _key_terms(hit: Hit, units: list[tuple[str, str]]) -> set[str]:
    """Terms that name what a passage is about.

    They are the heading's terms and the ASCII terms of the "中文要点" line
    (which lists the section's option names).
    """
    heading = hit.title.rsplit(" — ", 1)[-1]
    terms = set(token_set(heading))
    for kind, text in units:
        if kind == "zh":
            terms.update(t for t in token_set(text) if t.isascii())
    return terms


def _score_units(units: list[_Unit], query_tokens: set[str], key_terms: dict[int, set[str]]) -> None:
    df: dict[str, int] = {}
    for unit in units:
        for token in unit.tokens:
            df[token] = df.get(token, 0) + 1
    n = max(1, len(units))

    def idf(token: str) -> float:
        return math.log(1 + n / df[token])

    for unit in units:
        matched = query_tokens & unit.tokens
        rank_factor = 1.0 / (1.0 + 0.35 * unit.passage)
        position = 0.2 / (1 + unit.order)
        if unit.passage > 0 and not matched:
            # A lower-ranked passage contributes only what the question names.
            unit.score = 0.1 * position * rank_factor
            continue
        # In the best passage, the terms of its own heading count at half
        # weight: a question routed to "Kafka rate limiting:
        # maxOffsetsPerTrigger" is answered by the sentence naming
        # maxOffsetsPerTrigger even if the user never typed it (paraphrases,
        # Chinese questions over English text). Its opening units get a bonus
        # too: the pack's sections state their main fact first.
        keyed = (key_terms.get(unit.passage, set()) & unit.tokens) - matched if unit.passage == 0 else set()
        # Only the two best heading terms count: one option name splits into
        # many tokens (cloudfiles, max, files, trigger ...) and must not
        # outweigh a word the user actually typed.
        keyed_weight = sum(sorted((idf(t) for t in keyed), reverse=True)[:2])
        weight = sum(idf(t) for t in matched) + 0.5 * keyed_weight
        lead = LEAD_BONUS if unit.passage == 0 and unit.order <= 2 and unit.kind != "code" else 0.0
        # Dislike very long units slightly so a crisp sentence beats a paragraph.
        length_factor = 1.0 / (1.0 + len(unit.tokens) / 60)
        unit.score = (weight * length_factor + position + lead) * rank_factor


def _select(units: list[_Unit]) -> list[_Unit]:
    """Pick the best units: most from the best passage, a few from others."""
    ranked = sorted((u for u in units if u.kind != "zh"), key=lambda u: -u.score)
    if not ranked:
        return []
    best = ranked[0].score
    budget = dict(enumerate(PASSAGE_BUDGET))
    chosen: list[_Unit] = []
    chars = 0
    for unit in ranked:
        if len(chosen) >= MAX_UNITS or unit.score < best * KEEP_RATIO:
            break
        if budget.get(unit.passage, 0) <= 0 or len({u.passage for u in chosen} | {unit.passage}) > MAX_PASSAGES:
            continue
        # One code block at most, and only from the best passage: code from
        # elsewhere is rarely the snippet that was asked for.
        if unit.kind == "code" and (unit.passage > 0 or any(u.kind == "code" for u in chosen)):
            continue
        if chosen and chars + len(unit.text) > MAX_BODY_CHARS:
            continue
        chosen.append(unit)
        chars += len(unit.text)
        budget[unit.passage] -= 1
    return chosen


def _expand_lead_ins(chosen: list[_Unit], units: list[_Unit]) -> list[_Unit]:
    """Add the list, table or code a chosen "...:" unit introduces."""
    by_position = {(u.passage, u.order): u for u in units}
    out = list(chosen)
    for unit in chosen:
        if unit.kind not in ("sentence", "bullet") or not unit.text.rstrip("*` ").endswith(":"):
            continue
        order = unit.order + 1
        while len(out) < len(chosen) + LEAD_IN_ITEMS and (follower := by_position.get((unit.passage, order))):
            if follower.kind not in ("bullet", "row", "code"):
                break
            if follower not in out:
                out.append(follower)
            if follower.kind == "code":
                break
            order += 1
    return out


def _render(unit: _Unit, number: int) -> str:
    if unit.kind == "code":
        return f"{unit.text}\n[{number}]"
    return f"- {unit.text} [{number}]"


def compose_answer(question: str, hits: Sequence[Hit]) -> Answer:
    """Compose a short answer with numbered citations from the best hits.

    Args:
        question: The user's question (English or Chinese).
        hits: Search hits, best first (from :meth:`Retriever.search`).

    Returns:
        The answer; ``found`` is False (and the text says so) when nothing
        relevant was retrieved.

    """
    hits = list(hits)
    zh_question = has_cjk(question)
    if not is_relevant(question, hits):
        # No related topics either: the nearest passages of an off-topic
        # question are arbitrary, and listing them would look like an answer.
        text = f"{NO_ANSWER_ZH}\n{NO_ANSWER}" if zh_question else NO_ANSWER
        return Answer(text=text, citations=[], related=[], body=text, found=False)

    # Articles, knowledge files and the team's own documents carry the facts;
    # tasks, templates and checklists (also retrieved) only point at them.
    candidates = sorted(hits[:CANDIDATE_PASSAGES], key=lambda h: h.kind not in PRIMARY_KINDS)
    query_tokens = set(token_set(question))
    units: list[_Unit] = []
    key_terms: dict[int, set[str]] = {}
    for p_index, hit in enumerate(candidates):
        split = split_units(hit.text)
        key_terms[p_index] = _key_terms(hit, split)
        for order, (kind, text) in enumerate(split):
            if kind == "code" and text.count("\n") > MAX_CODE_LINES:
                continue
            units.append(_Unit(text=text, kind=kind, passage=p_index, order=order, tokens=token_set(text)))
    _score_units(units, query_tokens, key_terms)
    chosen = _expand_lead_ins(_select(units), units)
    # The Chinese summary lines answer a Chinese question directly (those of
    # the passages used and of the two best candidates, which are often
    # neighbouring sections); for English questions they are noise.
    if zh_question:
        used = {u.passage for u in chosen} | {0, 1}
        chosen.extend(u for u in units if u.kind == "zh" and u.passage in used)

    # Number the passages in rank order of first use.
    used_passages = sorted({u.passage for u in chosen})
    numbers = {p: i + 1 for i, p in enumerate(used_passages)}
    chosen.sort(key=lambda u: (u.passage, 0 if u.kind == "zh" else 1, u.order))
    body = "\n".join(_render(u, numbers[u.passage]) for u in chosen)
    citations = [candidates[p] for p in used_passages]
    related = _related(citations, [h for h in hits if h not in citations])
    lines = [body, "", "Sources:"] + [_source_line(i + 1, h) for i, h in enumerate(citations)]
    if related:
        lines += ["", f"Related topics: {', '.join(related)}"]
    return Answer(text="\n".join(lines), citations=citations, related=related, body=body, found=True)
