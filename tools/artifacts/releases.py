"""Releases: canary and shadow pipelines, blue-green deployments.

Both follow the pack's deployment-strategies article: the new version runs as
its own query with its own checkpoint and its own output table; outputs are
compared over windows that are closed in both versions; consumers switch
through a stable name (a view), and rollback points the name back.
"""

from __future__ import annotations

from tools.artifacts.base import (
    Artifact,
    Duration,
    Inputs,
    artifact_dir,
    dump_yaml,
    format_percent,
    py,
    query_name,
    register,
    slug,
    sql_ident,
    table_name,
)
from tools.artifacts.bundles import (
    SERVERLESS,
    TARGET_HELPERS,
    TARGET_PARAMETERS,
    JobSpec,
    Targets,
    bundle,
    bundle_variables,
    common_root,
    compute_kind,
    job_resource,
    target_constants,
    target_header,
)
from tools.artifacts.skeleton import (
    CONVENTION_NOTE,
    compute_note,
    constants,
    header,
    job_main,
    join,
    section,
    start_block,
    target_section,
    trigger_arg,
)
from tools.design import current, unique_query_name

# -- canary and shadow ------------------------------------------------------------------

CANARY_DEFAULTS = {
    "shadow_target": "main.shadow.events",
    "comparison_window": "24 hours",
    "max_mismatch_rate": "0.1",
    "approver": "streaming tech lead",
    "source_table": "main.silver.events",
    "production_table": "main.gold.events",
    "id_column": "event_id",
    "event_time_column": "event_time",
    "shadow_checkpoint": "/Volumes/main/streaming/checkpoints/events_shadow",
    "ratio": "10%",
}


def shadow_stream_module(a: Inputs) -> str:
    """The shadow (or canary) stream: a hash-sampled slice of the source, own checkpoint, own table."""
    ratio = a.percent("ratio")
    target = a.text("shadow_target")
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "the production stream's source"),
        ("SHADOW_TABLE", py(target), "never the production table"),
        ("ID_COLUMN", py(a.text("id_column")), "sampling and comparison key"),
        ("SAMPLE_PERCENT", f"{ratio:g}", "share of keys in the slice (stable: the same keys every batch)"),
        ("CHECKPOINT", py(a.text("shadow_checkpoint")), "the shadow's own checkpoint"),
        ("QUERY_NAME", py(unique_query_name(query_name("shadow", target), "shadow_stream.py")),
         "shown in the Spark UI and metrics"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the same source as production, read by an independent query."""
    return spark.readStream.table(SOURCE_TABLE)'''
    module = production_module(a)
    logic = (f"    # The candidate is the new version of {module}.py (copy it beside this file): its transform runs here.\n"
             f"    from {module} import transform as production_transform\n\n"
             "    df = production_transform(df)\n") if module else ""
    if sample_key(a):
        transform = f'''def transform(df: DataFrame) -> DataFrame:
    """The slice: keys whose hash bucket is below SAMPLE_PERCENT, through the logic under test."""
    bucket = F.pmod(F.xxhash64(F.col(ID_COLUMN).cast("string")), F.lit(10000)) / 100.0
    df = df.where(bucket < F.lit(SAMPLE_PERCENT))
{logic}    return df.withColumn("_shadow_ts", F.current_timestamp())'''
    else:
        transform = f'''def transform(df: DataFrame) -> DataFrame:
    """Every row through the logic under test: production rows are aggregates, so a key sample would not compare."""
{logic}    return df.withColumn("_shadow_ts", F.current_timestamp())'''
    start = start_block("The sink edge: the shadow table, nobody consumes it.",
                        ['.format("delta")', ".queryName(QUERY_NAME)", '.option("checkpointLocation", checkpoint)'],
                        ".toTable(SHADOW_TABLE)", '"1 minute"')
    doc = [compute_note(), f"{format_percent(ratio)} of the keys of {a.text('source_table')} → {target}; compared with "
           f"{a.text('production_table')} for {a.duration('comparison_window').spark}.", CONVENTION_NOTE]
    prod, helpers = target_section(target, a.text("shadow_checkpoint"))
    return join(header("Shadow / canary stream on a stable sample of keys.", "canary-shadow", doc,
                       extra_imports=("import argparse",)),
                constants(rows), prod, read, transform, start, helpers,
                job_main("shadow_stream.py", ["SHADOW_TABLE"], ["CHECKPOINT"]))


def compare_columns(a: Inputs) -> list[str]:
    """The columns both versions produce: compared, and the only ones the serving view exposes.

    The candidate reads the production stream's source; the production table may have another shape
    (a Gold aggregate). Comparing or UNIONing whole rows of different shapes fails (NUM_COLUMNS_MISMATCH),
    so both sides are cut to the columns the design knows both have — at least the key and the event time.
    """
    design = current()
    prod = design.columns_of(a.text("production_table"))
    if prod:  # the candidate reproduces production's logic (production_module), so it has production's columns
        return [c for c in prod if not c.startswith("_")]
    return [a.text("id_column"), a.text("event_time_column")]


def production_module(a: Inputs) -> str | None:
    """The module name of the stream module that writes the production table, when it follows the edge convention.

    The candidate then runs that module's ``transform`` (the logic under test is a new version of it); a
    declarative pipeline or an unknown writer cannot be imported, and the candidate copies the source.
    """
    table = current().writer_of(a.text("production_table"))
    if table is None or not (table.writer or "").endswith(".py"):
        return None
    name = table.writer.rsplit("/", 1)[-1].removesuffix(".py")
    return None if name.startswith(("dlt_", "dq_")) else name


def sample_key(a: Inputs) -> str | None:
    """The column the sample is cut on: the id when production rows carry it (a sample of an aggregate is not one)."""
    columns = compare_columns(a)
    return a.text("id_column") if a.text("id_column") in columns else None


def compare_sql(a: Inputs) -> str:
    """Counts, key differences and a value checksum over closed hours, with the verdict."""
    prod, shadow = table_name(a.text("production_table")), table_name(a.text("shadow_target"))
    key, ts = sql_ident(a.text("id_column")), sql_ident(a.text("event_time_column"))
    window = a.duration("comparison_window")
    ratio, limit = a.percent("ratio"), a.percent("max_mismatch_rate")
    closed = (f"{ts} >= current_timestamp() - {window.sql_interval} "
              f"AND {ts} < date_trunc('HOUR', current_timestamp())")
    columns = compare_columns(a)
    if sample_key(a):
        sample = f"pmod(xxhash64(CAST({key} AS STRING)), 10000) / 100.0 < {ratio:g}"
    else:  # an aggregate: the candidate ran on every row; rows are matched on the first column (window start)
        key, sample = sql_ident(columns[0]), "true"
        ts = sql_ident(next((c for c in columns if c in ("window_end", "window_start")), columns[0]))
        closed = (f"{ts} >= current_timestamp() - {window.sql_interval} "
                  f"AND {ts} < date_trunc('HOUR', current_timestamp())")
    cols = ", ".join(sql_ident(c) for c in columns)
    return f"""-- Shadow vs production over {window.spark} on the columns both produce
-- ({cols}), closed hours only, on the same sample of keys.
-- Verdict: promote when mismatch_pct <= {limit:g} ({format_percent(limit)}); otherwise roll back.
WITH prod AS (
  SELECT {key} AS k, hash({cols}) AS h FROM {prod} WHERE {closed} AND {sample}
),
shadow AS (
  SELECT {key} AS k, hash({cols}) AS h FROM {shadow} WHERE {closed}
),
diff AS (
  SELECT coalesce(p.k, s.k) AS k,
         CASE WHEN p.k IS NULL THEN 'only_shadow' WHEN s.k IS NULL THEN 'only_prod'
              WHEN p.h <> s.h THEN 'different' ELSE 'same' END AS outcome
  FROM prod p FULL OUTER JOIN shadow s ON p.k = s.k
)
SELECT count(*) AS keys,
       sum(CASE WHEN outcome <> 'same' THEN 1 ELSE 0 END) AS mismatches,
       100.0 * sum(CASE WHEN outcome <> 'same' THEN 1 ELSE 0 END) / nullif(count(*), 0) AS mismatch_pct,
       100.0 * sum(CASE WHEN outcome <> 'same' THEN 1 ELSE 0 END) / nullif(count(*), 0) <= {limit:g} AS promote
FROM diff;

-- Which keys differ (investigate before promoting).
SELECT outcome, count(*) FROM (
  SELECT coalesce(p.{key}, s.{key}) AS k,
         CASE WHEN p.{key} IS NULL THEN 'only_shadow' WHEN s.{key} IS NULL THEN 'only_prod' ELSE 'both' END AS outcome
  FROM (SELECT {key} FROM {prod} WHERE {closed} AND {sample}) p
  FULL OUTER JOIN (SELECT {key} FROM {shadow} WHERE {closed}) s ON p.{key} = s.{key}
) GROUP BY outcome;
"""


def canary_view_sql(a: Inputs) -> str:
    """A canary serving view: the slice from the new version, the rest from production."""
    prod, shadow = table_name(a.text("production_table")), table_name(a.text("shadow_target"))
    key = sql_ident(a.text("id_column"))
    ratio = a.percent("ratio")
    sample = f"pmod(xxhash64(CAST({key} AS STRING)), 10000) / 100.0 < {ratio:g}"
    view = f"{prod}_serving"
    cols = ", ".join(sql_ident(c) for c in compare_columns(a))
    if not sample_key(a):
        return f"""-- Canary of an aggregate: {prod} rows are not per key, so a key slice cannot be served from the new
-- version. Consumers read {view}; promote by pointing it at the candidate once compare_outputs.sql passes.
CREATE OR REPLACE VIEW {view} AS
SELECT {cols} FROM {prod};

-- Promote (the whole aggregate at once):
-- CREATE OR REPLACE VIEW {view} AS SELECT {cols} FROM {shadow};
"""
    return f"""-- Canary: consumers read {view}; the slice ({format_percent(ratio)} of keys) comes from the new version.
-- Both sides expose the same columns ({cols}), so the UNION has one shape.
-- Promote by widening the slice release by release; roll back with the second statement.
CREATE OR REPLACE VIEW {view} AS
SELECT {cols} FROM {prod} WHERE NOT ({sample})
UNION ALL
SELECT {cols} FROM {shadow};

-- Rollback: production only.
-- CREATE OR REPLACE VIEW {view} AS SELECT {cols} FROM {prod};
"""


def promotion_yaml(a: Inputs) -> str:
    """Promotion and rollback criteria with the approver."""
    data = {
        "version": 1,
        "candidate": {"table": table_name(a.text("shadow_target")), "sample": format_percent(a.percent("ratio"))},
        "production": table_name(a.text("production_table")),
        "comparison": {"window": a.duration("comparison_window").spark, "closed_hours_only": True,
                       "query": "compare_outputs.sql"},
        "promote_when": [
            f"mismatch_pct <= {a.percent('max_mismatch_rate'):g} over the whole window",
            "p95 latency of the candidate <= production (listener metrics)",
            "processedRowsPerSecond of the candidate >= its inputRowsPerSecond (no growing backlog)",
            "no failed runs of the candidate job in the window",
        ],
        "guardrails": {
            "error_budget": "no promotion while the pipeline's SLO error budget is spent",
            "alert_suppression": "the candidate pages nobody; its alerts go to the release channel only",
            "rollback_drill": "rehearse the rollback once in dev before the first canary",
            "performance": "compare skew (task time spread), batch duration and cluster concurrency with production",
        },
        "rollback_when": [
            f"mismatch_pct > {a.percent('max_mismatch_rate'):g}",
            "any data loss or duplicate key in the candidate",
            "candidate error rate above production",
        ],
        "stages": ["shadow (no consumers)", f"canary {format_percent(a.percent('ratio'))} via the serving view",
                   "50%", "100% (retire the old version, keep its checkpoint for the rollback window)"],
        "approver": a.text("approver"),
        "rollback": "point the serving view back to production; stop the candidate; keep its table for analysis",
    }
    return dump_yaml(data, ["Canary / shadow promotion and rollback criteria."])


def canary_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                    workspace: object = None) -> list[Artifact]:
    """Artefacts of ``canary-and-shadow``."""
    a = Inputs(answers, CANARY_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [
        Artifact(str(folder / "shadow_stream.py"), shadow_stream_module(a), "python",
                 "Shadow/canary stream: stable hash sample of keys, own checkpoint, shadow table."),
        Artifact(str(folder / "compare_outputs.sql"), compare_sql(a), "sql",
                 "Correctness comparison over closed hours: missing keys, differing rows, mismatch rate, verdict."),
        Artifact(str(folder / "canary_view.sql"), canary_view_sql(a), "sql",
                 "Serving view for the canary stage, with its rollback."),
        Artifact(str(folder / "promotion_criteria.yaml"), promotion_yaml(a), "yaml",
                 "Promotion and rollback criteria, stages and approver."),
    ]


def canary_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``canary-and-shadow``."""
    a = Inputs(answers, CANARY_DEFAULTS)
    first = (f"Shadow `{a.text('shadow_target')}` takes a stable {format_percent(a.percent('ratio'))} hash sample of "
             f"`{a.text('id_column')}` from `{a.text('source_table')}` on its own checkpoint "
             f"`{a.text('shadow_checkpoint')}`; it is compared with `{a.text('production_table')}` for "
             f"{a.duration('comparison_window').spark} on latency, throughput, error rate and key-level diffs.")
    second = (f"Promote when the mismatch rate stays at or below {format_percent(a.percent('max_mismatch_rate'))} and "
              f"latency/throughput are no worse; roll back otherwise. Each stage is approved by "
              f"{a.text('approver')}.")
    return [first, second]


# -- blue-green ---------------------------------------------------------------------------

BLUE_GREEN_DEFAULTS = {
    "blue_checkpoint": "/Volumes/main/streaming/checkpoints/events_blue",
    "green_checkpoint": "/Volumes/main/streaming/checkpoints/events_green",
    "switch_mechanism": "view swap",
    "health_window": "30 minutes",
    "source_table": "main.silver.events",
    "blue_table": "main.gold.events_blue",
    "green_table": "main.gold.events_green",
    "consumer_view": "main.gold.events",
    "event_time_column": "event_time",
    "audit_table": "main.ops.deploy_audit",
    "notification_targets": "email:streaming-oncall@example.com",
    "freshness_limit": "10 minutes",
}


def blue_green_stream_module(a: Inputs) -> str:
    """One code base for both paths: the colour picks the checkpoint and the table."""
    rows = [
        ("SOURCE_TABLE", py(a.text("source_table")), "both paths read the same source"),
        ("CHECKPOINTS", "{" + f'"blue": {py(a.text("blue_checkpoint"))}, "green": {py(a.text("green_checkpoint"))}'
         + "}", "one checkpoint per path, never shared"),
        ("TABLES", "{" + f'"blue": {py(a.text("blue_table"))}, "green": {py(a.text("green_table"))}' + "}",
         "one output table per path"),
        ("COLOR", py("green"), "the path this deployment runs (the job passes --color)"),
        ("CHECKPOINT", 'CHECKPOINTS[COLOR]', "this path's checkpoint"),
        ("TARGET_TABLE", "TABLES[COLOR]", "this path's table"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the shared source, read by this path's own query."""
    return spark.readStream.table(SOURCE_TABLE)'''
    transform = '''def transform(df: DataFrame, color: str = COLOR) -> DataFrame:
    """The release's logic (identical between colours except for the change being released); rows carry the path."""
    return df.withColumn("_deployed_color", F.lit(color))'''
    start = '''def start(
    df: DataFrame, checkpoint: str = CHECKPOINT, target: str | None = None, available_now: bool = False
) -> StreamingQuery:
    """The sink edge: this path's table with this path's checkpoint.

    ``available_now`` drains what has arrived and stops (the serverless jobs pass --available-now; the job's
    continuous schedule starts the next run).
    """
    table = target or TABLES[COLOR]
    writer = (
        df.writeStream.format("delta")
        .queryName(f"{table.split('.')[-1]}_stream")
        .option("checkpointLocation", checkpoint)
    )
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger({TRIGGER})
    return writer.toTable(table)'''
    renamed = a.choice("switch_mechanism").startswith("table rename")
    if renamed:
        rows.append(("CONSUMER_VIEW", py(a.text("consumer_view")),
                     "the live path's table carries this name (table rename)"))
    find = '''def table_for(spark: SparkSession, own: str, consumer: str, color: str) -> str:
    """This path's table: its own name, or the consumer name while it is the live path (cutover.py renames it).

    The consumer table is this path's only when cutover.py tagged it with this colour: a first start of the idle
    path never writes into the live path's table.
    """
    if spark.catalog.tableExists(own) or not spark.catalog.tableExists(consumer):
        return own
    tags = {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {consumer}").collect()}
    return consumer if tags.get("blue_green.color") == color else own'''
    target_line = ("    target = table_for(spark, in_target(TABLES[args.color], args.catalog, args.schema),\n"
                   "                       in_target(CONSUMER_VIEW, args.catalog, args.schema), args.color)"
                   if renamed else "    target = in_target(TABLES[args.color], args.catalog, args.schema)")
    main = '''def main() -> None:
    """Run one path in the bundle target: `python blue_green_stream.py --color blue|green --catalog ...`."""
    parser = add_target_arguments(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--color", choices=sorted(CHECKPOINTS), default=COLOR)
    parser.add_argument("--available-now", action="store_true", help="drain the backlog and stop (bounded run)")
    args = parser.parse_args()
    checkpoint = checkpoint_in_target(CHECKPOINTS[args.color], args.checkpoint_root)
    spark = SparkSession.builder.getOrCreate()
TARGET_LINE
    query = start(transform(read_stream(spark), args.color), checkpoint, target, args.available_now)
    query.awaitTermination()


if __name__ == "__main__":
    main()
'''
    start = start.replace("{TRIGGER}", trigger_arg('"1 minute"'))
    main = main.replace("TARGET_LINE", target_line)
    doc = [compute_note(), f"Blue → {a.text('blue_table')}, green → {a.text('green_table')}; consumers read "
           f"{a.text('consumer_view')}.", CONVENTION_NOTE]
    return join(header("Blue-green streaming path (the colour selects checkpoint and table).", "blue-green", doc,
                       extra_imports=("import argparse",)),
                constants(rows), constants(target_constants(blue_green_targets(a).prod), "production namespace"),
                read, transform, start, section("deployment target") + "\n" + TARGET_HELPERS,
                *([find] if renamed else []), main)


def blue_green_targets(a: Inputs) -> Targets:
    """Prod writes the colour tables with the answered checkpoints; dev gets its own catalog and checkpoint root."""
    return Targets.for_output(a.text("blue_table"), common_root([a.text("blue_checkpoint"), a.text("green_checkpoint")]))


def blue_green_bundle(a: Inputs) -> str:
    """Two continuous jobs, one per colour, same code, different parameters."""
    jobs = {}
    # The jobs run where the stream module was generated for: serverless code (availableNow) on a job cluster,
    # or classic code on serverless, would not be the code that was reviewed.
    compute = compute_kind(a.answers)
    for color in ("blue", "green"):
        jobs[f"events_{color}"] = job_resource(JobSpec(
            name=f"{slug(a.text('consumer_view'), '-')}-{color}", task_key=f"stream_{color}",
            python_file="./blue_green_stream.py", cluster_key="streaming",
            parameters=["--color", color, *TARGET_PARAMETERS, *(["--available-now"] if compute == SERVERLESS else [])],
            notify=a.text("notification_targets"), backlog_threshold=Duration(10, "minutes"),
            tags={"deployment": color}, compute=compute))
    targets = blue_green_targets(a)
    return dump_yaml(bundle(f"{slug(a.text('consumer_view'), '-')}-blue-green", {"jobs": jobs},
                            bundle_variables("streaming-jobs-policy", compute=compute), targets),
                     ["Blue and green run as separate continuous jobs with their own checkpoints and tables.",
                      *target_header(targets),
                      "Deploy green, let it catch up, run cutover.py; keep blue until the health window has passed."])


def cutover_module(a: Inputs) -> str:
    """A support module: health checks, the switch, the watch window, rollback and the audit record."""
    mechanism = a.choice("switch_mechanism")
    rows = [
        ("CONSUMER_VIEW", py(a.text("consumer_view")), "the stable name consumers read"),
        ("TABLES", "{" + f'"blue": {py(a.text("blue_table"))}, "green": {py(a.text("green_table"))}' + "}",
         "one table per path"),
        ("EVENT_TIME", py(a.text("event_time_column")), "freshness is measured on it"),
        ("FRESHNESS_LIMIT_MINUTES", f"{a.duration('freshness_limit').minutes:g}", "a path staler than this is unhealthy"),
        ("HEALTH_WINDOW_SECONDS", str(a.duration("health_window").whole_seconds), "watch after the switch"),
        ("AUDIT_TABLE", py(a.text("audit_table")), "one row per check, switch and rollback"),
        ("SWITCH_MECHANISM", py(a.text("switch_mechanism")), "how consumers move"),
        ("ACTIVE_PATHS_TABLE", py(table_name(a.text("audit_table")).rsplit(".", 1)[0] + ".active_paths"),
         "consumer configuration: which table is live"),
    ]
    current_name = '''def current_name(spark: SparkSession, color: str) -> str:
    """The name ``color``'s table has now."""
    return TABLES[color]'''
    if mechanism.startswith("table rename"):
        # The live path's table carries the consumer name and the idle path's its own, so the switch is symmetric
        # (rollback = switch back) and the health checks find both tables after it; each table is tagged with its
        # colour so a restarted stream finds its table under either name (blue_green_stream.table_for).
        current_name = '''def current_name(spark: SparkSession, color: str) -> str:
    """The name ``color``'s table has now: its own, or the consumer name while it is the live path."""
    return TABLES[color] if spark.catalog.tableExists(TABLES[color]) else CONSUMER_VIEW'''
        switch_body = '''    # A running stream keeps writing its table (a rename does not move its storage); a restarted one
    # finds it by the colour tag. Fails before any change when ``color`` is already live (no table under its own name).
    spark.sql(f"ALTER TABLE {TABLES[color]} SET TBLPROPERTIES ('blue_green.color' = '{color}')")
    if spark.catalog.tableExists(CONSUMER_VIEW):
        spark.sql(f"ALTER TABLE {CONSUMER_VIEW} SET TBLPROPERTIES ('blue_green.color' = '{other(color)}')")
        spark.sql(f"ALTER TABLE {CONSUMER_VIEW} RENAME TO {TABLES[other(color)]}")
    spark.sql(f"ALTER TABLE {TABLES[color]} RENAME TO {CONSUMER_VIEW}")'''
    elif mechanism.startswith("consumer"):
        switch_body = '''    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {ACTIVE_PATHS_TABLE} (consumer STRING, active_table STRING, switched_at TIMESTAMP)"
    )
    spark.sql(
        f"MERGE INTO {ACTIVE_PATHS_TABLE} t USING (SELECT '{CONSUMER_VIEW}' AS consumer, '{TABLES[color]}' AS active_table) s "
        "ON t.consumer = s.consumer "
        "WHEN MATCHED THEN UPDATE SET active_table = s.active_table, switched_at = current_timestamp() "
        "WHEN NOT MATCHED THEN INSERT (consumer, active_table, switched_at) "
        "VALUES (s.consumer, s.active_table, current_timestamp())"
    )'''
    else:
        switch_body = '''    spark.sql(f"CREATE OR REPLACE VIEW {CONSUMER_VIEW} AS SELECT * FROM {TABLES[color]}")'''
    functions = f'''def other(color: str) -> str:
    """The other path."""
    return "blue" if color == "green" else "green"


def staleness_minutes(spark: SparkSession, table: str) -> float:
    """Minutes since the newest event in ``table``."""
    row = spark.sql(
        f"SELECT (unix_timestamp(current_timestamp()) - unix_timestamp(max({{EVENT_TIME}}))) / 60.0 AS m FROM {{table}}"
    ).first()
    return float(row["m"]) if row and row["m"] is not None else float("inf")


{current_name}


def health(spark: SparkSession, color: str) -> dict[str, Any]:
    """Is the path fresh, and does it hold as many keys as the other path over the last closed hour?"""
    names = {{c: current_name(spark, c) for c in TABLES}}
    stale = staleness_minutes(spark, names[color])
    hour = "date_trunc('HOUR', current_timestamp())"
    last_hour = f"{{EVENT_TIME}} >= {{hour}} - INTERVAL 1 HOURS AND {{EVENT_TIME}} < {{hour}}"
    counts = {{c: spark.sql(f"SELECT count(*) AS n FROM {{names[c]}} WHERE {{last_hour}}").first()["n"] for c in TABLES}}
    ok = stale <= FRESHNESS_LIMIT_MINUTES and counts[color] >= counts[other(color)]
    return {{"color": color, "staleness_minutes": stale, "last_hour_rows": counts, "healthy": ok}}


def audit(spark: SparkSession, action: str, details: dict[str, Any]) -> None:
    """Append the evidence of a step to AUDIT_TABLE."""
    row = [(dt.datetime.now(dt.timezone.utc), action, SWITCH_MECHANISM, json.dumps(details, default=str))]
    spark.createDataFrame(row, "ts TIMESTAMP, action STRING, mechanism STRING, details STRING").write.mode(
        "append"
    ).saveAsTable(AUDIT_TABLE)


def switch(spark: SparkSession, color: str) -> None:
    """Point consumers at ``color`` ({a.text('switch_mechanism')})."""
{switch_body}


def cutover(spark: SparkSession, to: str = "green") -> bool:
    """Check, switch, watch the health window, roll back if unhealthy. Returns True when the switch stuck."""
    before = health(spark, to)
    audit(spark, "pre-switch check", before)
    if not before["healthy"]:
        audit(spark, "switch refused", before)
        return False
    switch(spark, to)
    audit(spark, f"switched to {{to}}", before)
    deadline = time.monotonic() + HEALTH_WINDOW_SECONDS
    while time.monotonic() < deadline:
        time.sleep(60)
        now = health(spark, to)
        if not now["healthy"]:
            switch(spark, other(to))
            audit(spark, f"rolled back to {{other(to)}}", now)
            return False
    audit(spark, "health window passed", health(spark, to))
    return True'''
    main = '''def main() -> None:
    """`python cutover.py --to green` (or `--to blue` to roll back on purpose)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--to", choices=["blue", "green"], default="green")
    target = parser.parse_args().to
    spark = SparkSession.builder.getOrCreate()
    raise SystemExit(0 if cutover(spark, target) else 1)


if __name__ == "__main__":
    main()
'''
    doc = [f"Switch mechanism: {a.text('switch_mechanism')}; health watched for {a.duration('health_window').spark} "
           "after the switch; every step is recorded in the audit table.",
           "Run it only after the release gate's Go / No-Go decision (*release-gate) and its action items are closed; "
           "the health check is a reconciliation of the last closed hour between blue and green.",
           "Blue stays restartable from its own checkpoint while the source retention covers the rollback window; "
           "rehearse the cut-over and the rollback in dev first (drill).", "Support module: no stream, just main()."]
    return join(header("Blue-green cut-over: checks, switch, health window, rollback, audit.", "blue-green", doc,
                       imports="from pyspark.sql import SparkSession",
                       extra_imports=("import argparse", "import datetime as dt", "import json", "import time",
                                      "from typing import Any")),
                constants(rows), functions, main)


def blue_green_sql(a: Inputs) -> str:
    """The switch and rollback statements for a manual cut-over."""
    view = table_name(a.text("consumer_view"))
    blue, green = table_name(a.text("blue_table")), table_name(a.text("green_table"))
    return f"""-- Manual cut-over ({a.text('switch_mechanism')}); cutover.py does the same with checks and audit.
-- Switch consumers to green:
CREATE OR REPLACE VIEW {view} AS SELECT * FROM {green};

-- Rollback to blue (blue kept running, or restarted from its own checkpoint):
-- CREATE OR REPLACE VIEW {view} AS SELECT * FROM {blue};

-- Evidence: which table the view reads now.
SHOW CREATE TABLE {view};
"""


def blue_green_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                        workspace: object = None) -> list[Artifact]:
    """Artefacts of ``blue-green-deploy``."""
    a = Inputs(answers, BLUE_GREEN_DEFAULTS)
    folder = artifact_dir(doc_location)
    out = [
        Artifact(str(folder / "blue_green_stream.py"), blue_green_stream_module(a), "python",
                 "One stream code base; --color selects the path's checkpoint and table."),
        Artifact(str(folder / "databricks.yml"), blue_green_bundle(a), "yaml",
                 "Two continuous jobs (blue, green) with their own parameters and notifications."),
        Artifact(str(folder / "cutover.py"), cutover_module(a), "python",
                 "Cut-over script: health checks, switch, health window, automatic rollback, audit rows."),
    ]
    if a.choice("switch_mechanism").startswith("view"):
        out.append(Artifact(str(folder / "switch.sql"), blue_green_sql(a), "sql",
                            "Manual view switch and rollback."))
    return out


def blue_green_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``blue-green-deploy``."""
    a = Inputs(answers, BLUE_GREEN_DEFAULTS)
    first = (f"Blue: `{a.text('blue_checkpoint')}` → `{a.text('blue_table')}`; green: `{a.text('green_checkpoint')}` "
             f"→ `{a.text('green_table')}` (separate jobs, never a shared checkpoint). Consumers read "
             f"`{a.text('consumer_view')}`; switch by {a.text('switch_mechanism')} once green is fresh (under "
             f"{a.duration('freshness_limit').spark}) and holds as many rows as blue for the last closed hour; watch "
             f"{a.duration('health_window').spark}, roll back automatically if unhealthy.")
    second = (f"Every check, switch and rollback is a row in `{a.text('audit_table')}`; notifications go to "
              f"{a.text('notification_targets')}; escalate to the pipeline owner when the rollback also fails.")
    return [first, second]


register("canary-and-shadow", canary_generate, notes=canary_notes)
register("blue-green-deploy", blue_green_generate, notes=blue_green_notes)
