"""Rules for PySpark Structured Streaming and declarative-pipeline Python code.

The checker follows each DataFrame method chain from its source (``readStream``,
``dlt.read_stream``, a helper function's return value, a variable) to its sink
(``writeStream ... start()/toTable()``), carrying a small ``Frame`` of facts:
is it a stream, which watermarks are set, is it aggregated, how is it written.
Rules fire on the link where the fact becomes wrong (a ``groupBy`` without a
watermark) or, for whole queries, once every query of the file is known
(shared checkpoints, monitoring).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace

from tools.budget import check_time
from tools.lint.catalog import make_finding
from tools.lint.model import Finding
from tools.lint.python_flow import Link, ModuleIndex, call_name, flatten
from tools.lint.source_rules import OptionValue, SourceSpec, check_source, source_kind

_GROUP_METHODS = frozenset({"groupBy", "groupby", "rollup", "cube"})
_ARBITRARY_STATE = frozenset({
    "applyInPandasWithState", "transformWithStateInPandas", "transformWithState",
    "flatMapGroupsWithState", "mapGroupsWithState",
})
_DEDUP_METHODS = frozenset({"dropDuplicates", "drop_duplicates", "distinct", "dropDuplicatesWithinWatermark"})
_READER_TERMINALS = frozenset({"load", "table", "json", "csv", "parquet", "orc", "text", "xml"})
_BATCH_WRITE_TERMINALS = frozenset({"save", "saveAsTable", "insertInto", "parquet", "json", "csv", "orc", "text", "jdbc"})
_WRITE_TO_TERMINALS = frozenset({"append", "overwrite", "overwritePartitions", "createOrReplace", "create", "replace"})
_DEBUG_SINKS = frozenset({"console", "memory", "noop"})
_TABLE_DECORATORS = frozenset({"table", "create_table", "materialized_view"})
_STREAMING_TABLE_CALLS = frozenset({"create_streaming_table", "create_target_table", "create_streaming_live_table"})
_TIME_KEY_FUNCTIONS = frozenset({"window", "session_window", "window_time"})
_VOLATILE_CALLS = frozenset({"uuid1", "uuid4", "random", "randint", "time", "time_ns", "now", "utcnow", "today"})
_EPHEMERAL_PREFIXES = ("/tmp/", "dbfs:/tmp/", "file:/tmp/", "file:///tmp/", "/dbfs/tmp/", "/local_disk0/",
                       "file:/local_disk0/")
_DROPPED_TABLE = re.compile(r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([`\w.]+)", re.I)
_DATABRICKS_HINTS = re.compile(r"\bdbutils\.|/Volumes/|dbfs:/|\bdisplay\(|\bspark\.databricks\.|cloudFiles")
# Group keys named for a small closed vocabulary (country, status, device type, language...): grouping only
# by such keys keeps bounded state even without a watermark, so SE101/SE104 say PARTIAL, not FAIL.
_CLOSED_KEY = re.compile(
    r"^(?:[a-z]+_)?(?:country|region|state|status|type|category|lang|language|level|kind|gender|channel|platform|"
    r"source|segment|tier|class|label|severity|priority|currency|device|os|browser|sensor|city|store|site|"
    r"zone|team|brand|department|plant|line|machine|topic|partition|action|event_type|outcome|result|"
    r"sentiment|flag|is_[a-z_]+|has_[a-z_]+)(?:_(?:type|name|code|category|group|kind))?$",
    re.I,
)
_BRONZE_NAME = re.compile(r"bronze|raw|landing|ingest|stag(?:e|ed|ing)_", re.I)
_DECORATOR_ARGS = frozenset({"table_properties", "spark_conf", "comment", "partition_cols", "cluster_by", "schema",
                             "path", "temporary", "row_filter", "table_name"})
_RESCUED_USED = re.compile(r"_rescued_data['\"`)\]]*\s*(?:\)\s*)?(?:\.isNotNull|\.isNull|IS\s+NOT\s+NULL|IS\s+NULL|!=|==)",
                           re.I)
_REMOVE_CALLS = frozenset({"rm", "rmtree", "remove", "unlink"})
_MONITORING = re.compile(r"StreamingQueryListener|\.addListener\(|\.lastProgress\b|\.recentProgress\b|\.observe\(")
_BATCH_DEDUP = re.compile(
    r"dropDuplicates|drop_duplicates|\.distinct\(|row_number|\brank\b|dense_rank|\bQUALIFY\b|max_by|groupBy\(|"
    r"GROUP\s+BY|applyInPandasWithState|transformWithState",
    re.I,
)
_ZERO_INTERVAL = re.compile(r"\s*0+(?:\.0+)?\s*[a-z]*\s*$", re.I)
_MAX_CHAIN = 500  # variables followed back from one expression


@dataclass
class _SourceBuild:
    """A ``readStream`` reader being configured."""

    start_line: int
    fmt: str | None = None
    fmt_line: int | None = None
    options: dict[str, OptionValue] = field(default_factory=dict)
    opaque: bool = False
    schema_given: bool = False

    def copy(self) -> _SourceBuild:
        return replace(self, options=dict(self.options))


@dataclass
class _WriterBuild:
    """A ``writeStream`` writer being configured."""

    line: int
    upstream: _Frame
    fmt: str | None = None
    started: bool = False  # toTable()/table() has started the query
    target: str | None = None  # the table a toTable()/table() sink writes
    options: dict[str, tuple[ast.expr, int]] = field(default_factory=dict)
    opaque: bool = False
    output_mode: tuple[str, int] | None = None
    trigger: tuple[str, ast.expr, int] | None = None
    named: bool = False
    foreach_batch: tuple[ast.expr, int] | None = None

    def copy(self) -> _WriterBuild:
        return replace(self, options=dict(self.options))


@dataclass
class _Frame:
    """What is known about the DataFrame a chain has built so far."""

    streaming: bool = False
    source: _SourceBuild | None = None
    watermarks: tuple[str, ...] = ()
    agg_keyed: bool | None = None  # None: not aggregated; False: global aggregate
    agg_line: int | None = None  # where the keyed aggregation is written
    agg_closed: bool = False  # keyed only by names that look like a small closed set
    unique_rows: bool = False  # one row per key (aggregated, de-duplicated or arbitrary-state output)
    origin: str | None = None  # source kind of a readStream (kafka, eventhubs, kinesis, autoloader, file, other)
    batch_read: bool = False  # built from spark.read / dlt.read / spark.table
    writer: _WriterBuild | None = None

    def copy(self) -> _Frame:
        return replace(
            self,
            source=self.source.copy() if self.source else None,
            writer=self.writer.copy() if self.writer else None,
        )


@dataclass
class _BatchWrites:
    """What a foreachBatch function writes."""

    failures: list[Finding] = field(default_factory=list)
    idempotent: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    merges: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # source of the functions read


class PythonChecker:
    """Runs every Python rule over one parsed module."""

    def __init__(self, tree: ast.Module, lines: list[str], text: str) -> None:
        """Prepare to check ``tree`` (parsed from ``text``, split into ``lines``)."""
        self.ix = ModuleIndex(tree, lines)
        self.text = text
        self.declarative = bool(self.ix.declarative_aliases)
        self.databricks = bool(_DATABRICKS_HINTS.search(text)) or bool(lines and "Databricks notebook source" in lines[0])
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str, int | None, str]] = set()
        self._memo: dict[int, _Frame] = {}
        self._active_helpers: set[int] = set()
        self._queries: dict[int, tuple[_WriterBuild, int]] = {}
        self._stream_reads: list[tuple[str, int]] = []  # (table read as a stream, line)
        self._batch_functions_done: set[int] = set()
        self._dropped: set[str] | None = None

    # -- driver ---------------------------------------------------------
    def run(self) -> list[Finding]:
        """Check the module; returns the findings (unsuppressed, unsorted)."""
        for node in ast.walk(self.ix.tree):
            if isinstance(node, (ast.Call, ast.Attribute)) and id(node) not in self.ix.inner:
                check_time()
                self.frame_of(node)
        self._check_declarative_tables()
        check_time()
        self._check_queries()
        return self.findings

    def emit(self, finding: Finding) -> None:
        """Record a finding once (a chain may be evaluated through several names)."""
        key = (finding.rule, finding.status, finding.line, finding.message)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(finding)

    def _emit(self, rule: str, status: str, line: int | None, detail: str, evidence: str | None = None) -> None:
        self.emit(make_finding(rule, status, line, detail, self.ix.line(line) if evidence is None else evidence))

    # -- chain evaluation -------------------------------------------------
    def frame_of(self, expr: ast.AST) -> _Frame:
        """The facts about the DataFrame ``expr`` evaluates to.

        Names are followed back iteratively (``df = df.withColumn(..)`` a
        hundred times must not exhaust the stack), then links are applied
        forwards from the origin.
        """
        segments: list[tuple[ast.AST, list[Link]]] = []
        visited: set[int] = set()
        node = expr
        base: _Frame
        while True:
            if id(node) in self._memo:
                base = self._memo[id(node)]
                break
            if id(node) in visited or len(segments) > _MAX_CHAIN:
                base = _Frame()
                break
            visited.add(id(node))
            root, links = flatten(node)
            segments.append((node, links))
            if isinstance(root, ast.Name) and root.id not in self.ix.declarative_aliases:
                value = self.ix.resolve(root)
                if value is None:
                    base = _Frame()
                    break
                node = value
                continue
            base = self._frame_of_root(root)
            break
        frame = base
        for seg_node, links in reversed(segments):
            frame = frame.copy()
            for index, link in enumerate(links):
                following = links[index + 1].name if index + 1 < len(links) else None
                frame = self._step(frame, link, following)
            self._memo[id(seg_node)] = frame
        return frame

    def _frame_of_root(self, root: ast.AST) -> _Frame:
        """A chain that starts with a helper call: the helper's returned frame."""
        if isinstance(root, ast.Call) and isinstance(root.func, ast.Name):
            function = self.ix.function(root.func.id)
            if function is not None and id(function) not in self._active_helpers:
                returns = [n.value for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
                if returns:
                    self._active_helpers.add(id(function))
                    try:
                        return self.frame_of(returns[-1])
                    finally:
                        self._active_helpers.discard(id(function))
        return _Frame()

    def _step(self, frame: _Frame, link: Link, following: str | None) -> _Frame:
        """Apply one link to the frame, checking the rules that fire on it."""
        name = link.name
        if name == "readStream":
            return _Frame(streaming=True, source=_SourceBuild(start_line=link.line))
        if frame.source is not None:
            self._configure_source(frame, link)
            return frame
        if name == "read_stream":  # dlt.read_stream / dp.read_stream
            self._record_stream_read(link.arg(0, "name"), link.line)
            return _Frame(streaming=True)
        if name == "read" and not link.is_call:  # spark.read: batch from here on
            return _Frame(batch_read=True)
        if name in ("read", "table") and link.is_call and not frame.streaming and frame.writer is None:
            return _Frame(batch_read=True)  # dlt.read("t") / spark.table("t")
        if name == "writeStream":
            frame.writer = _WriterBuild(line=link.line, upstream=frame.copy())
            return frame
        if frame.writer is not None:
            self._configure_writer(frame.writer, link)
            return frame
        if name == "withWatermark":
            frame.watermarks = (*frame.watermarks, self.ix.const(link.arg(0, "eventTime")) or "?")
        elif name in _GROUP_METHODS and link.is_call:
            if frame.streaming and following not in _ARBITRARY_STATE:
                self._check_aggregation(frame, link)
            frame.agg_keyed = bool(link.args or link.keywords) or bool(frame.agg_keyed)
            frame.unique_rows = True
            if frame.agg_keyed and frame.agg_line is None:
                frame.agg_line = link.line
                frame.agg_closed = self._closed_keys([*link.args, *(k.value for k in link.keywords)])
        elif name == "agg" and frame.agg_keyed is None:
            frame.agg_keyed = False
        elif name in _DEDUP_METHODS:
            frame.unique_rows = True
            if frame.streaming:
                self._check_dedup(frame, link)
        elif name == "join" and link.args:
            other = self.frame_of(link.args[0])
            if frame.streaming and other.streaming:
                self._check_join(frame, other, link)
            frame.streaming = frame.streaming or other.streaming
            frame.watermarks = (*frame.watermarks, *other.watermarks)
        elif name in ("union", "unionByName", "unionAll") and link.args:
            other = self.frame_of(link.args[0])
            frame.streaming = frame.streaming or other.streaming
        elif name in _ARBITRARY_STATE:
            frame.unique_rows = True
            if name == "applyInPandasWithState":
                self._check_state_timeout(link)
        return frame

    # -- sources ----------------------------------------------------------
    def _configure_source(self, frame: _Frame, link: Link) -> None:
        source = frame.source
        if source is None:  # the caller only calls while a reader is being configured
            return
        name = link.name
        if name == "format":
            source.fmt = self.ix.const(link.arg(0, "source"))
            source.fmt_line = link.line
        elif name == "option":
            self._add_option(source, link.arg(0, "key"), link.arg(1, "value"), link.line)
        elif name == "options":
            self._add_keyword_options(source, link.keywords)
        elif name == "schema":
            source.schema_given = True
        elif name in _READER_TERMINALS:
            if name not in ("load", "table"):
                source.fmt = source.fmt or name
                source.fmt_line = source.fmt_line or link.line
            elif name == "table":
                source.fmt = source.fmt or "delta"
                self._record_stream_read(link.arg(0, "tableName"), link.line)
            for keyword in link.keywords:
                if keyword.arg == "schema":
                    source.schema_given = True
                elif keyword.arg not in (None, "path", "tableName", "format"):
                    self._add_option(source, ast.Constant(keyword.arg), keyword.value, keyword.value.lineno)
            self._finish_source(source)
            frame.origin = source_kind(source.fmt)
            frame.source = None

    def _add_option(self, source: _SourceBuild, key: ast.AST | None, value: ast.AST | None, line: int) -> None:
        text = self.ix.const(key)
        if text is None:
            source.opaque = True
            return
        source.options[text.lower()] = OptionValue(self.ix.const(value), line, self.ix.line(line),
                                                   self.ix.string_fragments(value))

    def _add_keyword_options(self, source: _SourceBuild, keywords: list[ast.keyword]) -> None:
        for keyword in keywords:
            if keyword.arg is None:
                items, opaque = self.ix.dict_items(keyword.value)
                source.opaque = source.opaque or opaque
                for key, value, line in items:
                    source.options[key.lower()] = OptionValue(self.ix.const(value), line, self.ix.line(line))
            else:
                line = keyword.value.lineno
                source.options[keyword.arg.lower()] = OptionValue(self.ix.const(keyword.value), line, self.ix.line(line))

    def _finish_source(self, source: _SourceBuild) -> None:
        kind = source_kind(source.fmt)
        if kind == "other":
            return
        file_format = source.options.get("cloudfiles.format")
        line = source.fmt_line or source.start_line
        spec = SourceSpec(
            kind=kind,
            line=line,
            evidence=self.ix.line(line),
            context="dlt" if self.declarative else "code",
            options=source.options,
            opaque=source.opaque,
            schema_given=source.schema_given,
            file_format=(file_format.value or "").lower() if file_format else (source.fmt or "").lower(),
            databricks=self.databricks,
        )
        for finding in check_source(spec):
            self.emit(finding)

    # -- stateful operators -------------------------------------------------
    def _is_time_key(self, arg: ast.AST, watermarks: tuple[str, ...]) -> bool:
        if isinstance(arg, ast.Call):
            function = call_name(arg)
            if function in _TIME_KEY_FUNCTIONS:
                return True
            if function in ("col", "column") and arg.args:
                return self.ix.const(arg.args[0]) in watermarks
            return False
        if isinstance(arg, ast.Attribute):
            return arg.attr in watermarks
        return self.ix.const(arg) in watermarks

    def _check_aggregation(self, frame: _Frame, link: Link) -> None:
        keys = [*link.args, *(k.value for k in link.keywords)]
        if not keys:
            return  # a global aggregate keeps one row of state
        shown = ", ".join(ast.unparse(k) for k in keys)[:80]
        if not frame.watermarks and self._closed_keys(keys):
            self._emit("SE101", "PARTIAL", link.line,
                       f"Streaming aggregation {link.name}({shown}) has no watermark; its keys look like a small "
                       "closed set (no id, time or window), so state stays bounded only if that set is: confirm it.")
        elif not frame.watermarks:
            self._emit("SE101", "FAIL", link.line,
                       f"Streaming aggregation {link.name}({shown}) has no watermark: its state grows without bound "
                       "and append mode cannot emit results.")
        elif any(self._is_time_key(k, frame.watermarks) for k in keys):
            self._emit("SE101", "PASS", link.line,
                       f"Aggregation {link.name}({shown}) is bounded by withWatermark('{frame.watermarks[0]}').")
        else:
            self._emit("SE101", "PARTIAL", link.line,
                       f"withWatermark('{frame.watermarks[0]}') is set but {link.name}({shown}) does not group by a "
                       "window or the event-time column, so the watermark cannot evict this state.")

    def _closed_keys(self, keys: list[ast.expr]) -> bool:
        """True when every group key is a plain column whose name looks like a small closed set."""
        names: list[str] = []
        for key in keys:
            if isinstance(key, ast.Call) and call_name(key) in ("col", "column") and key.args:
                key = key.args[0]
            if isinstance(key, ast.Attribute):
                names.append(key.attr)
                continue
            if isinstance(key, ast.Call):
                return False  # window(...), expressions: not a closed set
            text = self.ix.const(key)
            if text is None:
                return False
            names.append(text)
        return bool(names) and all(_CLOSED_KEY.match(name) for name in names)

    def _check_dedup(self, frame: _Frame, link: Link) -> None:
        if not frame.watermarks:
            self._emit("SE103", "FAIL", link.line,
                       f"{link.name}() on a stream without a watermark keeps every key seen forever.")
            return
        if link.name == "dropDuplicatesWithinWatermark":
            self._emit("SE103", "PASS", link.line, "De-duplication is bounded by the watermark.")
            return
        subset = link.arg(0, "subset")
        if subset is None:
            self._emit("SE103", "PASS", link.line, "De-duplication on all columns is bounded by the watermark.")
            return
        subset = self.ix.resolve_deep(subset)
        if not isinstance(subset, (ast.List, ast.Tuple)):
            return  # keys not visible: say nothing rather than guess
        keys = [self.ix.const(e) for e in subset.elts]
        if any(k in frame.watermarks for k in keys):
            self._emit("SE103", "PASS", link.line, "De-duplication keys include the watermarked event-time column.")
        else:
            self._emit("SE103", "PARTIAL", link.line,
                       f"{link.name}({keys}) leaves the watermark column '{frame.watermarks[0]}' out of the keys, "
                       "so de-duplication state is never evicted.")

    def _check_join(self, left: _Frame, right: _Frame, link: Link) -> None:
        missing = [side for side, frame in (("left", left), ("right", right)) if not frame.watermarks]
        if missing:
            self._emit("SE102", "FAIL", link.line,
                       f"Stream-stream join without a watermark on the {' and '.join(missing)} input: join state "
                       "is kept forever (outer joins cannot run).")
            return
        condition = link.arg(1, "on")
        text = ast.unparse(condition).lower() if condition is not None else ""
        resolved = self.ix.resolve_deep(condition) if condition is not None else None
        equi_only = condition is None or isinstance(resolved, (ast.Constant, ast.List, ast.Tuple))
        if not equi_only and re.search(r"interval|between|[<>]=?", text):
            self._emit("SE102", "PASS", link.line, "Stream-stream join has watermarks and an event-time range.")
        else:
            self._emit("SE102", "PARTIAL", link.line,
                       "Stream-stream join has watermarks but no event-time range in its condition, so join "
                       "state is not evicted.")

    def _check_state_timeout(self, link: Link) -> None:
        timeout = link.arg(4, "timeoutConf")
        text = (self.ix.const(timeout) or (ast.unparse(timeout) if timeout is not None else "")).lower()
        if "notimeout" not in text:
            return
        function = link.arg(0, "func")
        definition = self.ix.function(function.id) if isinstance(function, ast.Name) else None
        body = self.ix.segment(definition) if definition is not None else ""
        if ".remove()" in body:
            return
        self._emit("SE105", "PARTIAL", link.line,
                   "applyInPandasWithState with GroupStateTimeout.NoTimeout and no state.remove(): per-key state "
                   "never expires.")

    # -- sinks --------------------------------------------------------------
    def _configure_writer(self, writer: _WriterBuild, link: Link) -> None:
        name = link.name
        if name == "format":
            writer.fmt = self.ix.const(link.arg(0, "source"))
        elif name == "option":
            key = self.ix.const(link.arg(0, "key"))
            value = link.arg(1, "value")
            if key is None or value is None:
                writer.opaque = True
            else:
                writer.options[key.lower()] = (value, link.line)
        elif name == "options":
            for keyword in link.keywords:
                if keyword.arg is None:
                    items, opaque = self.ix.dict_items(keyword.value)
                    writer.opaque = writer.opaque or opaque
                    for key, value, line in items:
                        writer.options[key.lower()] = (value, line)
                else:
                    writer.options[keyword.arg.lower()] = (keyword.value, keyword.value.lineno)
        elif name == "outputMode":
            writer.output_mode = ((self.ix.const(link.arg(0, "outputMode")) or "").lower(), link.line)
        elif name == "trigger":
            for keyword in link.keywords:
                if keyword.arg:
                    writer.trigger = (keyword.arg, keyword.value, link.line)
        elif name == "queryName":
            writer.named = True
        elif name == "foreachBatch" and link.args:
            writer.foreach_batch = (link.args[0], link.line)
        elif name == "start" and writer.started:
            self._emit("SE210", "FAIL", link.line,
                       "toTable()/table() has already started this query and returned a StreamingQuery, which has "
                       "no start(): this line raises AttributeError.")
        elif name in ("start", "toTable", "table") and not writer.started:
            writer.started = name != "start"
            if writer.started:
                writer.target = self.ix.static_string(link.arg(0, "tableName"))
            for keyword in link.keywords:
                if keyword.arg == "queryName":
                    writer.named = True
                elif keyword.arg == "outputMode":
                    writer.output_mode = ((self.ix.const(keyword.value) or "").lower(), keyword.value.lineno)
                elif keyword.arg == "format":
                    writer.fmt = self.ix.const(keyword.value)
                elif keyword.arg is None:
                    writer.opaque = True
                elif keyword.arg not in ("path", "tableName", "partitionBy"):
                    writer.options[keyword.arg.lower()] = (keyword.value, keyword.value.lineno)
            self._queries.setdefault(id(link.node), (writer.copy(), link.line))

    def _checkpoint_key(self, node: ast.expr) -> str | None:
        """A comparable identity for a checkpoint path, or ``None`` when it varies per call.

        A literal compares by value; an expression by its text, unless it calls
        something (``random_checkpoint_dir()`` twice is two paths) or uses a
        parameter or loop variable.
        """
        text = self.ix.static_string(node)
        if text is not None:
            return "lit:" + text.rstrip("/")
        if any(isinstance(n, ast.Call) for n in ast.walk(node)):
            return None
        names = [n for n in ast.walk(node) if isinstance(n, ast.Name)]
        if any(self.ix.is_dynamic(n) for n in names):
            return None
        return "expr:" + ast.unparse(node)

    def _volatile_reason(self, node: ast.expr, depth: int = 0) -> tuple[str, str] | None:
        """Why a checkpoint path differs per run: ``("FAIL", why)`` when certain, ``("PARTIAL", why)`` from a name."""
        if depth > 5:
            return None
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                name = call_name(sub) or ""
                if name in _VOLATILE_CALLS:
                    return "FAIL", f"is built from {name}()"
                helper = self.ix.function(name) if isinstance(sub.func, ast.Name) else None
                if helper is not None:
                    returns = [n.value for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value is not None]
                    for value in returns:
                        inner = self._volatile_reason(value, depth + 1)
                        if inner:
                            return "FAIL", f"comes from {name}(), which {inner[1].removeprefix('is ')}"
                elif re.search(r"random|uuid|temp|tmp", name, re.I):
                    return "PARTIAL", f"comes from {name}(), which by its name returns a new path per call"
            elif isinstance(sub, ast.Name) and depth < 5:
                value = self.ix.resolve(sub)
                if value is not None and value is not node:
                    inner = self._volatile_reason(value, depth + 1)
                    if inner:
                        return inner
        return None

    def _leading_text(self, node: ast.expr) -> str:
        text = self.ix.static_string(node)
        if text is not None:
            return text
        node = self.ix.resolve_deep(node)
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            return str(node.values[0].value)
        return ""

    def _check_queries(self) -> None:
        monitoring = _MONITORING.search(self.text)
        monitoring_line = self.text.count("\n", 0, monitoring.start()) + 1 if monitoring else None
        session_root = "spark.sql.streaming.checkpointLocation" in self.text
        checkpoints: dict[str, int] = {}
        real_queries = 0
        unnamed: list[int] = []
        removed = self._removed_paths()
        for writer, _ in sorted(self._queries.values(), key=lambda q: q[1]):
            check_time()
            debug_sink = (writer.fmt or "").lower() in _DEBUG_SINKS
            real_queries += not debug_sink
            self._check_checkpoint(writer, debug_sink, session_root, checkpoints, removed)
            if writer.output_mode and writer.output_mode[0] == "complete" and writer.upstream.agg_keyed is not False:
                self._check_complete_mode(writer)
            if writer.trigger:
                self._check_trigger(*writer.trigger)
            scheduled = writer.trigger is not None and writer.trigger[0] in ("availableNow", "once")
            if not debug_sink and not writer.named and not scheduled:
                unnamed.append(writer.line)
            if writer.foreach_batch:
                self._check_foreach_batch(*writer.foreach_batch, writer.upstream)
        if unnamed and not monitoring:
            # One finding per file: the remedy (a listener, names) is the same for every query in it.
            more = f" (and {len(unnamed) - 1} more in this file)" if len(unnamed) > 1 else ""
            self._emit("SE701", "PARTIAL", unnamed[0],
                       f"This continuously running query has no queryName{more} and the file has no progress "
                       "monitoring.")
        if monitoring and real_queries:
            self._emit("SE701", "PASS", monitoring_line, "Streaming progress is monitored.")

    def _check_complete_mode(self, writer: _WriterBuild) -> None:
        """SE104, one finding per query: it replaces the aggregation's own SE101 (the same unbounded state)."""
        upstream = writer.upstream
        line = writer.output_mode[1] if writer.output_mode else writer.line
        if upstream.agg_line is not None:
            self.findings = [f for f in self.findings
                             if not (f.rule == "SE101" and f.line == upstream.agg_line and f.status != "PASS")]
        if upstream.agg_closed:
            self._emit("SE104", "PARTIAL", line,
                       "outputMode('complete') keeps every group in state; the group keys look like a small closed "
                       "set (no id, time or window), so state is bounded only if that set is: confirm it.")
        else:
            self._emit("SE104", "FAIL", line,
                       "outputMode('complete') keeps every aggregate group in state and rewrites the whole "
                       "result each trigger.")

    def _target_dropped(self, writer: _WriterBuild) -> bool:
        """True when the file also drops the query's target table: a deliberate full rebuild, not lost offsets."""
        if not writer.target:
            return False
        if self._dropped is None:  # one scan of the file, not one per query (a file of many queries was quadratic)
            self._dropped = {m.lower() for m in _DROPPED_TABLE.findall(self.text)}
        name = writer.target.split(".")[-1].strip("`").lower()
        return any(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", dropped) for dropped in self._dropped)

    def _removed_paths(self) -> list[tuple[ast.Call, int]]:
        """Calls that delete a path: ``dbutils.fs.rm(p, True)``, ``shutil.rmtree(p)``, ``os.remove(p)``."""
        removed: list[tuple[ast.Call, int]] = []
        if not re.search(r"\b(?:rm|rmtree|remove|unlink)\(", self.text):
            return removed  # most files delete nothing: skip the walk
        for node in ast.walk(self.ix.tree):
            if isinstance(node, ast.Call) and node.args and call_name(node) in _REMOVE_CALLS:
                removed.append((node, node.lineno))
        return removed

    def _same_path(self, a: ast.expr, b: ast.expr) -> bool:
        """Two expressions that certainly name the same path (same literal, or the same variable)."""
        text_a, text_b = self.ix.static_string(a), self.ix.static_string(b)
        if text_a is not None and text_b is not None:
            return text_a.rstrip("/") == text_b.rstrip("/")
        if isinstance(a, ast.Name) and isinstance(b, ast.Name) and a.id == b.id:
            return self.ix.resolve(a) is self.ix.resolve(b) and not self.ix.is_dynamic(a)
        return ast.unparse(a) == ast.unparse(b) and not any(isinstance(n, ast.Call) for n in ast.walk(a))

    def _check_checkpoint(self, writer: _WriterBuild, debug_sink: bool, session_root: bool,
                          checkpoints: dict[str, int], removed: list[tuple[ast.Call, int]]) -> None:
        checkpoint = writer.options.get("checkpointlocation")
        if checkpoint is None:
            if debug_sink or writer.opaque:
                return
            if session_root and writer.named:
                self._emit("SE201", "PASS", writer.line,
                           "Checkpoint goes under spark.sql.streaming.checkpointLocation/<queryName>.")
            else:
                self._emit("SE201", "FAIL", writer.line,
                           "Streaming query has no checkpointLocation: offsets and state are lost on restart.")
            return
        value, line = checkpoint
        self._emit("SE201", "PASS", line, "Query has its own checkpointLocation.")
        if self._leading_text(value).startswith(_EPHEMERAL_PREFIXES):
            self._emit("SE203", "PARTIAL", line, "Checkpoint is on ephemeral storage.")
        volatile = self._volatile_reason(value)
        if volatile:
            status, why = volatile
            self._emit("SE208", status, line, f"The checkpoint path {why}, so every run starts a new checkpoint "
                                              "and recovers nothing from the last one.")
        rebuilt = self._target_dropped(writer)
        for call, removed_line in removed:
            if removed_line < line and not rebuilt and self._same_path(call.args[0], value):
                self._emit("SE209", "FAIL", removed_line,
                           f"This deletes the checkpoint of the query at line {line} before it starts: every run "
                           "forgets its offsets and state.")
        key = self._checkpoint_key(value)
        if key is None:
            return
        if key in checkpoints:
            self._emit("SE202", "FAIL", line,
                       f"This query reuses the checkpoint of the query at line {checkpoints[key]}: they corrupt "
                       "each other's offsets and state.")
        else:
            checkpoints[key] = line

    def _check_trigger(self, kind: str, value: ast.expr, line: int) -> None:
        text = self.ix.const(value)
        if kind == "processingTime" and text is not None and _ZERO_INTERVAL.match(text):
            self._emit("SE403", "PARTIAL", line, f"processingTime='{text}' runs micro-batches back to back.")
        elif kind == "once" and text == "true":
            self._emit("SE404", "PARTIAL", line, "trigger(once=True) is deprecated and ignores rate limits.")
        elif kind == "continuous":
            self._emit("SE405", "REVIEW", line, "Continuous processing mode gives at-least-once delivery only.")

    # -- foreachBatch idempotency ---------------------------------------------
    def _batch_function(self, node: ast.AST) -> tuple[ast.AST | None, str]:
        """The function passed to foreachBatch, and a label for messages."""
        if isinstance(node, ast.Lambda):
            return node, "lambda"
        if isinstance(node, ast.Call) and call_name(node) == "partial" and node.args:
            return self._batch_function(node.args[0])
        if isinstance(node, ast.Name):
            function = self.ix.function(node.id)
            if function is not None:
                return function, node.id
            value = self.ix.resolve(node)
            if isinstance(value, (ast.Lambda, ast.Call)):
                return self._batch_function(value)
            return None, node.id
        if isinstance(node, ast.Attribute):
            return self.ix.function(node.attr), node.attr
        return None, ast.unparse(node)[:40]

    def _check_foreach_batch(self, target: ast.expr, line: int, upstream: _Frame | None = None) -> None:
        function, label = self._batch_function(target)
        if function is None:
            self._emit("SE301", "REVIEW", line,
                       f"foreachBatch function '{label}' is not defined in this file; its writes were not checked.")
            return
        if id(function) in self._batch_functions_done:
            return
        self._batch_functions_done.add(id(function))
        writes = _BatchWrites()
        self._collect_batch_writes(function, writes, set(), 0)
        for finding in writes.failures:
            self.emit(finding)
        # The batch is already one row per key when the stream was aggregated, de-duplicated or came out of
        # an arbitrary stateful operator; rank/dense_rank filters de-duplicate it inside the function.
        unique = upstream is not None and upstream.unique_rows
        if writes.merges and not unique and not _BATCH_DEDUP.search("\n".join(writes.text)):
            self._emit("SE304", "REVIEW", writes.merges[0],
                       f"'{label}' MERGEs the micro-batch without de-duplicating it on the merge key.")
        if writes.failures:
            return
        if writes.merges or writes.idempotent:
            evidence_line = writes.merges[0] if writes.merges else writes.idempotent[0][0]
            why = "MERGE" if writes.merges else writes.idempotent[0][1]
            self._emit("SE301", "PASS", line, f"foreachBatch '{label}' writes idempotently ({why}).",
                       self.ix.line(evidence_line))
        else:
            self._emit("SE301", "REVIEW", line,
                       f"No Delta write or MERGE found in foreachBatch '{label}'; make its side effects idempotent "
                       "(keyed upserts).")

    def _collect_batch_writes(self, function: ast.AST, writes: _BatchWrites, visited: set[int], depth: int) -> None:
        if id(function) in visited or depth > 3:
            return
        visited.add(id(function))
        writes.text.append(self.ix.segment(function))
        for node in ast.walk(function):
            if not isinstance(node, ast.Call) or id(node) in self.ix.inner:
                continue
            root, links = self.ix.full_chain(node)
            names = [link.name for link in links]
            if "merge" in names:
                writes.merges.append(links[names.index("merge")].line)
            last = links[-1] if links else None
            if last is not None and last.name == "sql":
                self._judge_sql(last, writes)
            elif last is not None and "write" in names and last.name in _BATCH_WRITE_TERMINALS:
                if self._writes_no_rows(links[: names.index("write")]):
                    continue  # df.limit(0).write...: a schema bootstrap, no rows to duplicate
                self._judge_write(links[names.index("write") + 1 :], writes)
            elif last is not None and "writeTo" in names and last.name in _WRITE_TO_TERMINALS:
                self._judge_write(links[names.index("writeTo") + 1 :], writes)
            helper = None
            if isinstance(root, ast.Call) and isinstance(root.func, ast.Name) and not links:
                helper = self.ix.function(root.func.id)
            elif last is not None and last.is_call and last.name not in _BATCH_WRITE_TERMINALS:
                helper = self.ix.function(last.name) if last.name not in ("merge", "sql", "execute") else None
            if helper is not None:
                self._collect_batch_writes(helper, writes, visited, depth + 1)

    def _writes_no_rows(self, links: list[Link]) -> bool:
        """True for a frame cut to no rows before ``.write`` (``limit(0)``, ``where('1=0')``, ``filter(lit(False))``)."""
        for link in links:
            if link.name == "limit" and self.ix.const(link.arg(0, "num")) == "0":
                return True
            if link.name in ("where", "filter") and (self.ix.const(link.arg(0, "condition")) or "").replace(
                    " ", "").lower() in ("1=0", "false", "1=2"):
                return True
        return False

    def _judge_sql(self, link: Link, writes: _BatchWrites) -> None:
        statement = (self.ix.string_fragments(link.arg(0, "sqlQuery")) or "").strip().upper()
        if statement.startswith("MERGE"):
            writes.merges.append(link.line)
        elif re.match(r"INSERT\s+INTO\b", statement):
            writes.failures.append(make_finding(
                "SE301", "FAIL", link.line,
                "INSERT INTO inside foreachBatch appends again when a micro-batch is retried.", self.ix.line(link.line),
            ))
        elif re.match(r"INSERT\s+OVERWRITE\b|COPY\s+INTO\b", statement):
            writes.idempotent.append((link.line, statement.split()[0].lower() + " " + statement.split()[1].lower()))

    def _judge_write(self, links: list[Link], writes: _BatchWrites) -> None:
        options: dict[str, tuple[ast.expr, int]] = {}
        mode: str | None = None
        fmt: str | None = None
        for link in links:
            if link.name == "option" and link.args:
                key = self.ix.const(link.arg(0))
                value = link.arg(1, "value")
                if key is not None and value is not None:
                    options[key.lower()] = (value, link.line)
            elif link.name == "options":
                for keyword in link.keywords:
                    if keyword.arg is None:
                        for key, value, line in self.ix.dict_items(keyword.value)[0]:
                            options[key.lower()] = (value, line)
                    else:
                        options[keyword.arg.lower()] = (keyword.value, keyword.value.lineno)
            elif link.name == "mode":
                mode = (self.ix.const(link.arg(0, "saveMode")) or "").lower()
            elif link.name == "format":
                fmt = (self.ix.const(link.arg(0, "source")) or "").lower()
        terminal = links[-1]
        mode_kw = terminal.kwarg("mode")
        if mode_kw is not None:
            mode = (self.ix.const(mode_kw) or "").lower()
        line = terminal.line
        evidence = self.ix.line(line)
        if terminal.name in _WRITE_TO_TERMINALS - {"append"} or mode == "overwrite":
            writes.idempotent.append((line, "overwrite"))
            return
        app, version = options.get("txnappid"), options.get("txnversion")
        if app and version:
            if isinstance(self.ix.resolve_deep(version[0]), ast.Constant):
                writes.failures.append(make_finding(
                    "SE302", "FAIL", version[1],
                    "txnVersion is a constant: every batch after the first is skipped as already written.",
                    self.ix.line(version[1]),
                ))
            if self._is_volatile(app[0], 0):
                writes.failures.append(make_finding(
                    "SE303", "FAIL", app[1],
                    "txnAppId is generated at run time, so a replayed batch gets a new id after a restart.",
                    self.ix.line(app[1]),
                ))
            writes.idempotent.append((version[1], "txnAppId/txnVersion"))
            return
        if fmt == "jdbc" or terminal.name == "jdbc":
            detail = ("Plain append to a JDBC sink inside foreachBatch: a retried micro-batch inserts its rows "
                      "again (txnAppId/txnVersion only apply to Delta; upsert on a key instead).")
        elif app or version:
            detail = "Only one of txnAppId / txnVersion is set; Delta needs both to skip a replayed batch."
        else:
            detail = (f"Plain {mode or 'append'} write ({terminal.name}) inside foreachBatch without "
                      "txnAppId/txnVersion: a retried micro-batch writes its rows twice.")
        writes.failures.append(make_finding("SE301", "FAIL", line, detail, evidence))

    def _is_volatile(self, node: ast.AST, depth: int) -> bool:
        if depth > 5:
            return False
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and call_name(sub) in _VOLATILE_CALLS:
                return True
            if isinstance(sub, ast.Name):
                value = self.ix.resolve(sub)
                if value is not None and self._is_volatile(value, depth + 1):
                    return True
        return False

    # -- declarative pipelines ------------------------------------------------
    def _declarative_attr(self, node: ast.AST) -> tuple[str | None, ast.Call | None]:
        """``(attr, call)`` for ``dlt.attr`` / ``dlt.attr(...)``; ``(None, None)`` otherwise."""
        call = node if isinstance(node, ast.Call) else None
        func = node.func if isinstance(node, ast.Call) else node
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.ix.declarative_aliases
        ):
            return func.attr, call
        return None, None

    def _record_stream_read(self, node: ast.expr | None, line: int) -> None:
        name = self.ix.const(node)
        if name:
            self._stream_reads.append((_table_key(name), line))

    def _check_declarative_tables(self) -> None:
        self._check_rescued_data()
        if not self.declarative:
            return
        batch_tables: dict[str, int] = {}
        for functions in self.ix.functions.values():
            for function in functions:
                self._check_table_function(function, batch_tables)
        cdc = re.search(r"\b(?:apply_changes\w*|create_auto_cdc\w*|append_flow)\b",
                        self.text) is not None
        for node in ast.walk(self.ix.tree):
            attr, call = self._declarative_attr(node) if isinstance(node, ast.Call) else (None, None)
            if attr in _STREAMING_TABLE_CALLS and call is not None:
                name = self.ix.const(call.args[0]) if call.args else self.ix.const(
                    next((k.value for k in call.keywords if k.arg == "name"), None))
                expectations = [k for k in call.keywords if k.arg and k.arg.startswith("expect")]
                # A table created empty is filled by flows (APPLY CHANGES / AUTO CDC / append flows): a copy of
                # its source, so expectations belong upstream or downstream.
                self._table_finding(call.lineno, name or "?", bool(expectations), skip_partial=cdc)
        for name, line in self._stream_reads:
            if name in batch_tables:
                self._emit("SE213", "FAIL", line,
                           f"'{name}' is defined by a batch query (line {batch_tables[name]}) and read here as a "
                           "stream: the stream fails when that table is recomputed.")

    def _check_table_function(self, function: ast.FunctionDef | ast.AsyncFunctionDef,
                              batch_tables: dict[str, int]) -> None:
        table_line: int | None = None
        table_name = function.name
        expectations = False
        decorator_call: ast.Call | None = None
        for decorator in function.decorator_list:
            attr, call = self._declarative_attr(decorator)
            if attr in _TABLE_DECORATORS:
                table_line = decorator.lineno
                if call is not None:
                    decorator_call = call
                    table_name = self.ix.const(next((k.value for k in call.keywords if k.arg == "name"), None)) or (
                        table_name)
                    expectations = expectations or any(k.arg and k.arg.startswith("expect") for k in call.keywords)
            elif attr and attr.startswith("expect"):
                expectations = True
        if table_line is None:
            return
        self._check_decorator_defaults(function)
        returns = [n.value for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
        frame = self.frame_of(returns[-1]) if returns else _Frame()
        if frame.batch_read and not frame.streaming:
            batch_tables[_table_key(table_name)] = table_line
        if frame.origin in ("kafka", "eventhubs", "kinesis"):
            self._check_reset_allowed(decorator_call, table_line, table_name)
        bronze = bool(_BRONZE_NAME.search(table_name)) or frame.origin not in (None, "other")
        self._table_finding(table_line, table_name, expectations, skip_partial=bronze)

    def _check_decorator_defaults(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = function.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        defaults = dict(zip([p.arg for p in [*args.posonlyargs, *args.args]][-len(args.defaults):] if args.defaults
                            else [], args.defaults, strict=False))
        defaults.update({p.arg: d for p, d in zip(args.kwonlyargs, args.kw_defaults, strict=False) if d is not None})
        for param in params:
            default = defaults.get(param.arg)
            # A default equal to the decorator's own default (False, None, "") changes nothing when ignored.
            if isinstance(default, ast.Constant) and default.value in (False, None, ""):
                continue
            if param.arg in _DECORATOR_ARGS:
                self._emit("SE602", "FAIL", param.lineno,
                           f"'{param.arg}' is a parameter of table function {function.name}(): the pipeline calls "
                           "the function without arguments, so this setting is silently ignored.")

    def _check_reset_allowed(self, call: ast.Call | None, line: int, name: str) -> None:
        properties = next((k.value for k in call.keywords if k.arg == "table_properties"), None) if call else None
        items = self.ix.dict_items(properties)[0] if properties is not None else []
        value = next((self.ix.const(v) for k, v, _ in items if k.lower() == "pipelines.reset.allowed"), None)
        if (value or "").lower() == "false":
            self._emit("SE212", "PASS", line, f"Table '{name}' disallows full refresh.")
        else:
            self._emit("SE212", "PARTIAL", line,
                       f"Table '{name}' reads a message bus and allows full refresh (pipelines.reset.allowed is "
                       "not false): a refresh drops the data the source no longer retains.")

    def _check_rescued_data(self) -> None:
        """SE504: ``drop('_rescued_data')`` with nothing in the file looking at rescued rows."""
        if "_rescued_data" not in self.text or _RESCUED_USED.search(self.text):
            return
        drops = [n for n in ast.walk(self.ix.tree)
                 if isinstance(n, ast.Call) and call_name(n) == "drop" and isinstance(n.func, ast.Attribute)]
        for node in sorted(drops, key=lambda n: n.lineno):
            if "_rescued_data" in [self.ix.const(a) for a in node.args]:
                self._emit("SE504", "PARTIAL", node.func.end_lineno or node.lineno,
                           "_rescued_data is dropped and nothing in this file routes rows with rescued data "
                           "anywhere: those rows go on with the values that did not fit the schema nulled.")
                return  # one finding per file: the remedy (a quarantine) is the same for every drop

    def _table_finding(self, line: int, name: str, expectations: bool, skip_partial: bool = False) -> None:
        if expectations:
            self._emit("SE601", "PASS", line, f"Table '{name}' declares expectations.")
        elif not skip_partial:
            self._emit("SE601", "PARTIAL", line, f"Table '{name}' declares no expectations.")


def _table_key(name: str) -> str:
    """A table name as compared across definitions and reads: no ``LIVE.`` / catalog / schema, lower case."""
    return name.replace("`", "").split(".")[-1].lower()


def check_python(tree: ast.Module, lines: list[str], text: str) -> list[Finding]:
    """All Python-rule findings for one parsed module.

    Args:
        tree: the module parsed with ``ast.parse``.
        lines: its source lines.
        text: its source text.

    Returns:
        Findings in no particular order, before suppression.

    """
    return PythonChecker(tree, lines, text).run()


__all__ = ["check_python"]
