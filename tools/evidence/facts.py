"""Facts: what an artefact does or declares, the only thing checklist facets are matched against.

A fact is a piece of behaviour with its place: a Spark/DLT call with its literal
arguments (``.trigger(processingTime='30 seconds')``), an option or setting
(``maxOffsetsPerTrigger=200000``, ``resources.jobs.x.max_retries=3``), a SQL
statement, one of the task's answers, or a concrete decision in a document (a
sentence, list item or table row carrying a number, a code name, a URL or a
channel). Comments, docstrings, log messages, headings, retrieved guidance and
prose without a concrete value never become facts, so a heading that *names*
an item, or a comment that *claims* it, is no evidence; an empty section adds
nothing.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from tools.budget import check_time
from tools.evidence.kinds import ANSWERS, CODE, CONFIG, DOC, JOB, REPORT, RUNBOOK, SCRIPT, SQL, classify
from tools.lint.config_loader import ConfigError, LDict, LList, load_json, load_yaml
from tools.lint.engine import parse_python
from tools.lint.notebook import split_ipynb, split_source

MAX_FACTS = 20_000
MAX_VALUE = 120

# Values that state the absence of something ("instance_pool: none") are not evidence of it.
_EMPTY_VALUES = frozenset({"", "none", "no", "n/a", "na", "-", "—", "tbd", "todo", "unknown", "false", "0", "null",
                           "off", "disabled", "never", "not set", "not used", "未设置", "无"})
_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}|<[^<>\n]{1,40}>|\bTBD\b|\bTODO\b|\bFIXME\b|\.\.\.|…")
# Calls that only print, log or raise: their arguments are messages, not behaviour.
_MESSAGE_METHODS = frozenset({"info", "debug", "warning", "warn", "error", "exception", "critical", "log", "print",
                              "startswith", "endswith", "replace", "split", "strip", "lower", "upper", "encode",
                              "decode", "fail", "skip"})
_BUILTINS = frozenset({"print", "len", "str", "int", "float", "bool", "list", "dict", "set", "tuple", "isinstance",
                       "range", "enumerate", "zip", "sorted", "min", "max", "sum", "any", "all", "getattr", "hasattr",
                       "setattr", "open", "super", "type", "repr", "round", "abs", "map", "filter", "next", "iter",
                       "vars", "id", "hash"})
_SQL_METHODS = frozenset({"sql", "execute"})
_OPTION_METHODS = frozenset({"option", "set", "conf", "config", "setConf"})
_STOPWORDS = frozenset({"the", "a", "an", "to", "of", "and", "for", "with", "when", "then", "is", "are", "be",
                        "on", "at", "by", "from", "this", "that", "it", "after", "before", "if", "until", "per",
                        "each", "every", "so", "but", "we", "you", "our", "must", "should", "will", "can"})
_CONCRETE = re.compile(r"\d|`[^`]+`|https?://|[\w.+-]+@[\w-]+\.\w|(?<![\w/])[@#][A-Za-z][\w-]+|\w+:[\w#@-]+")
_SKIP_SECTIONS = re.compile(r"checklist results|检查结果|purpose|目的|notices|sources|guidance|references|参考|"
                            r"definition of done|完成定义|related|相关", re.I)
_SKIP_BLOCKS = re.compile(r"^\s*(guidance from the knowledge base|sources:|来源|参考资料)", re.I)
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
_FENCE_KINDS = {"python": "x.py", "py": "x.py", "pyspark": "x.py", "sql": "x.sql", "yaml": "x.yaml", "yml": "x.yaml",
                "json": "x.json", "bash": "x.sh", "shell": "x.sh", "sh": "x.sh"}


@dataclass(frozen=True)
class Fact:
    """One piece of behaviour of one artefact.

    Attributes:
        text: what it is, as matched by facet patterns (``maxOffsetsPerTrigger=200000``).
        where: ``file:line``.
        kind: the artefact kind that shows it (``code``, ``job``, ``answers``...).

    """

    text: str
    where: str
    kind: str

    def cite(self) -> str:
        """``file:line: `text``` for a report."""
        return f"{self.where}: `{self.text[:140]}`"


def meaningful(value: str) -> bool:
    """True when a value states something (not empty, a placeholder or a negation)."""
    cleaned = _PLACEHOLDER.sub("", str(value)).strip().strip("'\"").strip()
    return bool(cleaned) and cleaned.lower() not in _EMPTY_VALUES


def is_prose(text: str) -> bool:
    """A sentence rather than a value: several words with English function words and no code syntax."""
    if re.search(r"[=<>{}\[\]]|\w\(|\b(SELECT|WHERE|AND|OR|NOT|NULL|IS|IN|BETWEEN)\b", text):
        return False
    words = re.findall(r"[A-Za-z]+", text)
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    return cjk >= 6 or (len(words) >= 4 and any(w.lower() in _STOPWORDS for w in words))


def _value(text: str) -> str:
    text = str(text).strip()
    if is_prose(text):
        return "…"
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"


# ---- Python ------------------------------------------------------------------------------

def _render(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return repr(_value(node.value))
        return repr(node.value)
    if isinstance(node, ast.JoinedStr):
        return "'…'"
    if isinstance(node, ast.Dict):
        return "{…}"
    try:
        text = ast.unparse(node)
    except (ValueError, RecursionError):
        return "…"
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"


def _literal(node: ast.AST) -> str | None:
    """A literal option value as text (``None`` when it is not a literal)."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, bytes):
        return _value(str(node.value))
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _render(node)
    return None


def python_facts(text: str, name: str, line_offset: int = 0) -> list[Fact]:
    """Calls, options, settings and SQL of a Python file (comments and docstrings never reach the AST's calls)."""
    try:
        tree = parse_python(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    local = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    facts: list[Fact] = []

    def add(fact_text: str, node: ast.AST) -> None:
        # A chained call's own line is where its method name is, not where the chain starts.
        line = node.func.end_lineno if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            else getattr(node, "lineno", 0)
        facts.append(Fact(fact_text, f"{name}:{(line or 0) + line_offset}", CODE))

    for node in ast.walk(tree):
        if len(facts) > MAX_FACTS:
            break
        if isinstance(node, ast.Call):
            check_time()
            func = node.func
            if isinstance(func, ast.Attribute):
                callee, shown = func.attr, "." + func.attr
                if callee in _MESSAGE_METHODS:
                    continue
            elif isinstance(func, ast.Name):
                callee = shown = func.id
                if callee in _BUILTINS or callee in local or re.search(r"(Error|Exception|Warning)$", callee):
                    continue
            else:
                continue
            if callee in local:
                continue
            args = [_render(a) for a in node.args] + [f"{k.arg}={_render(k.value)}" for k in node.keywords if k.arg]
            add(f"{shown}({', '.join(args)})", node)
            if callee in _OPTION_METHODS and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant):
                value = _literal(node.args[1])
                if value is not None and meaningful(value):
                    add(f"{node.args[0].value}={value}", node)
            for keyword in node.keywords:
                value = _literal(keyword.value) if keyword.arg else None
                if keyword.arg and value is not None and meaningful(value):
                    add(f"{keyword.arg}={value}", node)
            if callee in _SQL_METHODS and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                for fact in sql_facts(node.args[0].value, name, node.lineno - 1 + line_offset):
                    facts.append(Fact(fact.text, fact.where, CODE))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=False):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    shown = _literal(value) if not isinstance(value, (ast.Dict, ast.List)) else "{…}"
                    if shown is not None and meaningful(shown):
                        add(f"{key.value}={shown}", key)
    return sorted(facts, key=lambda f: int(f.where.rsplit(":", 1)[1]))


def code_facts(text: str, name: str, ipynb: bool = False) -> list[Fact]:
    """Facts of a Python file or notebook, cell by cell (``%sql`` cells as SQL), lines as in the file."""
    try:
        notebook = split_ipynb(text) if ipynb else split_source(text, "python")
    except (ValueError, TypeError, AttributeError):
        return [] if ipynb else python_facts(text, name)
    facts: list[Fact] = []
    for cell in notebook.cells:
        if cell.language == "python":
            facts += python_facts(cell.text, name, cell.first_line - 1)
        elif cell.language == "sql":
            facts += [Fact(f.text, f.where, CODE) for f in sql_facts(cell.text, name, cell.first_line - 1)]
    return facts


# ---- SQL ---------------------------------------------------------------------------------

def strip_sql_comments(text: str) -> str:
    """The SQL with ``--`` and ``/* */`` comments blanked (newlines kept), strings and identifiers untouched."""
    out, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char in "'\"`":
            end = i + 1
            while end < n and text[end] != char:
                end += 2 if text[end] == "\\" else 1
            out.append(text[i:end + 1])
            i = end + 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def sql_facts(text: str, name: str, line_offset: int = 0) -> list[Fact]:
    """One fact per statement: comments removed, ``COMMENT '...'`` clauses and prose strings blanked."""
    cleaned = strip_sql_comments(text)
    cleaned = re.sub(r"\bCOMMENT\s+(ON\s+\w+\s+\S+\s+IS\s+)?'(?:[^'\\]|\\.)*'", "COMMENT '…'", cleaned, flags=re.I)
    cleaned = re.sub(r"'((?:[^'\\]|\\.)*)'", lambda m: "'…'" if is_prose(m.group(1)) else m.group(0), cleaned)
    facts, start = [], 0
    counted, newlines = 0, 0  # line numbers counted on from the last statement: a file of many is not quadratic
    for match in re.finditer(r";|$", cleaned):
        check_time()
        statement = cleaned[start:match.start()]
        body = statement.strip()
        if body:
            at = start + len(statement) - len(statement.lstrip())
            newlines += cleaned.count("\n", counted, at)
            counted = at
            facts.append(Fact(re.sub(r"\s+", " ", body)[:2000], f"{name}:{newlines + 1 + line_offset}", SQL))
        start = match.end()
        if match.start() == len(cleaned):
            break
    return facts


# ---- YAML / JSON ----------------------------------------------------------------------------

def _flatten(data: object, path: str, name: str, kind: str, line: int | None, facts: list[Fact]) -> None:
    if len(facts) > MAX_FACTS:
        return
    if isinstance(data, dict):
        if path and data:
            facts.append(Fact(f"{path}={{…}}", f"{name}:{line or 1}", kind))
        for key, value in data.items():
            key_line = data.key_line(key) if isinstance(data, LDict) else line
            _flatten(value, f"{path}.{key}" if path else str(key), name, kind, key_line, facts)
    elif isinstance(data, list):
        scalars = [v for v in data if not isinstance(v, (dict, list))]
        if scalars and len(scalars) == len(data):
            shown = ", ".join(_value(str(v)) for v in scalars if meaningful(str(v)))
            if shown and shown.strip("…, "):
                facts.append(Fact(f"{path}=[{shown}]", f"{name}:{line or 1}", kind))
            return
        item_lines = getattr(data, "item_lines", []) if isinstance(data, LList) else []
        for index, value in enumerate(data):
            item_line = item_lines[index] if index < len(item_lines) else line
            _flatten(value, path, name, kind, item_line, facts)
    elif data is not None and meaningful(str(data)):
        value = _value(str(data))
        facts.append(Fact(f"{path}={value}", f"{name}:{line or 1}", kind))


def config_facts(text: str, name: str, kind: str, suffix: str, line_offset: int = 0) -> list[Fact]:
    """Every setting of a YAML/JSON file as ``dotted.path=value`` (comments are gone after parsing)."""
    try:
        documents = load_json(text) if suffix == ".json" else load_yaml(text)
    except (ConfigError, RecursionError):
        return []
    facts: list[Fact] = []
    for document in documents:
        line = getattr(document, "line", None) if isinstance(document, (LDict, LList)) else None
        _flatten(document, "", name, kind, line, facts)
    if line_offset:
        facts = [Fact(f.text, f"{name}:{int(f.where.rsplit(':', 1)[1]) + line_offset}", f.kind) for f in facts]
    return facts


# ---- answers and documents ---------------------------------------------------------------------

def answer_facts(text: str, name: str) -> list[Fact]:
    """``key: value`` lines of a task's answers; values that state nothing are left out."""
    facts = []
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.partition(":")
        if sep and key.strip() and meaningful(value):
            facts.append(Fact(f"{key.strip()}={_value(value.strip())}", f"{name}:{number}", ANSWERS))
    return facts


def _clean_markdown(text: str) -> str:
    text = re.sub(r"\[\d+\]", "", text)                     # citation markers
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", text)    # list markers and numbering
    text = re.sub(r"\*\*|__", "", text)
    return text.strip()


def _clauses(text: str) -> list[str]:
    """Split prose at clause boundaries, leaving inline code and brackets (which may hold commas) whole."""
    parts, code, depth, current = [], 0, 0, []
    for index, char in enumerate(text):
        if char == "`":
            code ^= 1
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(char, 0) if not code else 0
        boundary = char in ",;，；。" or (char == "." and index + 1 < len(text) and text[index + 1] == " ")
        if boundary and not code and depth <= 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _concrete(text: str) -> bool:
    return bool(_CONCRETE.search(_PLACEHOLDER.sub("", text)))


def markdown_facts(text: str, name: str, kind: str) -> list[Fact]:
    """A document's concrete content: answers tables, decisions with values, and its code/config blocks.

    Headings, prose without a concrete value, retrieved guidance, source lists and
    checklist result tables are left out; a section with nothing under it adds nothing.
    """
    facts: list[Fact] = []
    lines = text.splitlines()
    skip_section = skip_block = False
    skip_level = 0  # the level of the skipped heading: its subsections are skipped too
    answers_table = False
    fence: tuple[int, str, list[str]] | None = None
    for number, raw in enumerate(lines, start=1):
        check_time()
        if fence is not None:
            if _FENCE.match(raw) and not _FENCE.match(raw).group(2):  # type: ignore[union-attr]
                start, language, body = fence
                fence = None
                if not skip_section:
                    facts += embedded_facts("\n".join(body), name, language, start)
            else:
                fence[2].append(raw)
            continue
        opened = _FENCE.match(raw)
        if opened:
            fence = (number, opened.group(2).lower(), [])
            continue
        heading = re.match(r"^\s{0,3}(#{1,6})\s+(.*)", raw)
        if heading:
            title, level = heading.group(2), len(heading.group(1))
            if skip_section and level > skip_level:
                continue
            skip_section = bool(_SKIP_SECTIONS.search(title)) and not re.search(r"inputs|输入", title, re.I)
            skip_level = level
            answers_table = bool(re.search(r"inputs|输入", title, re.I))
            skip_block = False
            continue
        stripped = raw.strip()
        if not stripped:
            continue
        if _SKIP_BLOCKS.match(stripped):
            skip_block = True
            continue
        if stripped.startswith("**For your inputs") or stripped.startswith("**本次决定"):
            skip_block = False
        if skip_section or skip_block or stripped.startswith(">"):
            continue
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c) or cells[:2] == ["Question", "Answer"]:
                continue
            if answers_table and len(cells) >= 2:
                if meaningful(cells[-1]):
                    facts.append(Fact(f"{cells[0]}={_clean_markdown(cells[-1])[:MAX_VALUE]}", f"{name}:{number}",
                                      ANSWERS))
                continue
            row = " | ".join(c for c in cells if c)
            if len(cells) >= 2 and meaningful(" ".join(cells[1:])) and _concrete(" ".join(cells[1:])):
                facts.append(Fact(_clean_markdown(row)[:300], f"{name}:{number}", kind))
            continue
        # A clause is evidence only when it carries its own concrete value: "warn at 120 USD (80%)" is,
        # a list of intentions in the same sentence is not.
        for clause in _clauses(_clean_markdown(stripped)):
            if _concrete(clause) and meaningful(clause):
                facts.append(Fact(clause[:300], f"{name}:{number}", kind))
    return facts


def embedded_facts(text: str, name: str, language: str, fence_line: int) -> list[Fact]:
    """Facts of a fenced code or config block inside a document (lines counted in the document)."""
    fake = _FENCE_KINDS.get(language)
    if fake is None:
        return []
    kind = classify(fake, text)
    if kind == CODE:
        return python_facts(text, name, fence_line)
    if kind == SQL:
        return sql_facts(text, name, fence_line)
    if kind in (CONFIG, JOB):
        return config_facts(text, name, kind, "." + fake.rsplit(".", 1)[1], fence_line)
    return script_facts(text, name, fence_line)


def script_facts(text: str, name: str, line_offset: int = 0) -> list[Fact]:
    """Commands of a shell script (comment lines and ``echo`` messages left out)."""
    facts = []
    for number, line in enumerate(text.splitlines(), start=1):
        command = line.split(" #", 1)[0].strip()
        if command and not command.startswith("#") and not re.match(r"(echo|printf)\b", command):
            facts.append(Fact(command[:300], f"{name}:{number + line_offset}", SCRIPT))
    return facts


def facts_of(name: str, text: str, kind: str) -> list[Fact]:
    """Every fact of one artefact of ``kind`` (see ``tools.evidence.kinds.classify``)."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind == REPORT:
        return []
    if kind == ANSWERS:
        return answer_facts(text, name)
    if kind == CODE:
        return code_facts(text, name, ipynb=suffix == ".ipynb")
    if kind == SQL:
        return sql_facts(text, name)
    if kind in (CONFIG, JOB):
        return config_facts(text, name, kind, suffix if suffix in (".json", ".yaml", ".yml") else ".yaml")
    if kind == SCRIPT:
        return script_facts(text, name)
    return markdown_facts(text, name, kind if kind in (DOC, RUNBOOK) else DOC)
