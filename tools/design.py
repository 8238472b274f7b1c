"""One design per thread: what the pipeline is made of, shared by every command.

A thread's commands used to answer the same questions again (the event-time
column, the id, the DLQ table, the compute) and then generate files that did
not fit together. ``Design`` is the typed record they share: every task reads
it before asking (earlier answers become defaults; what is known is not asked
again) and extends it after generating (tables and their columns, DLQ table,
query names, files). It lives in the graph state as a plain dict
(``Design.to_dict`` / ``Design.from_dict``), so a checkpointer stores it.

The generators reach the design of the running task through ``current()``
(a context variable set by ``tools.artifacts.generate``) and record what they
produce with ``record_table`` / ``record_query`` — one place, not per module.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

SERVERLESS, CLASSIC = "serverless", "classic"

# The compute questions every task that generates stream code asks once per thread.
COMPUTE_QUESTIONS: list[dict[str, Any]] = [
    {"key": "compute_kind", "ask": "Does this pipeline run on serverless compute or on classic (job) clusters?",
     "kind": "choice", "default": CLASSIC, "choices": [CLASSIC, SERVERLESS]},
    {"key": "runtime", "ask": "Which Databricks Runtime (classic) or serverless environment version?",
     "kind": "text", "default": "16.4 LTS", "choices": []},
]

# Questions the generated code needs beyond the pack task's own (asked after them). The SASL mechanism decides
# the login module: PLAIN on a SCRAM cluster (Amazon MSK on 9096, most self-managed clusters) fails to log in.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_QUESTION: dict[str, Any] = {
    "key": "sasl_mechanism", "ask": "Which SASL mechanism do the Kafka brokers use (kafka.sasl.mechanism)?",
    "kind": "choice", "default": "PLAIN", "choices": list(SASL_MECHANISMS)}
EXTRA_QUESTIONS: dict[str, list[dict[str, Any]]] = {
    "kafka-connector-setup": [SASL_QUESTION],
    "dlt-streaming-pipeline": [SASL_QUESTION],
}
# Template placeholders whose answer no artefact uses: the generator writes that config from the code's values
# (the Kafka JAAS config is built from the username and password secrets), so asking would mislead.
# The pipeline spec's checkpoint location likewise: a declarative pipeline keeps its flows' checkpoints itself.
SUPERSEDED_QUESTIONS = frozenset({("kafka-connector-setup", "jaas"), ("dlt-streaming-pipeline", "path")})

# Task ids whose generated code changes with the compute (trigger, spark.conf, persist, credentials); the
# others do not ask. The bundles may read the design's compute as well (``current().serverless``).
COMPUTE_TASKS = frozenset({
    "autoloader-streaming-ingest", "kafka-connector-setup", "eventhubs-connector-setup", "kinesis-connector-setup",
    "watermarks-and-lateness", "dedup-and-idempotency", "state-store-management", "dlq-quarantine-ops",
    "schema-evolution-live", "canary-and-shadow", "blue-green-deploy", "init-streaming-standards",
})

# Tasks whose answer (by key) is the checkpoint root itself; elsewhere a checkpoint answer is one query's folder.
ROOT_ANSWERS = {"init-streaming-standards": "checkpoint_root"}

# Question keys that name the same fact in different tasks.
EVENT_TIME_KEYS = ("event_time_column", "ts_col", "time_field")
ID_KEYS = ("id_column", "id_key", "event_id_field")

# Which table a task's table question means, by role in the design (first role found wins).
TABLE_ROLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("streaming-dq-expectations", "source_table"): ("bronze",),
    ("streaming-dq-expectations", "target_table"): ("silver",),
    ("streaming-dq-expectations", "quarantine_table"): ("quarantine",),
    ("dedup-and-idempotency", "source_table"): ("bronze",),
    ("dlq-quarantine-ops", "source_table"): ("bronze",),
    ("dlq-quarantine-ops", "dlq_table"): ("dlq", "quarantine"),
    ("replay-and-recovery", "source_table"): ("bronze",),
    ("replay-and-recovery", "target_table"): ("silver",),
    ("schema-evolution-live", "source_table"): ("bronze",),
    ("schema-evolution-live", "target_table"): ("silver",),
    ("watermarks-and-lateness", "source_table"): ("silver",),
    ("state-store-management", "source_table"): ("silver",),
    ("canary-and-shadow", "source_table"): ("silver", "bronze"),
    ("canary-and-shadow", "production_table"): ("gold",),
    ("blue-green-deploy", "source_table"): ("silver",),
    ("latency-slo-and-alerts", "target_table"): ("gold", "silver"),
    ("latency-slo-and-alerts", "metrics_table"): ("metrics",),
    ("autoloader-streaming-ingest", "dlq_table"): ("dlq",),
    ("dlt-streaming-pipeline", "source"): ("bronze",),
    ("streaming-runbook", "target_table"): ("gold", "silver"),
    ("source-inventory-streaming", "bronze_table"): ("bronze",),
}
# Columns a Bronze writer stamps with the time a row arrived (the disorder measure's arrival column).
ARRIVAL_COLUMNS = ("ingest_ts", "_ingest_ts")

# The catalog the pack's example defaults use; a thread with its own catalog gets its tables offered there.
EXAMPLE_CATALOG = "main"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class TableDesign:
    """A table of the design: what writes it and which columns it has.

    Attributes:
        name: the full table name.
        role: bronze | silver | gold | quarantine | dlq | metrics | shadow | other.
        columns: column name -> SQL type, as the writing code produces them (may be partial).
        event_time: the event-time column of the table, if it has one.
        id_column: the key of a row, if it has one.
        writer: workspace path of the file that writes it.
        command: the command that generated the writer.
    """

    name: str
    role: str = "other"
    columns: dict[str, str] = field(default_factory=dict)
    event_time: str | None = None
    id_column: str | None = None
    writer: str | None = None
    command: str | None = None


@dataclass
class Design:
    """The thread's pipeline design.

    Attributes:
        targets: bundle target -> {"catalog", "schema"} (dev and prod).
        sources: the sources read ({"kind", "name"}).
        tables: table name -> its design.
        event_time: the event-time column shared by the tables.
        id_column: the event id / business key.
        version_column: the column that orders versions of a key (latest wins).
        dlq_table: the one dead-letter table every writer appends to.
        dlq_ddl: its DDL (``tools.artifacts.dlq.dlq_ddl``).
        compute: serverless | classic.
        runtime: Databricks Runtime or serverless environment version.
        query_names: streaming query name -> the file that starts it.
        checkpoint_root: the folder every query's checkpoint lives under.
        payload_schema: the DDL schema of the event payload (``event_id STRING, event_time TIMESTAMP, ...``).
        sasl_mechanism: the Kafka brokers' SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
        notices: what the last generation decided because of the design (shown in the task's document).
    """

    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    sources: list[dict[str, str]] = field(default_factory=list)
    tables: dict[str, TableDesign] = field(default_factory=dict)
    event_time: str | None = None
    id_column: str | None = None
    version_column: str | None = None
    dlq_table: str | None = None
    dlq_ddl: str | None = None
    compute: str | None = None
    runtime: str | None = None
    query_names: dict[str, str] = field(default_factory=dict)
    checkpoint_root: str | None = None
    payload_schema: str | None = None
    sasl_mechanism: str | None = None
    notices: list[str] = field(default_factory=list)

    # -- storage ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain dict for the graph state (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Design:
        """The design stored by ``to_dict`` (unknown keys ignored; ``None`` → empty design)."""
        data = dict(data or {})
        tables = {name: TableDesign(**{k: v for k, v in t.items() if k in TableDesign.__dataclass_fields__})
                  for name, t in (data.pop("tables", None) or {}).items()}
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(tables=tables, **known)

    # -- reading ------------------------------------------------------------------
    @property
    def serverless(self) -> bool:
        """Whether the code runs on serverless compute (classic job clusters when not chosen)."""
        return (self.compute or CLASSIC) == SERVERLESS

    def table_by_role(self, *roles: str) -> TableDesign | None:
        """The most recently recorded table with the first of ``roles`` found."""
        for role in roles:
            found = [t for t in self.tables.values() if t.role == role]
            if found:
                return found[-1]
        return None

    def known_answer(self, key: str) -> str | None:
        """The answer the design already holds for a thread-wide question (the compute), so it is not asked again.

        Column names are not skipped: another command may be about another table with other columns, so
        they are offered as defaults instead (``default_for``).
        """
        if key == "compute_kind":
            return self.compute
        if key == "runtime":
            return self.runtime
        return None

    def default_for(self, task_id: str, key: str, default: Any) -> Any:
        """An earlier answer offered as this question's default (else ``default``)."""
        if key in EVENT_TIME_KEYS and self.event_time:
            return self.event_time
        if key in ID_KEYS and self.id_column:
            return self.id_column
        if key in EVENT_TIME_KEYS + ID_KEYS:
            # No answer named the column yet, but a generated table knows it (Kafka's payload event time).
            for table in reversed(list(self.tables.values())):
                if column := self.table_column(table.name, key):
                    return column
        if (task_id, key) == ("dlt-streaming-pipeline", "source_format") and self.table_by_role("bronze"):
            return "delta"  # a Bronze table already exists in the thread: the pipeline reads it, not the files again
        roles = TABLE_ROLES.get((task_id, key))
        if roles and (table := self.table_by_role(*roles)):
            return table.name
        if key == "dlq_table" and self.dlq_table:
            return self.dlq_table
        if key == "payload_schema" and self.payload_schema:
            return self.payload_schema
        if key == "sasl_mechanism" and self.sasl_mechanism:
            return self.sasl_mechanism
        if key == "arrival_column" and (bronze := self.table_by_role("bronze")) is not None:
            return self.arrival_column(bronze.name, default)
        if "checkpoint" in key and self.checkpoint_root and isinstance(default, str) and "/" in default:
            return f"{self.checkpoint_root.rstrip('/')}/{default.rstrip('/').rsplit('/', 1)[-1]}"
        return self.in_thread_catalog(default)

    def in_thread_catalog(self, default: Any) -> Any:
        """A pack example table (``main.x.y``) or volume path moved into the thread's catalog.

        Offering ``main.gold.events`` in a thread whose tables live in ``acme`` invites a default that points
        at a table no command of the thread writes (and a catalog the team may not even have).
        """
        catalog = (self.targets.get("prod") or {}).get("catalog")
        if not catalog or catalog == EXAMPLE_CATALOG or not isinstance(default, str):
            return default
        parts = default.split(".")
        if len(parts) == 3 and parts[0] == EXAMPLE_CATALOG and all(_IDENT.match(p) for p in parts):
            return ".".join([catalog, *parts[1:]])
        if default.startswith(f"/Volumes/{EXAMPLE_CATALOG}/"):
            return f"/Volumes/{catalog}/" + default[len(f"/Volumes/{EXAMPLE_CATALOG}/"):]
        return default

    def table_column(self, table: str, key: str) -> str | None:
        """The event-time (or id) column the design records for ``table``, when that table really has it."""
        found = self.tables.get(str(table))
        if found is None:
            return None
        column = found.event_time if key in EVENT_TIME_KEYS else found.id_column if key in ID_KEYS else None
        return column if column and (not found.columns or column in found.columns) else None

    def follow(self, key: str, before: Any, answer: Any, later: list[dict[str, Any]]) -> None:
        """Carry one answer (or design default) into the defaults of the questions after it.

        A table known to the design sets the event-time and id defaults to that table's columns; a column
        renamed from its example (``event_id`` → ``order_id``) is renamed in later defaults that name it (the
        validation rule ``event_id IS NOT NULL AND ...``), so taking a default never reads a missing column.
        """
        renamed = (key in EVENT_TIME_KEYS + ID_KEYS and isinstance(before, str) and isinstance(answer, str)
                   and _IDENT.match(before) and _IDENT.match(answer) and before != answer)
        for question in later:
            default = question.get("default")
            if question["key"] in EVENT_TIME_KEYS + ID_KEYS and (column := self.table_column(answer, question["key"])):
                question["default"] = column
            elif renamed and isinstance(default, str) and question["key"] not in EVENT_TIME_KEYS + ID_KEYS:
                question["default"] = re.sub(rf"\b{re.escape(before)}\b", answer, default)

    def time_column(self, table: str, wanted: str) -> str:
        """The time column a query of ``table`` should read.

        ``wanted`` when the table has it (or its columns are unknown), else the table's own event time: a
        windowed Gold has ``window_end``, not the events' time.
        """
        found = self.tables.get(table)
        if found is None or not found.columns or wanted in found.columns:
            return wanted
        return found.event_time or next((c for c, t in found.columns.items() if t.startswith("TIMESTAMP")), wanted)

    def arrival_column(self, table: str, wanted: str) -> str:
        """``wanted`` when ``table`` has it (or its columns are unknown), else the arrival column its writer stamps."""
        columns = self.columns_of(table)
        if not columns or wanted in columns:
            return wanted
        return next((c for c in ARRIVAL_COLUMNS if c in columns), wanted)

    def writer_of(self, table: str) -> TableDesign | None:
        """The design of ``table`` if some file already writes it."""
        found = self.tables.get(table)
        return found if found and found.writer else None

    def columns_of(self, table: str) -> dict[str, str]:
        """The columns the design knows ``table`` has (empty when unknown)."""
        found = self.tables.get(table)
        return dict(found.columns) if found else {}

    # -- extending ----------------------------------------------------------------
    def learn_answers(self, answers: dict[str, str], task_id: str = "") -> None:
        """Keep the thread-wide facts of a task's answers (compute, columns, checkpoint root, payload)."""
        for key, value in answers.items():
            if not value:
                continue
            if key == "compute_kind":
                self.compute = str(value).lower()
            elif key == "runtime":
                self.runtime = str(value)
            elif key in EVENT_TIME_KEYS and not self.event_time:
                self.event_time = str(value)
            elif key in ID_KEYS and not self.id_column:
                self.id_column = str(value)
            elif key == "payload_schema":
                self.payload_schema = str(value)
            elif key == "sasl_mechanism":
                self.sasl_mechanism = str(value).upper()
            elif key == "security" and not self.sasl_mechanism:
                # The source inventory's security note names the mechanism: later Kafka commands offer it.
                found = re.search(r"SCRAM-SHA-(256|512)|\bPLAIN\b", str(value), re.I)
                self.sasl_mechanism = found.group(0).upper() if found else None
            elif key == "dlq_table" and not self.dlq_table:
                self.dlq_table = str(value)
        # A query's own checkpoint sits in the root: its parent is the root. *init-standards* asks for the root
        # itself (its ``checkpoint_root``; the query's folder is ``path``), which must not be cut to its parent.
        if task_id in ROOT_ANSWERS and "/" in str(answers.get(ROOT_ANSWERS[task_id]) or ""):
            self.checkpoint_root = self.checkpoint_root or str(answers[ROOT_ANSWERS[task_id]]).rstrip("/")
        checkpoint = str(answers.get("checkpoint") or answers.get("checkpoint_root") or "")
        if checkpoint and "/" in checkpoint and not self.checkpoint_root:
            self.checkpoint_root = checkpoint.rstrip("/").rsplit("/", 1)[0]
        # The first table name fixes the catalog and schema of each bundle target (dev gets its own schema).
        if not self.targets:
            for value in answers.values():
                parts = str(value).split(".")
                if len(parts) == 3 and all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", p) for p in parts):
                    self.targets = {"prod": {"catalog": parts[0], "schema": parts[1]},
                                    "dev": {"catalog": parts[0], "schema": f"{parts[1]}_dev"}}
                    break


# -- the design of the running task (set by ``tools.artifacts.generate``) ---------------------

_CURRENT: contextvars.ContextVar[Design | None] = contextvars.ContextVar("design", default=None)
_WRITER: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("writer", default=("", ""))


@contextmanager
def using(design: Design, command: str = "") -> Iterator[Design]:
    """Make ``design`` the one ``current()`` returns while a task's artefacts are generated."""
    token = _CURRENT.set(design)
    writer = _WRITER.set((command, ""))
    try:
        yield design
    finally:
        _CURRENT.reset(token)
        _WRITER.reset(writer)


def current() -> Design:
    """The design of the task being generated (a fresh, empty one outside a task)."""
    found = _CURRENT.get()
    if found is None:
        found = Design()
        _CURRENT.set(found)
    return found


def record_table(name: str, role: str, columns: dict[str, str] | None = None, *, writer: str | None = None,
                 event_time: str | None = None, id_column: str | None = None) -> TableDesign:
    """Record (or update) a table the generated code writes, with the columns that code produces."""
    design = current()
    command = _WRITER.get()[0]
    table = design.tables.get(name) or TableDesign(name=name, role=role)
    table.role = role
    if columns:
        table.columns = dict(columns)
    if event_time:
        table.event_time = event_time
    if id_column:
        table.id_column = id_column
    if writer:
        table.writer, table.command = writer, command or table.command
    design.tables.pop(name, None)  # re-insert: the most recent record comes last
    design.tables[name] = table
    if role == "dlq" and not design.dlq_table:
        design.dlq_table = name
    if role in ("bronze", "silver"):
        # The first event table fixes the thread's event time and id: later commands offer them as defaults
        # (a Kinesis payload with click_ts / click_id must not be read as event_time / event_id downstream).
        design.event_time = design.event_time or table.event_time
        design.id_column = design.id_column or table.id_column
    return table


def note_source(name: str, role: str, *, event_time: str | None = None, id_column: str | None = None) -> None:
    """Remember a table the generated code reads but no command of the thread writes (the team's own Bronze).

    Later commands then offer it (replay reads the Bronze the DLQ router reads), not the pack's example name.
    Its columns stay unknown: only a writer records them.
    """
    design = current()
    if name and name not in design.tables:
        design.tables[name] = TableDesign(name=name, role=role, event_time=event_time, id_column=id_column)


def own_table(table: str, suffix: str, path: str) -> str:
    """``table``, or ``<table>_<suffix>`` when a file of another command already writes ``table``.

    One writer per table: a second writer with other logic (another dedup rule, another MERGE condition)
    would make the table's content depend on which query ran last. The decision is added to the notices.
    """
    design = current()
    owner = design.writer_of(table)
    command = _WRITER.get()[0]
    if owner is None or owner.writer == path or (owner.command == command and owner.writer == path):
        return table
    if owner.command == command:
        return table
    renamed = f"{table}_{suffix}"
    design.notices.append(f"`{table}` is already written by `{owner.writer}` (*{owner.command}); this command reads "
                          f"the same source and publishes `{renamed}` instead, so no table has two writers.")
    return renamed


def record_query(name: str, path: str) -> None:
    """Record a streaming query name and the file that starts it."""
    current().query_names[name] = path


def unique_query_name(name: str, path: str) -> str:
    """``name``, or ``name_2``, ``name_3``... when another file of the thread already starts a query so named."""
    design = current()
    candidate, n = name, 1
    while design.query_names.get(candidate) not in (None, path):
        n += 1
        candidate = f"{name}_{n}"
    design.query_names[candidate] = path
    return candidate
