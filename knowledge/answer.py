"""Compose a short, cited kb answer from retrieved passages, with no model.

The composer does extractive summarisation: it splits the best passages into
units (sentences, bullets, table rows, small code blocks and the pack's
"中文要点" lines), scores each unit by the question's terms it contains,
weighted by how rare each term is among the candidate units, and keeps the
few best, each tagged with the number of the passage it came from. When
the retrieved passages do not share enough with the question, it says so
plainly instead of quoting something unrelated.

The answer leads with the answer. The question is classified by what it
asks (:func:`classify_question`: which option or setting, how to, why, what
is, compare, troubleshoot), and the unit whose shape answers that kind (the
option with its value, the reason, the definition, the fix) goes first;
then come the other facts, then reasons, then caveats; units that address
neither the question nor the passage's subject are dropped. The first line
opens with the heading of the section it comes from, which in the pack names
the option or feature ("**Rate limiting with maxOffsetsPerTrigger** — Cap
how much each micro-batch admits ..."), unless the sentence already names
it. With a model, :func:`arrange_passages` hands it the same passages in
the same order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from knowledge.documents import ZH_SUMMARY_PREFIXES, has_cjk
from knowledge.index import token_set, tokenize
from knowledge.retrieval import Hit
from knowledge.safety import looks_like_instruction

MAX_PASSAGES = 3
"""Passages an answer may cite."""
MAX_UNITS = 6
"""Sentences, bullets, rows or code blocks in an answer, besides 中文要点 lines."""
MAX_BODY_CHARS = 1400
"""Soft cap on the answer body: a focused answer, not a dump."""
MAX_CODE_LINES = 14
MAX_LABEL_CHARS = 120
"""Longest section heading shown as the answer's topic label."""
MIN_COVERAGE = 0.4
"""Share of the question's terms the best passages must contain..."""
MIN_DENSE = 0.85
"""...or the dense similarity of one of the best three must reach (mean cosine of
a passage's two e5 vectors). Calibrated on the eval set: off-topic questions
reach at most 0.33 coverage and 0.84 similarity, answerable ones at least
0.4 or 0.85."""
MIN_DENSE_ALONE = 0.88
"""...and with no term of the question in the best passages, it must reach this (off-topic Chinese reaches 0.86)."""
MIN_DENSE_WITH_TERMS = 0.79
"""The least dense similarity with which shared terms still count (off-topic requests score about 0.78)."""
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
LEAD_POOL = 12
"""Best-scored units considered for the lead sentence."""
LEAD_POOL_RATIO = 0.35
"""...if they score at least this share of the best chosen unit (the shape of the unit decides among them)."""
CONTEXT_SHARE = 0.5
"""How much of its bullet's relevance one sentence of it inherits (the bullet is its context)."""
SHAPE_WEIGHT = 1.0
CROSS_PASSAGE_PENALTY = 1.0
"""How much the shape of a unit (a setting, a reason, a definition) counts against its relevance for the lead."""
LEANING_PENALTY = 0.8
"""Lead score kept by a sentence that points back at the one before it (chosen on the dev half of the eval set)."""
PRIMARY_KINDS = frozenset({"article", "knowledge", "user"})
"""Passage kinds an answer is drawn from first."""
OVERVIEW_KINDS = frozenset({"knowledge"})
"""Passage kinds that survey a whole area rather than one topic."""
SPECIFIC_MARGIN = 0.1
"""How far below an overview an article section may score and still lead (fused scores, best = 1.0)."""
TRUSTED_KINDS = frozenset({"article", "knowledge", "template", "checklist", "task"})
"""Kinds written by the pack's authors; anything else (ingested) is screened for instructions."""

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


QuestionKind = Literal["fix", "setting", "location", "quantity", "consequence", "how", "why", "yesno", "what",
                       "compare", "troubleshoot", "other"]

_COMPARE_RE = re.compile(
    r"\bvs\.?\b|\bversus\b|\bdifferen(?:ce|t)\b.*\b(?:between|from)\b|\bcompare[ds]?\b|\bwhich (?:one|is better)\b|"
    r"\bor\b.*\bwhich\b|\bwhich\b.*\bor\b|区别|对比|比较|还是|哪个更|哪种",
    re.I,
)
_TROUBLE_RE = re.compile(
    r"\b(?:errors?|exceptions?|fail(?:s|ed|ing|ure)?|crash\w*|stuck|hangs?|broken|not|\w+n't|"
    r"slow(?:er|s)?|falls? behind|growing|OOM|out of memory|duplicates?)\b|"
    r"\b\w+(?:Exception|Error)\b|\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b|报错|失败|异常|卡住|变慢|越来越|没有生效|不生效|错误|重复",
    re.I,
)
_SETTING_RE = re.compile(
    r"\b(?:which|what)\b(?:\s+\w+)?\s+(?:option|setting|config\w*|parameter|conf|property|flag|value|trigger|mode|"
    r"interval|limit|threshold)s?\b|\bdefaults?\b|"
    r"\bhow (?:do|can|should|would) (?:i|we|you) (?:set|configure|limit|cap|enable|disable|turn|tune|increase|decrease|"
    r"change|raise|lower|throttle|stop|control|keep|make|pass|get|choose)\b|\bwhat (?:should|do) i set\b|"
    r"参数|配置|选项|默认|设置|怎么限制|如何限制|开启|关闭|设多少|多大",
    re.I,
)
_QUANTITY_RE = re.compile(
    r"\bhow (?:much|many|long|often|big|large|fast|small)\b|\bwhat(?:'s| is) the (?:limit|maximum|max|minimum|size)\b|"
    r"多少|多久|多长|多大|多快|上限",
    re.I,
)
_LOCATION_RE = re.compile(r"^\s*where\b|\bwhere (?:does|do|is|are|should)\b|在哪|存在哪|放在哪|哪个目录|哪里", re.I)
_PLACE_RE = re.compile(r"\b(?:director(?:y|ies)|path|folder|location|stored?|stores|kept|keeps|lives?|table|volume)\b|"
                       r"目录|路径|位置|存储|保存", re.I)
"""Words that name a place: what a where-question is answered with."""
_CONSEQUENCE_RE = re.compile(r"\bwhat happens\b|\bwhat (?:will|would) happen\b|会怎样|会发生什么|会怎么样", re.I)
_YESNO_RE = re.compile(r"^\s*(?:can|could|does|do|did|is|are|should|shall|will|would|must|may)\b|吗[？?]?\s*$|是否|能否|可不可以",
                       re.I)
_WH_RE = re.compile(r"\b(?:what|which|how|why|where|who)\b|什么|哪|怎么|如何|为什么", re.I)
_AUXILIARY_RE = re.compile(r"\b(?:can|could|does|do|did|is|are|should|will|would|must)\b", re.I)
_FIX_ASK_RE = re.compile(r"\bhow (?:do|can|should) (?:i|we)\b|\bhow to\b|怎么办|怎么解决|如何解决|怎么处理|如何处理", re.I)
_WHY_RE = re.compile(r"^\s*why\b|\bwhy\b|\breason\b|为什么|为何|原因", re.I)
_HOW_RE = re.compile(r"\bhow (?:do|can|should|would|to)\b(?! \w+ (?:work|mean)\b)|\bsteps?\b|怎么|如何|怎样|步骤", re.I)
_WHAT_RE = re.compile(r"^\s*(?:what|explain|how)\b|\bwhat (?:is|are|does|do)\b|\bmeaning\b|什么是|是什么|什么意思|含义",
                      re.I)

_CODE_SPAN_RE = re.compile(r"`([^`\n]+)`")
_IDENTIFIER_RE = re.compile(r"\b[A-Za-z_][\w]*(?:[._][\w]+)+\b|\b[a-z]+[A-Z]\w*\b")
"""An option or API name in a heading: ``maxOffsetsPerTrigger``, ``spark.sql.shuffle.partitions``, ``expect_or_drop``."""
_REASON_RE = re.compile(
    r"\b(?:because|so that|since|otherwise|to avoid|which means|this means|prevents?|ensures?|guarantees?|"
    r"the reason|that is why|so the|so a|so it|avoids?)\b|因为|所以|以免|保证|避免",
    re.I,
)
_CAVEAT_RE = re.compile(
    r"^(?:but|however|note|caution|warning|beware|unless|avoid|never|do not|don't)\b|"
    r"\b(?:however|unless|only (?:when|if|on|for|in)|not supported|cannot|can't|must not|beware|caveat|limitation|"
    r"does not|doesn't|is ignored|are ignored)\b|注意|但是|不支持|不能",
    re.I,
)
_AMOUNT_RE = re.compile(
    r"\d[\d,.]*\s*(?:[KMGT]i?B|MB/s|bytes?|ms|s|sec(?:ond)?s?|min(?:ute)?s?|h(?:ours?)?|days?|%|events?|files?|"
    r"records?|rows?|offsets?|partitions?|tasks?|units?|x)\b|\d[\d,.]*\s*(?:秒|分钟|小时|天|个|条)",
    re.I,
)
"""An amount with its unit: what a how-much question is answered with."""
_VERDICT_RE = re.compile(
    r"\b(?:not|no|never|only|must|cannot|can't|always|yes|instead|unless|does not|is not|are not|you can)\b|不|只|必须",
    re.I)
"""Words that give a yes/no question its answer."""
_ANAPHOR_RE = re.compile(r"^\W*(?:it|its|this|that|these|those|they|them|such|so|then|here|there|both|each of them)\b",
                         re.I)
"""A sentence that opens like this leans on the one before it, so it cannot lead on its own."""
_DEICTIC_RE = re.compile(r"\b(?:there|here)\b(?!\s+(?:is|are|was|were|will|may|might|can|could|should|must|has|have)\b)"
                         r"|\b(?:the former|the latter|above|below|as well)\b", re.I)
"""'supported there', 'the latter', 'as above': a sentence that points at another one for what it is about."""
_PURPOSE_RE = re.compile(r"^\W*to \w+[^,.;]*,\s*\w+", re.I)
"""'To bound state, define ...': a remedy stated with its purpose first."""
_DEFINITION_RE = re.compile(r"\b(?:is|are|means|refers to|is called|stands for)\b\s+(?:a|an|the|how|what|when)?\b", re.I)
_IMPERATIVE_RE = re.compile(
    r"^\W*(?:set|use|add|run|configure|enable|disable|call|create|read|write|pass|give|keep|start|restart|"
    r"delete|drop|raise|lower|increase|decrease|cap|limit|switch|change|store|put|define|declare|check|alert)\b",
    re.I,
)


def classify_question(question: str) -> QuestionKind:
    """What a question asks for, English or Chinese.

    ``compare`` (X vs Y), ``fix`` (a symptom and how to get rid of it),
    ``troubleshoot`` (an error or symptom), ``setting``
    (which option, a default, how to set or limit something), ``location``
    (where something is kept), ``quantity`` (how much, how long), ``consequence`` (what
    happens if), ``why``, ``yesno`` (can I,
    does it), ``how`` (steps), ``what`` (a definition), else ``other``;
    checked in that order, so "why does my stream keep failing" is
    troubleshooting.
    """
    if not _COMPARE_RE.search(question) and _TROUBLE_RE.search(question) and _FIX_ASK_RE.search(question):
        return "fix"
    if question.rstrip().endswith(("?", "？")) and not _WH_RE.search(question) and _AUXILIARY_RE.search(question):
        return "yesno"  # "if a field has the wrong type, does auto loader drop it?"
    for kind, pattern in (("compare", _COMPARE_RE), ("troubleshoot", _TROUBLE_RE), ("setting", _SETTING_RE),
                          ("location", _LOCATION_RE), ("quantity", _QUANTITY_RE),
                          ("consequence", _CONSEQUENCE_RE), ("why", _WHY_RE), ("yesno", _YESNO_RE),
                          ("how", _HOW_RE), ("what", _WHAT_RE)):
        if pattern.search(question):
            return kind  # type: ignore[return-value]
    return "other"


def _names_setting(text: str) -> bool:
    """Whether a unit names an option, setting, function or value in code (``maxOffsetsPerTrigger``, ``10 minutes``)."""
    for span in _CODE_SPAN_RE.findall(text):
        if re.search(r"[a-z][A-Z]|[._=(:]|\d|^[A-Z_]{3,}$|^[a-z]+$", span):
            return True
    return False


def leans_back(sentence: str) -> bool:
    """Whether a sentence points at another one for what it is about ("... are not supported there").

    Such a sentence is a weaker lead than the one it leans on: its lead score
    keeps :data:`LEANING_PENALTY` of itself, which decides near ties only.
    An existential "there is/are" does not count.
    """
    return _DEICTIC_RE.search(sentence) is not None


def _role(unit: _Unit) -> int:
    """Where a non-lead unit goes: 0 facts and settings, 1 reasons, 2 caveats."""
    if unit.kind in ("sentence", "bullet", "row") and _CAVEAT_RE.search(unit.text) and not _names_setting(unit.text):
        return 2
    if unit.kind in ("sentence", "bullet") and _REASON_RE.search(unit.text) and not _names_setting(unit.text):
        return 1
    if unit.kind in ("sentence", "bullet", "row") and _CAVEAT_RE.search(unit.text):
        return 2
    return 0


def _names_subject(text: str, subject: set[str]) -> bool:
    """Whether a code span of ``text`` names the option its section is about.

    The option's own name must be a term of the section's heading:
    ``cloudFiles.schemaHints`` under "... inferColumnTypes and schemaHints".
    """
    for span in _CODE_SPAN_RE.findall(text):
        # The last two parts of a dotted name: `dbutils.secrets.get` is about secrets, `kafka.sasl.jaas.config`
        # about JAAS.
        for name in re.split(r"[\s=(]", span.strip(), maxsplit=1)[0].split(".")[-2:]:
            words = tokenize(name)
            if words and words[0] in subject and _names_setting(f"`{span}`"):
                return True
    return False


def _shape_bonus(unit: _Unit, kind: QuestionKind, subject: set[str] | None = None) -> float:
    """How much a unit's shape answers a question of ``kind`` (a multiplier bonus for choosing the lead).

    ``subject`` holds the terms of the unit's section heading: a setting
    question is best answered by the sentence naming the option the section
    is about, with its value.
    """
    if unit.kind == "code":
        return -0.5  # code follows the sentence that explains it
    text = unit.text
    setting = _names_setting(text)
    if kind == "setting":
        # The option, the one the section is about, and its value ("`consumerMode`: `polling` (default) or `efo`").
        value = len(_CODE_SPAN_RE.findall(text)) > 1 or re.search(r"=|\bdefaults?\b|默认", text) is not None
        return ((1.0 if setting else 0.0) + (1.0 if subject and _names_subject(text, subject) else 0.0)
                + (0.5 if setting and value else 0.0))
    if kind == "location":
        return (1.0 if _PLACE_RE.search(text) else 0.0) + (0.3 if setting else 0.0)
    if kind == "quantity":
        return (1.2 if _AMOUNT_RE.search(text) else 0.0) + (0.2 if setting else 0.0)
    if kind == "consequence":
        # What happens when X: the sentence that states the outcome ("if ..., the next one starts immediately").
        outcome = re.search(r"\b(?:if|when|once|then|otherwise|so|until|makes|means|causes|leads to|results in)\b|"
                            r"如果|则|否则|导致", text, re.I)
        return (0.8 if outcome else 0.0) + (0.2 if setting else 0.0)
    if kind == "yesno":
        # The verdict is the answer ("AQE applies to non-streaming queries only").
        return (1.0 if _VERDICT_RE.search(text) else 0.0) + (0.3 if setting else 0.0)
    if kind == "fix":
        # The remedy answers "..., how do I bound it?" ("To bound state, define watermarks on both inputs").
        remedy = _IMPERATIVE_RE.search(text) or _PURPOSE_RE.search(text)
        return (0.8 if remedy else 0.0) + (0.4 if setting else 0.0) + (0.2 if _CAVEAT_RE.search(text) else 0.0)
    if kind == "how":
        return (0.6 if setting else 0.0) + (0.3 if _IMPERATIVE_RE.search(text) else 0.0)
    if kind == "troubleshoot":
        # The cause ("only when ...", "is ignored", "because ...") or the fix answers a symptom.
        cause = _CAVEAT_RE.search(text) or _REASON_RE.search(text)
        return (0.3 if setting else 0.0) + (0.6 if cause else 0.0) + (0.2 if _IMPERATIVE_RE.search(text) else 0.0)
    if kind == "why":
        return 0.8 if _REASON_RE.search(text) else 0.0
    if kind == "what":
        return (0.6 if _DEFINITION_RE.search(text) else 0.0) + (0.2 if setting else 0.0)
    if kind == "compare":
        return (0.5 if unit.kind == "row" else 0.0) + (0.3 if setting else 0.0)
    return 0.3 if setting else 0.0


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


@dataclass(eq=False)  # units are compared by identity: two passages may share a sentence
class _Unit:
    text: str
    kind: str  # sentence | bullet | row | code | zh
    passage: int  # index into the candidate hits
    order: int
    tokens: frozenset[str] = frozenset()
    score: float = 0.0
    parent: _Unit | None = None  # for one sentence of a longer bullet or paragraph unit
    rest: str = ""  # the parent's other sentences, shown right after this one when it leads


def split_units(text: str) -> list[tuple[str, str]]:
    """Split passage Markdown into ``(kind, text)`` answer units, in order.

    Kinds: ``zh`` (the Chinese summary line), ``bullet``, ``row`` (a table
    row, cells joined with " — "), ``head`` (a table's column names: never
    shown), ``code`` (a whole fenced block) and ``sentence``. Headings and
    table separators are dropped.
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
            elif units and units[-1][0] == "row":
                units[-1] = ("head", units[-1][1])  # the row above the separator names the columns
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
    best_dense = max((h.dense for h in hits[:3] if h.dense is not None), default=None)
    # Shared words alone are not enough when the meaning is far off: "write a cover letter for a ... job"
    # shares "write" and "job" with a replay-job passage.
    coverage = _coverage(query_tokens, hits[:2])
    if coverage >= MIN_COVERAGE and (best_dense is None or best_dense >= MIN_DENSE_WITH_TERMS):
        return True
    if best_dense is None:
        return False
    # Similarity alone, with not one word in common, passes only when it is very close: e5 puts every short
    # Chinese question near some Chinese summary line ("今天股市行情怎么样" reaches 0.86 against a cost passage).
    return best_dense >= (MIN_DENSE_ALONE if coverage == 0.0 else MIN_DENSE)


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


def section_heading(hit: Hit) -> str:
    """The heading of the section a passage is (its title after the document's name)."""
    return hit.title.rsplit(" — ", 1)[-1].strip()


def _key_terms(hit: Hit, units: list[tuple[str, str]]) -> set[str]:
    """Terms that name what a passage is about.

    They are the heading's terms and the ASCII terms of the "中文要点" line
    (which lists the section's option names).
    """
    terms = set(token_set(section_heading(hit)))
    for kind, text in units:
        if kind == "zh":
            terms.update(t for t in token_set(text) if t.isascii())
    return terms


RANK_TIE = 0.005
"""Retrieval scores closer than this count as a tie: neither passage is the better answer by rank alone."""


def _variant_key(token: str) -> str:
    """A token with hyphens dropped and an adverb's ``-ly`` folded: ``hard-cod``/``hardcod``, ``asynchronously``."""
    token = token.replace("-", "")
    return token[:-2] if len(token) > 6 and token.endswith("ly") else token


def _with_variants(query_tokens: set[str], units: Sequence[_Unit]) -> set[str]:
    """The question's terms plus the passages' spellings of them.

    The index's stemming is deliberately small; the question says
    "hardcoding" or "asynchronously" where the passage says "hard-code" and
    "asynchronous". Only ASCII words of five letters or more take part, so
    short words and option fragments do not collide.
    """
    wanted = {_variant_key(t) for t in query_tokens if t.isascii() and len(t) >= 5}
    if not wanted:
        return set(query_tokens)
    vocabulary = {t for u in units for t in u.tokens if t.isascii() and len(t) >= 5}
    return set(query_tokens) | {t for t in vocabulary if _variant_key(t) in wanted}


def _shared_ranks(candidates: Sequence[Hit]) -> dict[int, int]:
    """Each candidate's rank, passages of the same class that retrieval scored alike sharing the better one."""
    ranks: dict[int, int] = {}
    for index, hit in enumerate(candidates):
        ahead = [i for i in range(index) if (candidates[i].kind in PRIMARY_KINDS) == (hit.kind in PRIMARY_KINDS)
                 and abs(candidates[i].score - hit.score) <= RANK_TIE]
        ranks[index] = ranks[ahead[0]] if ahead else index
    return ranks


def _score_units(units: list[_Unit], query_tokens: set[str], key_terms: dict[int, set[str]],
                 ranks: dict[int, int] | None = None) -> Callable[[_Unit], float]:
    """Score every unit against the question; returns the scorer (term rarity taken over ``units``).

    ``ranks`` gives each candidate passage its rank, passages that retrieval
    scored alike sharing one (default: their position).
    """
    ranks = ranks or {}
    df: dict[str, int] = {}
    for unit in units:
        for token in unit.tokens:
            df[token] = df.get(token, 0) + 1
    n = max(1, len(units))

    def idf(token: str) -> float:
        return math.log(1 + n / df.get(token, 1))

    def score(unit: _Unit) -> float:
        matched = query_tokens & unit.tokens
        rank = ranks.get(unit.passage, unit.passage)
        rank_factor = 1.0 / (1.0 + 0.35 * rank)
        position = 0.2 / (1 + unit.order)
        if rank > 0 and not matched:
            # A lower-ranked passage contributes only what the question names.
            return 0.1 * position * rank_factor
        # In the best passage, the terms of its own heading count at half
        # weight: a question routed to "Kafka rate limiting:
        # maxOffsetsPerTrigger" is answered by the sentence naming
        # maxOffsetsPerTrigger even if the user never typed it (paraphrases,
        # Chinese questions over English text). Its opening units get a bonus
        # too: the pack's sections state their main fact first.
        keyed = (key_terms.get(unit.passage, set()) & unit.tokens) - matched if rank == 0 else set()
        # Only the two best heading terms count: one option name splits into
        # many tokens (cloudfiles, max, files, trigger ...) and must not
        # outweigh a word the user actually typed.
        keyed_weight = sum(sorted((idf(t) for t in keyed), reverse=True)[:2])
        weight = sum(idf(t) for t in matched) + 0.5 * keyed_weight
        lead = LEAD_BONUS if rank == 0 and unit.order <= 2 and unit.kind != "code" else 0.0
        # Dislike very long units slightly so a crisp sentence beats a paragraph.
        length_factor = 1.0 / (1.0 + len(unit.tokens) / 60)
        return (weight * length_factor + position + lead) * rank_factor

    for unit in units:
        unit.score = score(unit)
    return score


def _sentences_of(unit: _Unit, score: Callable[[_Unit], float]) -> list[_Unit]:
    """The sentences of a longer bullet or paragraph unit, each scored on its own, as lead candidates.

    A bullet often states its subject first and the fact that answers the
    question second ("**Fixed interval** - ... . If a batch overruns, the
    next one starts immediately."); the answer may lead with that sentence
    and show the rest of the bullet after it. Sentences that lean on the one
    before them ("This means ...") are not offered.
    """
    if unit.kind not in ("sentence", "bullet"):
        return []
    parts = [part.strip() for part in _SENTENCE_RE.split(unit.text) if part and part.strip()]
    if len(parts) < 2:
        return []
    pieces = []
    if any(part.count("(") != part.count(")") or part.count("（") != part.count("）") for part in parts):
        return []  # a split inside brackets (a bilingual "(中文？)" aside): the pieces are not sentences
    for index, part in enumerate(parts):
        if index and _ANAPHOR_RE.match(part):
            continue
        rest = " ".join(parts[:index] + parts[index + 1:])
        piece = _Unit(text=part, kind="sentence", passage=unit.passage, order=unit.order, tokens=token_set(part),
                      parent=unit, rest=rest)
        own = score(piece)
        piece.score = own + CONTEXT_SHARE * max(0.0, unit.score - own)
        pieces.append(piece)
    return pieces


def _select(units: list[_Unit]) -> list[_Unit]:
    """Pick the best units: most from the best passage, a few from others."""
    ranked = sorted((u for u in units if u.kind not in ("zh", "head")), key=lambda u: -u.score)
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


def _is_lead_in(unit: _Unit) -> bool:
    """Whether a unit introduces a list, table or code block ("...:")."""
    return unit.kind in ("sentence", "bullet") and unit.text.rstrip("*` ").endswith(":")


def _expand_lead_ins(chosen: list[_Unit], units: list[_Unit]) -> list[_Unit]:
    """Add the list, table or code a chosen "...:" unit introduces."""
    by_position = {(u.passage, u.order): u for u in units}
    out = list(chosen)
    for unit in chosen:
        if not _is_lead_in(unit):
            continue
        order = unit.order + 1
        while len(out) < len(chosen) + LEAD_IN_ITEMS and (follower := by_position.get((unit.passage, order))):
            if follower.kind == "head":  # a table's column names are not shown: its rows say what they hold
                order += 1
                continue
            if follower.kind not in ("bullet", "row", "code"):
                break
            if follower not in out:
                out.append(follower)
            if follower.kind == "code":
                break
            order += 1
    return out


def _addresses(unit: _Unit, query_tokens: set[str], key_terms: dict[int, set[str]]) -> bool:
    """Whether a unit speaks to the question: it shares a word with it or names its passage's subject."""
    return bool(unit.tokens & query_tokens) or bool(unit.tokens & key_terms.get(unit.passage, set()))


def _arrange(
    units: list[_Unit],
    chosen: list[_Unit],
    kind: QuestionKind,
    query_tokens: set[str],
    key_terms: dict[int, set[str]],
    score: Callable[[_Unit], float],
    primary: set[int] | None = None,
) -> list[_Unit]:
    """Order the answer: the unit that answers ``kind`` first, then facts, reasons, caveats.

    The lead is picked among the chosen units and the next best candidates
    (a crisp sentence naming the setting may rank a little below a long one
    that repeats the question's words); units that address neither the
    question nor their passage's subject are dropped; a "...:" unit keeps
    the list, table or code it introduces right after it.
    """
    if not chosen:
        return []
    # The lead comes from the best passage (retrieval's first choice) unless it has nothing on the question.
    top = min(u.passage for u in chosen)
    best = max(u.score for u in chosen)
    candidates = sorted((u for u in units if u.kind not in ("zh", "head") and u.score >= best * LEAD_POOL_RATIO),
                        key=lambda u: -u.score)[:LEAD_POOL]
    if kind == "setting":
        # The sentence naming the option its section is about answers a setting question even when it shares
        # no word with it ("turn on enhanced fan-out" -> `consumerMode`).
        candidates += [u for u in units if u.kind in ("sentence", "bullet", "row") and u.passage == top
                       and _names_subject(u.text, key_terms.get(u.passage, set()))]
    # The lead is one sentence: a unit of several sentences offers each of them instead.
    pool = []
    for unit in dict.fromkeys([*candidates, *chosen]):
        pool += _sentences_of(unit, score) or [unit]
    # Articles and knowledge files carry the facts; a task or template passage (which only points at them, often
    # in both languages) leads only when no fact passage has a candidate.
    if primary and any(u.passage in primary for u in pool):
        pool = [u for u in pool if u.passage in primary]

    def lead_score(unit: _Unit) -> float:
        penalty = 1.0 if unit.passage == top else CROSS_PASSAGE_PENALTY
        subject = key_terms.get(unit.passage, set())
        leans = unit.order > 0 and unit.parent is None and leans_back(unit.text)
        return (unit.score / penalty * (1.0 + SHAPE_WEIGHT * _shape_bonus(unit, kind, subject))
                * (LEANING_PENALTY if leans else 1.0))

    lead = max(pool or chosen, key=lambda u: (lead_score(u), -u.passage, -u.order, u.parent is not None))
    if lead.parent is not None:
        # The sentence that answers leads; the rest of its bullet follows at once, and the whole bullet is not
        # repeated further down.
        whole = lead.parent
        follow = [_Unit(text=lead.rest, kind=whole.kind, passage=whole.passage, order=whole.order,
                        tokens=token_set(lead.rest), score=whole.score)] if lead.rest else []
        chosen = [u for u in chosen if u is not whole]
        lead = _Unit(text=lead.text, kind=whole.kind, passage=lead.passage, order=whole.order, tokens=lead.tokens,
                     score=lead.score)
        units = [lead if u is whole else u for u in units]
    else:
        follow = []
    rest = follow + [u for u in chosen if u is not lead and _addresses(u, query_tokens, key_terms)]
    rest[len(follow):] = sorted(rest[len(follow):], key=lambda u: (_role(u), -u.score))
    ordered: list[_Unit] = []
    for unit in [lead, *rest]:
        if unit in ordered:
            continue
        ordered.append(unit)
        ordered.extend(f for f in _expand_lead_ins([unit], units)[1:] if f not in ordered)
    if len(ordered) > 1 and _is_lead_in(ordered[0]) and ordered[1].kind in ("bullet", "row") \
            and ordered[1] in _expand_lead_ins(ordered[:1], units)[1:2]:
        # A lead that only announces a list ("These usually cover it:") is no answer by itself: its first item
        # joins it on the first line.
        first, item = ordered[0], ordered[1]
        ordered[:2] = [_Unit(text=f"{first.text} {item.text}", kind=first.kind, passage=first.passage,
                             order=first.order, tokens=first.tokens | item.tokens, score=first.score)]
    # Follow-ups of the lead are bounded by what _select allowed overall.
    return ordered[: MAX_UNITS + LEAD_IN_ITEMS]


def _topic_label(unit: _Unit, hit: Hit) -> str:
    """The bold heading the answer's first line opens with, or ``""``.

    The pack's section headings name what the section is about, usually
    the option ("Rate limiting with maxOffsetsPerTrigger"), so showing the
    heading of the passage the answer leads with tells the reader at once
    which setting or feature answers, before the sentence that explains it.
    It is left out when the lead sentence already says everything the
    heading does, and for a code block (which is shown as it is).
    """
    heading = section_heading(hit)
    if unit.kind == "code" or not heading or len(heading) > MAX_LABEL_CHARS:
        return ""
    names = _IDENTIFIER_RE.findall(heading)
    if (names and all(name in unit.text for name in names)) or token_set(heading) <= unit.tokens:
        return ""
    return f"**{heading.replace('*', '')}** — "


def _render(unit: _Unit, number: int, label: str = "") -> str:
    if unit.kind == "code":
        return f"{unit.text}\n[{number}]"
    return f"- {label}{unit.text} [{number}]"


def _specific_first(hits: list[Hit]) -> list[Hit]:
    """The hits with an article section first when a broad overview only just outranks it.

    The pack's knowledge files (one per area: observability, idempotency ...)
    touch many questions in passing; an article section is about one thing.
    "How do I stop a Kafka stream from taking the whole backlog in one
    micro-batch?" retrieves the observability overview (1.0) just above the
    rate-limiting section (0.98), and the answer should lead with the latter.
    """
    if not hits or hits[0].kind not in OVERVIEW_KINDS:
        return hits
    close = [h for h in hits if h.kind == "article" and h.score >= hits[0].score - SPECIFIC_MARGIN]
    return [close[0], *(h for h in hits if h is not close[0])] if close else hits


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
    candidates = sorted(_specific_first(hits[:CANDIDATE_PASSAGES]), key=lambda h: h.kind not in PRIMARY_KINDS)
    query_tokens = set(token_set(question))
    units: list[_Unit] = []
    key_terms: dict[int, set[str]] = {}
    for p_index, hit in enumerate(candidates):
        split = split_units(hit.text)
        key_terms[p_index] = _key_terms(hit, split)
        for order, (kind, text) in enumerate(split):
            if kind == "code" and text.count("\n") > MAX_CODE_LINES:
                continue
            # A team's documents are data: a sentence written to steer an assistant is never quoted.
            if hit.kind not in TRUSTED_KINDS and looks_like_instruction(text):
                continue
            units.append(_Unit(text=text, kind=kind, passage=p_index, order=order, tokens=token_set(text)))
    query_tokens = _with_variants(query_tokens, units)
    score = _score_units(units, query_tokens, key_terms, _shared_ranks(candidates))
    primary = {i for i, hit in enumerate(candidates) if hit.kind in PRIMARY_KINDS}
    chosen = _arrange(units, _select(units), classify_question(question), query_tokens, key_terms, score, primary)
    # The Chinese summary lines answer a Chinese question directly (those of
    # the passages used and of the two best candidates, which are often
    # neighbouring sections); for English questions they are noise. The line
    # sharing most words with the question opens the answer (the lead
    # passage's on a tie: the passage an English answer leads with is not
    # always the one whose summary answers), the others close it.
    if zh_question and chosen:
        lead_passage = chosen[0].passage
        used = {u.passage for u in chosen} | {0, 1}
        zh_lines = [u for u in units if u.kind == "zh" and u.passage in used]
        opener = max(zh_lines, key=lambda u: (len(u.tokens & query_tokens), u.passage == lead_passage, -u.passage),
                     default=None)
        chosen = ([opener] if opener else []) + chosen + [u for u in zh_lines if u is not opener]

    # Number the passages in order of first use: [1] is the passage the answer leads with.
    used_passages = list(dict.fromkeys(u.passage for u in chosen))
    numbers = {p: i + 1 for i, p in enumerate(used_passages)}
    label = _topic_label(chosen[0], candidates[chosen[0].passage]) if chosen else ""
    body = "\n".join(_render(u, numbers[u.passage], label if i == 0 else "") for i, u in enumerate(chosen))
    citations = [candidates[p] for p in used_passages]
    related = _related(citations, [h for h in hits if h not in citations])
    lines = [body, "", "Sources:"] + [_source_line(i + 1, h) for i, h in enumerate(citations)]
    if related:
        lines += ["", f"Related topics: {', '.join(related)}"]
    return Answer(text="\n".join(lines), citations=citations, related=related, body=body, found=True)


def arrange_passages(question: str, hits: Sequence[Hit]) -> list[Hit]:
    """The hits in the order the offline answer uses them: the passage it leads with first.

    A model answering from passages gets them in this order too, so both
    backends put the passage that answers the question's kind first; hits the
    offline answer does not cite keep their rank order after the cited ones.
    When nothing is relevant the hits are returned as they came.
    """
    hits = list(hits)
    answer = compose_answer(question, hits)
    if not answer.found:
        return hits
    cited = list(answer.citations)
    return cited + [h for h in hits if all(h is not c for c in cited)]
