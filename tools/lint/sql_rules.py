"""Rules for Databricks SQL: streaming tables, materialized views, stream sources.

No SQL grammar is needed for these rules: a small scanner blanks comments
(and, in a second copy, string contents) while keeping every offset, splits
statements at top-level semicolons, and the rules look for clauses —
``CREATE ... STREAMING TABLE``, ``CONSTRAINT ... EXPECT``, ``FROM STREAM``,
``WATERMARK``, ``GROUP BY`` — and read ``read_kafka(...)`` / ``read_files(...)``
/ ``cloud_files(...)`` options.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from tools.budget import check_time
from tools.lint.catalog import make_finding
from tools.lint.model import Finding
from tools.lint.source_rules import OptionValue, SourceSpec, check_source

_TABLE_DEF = re.compile(
    r"\bCREATE\s+(?:OR\s+(?:REFRESH|REPLACE)\s+)?(?:TEMPORARY\s+|PRIVATE\s+)?"
    r"(?P<kind>STREAMING\s+(?:LIVE\s+)?TABLE|LIVE\s+TABLE|MATERIALIZED\s+VIEW)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[`\w.${}-]+)",
    re.I,
)
_EXPECT = re.compile(r"\bCONSTRAINT\s+(?:`[^`]+`|\w+)\s+EXPECT\b", re.I)
_STREAM_NAME = re.compile(r"\bSTREAM\b\s*(?:\(\s*)?(?P<name>[`\w.]+)", re.I)
_BUS_FN = re.compile(r"\b(?:read_kafka|read_kinesis|read_pubsub|read_pulsar|read_eventhubs?)\s*\(", re.I)
_FILE_FN = re.compile(r"\b(?:read_files|cloud_files)\s*\(", re.I)
_RESET_FALSE = re.compile(r"pipelines\.reset\.allowed['\"`]?\s*=\s*['\"]?false", re.I)
_AS_QUERY = re.compile(r"\bAS\s*\(?\s*(?:SELECT|WITH|FROM)\b", re.I)
_BRONZE_NAME = re.compile(r"bronze|raw|landing|ingest|stag(?:e|ed|ing)_", re.I)
_CLOSED_SQL_KEY = re.compile(
    r"^(?:[a-z]+_)?(?:country|region|state|status|type|category|lang|language|level|kind|gender|channel|platform|"
    r"source|segment|tier|class|label|severity|priority|currency|device|os|browser|sensor|city|store|site|zone|"
    r"team|brand|department|plant|machine|topic|action|outcome|result|sentiment|flag)(?:_(?:type|name|code))?$",
    re.I,
)
_STREAM_REF = re.compile(r"\bSTREAM\b|\bcloud_files\s*\(", re.I)
_WATERMARK = re.compile(r"\bWATERMARK\s+(?P<col>[`\w.]+)", re.I)
_GROUP_BY = re.compile(r"\bGROUP\s+BY\b", re.I)
_GROUP_END = re.compile(r"\b(?:HAVING|ORDER\s+BY|LIMIT|UNION|QUALIFY)\b|\)\s*$", re.I)
_JOIN = re.compile(r"\bJOIN\b", re.I)
_DISTINCT = re.compile(r"\bSELECT\s+DISTINCT\b", re.I)
_SOURCE_FN = re.compile(r"\b(?P<fn>read_kafka|read_kinesis|read_files|cloud_files)\s*\(", re.I)
_NAMED_ARG = re.compile(
    r"`?(?P<key>[\w.]+)`?\s*=>\s*(?P<value>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|[^,)\s]+(?:\([^)]*\))?)"
)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.|'')*)'|\"((?:[^\"\\]|\\.)*)\"")


@dataclass(frozen=True)
class _Scanned:
    """A SQL text with comments blanked (``code``) and also strings blanked (``skeleton``)."""

    code: str
    skeleton: str
    statements: list[tuple[int, int]]


def scan_sql(text: str) -> _Scanned:
    """Blank comments and string contents, keep offsets, find statement spans."""
    code = list(text)
    skeleton = list(text)
    statements: list[tuple[int, int]] = []
    start = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            for j in range(i, end):
                code[j] = skeleton[j] = " "
            i = end
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for j in range(i, end):
                if text[j] != "\n":
                    code[j] = skeleton[j] = " "
            i = end
        elif ch in "'\"`":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            end = min(j, n - 1)
            if ch != "`":  # identifiers stay readable in the skeleton
                for k in range(i + 1, end):
                    if text[k] != "\n":
                        skeleton[k] = " "
            i = j + 1
        elif ch == ";":
            statements.append((start, i))
            start = i + 1
            i += 1
        else:
            i += 1
    if text[start:].strip():
        statements.append((start, n))
    return _Scanned("".join(code), "".join(skeleton), statements)


def _unquote(value: str) -> str | None:
    """The text of a SQL string literal, or ``None`` for an expression."""
    match = _QUOTED.fullmatch(value.strip())
    if not match:
        return None
    return (match.group(1) if match.group(1) is not None else match.group(2)).replace("''", "'")


class _SqlChecker:
    def __init__(self, text: str, line_offset: int) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.offset = line_offset
        self.scanned = scan_sql(text)
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.findings: list[Finding] = []
        self.batch_tables: dict[str, int] = {}  # table defined by a batch query -> its line
        self.stream_reads: list[tuple[str, int]] = []  # (table read as a stream, line)

    def line_of(self, position: int) -> int:
        return bisect.bisect_left(self._newlines, position) + 1 + self.offset

    def evidence(self, line: int) -> str:
        index = line - self.offset - 1
        return self.lines[index].strip() if 0 <= index < len(self.lines) else ""

    def emit(self, rule: str, status: str, position: int, detail: str) -> None:
        line = self.line_of(position)
        self.findings.append(make_finding(rule, status, line, detail, self.evidence(line)))

    def run(self) -> list[Finding]:
        for start, end in self.scanned.statements:
            check_time()
            self._check_statement(start, end)
        return self.findings

    def _check_statement(self, start: int, end: int) -> None:
        skeleton = self.scanned.skeleton[start:end]
        table = _TABLE_DEF.search(skeleton)
        if table:
            self._check_table(table, skeleton, start)
        for ref in _STREAM_NAME.finditer(skeleton):
            self.stream_reads.append((_table_key(ref.group("name")), self.line_of(start + ref.start())))
        streams = len(_STREAM_REF.findall(skeleton))
        if streams:
            self._check_stateful(skeleton, start, streams)
        for match in _SOURCE_FN.finditer(skeleton):
            self._check_source_call(match, start, skeleton)

    def _check_table(self, table: re.Match[str], skeleton: str, start: int) -> None:
        """SE601 (expectations on Silver/Gold tables), SE212 (reset on bus tables), batch tables for SE213."""
        name = table.group("name")
        position = start + table.start()
        streaming = table.group("kind").upper().startswith("STREAMING")
        query = _AS_QUERY.search(skeleton, table.end())
        if not streaming and query:
            self.batch_tables[_table_key(name)] = self.line_of(position)
        bus = _BUS_FN.search(skeleton)
        if bus and streaming:
            if _RESET_FALSE.search(self.scanned.code[start: start + len(skeleton)]):
                self.emit("SE212", "PASS", position, f"Table '{name}' disallows full refresh.")
            else:
                self.emit("SE212", "PARTIAL", position,
                          f"Table '{name}' reads a message bus and allows full refresh (pipelines.reset.allowed "
                          "is not false): a refresh drops the data the source no longer retains.")
        if _EXPECT.search(skeleton):
            self.emit("SE601", "PASS", position, f"Table '{name}' declares expectations.")
            return
        # Bronze tables land data as it comes and CDC targets (no query: APPLY CHANGES / AUTO CDC fill
        # them) copy the source: expectations belong on the Silver and Gold tables built from them.
        bronze = bool(_BRONZE_NAME.search(name)) or bool(bus) or bool(_FILE_FN.search(skeleton))
        if query is None or bronze:
            return
        self.emit("SE601", "PARTIAL", position, f"Table '{name}' declares no expectations.")

    def _check_stateful(self, skeleton: str, start: int, streams: int) -> None:
        watermarks = [m.group("col").strip("`").split(".")[-1].lower() for m in _WATERMARK.finditer(skeleton)]
        group = _GROUP_BY.search(skeleton)
        if group:
            tail = skeleton[group.end(): group.end() + 400]
            stop = _GROUP_END.search(tail)
            keys = (tail[: stop.start()] if stop else tail).lower()
            key_names = [k.strip().strip("`").split(".")[-1] for k in keys.split(",") if k.strip()]
            if not watermarks and key_names and all(_CLOSED_SQL_KEY.match(k) for k in key_names):
                self.emit("SE101", "PARTIAL", start + group.start(),
                          "GROUP BY over a STREAM source with no WATERMARK; the keys look like a small closed set "
                          "(no id, time or window), so state stays bounded only if that set is: confirm it.")
            elif not watermarks:
                self.emit("SE101", "FAIL", start + group.start(),
                          "GROUP BY over a STREAM source with no WATERMARK clause: aggregation state grows without "
                          "bound.")
            elif "window(" in keys.replace(" ", "") or any(re.search(rf"\b{re.escape(w)}\b", keys) for w in watermarks):
                self.emit("SE101", "PASS", start + group.start(), "Streaming aggregation is bounded by a WATERMARK.")
            else:
                self.emit("SE101", "PARTIAL", start + group.start(),
                          "A WATERMARK is declared but the GROUP BY keys include no window or event-time column.")
        join = _JOIN.search(skeleton)
        if join and streams >= 2:
            if len(watermarks) < 2:
                self.emit("SE102", "FAIL", start + join.start(),
                          "Stream-stream JOIN without a WATERMARK on both inputs: join state is kept forever.")
            elif re.search(r"\bINTERVAL\b|\bBETWEEN\b", skeleton[join.end():], re.I):
                self.emit("SE102", "PASS", start + join.start(), "Stream-stream join has watermarks and a time range.")
            else:
                self.emit("SE102", "PARTIAL", start + join.start(),
                          "Stream-stream join has watermarks but no event-time range in its condition.")
        distinct = _DISTINCT.search(skeleton)
        if distinct and not watermarks:
            self.emit("SE103", "FAIL", start + distinct.start(),
                      "SELECT DISTINCT over a STREAM source without a WATERMARK keeps every row seen in state.")

    def _check_source_call(self, match: re.Match[str], start: int, skeleton: str) -> None:
        function = match.group("fn").lower()
        before = skeleton[max(0, match.start() - 16): match.start()]
        streaming = function == "cloud_files" or re.search(r"\bSTREAM\s*\(?\s*$", before, re.I) is not None
        if not streaming:
            return
        open_paren = match.end() - 1
        close = self._closing_paren(start + open_paren)
        args_code = self.scanned.code[start + match.end(): close]
        args_offset = start + match.end()
        options: dict[str, OptionValue] = {}
        schema_given = False
        for arg in _NAMED_ARG.finditer(args_code):
            key = arg.group("key").lower()
            line = self.line_of(args_offset + arg.start())
            options[key] = OptionValue(_unquote(arg.group("value")), line, self.evidence(line))
            schema_given = schema_given or key == "schema"
        file_format = (options["format"].value or "").lower() if "format" in options else None
        if function == "cloud_files":
            file_format, map_options = self._cloud_files_args(args_code, args_offset)
            options.update(map_options)
            schema_given = "schema" in options
        kind = {"read_kafka": "kafka", "read_kinesis": "kinesis"}.get(function, "autoloader")
        line = self.line_of(start + match.start())
        spec = SourceSpec(kind=kind, line=line, evidence=self.evidence(line), context="sql", options=options,
                          schema_given=schema_given, file_format=file_format)
        self.findings.extend(check_source(spec))

    def _cloud_files_args(self, args: str, offset: int) -> tuple[str | None, dict[str, OptionValue]]:
        """``cloud_files(path, format, map('k', 'v', ...))``: the format and the map's options."""
        literals = [(m.start(), m.group(1) if m.group(1) is not None else m.group(2)) for m in _QUOTED.finditer(args)]
        map_at = re.search(r"\bmap\s*\(", args, re.I)
        head = [value for pos, value in literals if map_at is None or pos < map_at.start()]
        file_format = head[1].lower() if len(head) > 1 else None
        options: dict[str, OptionValue] = {}
        if map_at:
            pairs = [(pos, value) for pos, value in literals if pos > map_at.start()]
            for (pos, key), (_, value) in zip(pairs[0::2], pairs[1::2], strict=False):
                line = self.line_of(offset + pos)
                options[key.lower()] = OptionValue(value, line, self.evidence(line))
        return file_format, options

    def _closing_paren(self, open_at: int) -> int:
        depth = 0
        skeleton = self.scanned.skeleton
        for i in range(open_at, len(skeleton)):
            if skeleton[i] == "(":
                depth += 1
            elif skeleton[i] == ")":
                depth -= 1
                if depth == 0:
                    return i
        return len(skeleton)


def check_sql(text: str, line_offset: int = 0) -> list[Finding]:
    """All SQL-rule findings for a SQL text.

    Args:
        text: SQL source (a ``.sql`` file or a notebook's ``%sql`` cell).
        line_offset: added to line numbers (for cells inside a notebook).

    Returns:
        Findings in source order, before suppression.

    """
    return _SqlChecker(text, line_offset).run()


def check_sql_cells(cells: list[tuple[str, int]]) -> list[Finding]:
    """All SQL-rule findings for the SQL cells of one file (a plain ``.sql`` file is one cell).

    Args:
        cells: ``(text, line_offset)`` per cell; a cell is a statement boundary
            (Lakeflow SQL notebooks separate statements by cells, not semicolons).

    Returns:
        Findings in source order, before suppression.

    """
    findings: list[Finding] = []
    batch_tables: dict[str, int] = {}
    stream_reads: list[tuple[str, int]] = []
    evidence: dict[int, str] = {}
    for text, offset in cells:
        checker = _SqlChecker(text, offset)
        findings += checker.run()
        batch_tables.update(checker.batch_tables)
        stream_reads += checker.stream_reads
        for _, line in checker.stream_reads:
            evidence[line] = checker.evidence(line)
    for name, line in stream_reads:
        if name in batch_tables:
            findings.append(make_finding(
                "SE213", "FAIL", line,
                f"'{name}' is a materialized view / live table (defined by a batch query at line "
                f"{batch_tables[name]}) read here as a stream: the stream fails when the view is recomputed.",
                evidence[line],
            ))
    return findings


def _table_key(name: str) -> str:
    """A table name as compared across statements: no quotes, no ``LIVE.`` / catalog / schema, lower case."""
    return name.replace("`", "").split(".")[-1].lower()
