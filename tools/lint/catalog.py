"""The rule catalogue: every rule's id, topic, checklist item, severity and fix.

The checklist ids and item texts are the bundle's own (``checklists/*.md`` in
the agent bundle), verbatim, so the checklist runner can attach findings to
items by exact match. ``RULES.md`` is generated from this table by
``rules_markdown()`` and checked against it by the tests.
"""

from __future__ import annotations

from tools.lint.model import Finding, Rule

# Checklist ids and bullets, verbatim from the bundle.
WATERMARK_CL = "watermarking-lateness-checklist"
WATERMARK_ITEM = "水位/窗口/乱序容忍"
DEDUP_CL = "idempotency-dedup-checklist"
DEDUP_ITEM = "幂等键/去重窗口"
EXACTLY_ONCE_CL = "exactly-once-checklist"
CONSISTENCY_ITEM = "接入/处理/输出端一致性"
E2E_IDEMPOTENT_ITEM = "端到端幂等验证"
BACKPRESSURE_CL = "backpressure-retries-checklist"
RATE_ITEM = "触发器/限速/并发"
STATE_CL = "state-store-health-checklist"
STATE_ITEM = "TTL/清理/压缩"
DLQ_CL = "dlq-quarantine-checklist"
DLQ_ITEM = "分类/触发/重放"
DQ_CL = "streaming-dq-checklist"
DQ_ITEM = "新鲜度/及时性/完整性/唯一性/范围"
SCHEMA_CL = "schema-evolution-live-checklist"
SCHEMA_ITEM = "可空新增/枚举扩展"
SOURCE_CL = "source-connector-checklist"
AUTH_ITEM = "认证/加密/密钥轮换"
OFFSETS_ITEM = "起始位点/位移提交策略"
COST_CL = "cost-guardrails-streaming-checklist"
BUDGET_ITEM = "预算/阈值/池与策略"
JOBS_CL = "jobs-triggers-checklist"
TRIGGER_ITEM = "连续/文件触发/微批"
RETRY_NOTIFY_ITEM = "依赖/重试/回滚/通知"
OBS_CL = "observability-sli-slo-checklist"
OBS_ITEM = "延迟/滞后/吞吐/失败率"
DR_CL = "disaster-recovery-streaming-checklist"
DR_ITEM = "回放窗口与对账点"

SECRET_FIX = (
    "Store it in a secret scope and reference it: dbutils.secrets.get(scope, key) in code, "
    "{{secrets/scope/key}} in job/pipeline configs, secret('scope', 'key') in SQL; rotate the exposed credential."
)

_RULES: tuple[Rule, ...] = (
    Rule("SE101", "watermark", WATERMARK_CL, WATERMARK_ITEM, "error",
         "Streaming aggregation without a watermark",
         "groupBy/window aggregation (Python or SQL GROUP BY over STREAM) on a stream with no withWatermark / "
         "WATERMARK clause, or a watermark that does not bound the grouping keys.",
         "Add withWatermark(event_time, delay) before the aggregation (SQL: WATERMARK col DELAY OF INTERVAL ...) "
         "and group by window(event_time, ...) so old state can be dropped. Grouping only by a small, closed "
         "set of keys (no id, no time) keeps bounded state: then the finding is PARTIAL, confirm the key set.",
         ("PASS", "FAIL", "PARTIAL")),
    Rule("SE102", "watermark", WATERMARK_CL, WATERMARK_ITEM, "error",
         "Stream-stream join without watermarks and a time range",
         "A join of two streams where a side has no watermark, or the condition has no event-time range.",
         "Put withWatermark on both inputs and add an event-time range to the join condition "
         "(e.g. b.ts BETWEEN a.ts AND a.ts + INTERVAL 1 HOUR) so join state is evicted.",
         ("PASS", "FAIL", "PARTIAL")),
    Rule("SE103", "watermark", DEDUP_CL, DEDUP_ITEM, "error",
         "Streaming de-duplication without a watermark",
         "dropDuplicates/distinct/dropDuplicatesWithinWatermark on a stream with no watermark (state grows "
         "forever), or keys that leave the watermark column out.",
         "Add withWatermark(event_time, delay) and use dropDuplicatesWithinWatermark([id]) "
         "(or include the event-time column in the dropDuplicates keys).",
         ("PASS", "FAIL", "PARTIAL")),
    Rule("SE104", "state", STATE_CL, STATE_ITEM, "error",
         "Complete output mode on an unbounded aggregation",
         "outputMode('complete') on a keyed streaming aggregation: every group is kept in state and the whole "
         "result is rewritten each trigger; a watermark does not evict state in complete mode.",
         "Use outputMode('append') with a watermark and windowed aggregation, or 'update' into a MERGE sink.",
         ("FAIL", "PARTIAL")),
    Rule("SE105", "state", STATE_CL, STATE_ITEM, "warning",
         "Arbitrary stateful operator with no state timeout",
         "applyInPandasWithState with GroupStateTimeout.NoTimeout and no state.remove(): per-key state never "
         "expires.",
         "Use ProcessingTimeTimeout/EventTimeTimeout and remove state on timeout (or transformWithState with TTL).",
         ("PARTIAL",)),
    Rule("SE201", "checkpoint", EXACTLY_ONCE_CL, CONSISTENCY_ITEM, "error",
         "Streaming query without checkpointLocation",
         "writeStream ... start()/toTable() with no checkpointLocation (a temporary checkpoint loses offsets and "
         "state on restart, breaking exactly-once).",
         "Set .option('checkpointLocation', '<durable path unique to this query>') on every query "
         "(e.g. /Volumes/<catalog>/<schema>/checkpoints/<query>).",
         ("PASS", "FAIL")),
    Rule("SE202", "checkpoint", EXACTLY_ONCE_CL, CONSISTENCY_ITEM, "error",
         "Checkpoint location shared by several queries",
         "Two streaming queries (or two entries of a config) use the same checkpoint path.",
         "Give every query its own checkpoint directory; never reuse or copy a checkpoint between queries.",
         ("FAIL",)),
    Rule("SE203", "checkpoint", DR_CL, DR_ITEM, "warning",
         "Checkpoint on ephemeral storage",
         "checkpointLocation under /tmp, dbfs:/tmp or local disk: lost on cluster restart, so the query "
         "reprocesses or skips data.",
         "Keep checkpoints on durable storage (a UC Volume or cloud storage path) next to the target table.",
         ("PARTIAL",)),
    Rule("SE204", "checkpoint", EXACTLY_ONCE_CL, CONSISTENCY_ITEM, "error",
         "Streaming job allows concurrent runs",
         "A streaming job spec with max_concurrent_runs > 1: two runs would write the same checkpoint.",
         "Set max_concurrent_runs: 1 (or use a continuous trigger, which runs one instance).",
         ("FAIL",)),
    Rule("SE205", "checkpoint", SOURCE_CL, OFFSETS_ITEM, "warning",
         "No explicit starting position",
         "Kafka / Event Hubs / Kinesis source without startingOffsets / eventhubs.startingPosition / "
         "initialPosition: a fresh checkpoint silently starts at 'latest' and skips the backlog.",
         "Set the starting position explicitly (startingOffsets 'latest', 'earliest', a JSON offset map or "
         "startingTimestamp) and record the choice in the connector spec.",
         ("PARTIAL",)),
    Rule("SE206", "checkpoint", SOURCE_CL, OFFSETS_ITEM, "info",
         "startingOffsets 'earliest' without a rate limit",
         "startingOffsets='earliest' with no maxOffsetsPerTrigger: the first run (or a checkpoint reset) "
         "replays the whole retention in one micro-batch.",
         "Confirm the topic volume and retention, and cap the first batches with maxOffsetsPerTrigger "
         "(or start from a timestamp).",
         ("PASS", "REVIEW")),
    Rule("SE207", "dq", SOURCE_CL, OFFSETS_ITEM, "warning",
         "failOnDataLoss=false",
         "failOnDataLoss set to false: offsets lost to retention or topic deletion are skipped silently.",
         "Keep failOnDataLoss=true (the default) and alert on failures; if you must relax it, monitor "
         "numOffsetsBehind/retention and record the data-loss decision.",
         ("PARTIAL",)),
    Rule("SE208", "checkpoint", EXACTLY_ONCE_CL, CONSISTENCY_ITEM, "error",
         "Checkpoint path changes on every run",
         "checkpointLocation built from uuid/random/time (or a helper named for it): every run starts a fresh "
         "checkpoint, so nothing is recovered on restart (data is skipped with startingOffsets=latest, "
         "reprocessed with earliest).",
         "Use a fixed path per query (e.g. /Volumes/<catalog>/<schema>/checkpoints/<query>); reset it only "
         "deliberately, as a recorded operation.",
         ("FAIL", "PARTIAL")),
    Rule("SE209", "checkpoint", DR_CL, DR_ITEM, "error",
         "Checkpoint deleted before the query starts",
         "dbutils.fs.rm / shutil.rmtree of a query's checkpointLocation in the same file as the query: every "
         "run forgets its offsets and state (with startingOffsets=latest a restart silently skips what was "
         "produced while it was down).",
         "Do not delete checkpoints in pipeline code; keep a reset as a separate, deliberate runbook step.",
         ("FAIL",)),
    Rule("SE210", "checkpoint", EXACTLY_ONCE_CL, CONSISTENCY_ITEM, "error",
         "start() after toTable()",
         "writeStream...toTable(name).start(): toTable already starts the query and returns a StreamingQuery, "
         "which has no start() (AttributeError at run time).",
         "Drop the trailing .start() (toTable starts the query), or use .start(path) instead of toTable.",
         ("FAIL",)),
    Rule("SE211", "checkpoint", SOURCE_CL, OFFSETS_ITEM, "error",
         "Kafka option the source ignores",
         "A Kafka source given consumer settings without the kafka. prefix (group.id, bootstrap.servers, "
         "security.protocol, sasl.*, ssl.*), settings the Spark source never passes on (topic, "
         "auto.offset.reset, enable.auto.commit) or checkpointLocation on the reader instead of the writer.",
         "Prefix Kafka client settings with kafka. (kafka.security.protocol, kafka.sasl.jaas.config); use "
         "subscribe/startingOffsets instead of topic/auto.offset.reset; set checkpointLocation on writeStream.",
         ("FAIL", "PARTIAL")),
    Rule("SE212", "checkpoint", DR_CL, DR_ITEM, "warning",
         "Full refresh allowed on a message-bus Bronze table",
         "A declarative-pipeline table that reads Kafka / Kinesis / Event Hubs without table property "
         "pipelines.reset.allowed=false: a full refresh truncates it and the source can only replay its "
         "retention, so older data is lost.",
         "Set table_properties={'pipelines.reset.allowed': 'false'} (SQL: TBLPROPERTIES) on tables fed from a "
         "message bus.",
         ("PASS", "PARTIAL")),
    Rule("SE213", "checkpoint", EXACTLY_ONCE_CL, CONSISTENCY_ITEM, "error",
         "Batch-defined table read as a stream",
         "A table defined by a batch query (spark.read / dlt.read / MATERIALIZED VIEW / LIVE TABLE) read "
         "downstream as a stream (dlt.read_stream, spark.readStream.table, STREAM(...)): the batch table is "
         "recomputed, and a streaming read fails on the first update that is not an append.",
         "Define the upstream table as a streaming table (readStream / STREAM) or read it downstream as a "
         "batch (materialized view); skipChangeCommits only if losing updates is acceptable.",
         ("FAIL",)),
    Rule("SE301", "idempotency", EXACTLY_ONCE_CL, E2E_IDEMPOTENT_ITEM, "error",
         "Non-idempotent write in foreachBatch",
         "A foreachBatch function appends/saves/INSERTs without txnAppId+txnVersion and without MERGE: a "
         "retried micro-batch writes duplicates.",
         "Make the batch write idempotent: .option('txnAppId', '<stable query id>').option('txnVersion', "
         "batch_id) on Delta writes, or MERGE on a business key.",
         ("PASS", "FAIL", "REVIEW")),
    Rule("SE302", "idempotency", EXACTLY_ONCE_CL, E2E_IDEMPOTENT_ITEM, "error",
         "txnVersion is not the batch id",
         "txnVersion is a constant: Delta skips every later batch as already written (data loss).",
         "Pass the foreachBatch batch id: .option('txnVersion', batch_id).",
         ("FAIL",)),
    Rule("SE303", "idempotency", EXACTLY_ONCE_CL, E2E_IDEMPOTENT_ITEM, "error",
         "txnAppId changes between runs",
         "txnAppId built from uuid/random/time: after a restart the replayed batch gets a new id and is "
         "written twice.",
         "Use a stable id per query (a constant or the query/table name), not a value generated at run time.",
         ("FAIL",)),
    Rule("SE304", "idempotency", DEDUP_CL, DEDUP_ITEM, "info",
         "MERGE without de-duplicating the micro-batch",
         "foreachBatch MERGE with no dropDuplicates/row_number on the batch: two source rows for one key make "
         "MERGE fail (DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE) or apply out of order.",
         "De-duplicate the batch on the merge key first, keeping the latest version "
         "(row_number over key ordered by event time desc).",
         ("REVIEW",)),
    Rule("SE401", "backpressure", BACKPRESSURE_CL, RATE_ITEM, "warning",
         "Message-bus source without a rate limit",
         "Kafka (incl. Event Hubs' Kafka endpoint) or Event Hubs source with no maxOffsetsPerTrigger / "
         "maxEventsPerTrigger: after an outage one micro-batch takes the whole backlog.",
         "Set maxOffsetsPerTrigger (Event Hubs: maxEventsPerTrigger) sized to the cluster's throughput.",
         ("PASS", "PARTIAL")),
    Rule("SE402", "backpressure", BACKPRESSURE_CL, RATE_ITEM, "warning",
         "File / Auto Loader source without a rate limit",
         "A plain file stream with no maxFilesPerTrigger/maxBytesPerTrigger: the first batch lists and reads "
         "every file. (Auto Loader caps batches at 1000 files by default, which is a rate limit.)",
         "Set maxFilesPerTrigger or maxBytesPerTrigger (Auto Loader: cloudFiles.maxBytesPerTrigger) to bound "
         "each micro-batch.",
         ("PASS", "PARTIAL")),
    Rule("SE403", "trigger", JOBS_CL, TRIGGER_ITEM, "warning",
         "Zero-interval processing-time trigger",
         "trigger(processingTime='0 seconds'): back-to-back micro-batches, constant listing/API calls and "
         "tiny files.",
         "Use a real interval sized to the latency SLO (e.g. '30 seconds'), or availableNow=True for "
         "scheduled incremental runs.",
         ("PARTIAL",)),
    Rule("SE404", "trigger", JOBS_CL, TRIGGER_ITEM, "warning",
         "Trigger.Once",
         "trigger(once=True) is deprecated and ignores rate limits (one unbounded batch).",
         "Use trigger(availableNow=True), which honours maxOffsetsPerTrigger/maxFilesPerTrigger.",
         ("PARTIAL",)),
    Rule("SE405", "trigger", JOBS_CL, TRIGGER_ITEM, "info",
         "Continuous processing trigger",
         "trigger(continuous=...) is experimental, at-least-once only and supports few operators.",
         "Confirm the sink tolerates duplicates; prefer a short processingTime trigger for exactly-once.",
         ("REVIEW",)),
    Rule("SE406", "trigger", JOBS_CL, TRIGGER_ITEM, "error",
         "Unsupported trigger on serverless compute",
         "trigger(processingTime=...), continuous or realTime in code that a job task without a cluster "
         "(serverless compute) runs: serverless notebooks and jobs support only availableNow for streaming "
         "queries (checked when the job spec and the code are checked together).",
         "Use trigger(availableNow=True) on a schedule or file-arrival trigger, or give the task a job cluster "
         "(or run the flow in a Lakeflow pipeline, whose execution modes have no such limit).",
         ("FAIL",)),
    Rule("SE501", "schema", SCHEMA_CL, SCHEMA_ITEM, "error",
         "Auto Loader without cloudFiles.schemaLocation",
         "Auto Loader inferring the schema with no cloudFiles.schemaLocation (outside a declarative pipeline, "
         "which manages it): the stream fails to start and schema changes cannot be tracked.",
         "Set .option('cloudFiles.schemaLocation', '<durable path>') (it may be the checkpoint path) or pass "
         "an explicit .schema(...).",
         ("FAIL", "REVIEW")),
    Rule("SE502", "schema", SCHEMA_CL, SCHEMA_ITEM, "warning",
         "Schema evolution off while inferring",
         "cloudFiles.schemaEvolutionMode='none' with schema inference: new source columns are silently "
         "dropped.",
         "Use schemaEvolutionMode 'addNewColumns' (restart on change) or 'rescue' and watch _rescued_data.",
         ("PARTIAL",)),
    Rule("SE503", "dlq", DLQ_CL, DLQ_ITEM, "warning",
         "No rescued-data / bad-record handling",
         "A file / Auto Loader stream with an explicit schema but no rescuedDataColumn / badRecordsPath / "
         "'rescue' mode, or mode=DROPMALFORMED: malformed or mismatched records vanish.",
         "Set rescuedDataColumn='_rescued_data' (or badRecordsPath) and route rows with non-null "
         "_rescued_data to a quarantine table.",
         ("PARTIAL",)),
    Rule("SE504", "dlq", DLQ_CL, DLQ_ITEM, "warning",
         "_rescued_data dropped without quarantine",
         "The rescued-data column is dropped and nothing in the file routes rows with rescued data anywhere: "
         "values that did not fit the schema are discarded silently.",
         "Write rows where _rescued_data IS NOT NULL to a quarantine table (or keep the column) before "
         "dropping it.",
         ("PARTIAL",)),
    Rule("SE601", "dq", DQ_CL, DQ_ITEM, "warning",
         "Declarative-pipeline table without expectations",
         "@dlt.table / @dp.table / @dp.materialized_view / create_streaming_table or SQL CREATE STREAMING "
         "TABLE / MATERIALIZED VIEW with no expectations.",
         "Add expectations (@dlt.expect_or_drop / expect_all_or_drop, SQL CONSTRAINT ... EXPECT ... ON "
         "VIOLATION DROP ROW) for completeness, range and uniqueness, and quarantine what fails.",
         ("PASS", "PARTIAL")),
    Rule("SE602", "dq", DQ_CL, DQ_ITEM, "error",
         "Decorator argument written as a function default",
         "A @dlt.table / @dp.table function with parameters named like decorator arguments (table_properties, "
         "comment, spark_conf, partition_cols, cluster_by, schema, path, name): the pipeline never passes "
         "them, so the settings are silently ignored.",
         "Move the settings into the decorator: @dlt.table(name=..., table_properties={...}, comment=...).",
         ("FAIL",)),
    Rule("SE701", "observability", OBS_CL, OBS_ITEM, "warning",
         "Query with no name and no progress monitoring",
         "A streaming query with no queryName in a file with no StreamingQueryListener / lastProgress / "
         "recentProgress / observe(): nothing identifies or measures it.",
         "Name the query (.queryName('<pipeline>_<sink>')) and publish progress (a StreamingQueryListener "
         "exporting inputRowsPerSecond, processedRowsPerSecond, batchDuration, offsets behind).",
         ("PASS", "PARTIAL")),
    Rule("SE801", "security", SOURCE_CL, AUTH_ITEM, "error",
         "Password inside a JAAS config",
         "kafka.sasl.jaas.config with a literal password=\"...\".",
         SECRET_FIX, ("FAIL",)),
    Rule("SE802", "security", SOURCE_CL, AUTH_ITEM, "error",
         "SharedAccessKey in plain text",
         "An Event Hubs / Service Bus connection string with a literal SharedAccessKey=.",
         SECRET_FIX, ("FAIL",)),
    Rule("SE803", "security", SOURCE_CL, AUTH_ITEM, "error",
         "AWS access key in plain text",
         "An AWS access key id (AKIA…/ASIA…) or a 40-character secret access key.",
         SECRET_FIX + " Prefer an instance profile / service credential over keys.", ("FAIL",)),
    Rule("SE804", "security", SOURCE_CL, AUTH_ITEM, "error",
         "Databricks token in plain text",
         "A Databricks personal access token (dapi…).",
         SECRET_FIX + " Prefer OAuth / a service principal.", ("FAIL",)),
    Rule("SE805", "security", SOURCE_CL, AUTH_ITEM, "error",
         "Credential value in plain text",
         "A password/secret/token/api-key option or config key with a literal value.",
         SECRET_FIX, ("PASS", "FAIL")),
    Rule("SE806", "security", SOURCE_CL, AUTH_ITEM, "error",
         "Unshaded JAAS login module on Databricks",
         "kafka.sasl.jaas.config naming org.apache.kafka... in a Databricks notebook: the Databricks Kafka "
         "client is shaded, so the login module is not found and the stream fails to authenticate.",
         "Use the shaded class: kafkashaded.org.apache.kafka.common.security.plain.PlainLoginModule (or "
         "...scram.ScramLoginModule).",
         ("FAIL",)),
    Rule("SE807", "security", SOURCE_CL, AUTH_ITEM, "error",
         "Kafka without encryption to a remote broker",
         "A Kafka source or sink whose bootstrap servers are remote hosts and whose security.protocol is "
         "PLAINTEXT (FAIL) or not set, which defaults to PLAINTEXT (PARTIAL).",
         "Set kafka.security.protocol to SASL_SSL or SSL (with credentials from a secret scope).",
         ("FAIL", "PARTIAL")),
    Rule("SE901", "trigger", JOBS_CL, RETRY_NOTIFY_ITEM, "warning",
         "Continuous job or pipeline without failure notifications",
         "A continuous job with no on_failure email/webhook notification, or a continuous pipeline with no "
         "notifications for on-update-failure / on-flow-failure.",
         "Add email_notifications/webhook_notifications on_failure (pipelines: notifications with alerts "
         "on-update-failure, on-update-fatal-failure, on-flow-failure) routed to the on-call channel.",
         ("PARTIAL",)),
    Rule("SE902", "trigger", JOBS_CL, RETRY_NOTIFY_ITEM, "warning",
         "Streaming job retry policy",
         "A scheduled/file-triggered streaming job whose tasks have no max_retries (PARTIAL), or a continuous "
         "job that sets max_retries, which continuous jobs do not use (REVIEW).",
         "Scheduled streaming tasks: max_retries (e.g. -1 or 3) with min_retry_interval_millis. Continuous "
         "jobs: drop max_retries; they retry with exponential backoff (continuous.task_retry_mode).",
         ("PARTIAL", "REVIEW")),
    Rule("SE903", "cost", COST_CL, BUDGET_ITEM, "warning",
         "Streaming job on an all-purpose cluster",
         "A streaming job task with existing_cluster_id: all-purpose compute costs more and is shared.",
         "Run streaming tasks on a job cluster (job_clusters + job_cluster_key) governed by a cluster policy.",
         ("PARTIAL",)),
    Rule("SE904", "cost", COST_CL, BUDGET_ITEM, "info",
         "Job cluster without a cluster policy",
         "A new_cluster with no policy_id: nothing caps node types, autoscaling or tags for chargeback.",
         "Attach a cluster policy (policy_id) that caps size and enforces cost tags.",
         ("REVIEW",)),
    Rule("SE905", "observability", OBS_CL, OBS_ITEM, "info",
         "Continuous job without streaming backlog health rules",
         "A continuous job with no health rules on STREAMING_BACKLOG_SECONDS/BYTES/RECORDS/FILES.",
         "Add health.rules (e.g. STREAMING_BACKLOG_SECONDS GREATER_THAN 600) and "
         "on_streaming_backlog_exceeded notifications.",
         ("REVIEW",)),
    Rule("SE906", "trigger", JOBS_CL, RETRY_NOTIFY_ITEM, "info",
         "Pipeline in development mode",
         "A pipeline spec with development: true: no automatic retries and clusters kept running.",
         "Set development: false for production targets (bundles: mode: production).",
         ("REVIEW",)),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}

# Severity follows the outcome: a FAIL carries the rule's own severity, the
# softer statuses are warnings or information whatever the rule.
_SEVERITY_BY_STATUS = {"PARTIAL": "warning", "REVIEW": "info", "PASS": "info", "N/A": "info"}


def make_finding(rule_id: str, status: str, line: int | None, detail: str, evidence: str) -> Finding:
    """Build a finding of a catalogued rule.

    Args:
        rule_id: id of a rule in ``RULES``.
        status: the outcome; must be one of the rule's statuses.
        line: 1-based line or ``None``.
        detail: what was found, specific to this place (one or two sentences).
        evidence: the source text the judgement rests on (already redacted).

    Returns:
        The finding; non-PASS messages end with the rule's fix.

    """
    rule = RULES[rule_id]
    if status not in rule.statuses:
        raise ValueError(f"{rule_id} cannot emit {status}")
    severity = rule.severity if status == "FAIL" else _SEVERITY_BY_STATUS[status]
    message = detail if status == "PASS" else f"{detail} Fix: {rule.fix}"
    return Finding(
        rule=rule.id,
        topic=rule.topic,
        checklist=rule.checklist,
        status=status,
        severity=severity,
        line=line,
        message=message,
        evidence=evidence.strip()[:240],
        item=rule.item,
    )


def rules_markdown() -> str:
    """The rule table as Markdown (the body of RULES.md)."""
    rows = [
        "| id | topic | severity | checklist | checklist item | statuses | catches | fix |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rule in _RULES:
        cells = [
            rule.id,
            rule.topic,
            rule.severity,
            rule.checklist,
            rule.item,
            ", ".join(rule.statuses),
            f"**{rule.title}.** {rule.catches}",
            rule.fix,
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
