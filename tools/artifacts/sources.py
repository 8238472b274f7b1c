"""Source connectors: Auto Loader, Kafka, Event Hubs (Kafka endpoint) and Kinesis read code.

Each generator writes one PySpark module in the edge convention (read_stream /
transform / write_batch / start / main). Options and their meaning come from
the pack's articles (autoloader, kafka, eventhubs, kinesis); credentials are
only ever read with ``dbutils.secrets.get(scope=..., key=...)`` inside a function.
"""

from __future__ import annotations

import re
import textwrap

from tools.artifacts.base import (
    Artifact,
    Inputs,
    artifact_dir,
    config_path,
    dump_json,
    py,
    query_name,
    register,
    short_name,
    slug,
    table_name,
)
from tools.artifacts.dlq import DEAD_LETTERS_FN, dlq_ddl, dlq_schema
from tools.artifacts.skeleton import (
    CONVENTION_NOTE,
    DBUTILS_HELPER,
    compute_note,
    constants,
    header,
    job_main,
    join,
    start_block,
    target_section,
    trigger_arg,
)
from tools.design import SASL_MECHANISMS, current, record_table, unique_query_name

PLAIN_LOGIN_MODULE = "kafkashaded.org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_LOGIN_MODULE = "kafkashaded.org.apache.kafka.common.security.scram.ScramLoginModule"


def sasl_mechanism(a: Inputs) -> str:
    """The brokers' SASL mechanism (``PLAIN`` when not given or not one Kafka knows)."""
    value = a.text("sasl_mechanism").upper()
    return value if value in SASL_MECHANISMS else "PLAIN"


def login_module(mechanism: str) -> str:
    """The shaded JAAS login module Databricks Runtime ships for ``mechanism``."""
    return SCRAM_LOGIN_MODULE if mechanism.startswith("SCRAM") else PLAIN_LOGIN_MODULE


def json_path(field: str) -> str:
    """A ``get_json_object`` path for a top-level field."""
    return f"$.{field}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", field) else "$['" + field.replace("'", "") + "']"


def trigger_call(mode: str, interval: str = "TRIGGER_INTERVAL") -> str:
    """The ``.trigger(...)`` argument for a trigger choice; serverless compute allows availableNow only."""
    return "availableNow=True" if mode.lower() == "availablenow" else trigger_arg(interval)


# The writer chain of a message-bus Bronze stream (start_block adds the trigger and the table).
DELTA_SINK = ['.format("delta")', ".queryName(QUERY_NAME)", '.option("checkpointLocation", checkpoint)',
              '.outputMode("append")']

PAYLOAD_SCHEMA_DEFAULT = "event_id STRING, event_time TIMESTAMP, amount DOUBLE"


def schema_columns(ddl: str) -> dict[str, str]:
    """``"event_id STRING, amount DECIMAL(10,2)"`` → ``{"event_id": "STRING", "amount": "DECIMAL(10,2)"}``."""
    columns: dict[str, str] = {}
    for part in re.split(r",(?![^()<>]*[)>])", ddl or ""):
        bits = part.strip().split(None, 1)
        if len(bits) == 2:
            kind = bits[1].strip()
            # Simple types in upper case; a STRUCT/ARRAY/MAP keeps its field names as declared (they are names).
            columns[bits[0].strip("`")] = kind if "<" in kind else kind.upper()
    return columns


def with_column(ddl: str, column: str, sql_type: str) -> str:
    """The schema ``ddl`` with ``column`` added (as ``sql_type``) when it is not there: the code reads it."""
    if not column or column in schema_columns(ddl):
        return ddl
    return f"{ddl}, {column} {sql_type}" if ddl.strip() else f"{column} {sql_type}"


def event_time_of(ddl: str, fallback: str = "event_time") -> str:
    """The event-time column of a payload schema: the design's, else the first TIMESTAMP column."""
    columns = schema_columns(ddl)
    design_ts = current().event_time
    if design_ts and design_ts in columns:
        return design_ts
    return next((name for name, kind in columns.items() if kind.startswith("TIMESTAMP")), fallback)


def offsets_sql(table: str, partition: str, offset: str, what: str, dense: bool = True, topic: str = "",
                deduplicated: bool = False) -> str:
    """Exactly-once evidence for a message-bus Bronze table: no duplicated positions (and, when dense, no gaps).

    Kafka offsets are dense within a partition (except on compacted or transactional topics); Kinesis
    sequence numbers only increase — they are not consecutive, so no gap check is possible on them.
    ``topic`` names the topic column: partitions of different topics share numbers (several topics may be
    subscribed). ``deduplicated``: the stream drops producer retries, so some positions are missing by design.
    """
    if topic:
        partition = f"{topic}, {partition}"
    first = f"""-- Exactly-once verification for {table} ({what}). Run after restarts and replays.

-- 1. A position written twice means a non-idempotent write (must be empty).
SELECT {partition}, {offset}, count(*) AS copies
FROM {table}
GROUP BY {partition}, {offset}
HAVING count(*) > 1;
"""
    if not dense:
        return first + f"""
-- 2. Rows and the newest position per {partition} over the last day. Sequence numbers increase but are not
--    consecutive, so count rows against the producer's own count (or GetRecords metrics), not a span.
SELECT {partition}, count(*) AS rows, max({offset}) AS newest_position
FROM {table}
WHERE ingest_ts >= current_timestamp() - INTERVAL 1 DAYS
GROUP BY {partition}
ORDER BY {partition};
"""
    meaning = ("positions the stream dropped as producer retries (its numDroppedDuplicateRows over the same day) "
               "plus any skipped data: more than the dropped retries means skipped data" if deduplicated
               else "skipped data")
    why = "\n".join(textwrap.wrap(f"Offsets are consecutive on a non-compacted, non-transactional topic, so a shortfall "
                                  f"is {meaning}.", 100, initial_indent="--    ", subsequent_indent="--    "))
    return first + f"""
-- 2. Rows per partition over the last day vs the span of offsets read.
{why}
SELECT {partition}, min({offset}) AS first_position, max({offset}) AS last_position, count(*) AS rows,
       max({offset}) - min({offset}) + 1 - count(*) AS missing_positions
FROM {table}
WHERE ingest_ts >= current_timestamp() - INTERVAL 1 DAYS
GROUP BY {partition}
ORDER BY {partition};
"""


# -- Auto Loader ----------------------------------------------------------------------

AUTOLOADER_DEFAULTS = {
    "source_path": "/Volumes/main/landing/events/",
    "file_format": "json",
    "schema_location": "/Volumes/main/streaming/checkpoints/events/_schema",
    "checkpoint_root": "/Volumes/main/streaming/checkpoints/events",
    "target_table": "main.bronze.events",
    "dlq_table": "main.quarantine.events_dlq",
    "id_column": "event_id",
    "schema_hints": "event_id STRING, event_time TIMESTAMP",
    "schema_evolution_mode": "rescue",
    "max_files_per_trigger": "1000",
    "file_discovery": "directory listing",
    "trigger_mode": "processingTime",
    "trigger_interval": "1 minute",
}


def autoloader_module(a: Inputs, path: str = "autoloader_ingest.py") -> str:
    """The Auto Loader ingest module: cloudFiles read, malformed rows to the DLQ, idempotent writes.

    In ``rescue`` (and ``addNewColumns``) mode a new producer column lands in ``_rescued_data``: such rows
    are complete and go to Bronze with the column kept. Only rows whose key or event time could not be
    read (a hinted column that failed to parse) are dead letters, with the whole raw row as the payload.
    """
    fmt = a.text("file_format")
    fixed_schema = fmt.lower() in ("text", "binaryfile")
    explicit_schema = fmt.lower() == "orc"  # Auto Loader cannot infer ORC schemas
    mode = a.text("schema_evolution_mode")
    table = a.text("target_table")
    serverless = current().serverless
    app_id = f"{slug(short_name(table))}_autoloader_v1"
    hints = a.text("schema_hints")
    event_time = event_time_of(hints) if not fixed_schema else "_ingest_ts"
    rows = [
        ("SOURCE_PATH", py(a.text("source_path")), "directory or Unity Catalog volume to ingest"),
        ("FILE_FORMAT", py(fmt), "cloudFiles.format"),
        ("SCHEMA_LOCATION", py(a.text("schema_location")), "cloudFiles.schemaLocation: inferred schema and its versions"),
        ("SCHEMA_HINTS", py(hints), "known column types (the event time as TIMESTAMP); the rest is inferred"),
        ("SCHEMA_EVOLUTION_MODE", py(mode), "what a new column does (addNewColumns stops the stream once)"),
        ("MAX_FILES_PER_TRIGGER", str(a.int("max_files_per_trigger")), "cloudFiles.maxFilesPerTrigger (rate limit)"),
        ("ID_COLUMN", py(a.text("id_column")), "idempotency key of an event"),
        ("EVENT_TIME", py(event_time), "event-time column (typed by the schema hints)"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint; never shared"),
        ("TARGET_TABLE", py(table), "Bronze table"),
        ("DLQ_TABLE", py(a.text("dlq_table")), "malformed records (the shape of dlq_table.sql)"),
        ("QUERY_NAME", py(unique_query_name(query_name("bronze", table), path)), "shown in the Spark UI and metrics"),
        ("TXN_APP_ID", py(app_id), "stable id for idempotent Delta writes; change it when the checkpoint is reset"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval (classic compute)"),
    ]
    discovery = a.choice("file_discovery")
    options = [
        '.option("cloudFiles.format", FILE_FORMAT)',
        '.option("cloudFiles.schemaLocation", SCHEMA_LOCATION)',
    ]
    if explicit_schema:
        options += ['.schema(SCHEMA_HINTS)  # ORC: no inference, so the hints are the full schema',
                    '.option("rescuedDataColumn", "_rescued_data")']
    elif not fixed_schema:
        options += [
            '.option("cloudFiles.inferColumnTypes", "true")',
            '.option("cloudFiles.schemaHints", SCHEMA_HINTS)',
            '.option("cloudFiles.schemaEvolutionMode", SCHEMA_EVOLUTION_MODE)',
        ]
    if fmt.lower() == "csv":
        # CSV reads a header line only when asked (the default names columns _c0, _c1...: no key, no event time).
        options.append('.option("header", "true")')
    options.append('.option("cloudFiles.maxFilesPerTrigger", MAX_FILES_PER_TRIGGER)')
    if "event" in discovery:
        options.append('.option("cloudFiles.useManagedFileEvents", "true")  # file events on a UC external location')
    reader = "\n        ".join(options)
    read = f'''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: new files under SOURCE_PATH, discovered incrementally by Auto Loader."""
    return (
        spark.readStream.format("cloudFiles")
        {reader}
        .load(SOURCE_PATH)
    )'''
    key_expr = 'F.col(ID_COLUMN).cast("string")' if not fixed_schema else 'F.sha2(F.col("_source_file"), 256)'
    malformed = ('F.col(ID_COLUMN).isNull() | F.col(EVENT_TIME).isNull()' if not fixed_schema
                 else 'F.lit(False)')
    transform = f'''def transform(df: DataFrame) -> DataFrame:
    """Lineage columns, the idempotency key and the malformed flag (key or event time unreadable)."""
    return (
        df.withColumn("_source_file", F.col("_metadata.file_path"))
        .withColumn("_ingest_ts", F.current_timestamp())
        .withColumn("_idempotency_key", {key_expr})
        .withColumn("_malformed", {malformed})
    )'''
    merge_schema = '\n        .option("mergeSchema", "true")  # new columns from schema evolution reach Bronze' \
        if mode.lower() == "addnewcolumns" else ""
    persist = "" if serverless else "\n    batch_df.persist()  # read twice below (classic compute; serverless has no persist)"
    unpersist = "" if serverless else "\n    batch_df.unpersist()"
    raw = 'F.to_json(F.struct(*[c for c in batch_df.columns if c != "_malformed"]))'
    write = f'''def write_batch(batch_df: DataFrame, batch_id: int) -> None:
    """Malformed rows to the DLQ (raw row kept), the rest to Bronze; a retried batch is skipped by Delta."""{persist}
    good = batch_df.filter(~F.col("_malformed")).drop("_malformed")
    bad = dead_letters(
        batch_df.filter(F.col("_malformed")),
        reason=F.lit("malformed"),
        payload={raw},
        source_ref=F.col("_source_file"),
        record_key=F.col("_idempotency_key"),
        event_ts=F.lit(None),
        version=TXN_APP_ID,
    )
    (
        good.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id){merge_schema}
        .saveAsTable(TARGET_TABLE)
    )
    (
        bad.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id)
        .saveAsTable(DLQ_TABLE)
    ){unpersist}'''
    start = start_block("The sink edge: foreachBatch(write_batch) with this query's own checkpoint.",
                        [".foreachBatch(write_batch)", ".queryName(QUERY_NAME)",
                         '.option("checkpointLocation", checkpoint)'], ".start()",
                        always_available_now=a.text("trigger_mode").lower() == "availablenow")
    doc = [
        f"Ingests {a.text('file_format')} files from {a.text('source_path')} into {table}; rows whose key or "
        f"event time cannot be read go to {a.text('dlq_table')} with the raw row.",
        f"Schema evolution {mode}: a new producer column is kept in _rescued_data (or added, with addNewColumns) and "
        "the row still reaches Bronze; with addNewColumns the stream stops once and the job's retry restarts it.",
        "Duplicates: each file is ingested once (the checkpoint remembers it); duplicate events across files are removed "
        "downstream on the key (*idempotency-dedup). Dead letters are replayed after a fix (*dlq-ops).",
        compute_note(),
        CONVENTION_NOTE,
    ]
    imports = ("from pyspark.sql import Column, DataFrame, SparkSession\nfrom pyspark.sql import functions as F\n"
               "from pyspark.sql.streaming import StreamingQuery")
    prod, helpers = target_section(table, a.text("checkpoint_root"))
    return join(header("Auto Loader → Bronze with a DLQ for malformed records.", "autoloader-streaming", doc,
                       imports=imports, extra_imports=("import argparse",)),
                constants(rows), prod, DEAD_LETTERS_FN, read, transform, write, start, helpers,
                job_main("autoloader_ingest.py", ["TARGET_TABLE", "DLQ_TABLE"], ["CHECKPOINT", "SCHEMA_LOCATION"]))


def autoloader_config(a: Inputs) -> str:
    """The cloudFiles options of the module, as the config file beside it (the same values)."""
    options = {
        "cloudFiles.format": a.text("file_format"),
        "cloudFiles.schemaLocation": a.text("schema_location"),
        "cloudFiles.inferColumnTypes": "true",
        "cloudFiles.schemaHints": a.text("schema_hints"),
        "cloudFiles.schemaEvolutionMode": a.text("schema_evolution_mode"),
        "cloudFiles.maxFilesPerTrigger": str(a.int("max_files_per_trigger")),
    }
    if a.text("file_format").lower() == "csv":
        options["header"] = "true"
    if "event" in a.choice("file_discovery"):
        options["cloudFiles.useManagedFileEvents"] = "true"
    return dump_json(options)


def autoloader_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                        workspace: object = None) -> list[Artifact]:
    """Artefacts of ``autoloader-streaming-ingest``."""
    a = Inputs(answers, AUTOLOADER_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "autoloader_ingest.py")
    hints = schema_columns(a.text("schema_hints"))
    columns = {**hints, "_rescued_data": "STRING", "_source_file": "STRING", "_ingest_ts": "TIMESTAMP",
               "_idempotency_key": "STRING"}
    record_table(a.text("target_table"), "bronze", columns, writer=path, event_time=event_time_of(a.text("schema_hints")),
                 id_column=a.text("id_column"))
    record_table(a.text("dlq_table"), "dlq", dlq_schema(), writer=path)
    current().dlq_ddl = dlq_ddl(a.text("dlq_table"))
    return [Artifact(path, autoloader_module(a, path), "python",
                     "Auto Loader ingest: cloudFiles options with the event time typed by the schema hints, malformed "
                     "rows to the DLQ with the raw row, idempotent Delta writes (txnAppId/txnVersion)."),
            Artifact(str(folder / "dlq_table.sql"), dlq_ddl(a.text("dlq_table")), "sql",
                     "The dead-letter table: the one shape every DLQ writer of this thread uses."),
            Artifact(config_path(doc_location, "autoloader-streaming-config-tmpl.json"), autoloader_config(a), "json",
                     "The cloudFiles options of the module (rendered from the same answers as the code).")]


def autoloader_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``autoloader-streaming-ingest``."""
    a = Inputs(answers, AUTOLOADER_DEFAULTS)
    discovery = a.choice("file_discovery")
    how = ("file events (`cloudFiles.useManagedFileEvents=true`; run the stream at least every 7 days)"
           if "event" in discovery else "directory listing (the default; needs only read access)")
    first = (f"Read `{a.text('file_format')}` files from `{a.text('source_path')}` with "
             f"`cloudFiles.schemaLocation={a.text('schema_location')}`, schema hints `{a.text('schema_hints')}`, "
             f"`schemaEvolutionMode={a.text('schema_evolution_mode')}` and at most "
             f"{a.int('max_files_per_trigger')} files per micro-batch; discovery by {how}. "
             "`cloudFiles.useIncrementalListing` is deprecated and is not set.")
    trigger = ("`availableNow` (drain and stop; schedule it)" if trigger_call(a.text("trigger_mode")).startswith("avail")
               else f"`processingTime={a.duration('trigger_interval').spark}`")
    second = (f"Checkpoint `{a.text('checkpoint_root')}` belongs to this query alone. Rows whose "
              f"`{a.text('id_column')}` or event time cannot be read go to `{a.text('dlq_table')}` with the raw row; "
              f"rows with `_rescued_data` (a new or mistyped producer column) stay in `{a.text('target_table')}`, the "
              "rescued values kept. Both writes carry txnAppId/txnVersion so a retried batch is not written twice. "
              f"Trigger: {trigger}.")
    return [first, second]


# -- Kafka ----------------------------------------------------------------------------

KAFKA_DEFAULTS = {
    "partitions": "12",
    "max_offsets_per_trigger": "100000",
    "fail_on_data_loss": "true",
    "checkpoint_root": "/Volumes/main/streaming/checkpoints/kafka_events",
    "target_table": "main.bronze.kafka_events",
    "starting_offsets": "latest",
    "event_id_field": "event_id",
    "dedup_window": "10 minutes",
    "trigger_interval": "1 minute",
    "servers": "broker1:9093,broker2:9093",
    "topic": "orders.events.v1",
    "payload_schema": PAYLOAD_SCHEMA_DEFAULT,
    "sasl_username_secret": "streaming/kafka-username",
    "sasl_password_secret": "streaming/kafka-password",
    "sasl_mechanism": "PLAIN",
}


def kafka_module(a: Inputs, path: str = "kafka_source.py") -> str:
    """The Kafka source module: SASL_SSL with a JAAS config built from user/password secrets, payload parsed."""
    user_scope, user_key = a.secret("sasl_username_secret")
    password_scope, password_key = a.secret("sasl_password_secret")
    table = a.text("target_table")
    event_id = a.text("event_id_field")
    schema = with_column(a.text("payload_schema"), event_id, "STRING")
    mechanism = sasl_mechanism(a)
    rows = [
        ("BOOTSTRAP_SERVERS", py(a.text("servers")), "kafka.bootstrap.servers"),
        ("TOPIC", py(a.text("topic")), "subscribe (changing it later needs a new checkpoint)"),
        ("SECRET_SCOPE", py(user_scope), "secret scope holding the SASL username ..."),
        ("SECRET_KEY_NAME", py(user_key), "... under this key (the value never appears in code)"),
        ("PASSWORD_SECRET_SCOPE", py(password_scope), "secret scope holding the SASL password ..."),
        ("PASSWORD_SECRET_KEY_NAME", py(password_key), "... under this key"),
        ("SASL_MECHANISM", py(mechanism), "kafka.sasl.mechanism: what the brokers accept"),
        ("LOGIN_MODULE", py(login_module(mechanism)), "the shaded JAAS login module of that mechanism (Databricks "
         "Runtime)"),
        ("STARTING_OFFSETS", py(a.text("starting_offsets")), "read only when the checkpoint is new"),
        ("MAX_OFFSETS_PER_TRIGGER", str(a.int("max_offsets_per_trigger")), "rate limit per micro-batch (throughput cap)"),
        ("FAIL_ON_DATA_LOSS", py(a.choice("fail_on_data_loss")), "fail when offsets aged out of retention"),
        ("TOPIC_PARTITIONS", str(a.int("partitions")), "one Spark task per partition by default"),
        ("PAYLOAD_SCHEMA", py(schema), "the JSON value's schema (DDL): parsed with from_json"),
        ("EVENT_ID", py(event_id), "event id inside the payload"),
        ("DEDUP_WINDOW", py(a.duration("dedup_window").spark), "producer retries closer than this are dropped"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint: the committed offsets live here"),
        ("TARGET_TABLE", py(table), "Bronze Delta table"),
        ("QUERY_NAME", py(unique_query_name(query_name("bronze", table), path)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval (classic compute)"),
    ]
    read = '''def jaas_config(username: str, password: str) -> str:
    """The JAAS config of SASL_MECHANISM with the shaded login module Databricks Runtime ships (values JSON-quoted)."""
    return f"{LOGIN_MODULE} required username={json.dumps(username)} password={json.dumps(password)};"


def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: SASL_SSL, JAAS config built from the secrets, bounded micro-batches."""
    dbutils = _dbutils(spark)
    username = dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)
    password = dbutils.secrets.get(scope=PASSWORD_SECRET_SCOPE, key=PASSWORD_SECRET_KEY_NAME)
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP_SERVERS)
        .option("subscribe", TOPIC)
        .option("kafka.security.protocol", "SASL_SSL")
        .option("kafka.sasl.mechanism", SASL_MECHANISM)
        .option("kafka.sasl.jaas.config", jaas_config(username, password))
        .option("startingOffsets", STARTING_OFFSETS)
        .option("maxOffsetsPerTrigger", MAX_OFFSETS_PER_TRIGGER)
        .option("failOnDataLoss", FAIL_ON_DATA_LOSS)
        .load()
    )'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Parse the value with PAYLOAD_SCHEMA (raw value kept), keep the Kafka coordinates, drop producer retries."""
    value = F.col("value").cast("string")
    return (
        df.select(
            F.col("key").cast("string").alias("key"),
            value.alias("value"),
            F.from_json(value, PAYLOAD_SCHEMA).alias("payload"),
            "topic",
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_ts"),
        )
        .select("*", "payload.*")
        .drop("payload")
        # A record without an id is identified by where it sits in the topic.
        .withColumn(EVENT_ID, F.coalesce(F.col(EVENT_ID).cast("string"), F.concat_ws(":", "topic", "partition", "offset")))
        .withColumn("ingest_ts", F.current_timestamp())
        # Producer retries are identical copies that arrive close together: keep the first one read within
        # DEDUP_WINDOW of ingest time. The watermark is on the ingest time, so no record is ever late here (one on
        # the Kafka timestamp would drop the records of a lagging partition during a catch-up).
        .withWatermark("ingest_ts", DEDUP_WINDOW)
        .dropDuplicatesWithinWatermark([EVENT_ID])
    )'''
    start = start_block("The sink edge: a Delta table, exactly-once through the checkpoint and the Delta log.",
                        DELTA_SINK, ".toTable(TARGET_TABLE)")
    doc = [
        f"Reads topic {a.text('topic')} from {a.text('servers')} into {table}; the value is parsed with the declared "
        "payload schema (a value that does not parse leaves the payload columns NULL and keeps the raw value).",
        "Offsets are tracked in the checkpoint (Spark does not commit consumer offsets to Kafka). "
        "Rotate the credentials by updating the secrets, then restarting the query.",
        "Retries and backoff come from the job (continuous jobs retry with exponential backoff); the Kafka client "
        "timeouts keep their defaults unless the brokers need longer (kafka.request.timeout.ms).",
        compute_note(),
        CONVENTION_NOTE,
    ]
    prod, helpers = target_section(table, a.text("checkpoint_root"))
    return join(header("Kafka → Bronze (SASL_SSL, credentials from a secret scope).", "kafka-connector", doc,
                       extra_imports=("import argparse", "import json", "from typing import Any")),
                constants(rows), prod, DBUTILS_HELPER, read, transform, start, helpers,
                job_main("kafka_source.py", ["TARGET_TABLE"], ["CHECKPOINT"]))


def kafka_config(a: Inputs) -> str:
    """The reader options of the module as a config file (the same values; secrets as references)."""
    user_scope, user_key = a.secret("sasl_username_secret")
    password_scope, password_key = a.secret("sasl_password_secret")
    mechanism = sasl_mechanism(a)
    jaas = (f'{login_module(mechanism)} required username="{{{{secrets/{user_scope}/{user_key}}}}}" '
            f'password="{{{{secrets/{password_scope}/{password_key}}}}}";')
    return dump_json({
        "kafka.bootstrap.servers": a.text("servers"),
        "subscribe": a.text("topic"),
        "startingOffsets": a.text("starting_offsets"),
        "maxOffsetsPerTrigger": str(a.int("max_offsets_per_trigger")),
        "failOnDataLoss": a.choice("fail_on_data_loss"),
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": mechanism,
        "kafka.sasl.jaas.config": jaas,
    })


def payload_id(schema: str) -> str | None:
    """The event id of a payload schema: the design's when the payload has it, else ``id`` or the first ``*_id``."""
    columns = schema_columns(schema)
    known = current().id_column
    if known and known in columns:
        return known
    return next((c for c in columns if c == "id" or c.endswith("_id")), None)


def bus_columns(schema: str, coordinates: dict[str, str]) -> dict[str, str]:
    """The columns a message-bus Bronze table gets: coordinates, the raw value, the parsed payload."""
    return {**coordinates, **schema_columns(schema), "ingest_ts": "TIMESTAMP"}


def kafka_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                   workspace: object = None) -> list[Artifact]:
    """Artefacts of ``kafka-connector-setup``."""
    a = Inputs(answers, KAFKA_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "kafka_source.py")
    columns = bus_columns(with_column(a.text("payload_schema"), a.text("event_id_field"), "STRING"),
                          {"key": "STRING", "value": "STRING", "topic": "STRING", "partition": "INT",
                           "offset": "BIGINT", "kafka_ts": "TIMESTAMP"})
    record_table(a.text("target_table"), "bronze", columns, writer=path,
                 event_time=event_time_of(a.text("payload_schema")), id_column=a.text("event_id_field"))
    current().sources.append({"kind": "kafka", "name": a.text("topic")})
    return [Artifact(path, kafka_module(a, path), "python",
                     "Kafka source: SASL_SSL with a JAAS config built from user/password secrets, payload parsed with "
                     "the declared schema, startingOffsets, maxOffsetsPerTrigger, failOnDataLoss, Delta sink."),
            Artifact(str(folder / "verify_ingest.sql"),
                     offsets_sql(table_name(a.text("target_table")), "`partition`", "`offset`", "topic " + a.text("topic"),
                                 topic="topic", deduplicated=True),
                     "sql", "Exactly-once verification: no offset written twice, offsets read per partition."),
            Artifact(config_path(doc_location, "kafka-connector-config-tmpl.json"), kafka_config(a), "json",
                     "The reader options of the module (same values as the code; secrets as references).")]


def kafka_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``kafka-connector-setup``."""
    a = Inputs(answers, KAFKA_DEFAULTS)
    scope, key = a.secret("sasl_username_secret")
    pscope, pkey = a.secret("sasl_password_secret")
    mechanism = sasl_mechanism(a)
    first = (f"`kafka.security.protocol=SASL_SSL`, `kafka.sasl.mechanism={mechanism}`, JAAS config built with the "
             f"shaded `{login_module(mechanism)}` from the username `{scope}/{key}` and password `{pscope}/{pkey}` secrets "
             f"(rotation: update the secrets, restart the query); the value is parsed with "
             f"`{a.text('payload_schema')}`. `startingOffsets={a.text('starting_offsets')}` applies only to a new "
             "checkpoint; progress "
             f"is the offsets committed in `{a.text('checkpoint_root')}`, not Kafka consumer-group commits.")
    per_partition = max(1, a.int("max_offsets_per_trigger") // max(1, a.int("partitions")))
    loss = ("`failOnDataLoss=true`: the query stops rather than skip offsets lost to retention"
            if a.choice("fail_on_data_loss") == "true" else
            "`failOnDataLoss=false` was chosen: lost offsets are skipped silently — record this data-loss "
            "decision and alert on retention")
    second = (f"At most {a.int('max_offsets_per_trigger')} offsets per micro-batch (about {per_partition} per "
              f"partition over {a.int('partitions')} partitions); {loss}. Producer duplicates closer than "
              f"{a.duration('dedup_window').spark} of ingest time are dropped on `{a.text('event_id_field')}` "
              "(dropDuplicatesWithinWatermark on ingest_ts, so no record is ever dropped as late); the Delta sink "
              f"`{a.text('target_table')}` is exactly-once.")
    return [first, second]


# -- Event Hubs (Kafka endpoint) ------------------------------------------------------

EVENTHUBS_DEFAULTS = {
    "partitions": "8",
    "throughput_units": "2",
    "max_events_per_trigger": "50000",
    "rotation_period": "90 days",
    "checkpoint_root": "/Volumes/main/streaming/checkpoints/eventhubs_events",
    "namespace": "my-eventhubs-namespace",
    "event_hub": "orders",
    "target_table": "main.bronze.eventhubs_events",
    "starting_offsets": "latest",
    "trigger_interval": "1 minute",
    "connection_string": "streaming/eventhubs-conn",
    "consumer_group": "databricks-orders",
    "payload_schema": PAYLOAD_SCHEMA_DEFAULT,
}


def eventhubs_module(a: Inputs, path: str = "eventhubs_source.py") -> str:
    """The Event Hubs module: the Kafka endpoint with the connection string from a secret scope."""
    scope, key = a.secret("connection_string")
    table = a.text("target_table")
    namespace = a.text("namespace").removesuffix(".servicebus.windows.net")
    rows = [
        ("BOOTSTRAP_SERVERS", py(f"{namespace}.servicebus.windows.net:9093"), "the namespace's Kafka endpoint"),
        ("EVENT_HUB", py(a.text("event_hub")), "the event hub is the Kafka topic"),
        ("GROUP_ID_PREFIX", py(a.text("consumer_group")), "groupIdPrefix: names the consumer group Spark generates "
         "per query (offsets live in the checkpoint, not in the group)"),
        ("SECRET_SCOPE", py(scope), "secret scope holding the connection string (Listen-only policy) ..."),
        ("SECRET_KEY_NAME", py(key), "... under this key"),
        ("PLAIN_LOGIN_MODULE", py(PLAIN_LOGIN_MODULE), "shaded Kafka client class on Databricks Runtime"),
        ("STARTING_OFFSETS", py(a.text("starting_offsets")), "read only when the checkpoint is new"),
        ("MAX_EVENTS_PER_TRIGGER", str(a.int("max_events_per_trigger")), "maxOffsetsPerTrigger: events per micro-batch"),
        ("PAYLOAD_SCHEMA", py(a.text("payload_schema")), "the event body's schema (DDL): parsed with from_json"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint"),
        ("TARGET_TABLE", py(table), "Bronze Delta table"),
        ("QUERY_NAME", py(unique_query_name(query_name("bronze", table), path)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval (classic compute)"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Event Hubs Kafka endpoint, SASL_SSL + PLAIN with $ConnectionString."""
    dbutils = _dbutils(spark)
    connection_string = dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)
    user, password = json.dumps("$ConnectionString"), json.dumps(connection_string)
    jaas_config = f"{PLAIN_LOGIN_MODULE} required username={user} password={password};"
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP_SERVERS)
        .option("subscribe", EVENT_HUB)
        .option("groupIdPrefix", GROUP_ID_PREFIX)
        .option("kafka.security.protocol", "SASL_SSL")
        .option("kafka.sasl.mechanism", "PLAIN")
        .option("kafka.sasl.jaas.config", jaas_config)
        .option("kafka.request.timeout.ms", "60000")
        .option("kafka.session.timeout.ms", "30000")
        .option("startingOffsets", STARTING_OFFSETS)
        .option("maxOffsetsPerTrigger", MAX_EVENTS_PER_TRIGGER)
        .option("failOnDataLoss", "true")
        .load()
    )'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Parse the body with PAYLOAD_SCHEMA (raw body kept); keep partition and offset for audit and replay."""
    body = F.col("value").cast("string")
    return (
        df.select(
            body.alias("body"),
            F.from_json(body, PAYLOAD_SCHEMA).alias("payload"),
            F.col("topic").alias("event_hub"),
            "partition",
            "offset",
            F.col("timestamp").alias("enqueued_ts"),
            F.current_timestamp().alias("ingest_ts"),
        )
        .select("*", "payload.*")
        .drop("payload")
    )'''
    start = start_block("The sink edge: a Delta table, exactly-once through the checkpoint.", DELTA_SINK,
                        ".toTable(TARGET_TABLE)")
    doc = [
        compute_note(),
        f"Reads event hub {a.text('event_hub')} of namespace {namespace} through its Kafka endpoint "
        f"(Databricks recommends the built-in Kafka connector) into {table}.",
        f"Key rotation every {a.duration('rotation_period').spark}: regenerate the SAS key, update the secret, "
        "restart the query (established connections keep the old key until then).",
        "Retries and backoff come from the job (continuous jobs retry with exponential backoff); client timeouts "
        "follow Microsoft's Event Hubs guidance.",
        CONVENTION_NOTE,
    ]
    prod, helpers = target_section(table, a.text("checkpoint_root"))
    return join(header("Azure Event Hubs (Kafka endpoint) → Bronze.", "eventhubs-connector", doc,
                       extra_imports=("import argparse", "import json", "from typing import Any")),
                constants(rows), prod, DBUTILS_HELPER, read, transform, start, helpers,
                job_main("eventhubs_source.py", ["TARGET_TABLE"], ["CHECKPOINT"]))


def eventhubs_config(a: Inputs) -> str:
    """The Kafka-endpoint options the module uses (not the legacy Event Hubs connector's keys)."""
    scope, key = a.secret("connection_string")
    namespace = a.text("namespace").removesuffix(".servicebus.windows.net")
    return dump_json({
        "kafka.bootstrap.servers": f"{namespace}.servicebus.windows.net:9093",
        "subscribe": a.text("event_hub"),
        "groupIdPrefix": a.text("consumer_group"),
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": f'{PLAIN_LOGIN_MODULE} required username="$ConnectionString" '
                                  f'password="{{{{secrets/{scope}/{key}}}}}";',
        "kafka.request.timeout.ms": "60000",
        "kafka.session.timeout.ms": "30000",
        "startingOffsets": a.text("starting_offsets"),
        "maxOffsetsPerTrigger": str(a.int("max_events_per_trigger")),
        "failOnDataLoss": "true",
    })


def eventhubs_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                       workspace: object = None) -> list[Artifact]:
    """Artefacts of ``eventhubs-connector-setup``."""
    a = Inputs(answers, EVENTHUBS_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "eventhubs_source.py")
    columns = bus_columns(a.text("payload_schema"), {"body": "STRING", "event_hub": "STRING", "partition": "INT",
                                                      "offset": "BIGINT", "enqueued_ts": "TIMESTAMP"})
    record_table(a.text("target_table"), "bronze", columns, writer=path, event_time=event_time_of(a.text("payload_schema")),
                 id_column=payload_id(a.text("payload_schema")))
    current().sources.append({"kind": "eventhubs", "name": a.text("event_hub")})
    return [Artifact(path, eventhubs_module(a, path), "python",
                     "Event Hubs source through the Kafka endpoint: connection string from a secret scope, "
                     "groupIdPrefix, maxOffsetsPerTrigger, body parsed with the declared schema, Delta sink."),
            Artifact(config_path(doc_location, "eventhubs-connector-config-tmpl.json"), eventhubs_config(a), "json",
                     "The Kafka-endpoint reader options of the module (same values; the secret as a reference)."),
            Artifact(str(folder / "verify_ingest.sql"),
                     offsets_sql(table_name(a.text("target_table")), "`partition`", "`offset`",
                                 "event hub " + a.text("event_hub"), topic="event_hub"),
                     "sql", "Exactly-once verification: no offset written twice, offsets read per partition.")]


def eventhubs_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``eventhubs-connector-setup``."""
    a = Inputs(answers, EVENTHUBS_DEFAULTS)
    scope, key = a.secret("connection_string")
    tus, partitions = a.int("throughput_units"), a.int("partitions")
    first = (f"Connection string from `dbutils.secrets.get(scope=\"{scope}\", key=\"{key}\")` (a Listen-only shared "
             f"access policy); rotate every {a.duration('rotation_period').spark}. Spark generates "
             f"a consumer group per query named with the prefix `{a.text('consumer_group')}` (`groupIdPrefix`; offsets "
             f"live in the checkpoint, so no `kafka.group.id` is set). `startingOffsets={a.text('starting_offsets')}` "
             f"applies to a new checkpoint; {partitions} partitions give {partitions} parallel read tasks "
             "(raise with `minPartitions`).")
    egress_events = tus * 4096
    per_trigger = a.int("max_events_per_trigger")
    interval = a.duration("trigger_interval").seconds
    second = (f"{tus} throughput units allow egress up to {tus * 2} MB/s or {egress_events} events/s; "
              f"{per_trigger} events per micro-batch every {a.duration('trigger_interval').spark} is about "
              f"{per_trigger / max(interval, 1):.0f} events/s. Timeouts follow Microsoft's guidance "
              "(`kafka.request.timeout.ms=60000`, `kafka.session.timeout.ms=30000`); the job retries on failure and "
              "`failOnDataLoss=true` stops the query if it falls behind retention. Add throughput units before "
              "partitions: the partition count is fixed after creation on the Standard tier.")
    return [first, second]


# -- Kinesis --------------------------------------------------------------------------

KINESIS_DEFAULTS = {
    "shards": "4",
    "iam_role": "arn:aws:iam::123456789012:role/kinesis-reader",
    "stream_readers": "2",
    "checkpoint_root": "/Volumes/main/streaming/checkpoints/kinesis_events",
    "target_table": "main.bronze.kinesis_events",
    "initial_position": "latest",
    "trigger_interval": "1 minute",
    "region": "us-east-1",
    "stream": "orders-events",
    "payload_schema": PAYLOAD_SCHEMA_DEFAULT,
    "service_credential": "kinesis-reader",
}


def kinesis_auth(a: Inputs) -> tuple[str, str]:
    """``(option, value)`` of the Kinesis credential.

    A Unity Catalog service credential on serverless (no instance profiles there) or when no role ARN was
    given; else the IAM role to assume.
    """
    role = a.text("iam_role")
    if current().serverless or not role.startswith("arn:"):
        return "serviceCredential", a.text("service_credential")
    return "roleArn", role


def runtime_before(version: tuple[int, int]) -> bool:
    """Whether the thread's classic Databricks Runtime is older than ``version`` (unknown or serverless: no)."""
    design = current()
    match = re.match(r"^\s*(\d+)\.(\d+)", design.runtime or "")
    return not design.serverless and match is not None and (int(match.group(1)), int(match.group(2))) < version


def credential_warning(a: Inputs) -> str:
    """What stops a Unity Catalog service credential on the thread's runtime (empty when nothing does)."""
    option, _ = kinesis_auth(a)
    if option != "serviceCredential" or not runtime_before((16, 1)):
        return ""
    return (f"Unity Catalog service credentials need Databricks Runtime 16.1 or above; on {current().runtime} give the "
            "IAM role's ARN instead (roleArn) or move the job to 16.1+.")


def other_readers(a: Inputs) -> int:
    """Applications besides this one that read the stream."""
    return max(0, a.int("stream_readers") - 1)


def kinesis_uses_efo(a: Inputs) -> bool:
    """Enhanced fan-out when other applications read the same stream."""
    return other_readers(a) >= 1


def kinesis_module(a: Inputs, path: str = "kinesis_source.py") -> str:
    """The Kinesis module: IAM role or service credential, no keys in code."""
    table = a.text("target_table")
    auth_option, role = kinesis_auth(a)
    efo = kinesis_uses_efo(a)
    fetch_rate = min(1.0, 2.0 / a.int("stream_readers"))
    rows = [
        ("STREAM_NAME", py(a.text("stream")), "streamName"),
        ("REGION", py(a.text("region")), "set explicitly: the default is the cluster's region"),
        ("AWS_AUTH", py(role), f"{auth_option}: no access keys in code"),
        ("INITIAL_POSITION", py(a.text("initial_position")), "read only when the checkpoint is new"),
        ("CONSUMER_MODE", py("efo" if efo else "polling"), "efo: dedicated 2 MB/s per shard per consumer"),
        ("SHARDS", str(a.int("shards")), "about SHARDS / shardsPerTask Spark tasks read in parallel"),
        ("PAYLOAD_SCHEMA", py(a.text("payload_schema")), "the record data's schema (DDL): parsed with from_json"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint (sequence numbers)"),
        ("TARGET_TABLE", py(table), "Bronze Delta table"),
        ("QUERY_NAME", py(unique_query_name(query_name("bronze", table), path)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval (classic compute)"),
    ]
    fetch = "" if efo else (f'\n        .option("maxFetchRate", "{fetch_rate:.1f}")  # MB/s per shard, shared with '
                            "the other polling consumers")
    read = f'''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: format("kinesis") with {auth_option} (no keys), bounded prefetch."""
    return (
        spark.readStream.format("kinesis")
        .option("streamName", STREAM_NAME)
        .option("region", REGION)
        .option("{auth_option}", AWS_AUTH)
        .option("initialPosition", INITIAL_POSITION)
        .option("consumerMode", CONSUMER_MODE)
        .option("shardsPerTask", "5"){fetch}
        .load()
    )'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Parse the data with PAYLOAD_SCHEMA (raw body kept); keep stream, shard and sequence number for audit and replay."""
    body = F.col("data").cast("string")
    return (
        df.select(
            body.alias("body"),
            F.from_json(body, PAYLOAD_SCHEMA).alias("payload"),
            F.col("stream").alias("stream_name"),
            "partitionKey",
            "shardId",
            "sequenceNumber",
            F.col("approximateArrivalTimestamp").alias("arrival_ts"),
            F.current_timestamp().alias("ingest_ts"),
        )
        .select("*", "payload.*")
        .drop("payload")
    )'''
    start = start_block("The sink edge: a Delta table, exactly-once through the checkpoint.", DELTA_SINK,
                        ".toTable(TARGET_TABLE)")
    doc = [
        compute_note(),
        f"Reads Kinesis stream {a.text('stream')} ({a.text('region')}) into {table}.",
        *([credential_warning(a)] if credential_warning(a) else []),
        "The IAM principal needs ListShards, GetRecords and GetShardIterator (plus consumer registration for "
        "enhanced fan-out). A deleted and recreated stream needs a new checkpoint.",
        "Retries and backoff come from the job (continuous jobs retry with exponential backoff); throttled reads "
        "back off through maxFetchRate / minFetchPeriod (backpressure), and shardsPerTask sets the read concurrency.",
        "Traffic is encrypted in transit (TLS); the role's temporary credentials rotate automatically, so there is no "
        "key to rotate. EFO consumers are billed per shard-hour and per GB: put them in the stream's cost budget.",
        CONVENTION_NOTE,
    ]
    prod, helpers = target_section(table, a.text("checkpoint_root"))
    return join(header("Amazon Kinesis → Bronze (IAM role, no keys).", "kinesis-connector", doc,
                       extra_imports=("import argparse",)),
                constants(rows), prod, read, transform, start, helpers,
                job_main("kinesis_source.py", ["TARGET_TABLE"], ["CHECKPOINT"]))


def kinesis_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                     workspace: object = None) -> list[Artifact]:
    """Artefacts of ``kinesis-connector-setup``."""
    a = Inputs(answers, KINESIS_DEFAULTS)
    folder = artifact_dir(doc_location)
    path = str(folder / "kinesis_source.py")
    columns = bus_columns(a.text("payload_schema"), {"body": "STRING", "stream_name": "STRING", "partitionKey": "STRING",
                                                      "shardId": "STRING",
                                                      "sequenceNumber": "STRING", "arrival_ts": "TIMESTAMP"})
    record_table(a.text("target_table"), "bronze", columns, writer=path, event_time=event_time_of(a.text("payload_schema")),
                 id_column=payload_id(a.text("payload_schema")))
    current().sources.append({"kind": "kinesis", "name": a.text("stream")})
    auth_option, auth = kinesis_auth(a)
    config = {"streamName": a.text("stream"), "region": a.text("region"), auth_option: auth,
              "initialPosition": a.text("initial_position"), "consumerMode": "efo" if kinesis_uses_efo(a) else "polling",
              "shardsPerTask": "5"}
    return [Artifact(config_path(doc_location, "kinesis-connector-config-tmpl.json"), dump_json(config), "json",
                     "The Kinesis reader options of the module (Databricks option names, same values as the code)."),
            Artifact(path, kinesis_module(a, path), "python",
                     "Kinesis source: IAM role / service credential, initialPosition, consumerMode (EFO or polling), "
                     "fetch limits, Delta sink."),
            Artifact(str(folder / "verify_ingest.sql"),
                     offsets_sql(table_name(a.text("target_table")), "shardId", "sequenceNumber",
                                 "stream " + a.text("stream"), dense=False, topic="stream_name"),
                     "sql", "Exactly-once verification: no sequence number written twice, rows per shard (sequence "
                            "numbers are not consecutive, so no gap check).")]


def kinesis_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``kinesis-connector-setup``."""
    a = Inputs(answers, KINESIS_DEFAULTS)
    option, value = kinesis_auth(a)
    auth = f"`roleArn={value}`" if option == "roleArn" else f"the Unity Catalog service credential `{value}`"
    warning = credential_warning(a)
    auth += f" ({warning})" if warning else ""
    first = (f"Access through {auth}, never access keys; the principal needs ListShards, GetRecords and "
             f"GetShardIterator. Progress lives in `{a.text('checkpoint_root')}`; "
             f"`initialPosition={a.text('initial_position')}` applies only to a new checkpoint; the job retries "
             "failed runs with backoff.")
    shards, others = a.int("shards"), other_readers(a)
    tasks = max(1, -(-shards // 5))
    if kinesis_uses_efo(a):
        fan = (f"{others} other consumer(s) read the stream, so enhanced fan-out (`consumerMode=efo`) gives this "
               f"query its own 2 MB/s per shard ({shards * 2} MB/s over {shards} shards); EFO consumers are billed "
               "per shard-hour and per GB, so retire unused ones.")
    else:
        fan = (f"No other consumer: polling (`consumerMode=polling`) with `maxFetchRate` bounding the prefetch "
               f"per shard ({shards} shards).")
    second = f"{fan} With `shardsPerTask=5`, {shards} shards are read by about {tasks} task(s); give the cluster at " \
             "least that many cores. Backpressure: lower `maxFetchRate` (or move to EFO) on throttling."
    return [first, second]


register("autoloader-streaming-ingest", autoloader_generate, notes=autoloader_notes)
register("kafka-connector-setup", kafka_generate, notes=kafka_notes)
register("eventhubs-connector-setup", eventhubs_generate, notes=eventhubs_notes)
register("kinesis-connector-setup", kinesis_generate, notes=kinesis_notes)
