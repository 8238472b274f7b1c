"""Source connectors: Auto Loader, Kafka, Event Hubs (Kafka endpoint) and Kinesis read code.

Each generator writes one PySpark module in the edge convention (read_stream /
transform / write_batch / start / main). Options and their meaning come from
the pack's articles (autoloader, kafka, eventhubs, kinesis); credentials are
only ever read with ``dbutils.secrets.get(scope=..., key=...)`` inside a function.
"""

from __future__ import annotations

import re

from tools.artifacts.base import (
    Artifact,
    Inputs,
    artifact_dir,
    py,
    query_name,
    register,
    short_name,
    slug,
    table_name,
)
from tools.artifacts.skeleton import CONVENTION_NOTE, DBUTILS_HELPER, constants, header, join, main_block

PLAIN_LOGIN_MODULE = "kafkashaded.org.apache.kafka.common.security.plain.PlainLoginModule"


def json_path(field: str) -> str:
    """A ``get_json_object`` path for a top-level field."""
    return f"$.{field}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", field) else "$['" + field.replace("'", "") + "']"


def trigger_call(mode: str, interval: str) -> str:
    """The ``.trigger(...)`` argument list for a trigger choice."""
    return "availableNow=True" if mode.lower() == "availablenow" else "processingTime=TRIGGER_INTERVAL"


def offsets_sql(table: str, partition: str, offset: str, what: str) -> str:
    """Exactly-once evidence for a message-bus Bronze table: no duplicated positions, no gaps."""
    return f"""-- Exactly-once verification for {table} ({what}). Run after restarts and replays.

-- 1. A position written twice means a non-idempotent write (must be empty).
SELECT {partition}, {offset}, count(*) AS copies
FROM {table}
GROUP BY {partition}, {offset}
HAVING count(*) > 1;

-- 2. Rows per {partition} over the last day vs the span of positions read
--    (a shortfall on a non-compacted source means skipped data).
SELECT {partition}, min({offset}) AS first_position, max({offset}) AS last_position, count(*) AS rows
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


def autoloader_module(a: Inputs) -> str:
    """The Auto Loader ingest module: cloudFiles read, rescued rows to the DLQ, idempotent writes."""
    fmt = a.text("file_format")
    fixed_schema = fmt.lower() in ("text", "binaryfile")
    explicit_schema = fmt.lower() == "orc"  # Auto Loader cannot infer ORC schemas
    rescue = not fixed_schema
    mode = a.text("schema_evolution_mode")
    table = a.text("target_table")
    app_id = f"{slug(short_name(table))}_autoloader_v1"
    rows = [
        ("SOURCE_PATH", py(a.text("source_path")), "directory or Unity Catalog volume to ingest"),
        ("FILE_FORMAT", py(fmt), "cloudFiles.format"),
        ("SCHEMA_LOCATION", py(a.text("schema_location")), "cloudFiles.schemaLocation: inferred schema and its versions"),
        ("SCHEMA_HINTS", py(a.text("schema_hints")), "known column types; the rest is inferred"),
        ("SCHEMA_EVOLUTION_MODE", py(mode), "what a new column does (addNewColumns stops the stream once)"),
        ("MAX_FILES_PER_TRIGGER", str(a.int("max_files_per_trigger")), "cloudFiles.maxFilesPerTrigger (rate limit)"),
        ("ID_COLUMN", py(a.text("id_column")), "idempotency key of an event"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint; never shared"),
        ("TARGET_TABLE", py(table), "Bronze table"),
        ("DLQ_TABLE", py(a.text("dlq_table")), "rescued / malformed records"),
        ("QUERY_NAME", py(query_name("bronze", table)), "shown in the Spark UI and metrics"),
        ("TXN_APP_ID", py(app_id), "stable id for idempotent Delta writes; change it when the checkpoint is reset"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval"),
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
    transform = f'''def transform(df: DataFrame) -> DataFrame:
    """Add lineage columns and the idempotency key (the event id; the file path is kept for audit)."""
    return (
        df.withColumn("_source_file", F.col("_metadata.file_path"))
        .withColumn("_ingest_ts", F.current_timestamp())
        .withColumn("_idempotency_key", {key_expr})
    )'''
    merge_schema = '\n        .option("mergeSchema", "true")  # new columns from schema evolution reach Bronze' \
        if mode.lower() == "addnewcolumns" else ""
    if rescue:
        write = f'''def write_batch(batch_df: DataFrame, batch_id: int) -> None:
    """Split the micro-batch: rescued rows to the DLQ, the rest to Bronze; a retried batch is skipped by Delta."""
    batch_df.persist()
    good = batch_df.filter(F.col("_rescued_data").isNull())
    dead_letters = batch_df.filter(F.col("_rescued_data").isNotNull()).select(
        F.lit("schema_violation").alias("dlq_reason"),
        F.to_json(F.struct("*")).alias("payload"),
        F.col("_source_file").alias("source_ref"),
        F.col("_idempotency_key").alias("record_key"),
        F.col("_ingest_ts").alias("ingest_ts"),
        F.lit(TXN_APP_ID).alias("pipeline_version"),
        F.lit("NEW").alias("status"),
    )
    (
        good.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id){merge_schema}
        .saveAsTable(TARGET_TABLE)
    )
    (
        dead_letters.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id)
        .saveAsTable(DLQ_TABLE)
    )
    batch_df.unpersist()'''
    else:
        write = '''def write_batch(batch_df: DataFrame, batch_id: int) -> None:
    """Append the micro-batch to Bronze; Delta skips a retried batch (txnAppId + txnVersion)."""
    (
        batch_df.write.format("delta")
        .mode("append")
        .option("txnAppId", TXN_APP_ID)
        .option("txnVersion", batch_id)
        .saveAsTable(TARGET_TABLE)
    )'''
    trigger = trigger_call(a.text("trigger_mode"), "")
    start = f'''def start(df: DataFrame, checkpoint: str = CHECKPOINT) -> StreamingQuery:
    """The sink edge: foreachBatch(write_batch) with this query's own checkpoint."""
    return (
        df.writeStream.foreachBatch(write_batch)
        .queryName(QUERY_NAME)
        .option("checkpointLocation", checkpoint)
        .trigger({trigger})
        .start()
    )'''
    doc = [
        f"Ingests {a.text('file_format')} files from {a.text('source_path')} into {table}; "
        f"rows Auto Loader could not fit the schema (_rescued_data) go to {a.text('dlq_table')}.",
        "Run it as a job task with retries: with addNewColumns a new column stops the stream once, "
        "and the restart picks up the evolved schema.",
        "Duplicates: each file is ingested once (the checkpoint remembers it); duplicate events across files are removed "
        "downstream on the key within a dedup window, latest version wins (*idempotency-dedup). Dead letters are "
        "replayed after a fix (*dlq-ops); keep the DLQ's retention short to control cost.",
        "Risky schema changes are validated with a shadow stream first (*schema-evolution-live); rollback is a "
        "RESTORE of the Bronze table. Timeouts and backoff come from the job's retry policy.",
        CONVENTION_NOTE,
    ]
    return join(header("Auto Loader → Bronze with a DLQ for rescued records.", "autoloader-streaming", doc),
                constants(rows), read, transform, write, start, main_block())


def autoloader_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                        workspace: object = None) -> list[Artifact]:
    """Artefacts of ``autoloader-streaming-ingest``."""
    a = Inputs(answers, AUTOLOADER_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [Artifact(str(folder / "autoloader_ingest.py"), autoloader_module(a), "python",
                     "Auto Loader ingest: cloudFiles options, rescued rows to the DLQ, idempotent Delta writes "
                     "(txnAppId/txnVersion), its own checkpoint.")]


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
    trigger = ("`availableNow` (drain and stop; schedule it)" if a.text("trigger_mode").lower() == "availablenow"
               else f"`processingTime={a.duration('trigger_interval').spark}`")
    second = (f"Checkpoint `{a.text('checkpoint_root')}` belongs to this query alone. Rows with `_rescued_data` go "
              f"to `{a.text('dlq_table')}`, the rest to `{a.text('target_table')}`; the idempotency key is "
              f"`{a.text('id_column')}` (file path kept as `_source_file`), and both writes carry "
              f"txnAppId/txnVersion so a retried batch is not written twice. Trigger: {trigger}.")
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
    "jaas": "streaming/kafka-jaas",
}


def kafka_module(a: Inputs) -> str:
    """The Kafka source module: SASL_SSL with the JAAS config from a secret scope, rate limited."""
    scope, key = a.secret("jaas")
    table = a.text("target_table")
    rows = [
        ("BOOTSTRAP_SERVERS", py(a.text("servers")), "kafka.bootstrap.servers"),
        ("TOPIC", py(a.text("topic")), "subscribe (changing it later needs a new checkpoint)"),
        ("SECRET_SCOPE", py(scope), "secret scope holding the JAAS config ..."),
        ("SECRET_KEY_NAME", py(key), "... under this key (the value never appears in code)"),
        ("STARTING_OFFSETS", py(a.text("starting_offsets")), "read only when the checkpoint is new"),
        ("MAX_OFFSETS_PER_TRIGGER", str(a.int("max_offsets_per_trigger")), "rate limit per micro-batch (throughput cap)"),
        ("FAIL_ON_DATA_LOSS", py(a.choice("fail_on_data_loss")), "fail when offsets aged out of retention"),
        ("TOPIC_PARTITIONS", str(a.int("partitions")), "one Spark task per partition by default"),
        ("EVENT_ID_PATH", py(json_path(a.text("event_id_field"))), "event id inside the JSON value"),
        ("DEDUP_WINDOW", py(a.duration("dedup_window").spark), "producer retries closer than this are dropped"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint: the committed offsets live here"),
        ("TARGET_TABLE", py(table), "Bronze Delta table"),
        ("QUERY_NAME", py(query_name("bronze", table)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: SASL_SSL, JAAS config from the secret scope, bounded micro-batches."""
    dbutils = _dbutils(spark)
    jaas_config = dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP_SERVERS)
        .option("subscribe", TOPIC)
        .option("kafka.security.protocol", "SASL_SSL")
        .option("kafka.sasl.mechanism", "PLAIN")
        .option("kafka.sasl.jaas.config", jaas_config)
        .option("startingOffsets", STARTING_OFFSETS)
        .option("maxOffsetsPerTrigger", MAX_OFFSETS_PER_TRIGGER)
        .option("failOnDataLoss", FAIL_ON_DATA_LOSS)
        .load()
    )'''
    transform = '''def transform(df: DataFrame) -> DataFrame:
    """Decode the record, keep its Kafka coordinates, drop producer duplicates within DEDUP_WINDOW."""
    return (
        df.select(
            F.col("key").cast("string").alias("key"),
            F.col("value").cast("string").alias("value"),
            "topic",
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_ts"),
        )
        .withColumn(
            "event_id",
            # A record without an id is identified by where it sits in the topic.
            F.coalesce(F.get_json_object("value", EVENT_ID_PATH), F.concat_ws(":", "topic", "partition", "offset")),
        )
        .withWatermark("kafka_ts", DEDUP_WINDOW)
        .dropDuplicatesWithinWatermark(["event_id"])
        .withColumn("ingest_ts", F.current_timestamp())
    )'''
    start = '''def start(df: DataFrame, checkpoint: str = CHECKPOINT) -> StreamingQuery:
    """The sink edge: a Delta table, exactly-once through the checkpoint and the Delta log."""
    return (
        df.writeStream.format("delta")
        .queryName(QUERY_NAME)
        .option("checkpointLocation", checkpoint)
        .outputMode("append")
        .trigger(processingTime=TRIGGER_INTERVAL)
        .toTable(TARGET_TABLE)
    )'''
    doc = [
        f"Reads topic {a.text('topic')} from {a.text('servers')} into {table}.",
        "Offsets are tracked in the checkpoint (Spark does not commit consumer offsets to Kafka). "
        "Rotate the credential by updating the secret, then restarting the query.",
        "Retries and backoff come from the job (continuous jobs retry with exponential backoff); the Kafka client "
        "timeouts keep their defaults unless the brokers need longer (kafka.request.timeout.ms).",
        CONVENTION_NOTE,
    ]
    return join(header("Kafka → Bronze (SASL_SSL, secrets from a secret scope).", "kafka-connector", doc,
                       extra_imports=("from typing import Any",)),
                constants(rows), DBUTILS_HELPER, read, transform, start, main_block())


def kafka_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                   workspace: object = None) -> list[Artifact]:
    """Artefacts of ``kafka-connector-setup``."""
    a = Inputs(answers, KAFKA_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [Artifact(str(folder / "kafka_source.py"), kafka_module(a), "python",
                     "Kafka source: SASL_SSL with the JAAS config from a secret scope, startingOffsets, "
                     "maxOffsetsPerTrigger, failOnDataLoss, dedup within a watermark, Delta sink."),
            Artifact(str(folder / "verify_ingest.sql"),
                     offsets_sql(table_name(a.text("target_table")), "`partition`", "`offset`", "topic " + a.text("topic")),
                     "sql", "Exactly-once verification: no offset written twice, offsets read per partition.")]


def kafka_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``kafka-connector-setup``."""
    a = Inputs(answers, KAFKA_DEFAULTS)
    scope, key = a.secret("jaas")
    first = (f"`kafka.security.protocol=SASL_SSL`, `kafka.sasl.mechanism=PLAIN`, JAAS config read with "
             f"`dbutils.secrets.get(scope=\"{scope}\", key=\"{key}\")` (rotation: update the secret, restart the "
             f"query). `startingOffsets={a.text('starting_offsets')}` applies only to a new checkpoint; progress "
             f"is the offsets committed in `{a.text('checkpoint_root')}`, not Kafka consumer-group commits.")
    per_partition = max(1, a.int("max_offsets_per_trigger") // max(1, a.int("partitions")))
    loss = ("`failOnDataLoss=true`: the query stops rather than skip offsets lost to retention"
            if a.choice("fail_on_data_loss") == "true" else
            "`failOnDataLoss=false` was chosen: lost offsets are skipped silently — record this data-loss "
            "decision and alert on retention")
    second = (f"At most {a.int('max_offsets_per_trigger')} offsets per micro-batch (about {per_partition} per "
              f"partition over {a.int('partitions')} partitions); {loss}. Producer duplicates closer than "
              f"{a.duration('dedup_window').spark} are dropped on `{a.text('event_id_field')}` "
              f"(dropDuplicatesWithinWatermark); the Delta sink `{a.text('target_table')}` is exactly-once.")
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
}


def eventhubs_module(a: Inputs) -> str:
    """The Event Hubs module: the Kafka endpoint with the connection string from a secret scope."""
    scope, key = a.secret("connection_string")
    table = a.text("target_table")
    namespace = a.text("namespace").removesuffix(".servicebus.windows.net")
    rows = [
        ("BOOTSTRAP_SERVERS", py(f"{namespace}.servicebus.windows.net:9093"), "the namespace's Kafka endpoint"),
        ("EVENT_HUB", py(a.text("event_hub")), "the event hub is the Kafka topic"),
        ("CONSUMER_GROUP", py(a.text("consumer_group")), "dedicated to this stream: one query per group"),
        ("SECRET_SCOPE", py(scope), "secret scope holding the connection string (Listen-only policy) ..."),
        ("SECRET_KEY_NAME", py(key), "... under this key"),
        ("PLAIN_LOGIN_MODULE", py(PLAIN_LOGIN_MODULE), "shaded Kafka client class on Databricks Runtime"),
        ("STARTING_OFFSETS", py(a.text("starting_offsets")), "read only when the checkpoint is new"),
        ("MAX_EVENTS_PER_TRIGGER", str(a.int("max_events_per_trigger")), "maxOffsetsPerTrigger: events per micro-batch"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint"),
        ("TARGET_TABLE", py(table), "Bronze Delta table"),
        ("QUERY_NAME", py(query_name("bronze", table)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval"),
    ]
    read = '''def read_stream(spark: SparkSession) -> DataFrame:
    """The source edge: the Event Hubs Kafka endpoint, SASL_SSL + PLAIN with $ConnectionString."""
    dbutils = _dbutils(spark)
    connection_string = dbutils.secrets.get(scope=SECRET_SCOPE, key=SECRET_KEY_NAME)
    jaas_config = f'{PLAIN_LOGIN_MODULE} required username="$ConnectionString" password="{connection_string}";'
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP_SERVERS)
        .option("subscribe", EVENT_HUB)
        .option("kafka.group.id", CONSUMER_GROUP)
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
    """Decode the event and keep partition and offset for audit and replay."""
    return df.select(
        F.col("value").cast("string").alias("body"),
        F.col("topic").alias("event_hub"),
        "partition",
        "offset",
        F.col("timestamp").alias("enqueued_ts"),
        F.current_timestamp().alias("ingest_ts"),
    )'''
    start = '''def start(df: DataFrame, checkpoint: str = CHECKPOINT) -> StreamingQuery:
    """The sink edge: a Delta table, exactly-once through the checkpoint."""
    return (
        df.writeStream.format("delta")
        .queryName(QUERY_NAME)
        .option("checkpointLocation", checkpoint)
        .outputMode("append")
        .trigger(processingTime=TRIGGER_INTERVAL)
        .toTable(TARGET_TABLE)
    )'''
    doc = [
        f"Reads event hub {a.text('event_hub')} of namespace {namespace} through its Kafka endpoint "
        f"(Databricks recommends the built-in Kafka connector) into {table}.",
        f"Key rotation every {a.duration('rotation_period').spark}: regenerate the SAS key, update the secret, "
        "restart the query (established connections keep the old key until then).",
        "Retries and backoff come from the job (continuous jobs retry with exponential backoff); client timeouts "
        "follow Microsoft's Event Hubs guidance.",
        CONVENTION_NOTE,
    ]
    return join(header("Azure Event Hubs (Kafka endpoint) → Bronze.", "eventhubs-connector", doc,
                       extra_imports=("from typing import Any",)),
                constants(rows), DBUTILS_HELPER, read, transform, start, main_block())


def eventhubs_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                       workspace: object = None) -> list[Artifact]:
    """Artefacts of ``eventhubs-connector-setup``."""
    a = Inputs(answers, EVENTHUBS_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [Artifact(str(folder / "eventhubs_source.py"), eventhubs_module(a), "python",
                     "Event Hubs source through the Kafka endpoint: connection string from a secret scope, "
                     "dedicated consumer group, maxOffsetsPerTrigger, Delta sink."),
            Artifact(str(folder / "verify_ingest.sql"),
                     offsets_sql(table_name(a.text("target_table")), "`partition`", "`offset`",
                                 "event hub " + a.text("event_hub")),
                     "sql", "Exactly-once verification: no offset written twice, offsets read per partition.")]


def eventhubs_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``eventhubs-connector-setup``."""
    a = Inputs(answers, EVENTHUBS_DEFAULTS)
    scope, key = a.secret("connection_string")
    tus, partitions = a.int("throughput_units"), a.int("partitions")
    first = (f"Connection string from `dbutils.secrets.get(scope=\"{scope}\", key=\"{key}\")` (a Listen-only shared "
             f"access policy); rotate every {a.duration('rotation_period').spark}. Consumer group "
             f"`{a.text('consumer_group')}` serves this query only. `startingOffsets={a.text('starting_offsets')}` "
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
}


def other_readers(a: Inputs) -> int:
    """Applications besides this one that read the stream."""
    return max(0, a.int("stream_readers") - 1)


def kinesis_uses_efo(a: Inputs) -> bool:
    """Enhanced fan-out when other applications read the same stream."""
    return other_readers(a) >= 1


def kinesis_module(a: Inputs) -> str:
    """The Kinesis module: IAM role or service credential, no keys in code."""
    table = a.text("target_table")
    role = a.text("iam_role")
    efo = kinesis_uses_efo(a)
    auth_option = "roleArn" if role.startswith("arn:") else "serviceCredential"
    fetch_rate = min(1.0, 2.0 / a.int("stream_readers"))
    rows = [
        ("STREAM_NAME", py(a.text("stream")), "streamName"),
        ("REGION", py(a.text("region")), "set explicitly: the default is the cluster's region"),
        ("AWS_AUTH", py(role), f"{auth_option}: no access keys in code"),
        ("INITIAL_POSITION", py(a.text("initial_position")), "read only when the checkpoint is new"),
        ("CONSUMER_MODE", py("efo" if efo else "polling"), "efo: dedicated 2 MB/s per shard per consumer"),
        ("SHARDS", str(a.int("shards")), "about SHARDS / shardsPerTask Spark tasks read in parallel"),
        ("CHECKPOINT", py(a.text("checkpoint_root")), "this query's own checkpoint (sequence numbers)"),
        ("TARGET_TABLE", py(table), "Bronze Delta table"),
        ("QUERY_NAME", py(query_name("bronze", table)), "shown in the Spark UI and metrics"),
        ("TRIGGER_INTERVAL", py(a.duration("trigger_interval").spark), "processingTime interval"),
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
    """Decode the payload and keep shard and sequence number for audit and replay."""
    return df.select(
        F.col("data").cast("string").alias("body"),
        "partitionKey",
        "shardId",
        "sequenceNumber",
        F.col("approximateArrivalTimestamp").alias("arrival_ts"),
        F.current_timestamp().alias("ingest_ts"),
    )'''
    start = '''def start(df: DataFrame, checkpoint: str = CHECKPOINT) -> StreamingQuery:
    """The sink edge: a Delta table, exactly-once through the checkpoint."""
    return (
        df.writeStream.format("delta")
        .queryName(QUERY_NAME)
        .option("checkpointLocation", checkpoint)
        .outputMode("append")
        .trigger(processingTime=TRIGGER_INTERVAL)
        .toTable(TARGET_TABLE)
    )'''
    doc = [
        f"Reads Kinesis stream {a.text('stream')} ({a.text('region')}) into {table}.",
        "The IAM principal needs ListShards, GetRecords and GetShardIterator (plus consumer registration for "
        "enhanced fan-out). A deleted and recreated stream needs a new checkpoint.",
        "Retries and backoff come from the job (continuous jobs retry with exponential backoff); throttled reads "
        "back off through maxFetchRate / minFetchPeriod (backpressure), and shardsPerTask sets the read concurrency.",
        "Traffic is encrypted in transit (TLS); the role's temporary credentials rotate automatically, so there is no "
        "key to rotate. EFO consumers are billed per shard-hour and per GB: put them in the stream's cost budget.",
        CONVENTION_NOTE,
    ]
    return join(header("Amazon Kinesis → Bronze (IAM role, no keys).", "kinesis-connector", doc),
                constants(rows), read, transform, start, main_block())


def kinesis_generate(answers: dict[str, str], rendered: dict[str, str], doc_location: str,
                     workspace: object = None) -> list[Artifact]:
    """Artefacts of ``kinesis-connector-setup``."""
    a = Inputs(answers, KINESIS_DEFAULTS)
    folder = artifact_dir(doc_location)
    return [Artifact(str(folder / "kinesis_source.py"), kinesis_module(a), "python",
                     "Kinesis source: IAM role / service credential, initialPosition, consumerMode (EFO or polling), "
                     "fetch limits, Delta sink."),
            Artifact(str(folder / "verify_ingest.sql"),
                     offsets_sql(table_name(a.text("target_table")), "shardId", "sequenceNumber",
                                 "stream " + a.text("stream")),
                     "sql", "Exactly-once verification: no sequence number written twice, positions read per shard.")]


def kinesis_notes(answers: dict[str, str]) -> list[str]:
    """One decision line per step of ``kinesis-connector-setup``."""
    a = Inputs(answers, KINESIS_DEFAULTS)
    role = a.text("iam_role")
    auth = f"`roleArn={role}`" if role.startswith("arn:") else f"the service credential `{role}`"
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
