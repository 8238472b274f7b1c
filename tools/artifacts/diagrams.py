"""Mermaid flowcharts of the data flow each task describes, drawn with the user's values.

Every diagram uses the same vocabulary: sources are stadiums, streaming
queries are hexagons, tables are cylinders, and classes colour the layers
(bronze, silver, gold, quarantine, blue, green). Labels are quoted and
escaped, so any table or topic name is safe inside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.artifacts import operations, pipelines, recovery, releases, sources, standards, stateful, tuning
from tools.artifacts.base import Inputs, format_percent, register

CLASSES = {
    "source": "fill:#eef,stroke:#557",
    "bronze": "fill:#f4e1c1,stroke:#a0522d",
    "silver": "fill:#e8e8e8,stroke:#777",
    "gold": "fill:#fff2b3,stroke:#b8860b",
    "quarantine": "fill:#fbd5d5,stroke:#b22",
    "ops": "fill:#e6f4ea,stroke:#2e7d32",
    "blue": "fill:#d6e6ff,stroke:#1f4e9c",
    "green": "fill:#d8f5d8,stroke:#2e7d32",
}
_SHAPES = {"box": ('["', '"]'), "db": ('[("', '")]'), "source": ('(["', '"])'), "query": ('{{"', '"}}'),
           "note": ('>"', '"]')}


def label(text: str) -> str:
    """A Mermaid label: ``#``, quotes, angle brackets and pipes as entity codes; line breaks as <br/>."""
    escaped = str(text).replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return escaped.replace("|", "#124;").replace("\n", "<br/>")


@dataclass
class Flow:
    """A Mermaid flowchart under construction."""

    direction: str = "LR"
    lines: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def node(self, key: str, text: str, shape: str = "box", kind: str | None = None) -> Flow:
        """Add a node; ``kind`` picks its colour class."""
        left, right = _SHAPES[shape]
        self.lines.append(f"    {key}{left}{label(text)}{right}")
        if kind:
            self.lines.append(f"    class {key} {kind}")
            self.used.add(kind)
        return self

    def edge(self, src: str, dst: str, text: str | None = None, dotted: bool = False) -> Flow:
        """Add an arrow, optionally labelled or dotted."""
        arrow = "-.->" if dotted else "-->"
        self.lines.append(f"    {src} {arrow}|{label(text)}| {dst}" if text else f"    {src} {arrow} {dst}")
        return self

    def render(self) -> str:
        """The flowchart text (without the code fence)."""
        defs = [f"    classDef {name} {CLASSES[name]}" for name in CLASSES if name in self.used]
        return "\n".join([f"flowchart {self.direction}", *self.lines, *defs]) + "\n"


def medallion(flow: Flow, src: str, bronze: str | None, silver: str, quarantine: str, gold: str | None,
              via: str = "stream") -> Flow:
    """The common Bronze → Silver (+ quarantine) → Gold spine after a source node ``src``."""
    last = src
    if bronze:
        flow.node("bronze", f"Bronze\n{bronze}", "db", "bronze").edge(last, "bronze", via)
        last = "bronze"
    flow.node("checks", "expectations", "query").edge(last, "checks")
    flow.node("silver", f"Silver\n{silver}", "db", "silver").edge("checks", "silver", "pass")
    flow.node("quarantine", f"Quarantine\n{quarantine}", "db", "quarantine").edge("checks", "quarantine", "fail")
    if gold:
        flow.node("gold", f"Gold\n{gold}", "db", "gold").edge("silver", "gold", "watermark + window")
    return flow


def _connector(kind: str, source: str, checkpoint: str, target: str, extra: str = "") -> str:
    flow = Flow()
    flow.node("src", source, "source", "source")
    flow.node("q", f"{kind} stream{extra}", "query").edge("src", "q")
    flow.node("bronze", f"Bronze\n{target}", "db", "bronze").edge("q", "bronze", "Delta, exactly-once")
    flow.node("ckpt", f"checkpoint\n{checkpoint}", "note", "ops").edge("q", "ckpt", "offsets", dotted=True)
    return flow.render()


def autoloader_diagram(answers: dict[str, str]) -> str:
    """Landing directory → Auto Loader → Bronze, rescued rows → DLQ."""
    a = Inputs(answers, sources.AUTOLOADER_DEFAULTS)
    flow = Flow()
    flow.node("src", f"{a.text('file_format')} files\n{a.text('source_path')}", "source", "source")
    flow.node("q", "Auto Loader (cloudFiles)", "query").edge("src", "q")
    flow.node("bronze", f"Bronze\n{a.text('target_table')}", "db", "bronze").edge("q", "bronze", "valid rows")
    flow.node("dlq", f"DLQ\n{a.text('dlq_table')}", "db", "quarantine").edge("q", "dlq", "_rescued_data")
    flow.node("ckpt", f"checkpoint + schema\n{a.text('checkpoint_root')}", "note", "ops")
    flow.edge("q", "ckpt", "files seen", dotted=True)
    return flow.render()


def kafka_diagram(answers: dict[str, str]) -> str:
    """Kafka topic → stream → Bronze."""
    a = Inputs(answers, sources.KAFKA_DEFAULTS)
    return _connector("Kafka", f"Kafka topic {a.text('topic')}\n{a.text('servers')}", a.text("checkpoint_root"),
                      a.text("target_table"), "\nSASL_SSL, dedup")


def eventhubs_diagram(answers: dict[str, str]) -> str:
    """Event hub (Kafka endpoint) → stream → Bronze."""
    a = Inputs(answers, sources.EVENTHUBS_DEFAULTS)
    return _connector("Kafka-endpoint", f"Event hub {a.text('event_hub')}\n{a.text('namespace')}",
                      a.text("checkpoint_root"), a.text("target_table"), f"\ngroup {a.text('consumer_group')}")


def kinesis_diagram(answers: dict[str, str]) -> str:
    """Kinesis stream → stream → Bronze."""
    a = Inputs(answers, sources.KINESIS_DEFAULTS)
    mode = "EFO" if sources.kinesis_uses_efo(a) else "polling"
    return _connector("Kinesis", f"Kinesis {a.text('stream')}\n{a.text('region')}, {a.int('shards')} shards",
                      a.text("checkpoint_root"), a.text("target_table"), f"\n{mode}")


def dlt_diagram(answers: dict[str, str]) -> str:
    """Source → Bronze → Silver / quarantine → Gold inside the pipeline."""
    a = Inputs(answers, pipelines.DLT_DEFAULTS)
    spec = pipelines.dlt_spec(a)
    flow = Flow()
    flow.node("src", f"{a.text('source_format')} source\n{spec.source}", "source", "source")
    return medallion(flow, "src", spec.bronze_table, spec.silver_table, spec.quarantine_table, spec.gold_table,
                     "streaming table").render()


def dq_diagram(answers: dict[str, str]) -> str:
    """Bronze → expectations → Silver / quarantine, alerts from the event log."""
    a = Inputs(answers, pipelines.DQ_DEFAULTS)
    flow = Flow()
    flow.node("src", f"Bronze\n{a.text('source_table')}", "db", "bronze")
    medallion(flow, "src", None, a.text("target_table"), a.text("quarantine_table"), None)
    flow.node("alerts", f"alerts\n{a.text('alert_channels')}", "note", "ops")
    flow.edge("checks", "alerts", f"drop rate > {format_percent(a.percent('max_drop_rate'))}", dotted=True)
    return flow.render()


def watermark_diagram(answers: dict[str, str]) -> str:
    """Source → watermark + window → target; late rows dropped and counted (or reprocessed)."""
    a = Inputs(answers, stateful.WATERMARK_DEFAULTS)
    flow = Flow()
    flow.node("src", f"Silver\n{a.text('source_table')}", "db", "silver")
    flow.node("q", f"withWatermark {stateful.watermark_delay(a).spark}\n{a.text('window_type')} "
                   f"{a.duration('window_duration').spark}", "query").edge("src", "q")
    flow.node("gold", f"Gold\n{a.text('target_table')}", "db", "gold").edge("q", "gold", stateful.watermark_mode(a))
    flow.node("late", f"late rows: {a.text('late_data_handling')}", "note", "quarantine")
    flow.edge("q", "late", "after the watermark", dotted=True)
    return flow.render()


def dedup_diagram(answers: dict[str, str]) -> str:
    """Source → dedup within the window → idempotent sink."""
    a = Inputs(answers, stateful.DEDUP_DEFAULTS)
    flow = Flow()
    flow.node("src", f"Bronze\n{a.text('source_table')}", "db", "bronze")
    flow.node("q", f"dropDuplicatesWithinWatermark\n{a.text('id_key')} / {a.int('window_minutes')} min", "query")
    flow.edge("src", "q")
    flow.node("silver", f"Silver\n{a.text('target_table')}", "db", "silver")
    flow.edge("q", "silver", a.text("sink_write_mode"))
    return flow.render()


def state_diagram(answers: dict[str, str]) -> str:
    """Source → stateful operators (state store in the checkpoint) → target."""
    a = Inputs(answers, stateful.STATE_DEFAULTS)
    flow = Flow()
    flow.node("src", f"Silver\n{a.text('source_table')}", "db", "silver")
    flow.node("q", f"{a.text('stateful_operators')}\nTTL {a.int('ttl_hours')} h", "query").edge("src", "q")
    flow.node("gold", f"Gold\n{a.text('target_table')}", "db", "gold").edge("q", "gold", "append")
    flow.node("state", f"{a.text('state_store_provider')} state\n{a.text('checkpoint_root')}", "note", "ops")
    flow.edge("q", "state", "per batch", dotted=True)
    return flow.render()


def dlq_diagram(answers: dict[str, str]) -> str:
    """Router → target / DLQ; reprocessing back into the target."""
    a = Inputs(answers, recovery.DLQ_DEFAULTS)
    flow = Flow()
    flow.node("src", f"Bronze\n{a.text('source_table')}", "db", "bronze")
    flow.node("q", "DLQ router", "query").edge("src", "q")
    flow.node("silver", f"Silver\n{a.text('target_table')}", "db", "silver").edge("q", "silver", "MERGE")
    flow.node("dlq", f"DLQ\n{a.text('dlq_table')}", "db", "quarantine").edge("q", "dlq", "schema / DQ failure")
    flow.node("re", f"reprocess ({a.text('reprocess_mode')})", "query").edge("dlq", "re", "after the fix")
    flow.edge("re", "silver", "MERGE")
    return flow.render()


def replay_diagram(answers: dict[str, str]) -> str:
    """Bronze → replay (new checkpoint, availableNow) → target, reconciliation beside it."""
    a = Inputs(answers, recovery.REPLAY_DEFAULTS)
    flow = Flow()
    if not a.text("replay_source").lower().startswith("bronze"):
        flow.node("up", a.text("replay_source"), "source", "source")
    flow.node("src", f"Bronze\n{a.text('source_table')}", "db", "bronze")
    if not a.text("replay_source").lower().startswith("bronze"):
        flow.edge("up", "src", "re-ingest, new checkpoint")
    flow.node("q", f"replay {a.duration('replay_window').spark}\navailableNow + MERGE", "query").edge("src", "q")
    flow.node("silver", f"Silver\n{a.text('target_table')}", "db", "silver").edge("q", "silver")
    flow.node("rec", f"reconciliation per {a.duration('batch_slice').spark}", "note", "ops")
    flow.edge("silver", "rec", dotted=True)
    return flow.render()


def schema_diagram(answers: dict[str, str]) -> str:
    """Live stream and shadow stream side by side, compared before the DDL."""
    a = Inputs(answers, recovery.SCHEMA_DEFAULTS)
    flow = Flow()
    flow.node("src", f"Bronze\n{a.text('source_table')}", "db", "bronze")
    flow.node("live", "live stream", "query").edge("src", "live")
    flow.node("t", f"{a.text('target_table')}", "db", "silver").edge("live", "t")
    flow.node("sh", "shadow stream\n(new schema)", "query").edge("src", "sh")
    flow.node("st", f"{a.text('target_table')}_schema_shadow", "db", "quarantine").edge("sh", "st")
    flow.node("cmp", f"compare {a.duration('shadow_duration').spark}", "note", "ops")
    flow.edge("t", "cmp", dotted=True).edge("st", "cmp", dotted=True)
    return flow.render()


def canary_diagram(answers: dict[str, str]) -> str:
    """Production and the sampled shadow/canary path, compared, with the serving view."""
    a = Inputs(answers, releases.CANARY_DEFAULTS)
    flow = Flow()
    flow.node("src", f"{a.text('source_table')}", "db", "silver")
    flow.node("prod", "production stream", "query").edge("src", "prod")
    flow.node("pt", f"{a.text('production_table')}", "db", "gold").edge("prod", "pt")
    flow.node("sh", f"shadow stream\n{format_percent(a.percent('ratio'))} of keys", "query").edge("src", "sh")
    flow.node("st", f"{a.text('shadow_target')}", "db", "quarantine").edge("sh", "st")
    flow.node("cmp", f"compare {a.duration('comparison_window').spark}\nmismatch ≤ "
                     f"{format_percent(a.percent('max_mismatch_rate'))}", "note", "ops")
    flow.edge("pt", "cmp", dotted=True).edge("st", "cmp", dotted=True)
    return flow.render()


def blue_green_diagram(answers: dict[str, str]) -> str:
    """Blue and green paths with their own checkpoints; consumers follow the stable view."""
    a = Inputs(answers, releases.BLUE_GREEN_DEFAULTS)
    flow = Flow()
    flow.node("src", f"{a.text('source_table')}", "db", "silver")
    flow.node("qb", f"blue job\n{a.text('blue_checkpoint')}", "query", "blue").edge("src", "qb")
    flow.node("tb", f"{a.text('blue_table')}", "db", "blue").edge("qb", "tb")
    flow.node("qg", f"green job\n{a.text('green_checkpoint')}", "query", "green").edge("src", "qg")
    flow.node("tg", f"{a.text('green_table')}", "db", "green").edge("qg", "tg")
    flow.node("view", f"consumers read\n{a.text('consumer_view')}", "box", "gold")
    flow.edge("tb", "view", "before", dotted=True).edge("tg", "view", f"after {a.text('switch_mechanism')}")
    return flow.render()


def standards_diagram(answers: dict[str, str]) -> str:
    """The standard layout every stream follows."""
    a = Inputs(answers, standards.STANDARDS_DEFAULTS)
    flow = Flow()
    flow.node("src", "source (Kafka / Event Hubs / Kinesis / files)", "source", "source")
    medallion(flow, "src", f"{a.text('catalog_schema')}.bronze_*", f"{a.text('catalog_schema')}.silver_*",
              f"{a.text('catalog_schema')}.quarantine_*", f"{a.text('catalog_schema')}.gold_*",
              a.text("default_trigger"))
    flow.node("ckpt", f"{a.text('checkpoint_root').rstrip('/')}/<query>_v<N>", "note", "ops")
    flow.edge("bronze", "ckpt", "one per query", dotted=True)
    return flow.render()


def inventory_diagram(answers: dict[str, str]) -> str:
    """The inventoried sources feeding Bronze."""
    a = Inputs(answers, standards.INVENTORY_DEFAULTS)
    flow = Flow()
    flow.node("bronze", f"Bronze\n{a.text('bronze_table')}", "db", "bronze")
    for index, kind in enumerate(standards.systems(a)):
        name = a.text("source_name") if index == 0 else kind
        flow.node(f"s{index}", f"{kind}\n{name}", "source", "source")
        flow.edge(f"s{index}", "bronze", f"retention {a.duration('retention').spark}" if index == 0 else None)
    return flow.render()


def backpressure_diagram(answers: dict[str, str]) -> str:
    """Source → admission control → micro-batch → sink, with the measured rates."""
    a = Inputs(answers, tuning.BACKPRESSURE_DEFAULTS)
    flow = Flow()
    flow.node("src", f"{a.text('source_kind')}\npeak {a.int('peak_input_rate')} rows/s", "source", "source")
    flow.node("cap", f"cap {a.int('max_offsets_per_trigger')} per trigger", "box", "ops").edge("src", "cap")
    flow.node("q", f"micro-batch every {a.duration('trigger_interval').spark}\n{a.int('shuffle_partitions')} "
                   "partitions", "query").edge("cap", "q")
    flow.node("sink", "sink table", "db", "silver").edge("q", "sink")
    flow.node("m", "recentProgress → baseline", "note", "ops").edge("q", "m", dotted=True)
    return flow.render()


def slo_diagram(answers: dict[str, str]) -> str:
    """Queries → listener → metrics table → SQL alerts → channels."""
    a = Inputs(answers, operations.SLO_DEFAULTS)
    flow = Flow()
    flow.node("q", "streaming queries", "query")
    flow.node("t", f"{a.text('target_table')}", "db", "gold").edge("q", "t")
    flow.node("l", "SloListener", "box", "ops").edge("q", "l", "progress", dotted=True)
    flow.node("m", f"{a.text('metrics_table')}", "db", "ops").edge("l", "m")
    flow.node("al", "SQL alerts", "box", "ops").edge("m", "al").edge("t", "al", "freshness", dotted=True)
    flow.node("ch", a.text("alert_channels"), "note", "quarantine").edge("al", "ch")
    return flow.render()


def jobs_diagram(answers: dict[str, str]) -> str:
    """Trigger → job → stream task; notifications on failure."""
    a = Inputs(answers, operations.JOBS_DEFAULTS)
    spec = operations.jobs_spec(a)
    flow = Flow()
    flow.node("trig", f"{spec.trigger} trigger", "source", "source")
    flow.node("job", f"job {spec.name}", "box", "ops").edge("trig", "job")
    flow.node("task", f"task {spec.task_key}\n{spec.python_file}", "query").edge("job", "task")
    flow.node("n", a.text("notification_targets"), "note", "quarantine").edge("job", "n", "failure / backlog",
                                                                              dotted=True)
    return flow.render()


for _task, _draw in {
    "autoloader-streaming-ingest": autoloader_diagram,
    "kafka-connector-setup": kafka_diagram,
    "eventhubs-connector-setup": eventhubs_diagram,
    "kinesis-connector-setup": kinesis_diagram,
    "dlt-streaming-pipeline": dlt_diagram,
    "streaming-dq-expectations": dq_diagram,
    "watermarks-and-lateness": watermark_diagram,
    "dedup-and-idempotency": dedup_diagram,
    "state-store-management": state_diagram,
    "dlq-quarantine-ops": dlq_diagram,
    "replay-and-recovery": replay_diagram,
    "schema-evolution-live": schema_diagram,
    "canary-and-shadow": canary_diagram,
    "blue-green-deploy": blue_green_diagram,
    "init-streaming-standards": standards_diagram,
    "source-inventory-streaming": inventory_diagram,
    "backpressure-and-throughput": backpressure_diagram,
    "latency-slo-and-alerts": slo_diagram,
    "jobs-continuous-triggers": jobs_diagram,
}.items():
    register(_task, diagram=_draw)
