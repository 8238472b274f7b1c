"""Behaviour of individual lint rules on small, focused snippets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from tools.lint import RULES, check_text
from tools.lint.catalog import rules_markdown

PACK_CHECKLISTS = Path(__file__).resolve().parents[2] / "knowledge" / "pack" / "checklists"


def findings(source: str, kind: str = "python") -> set[tuple[str, str]]:
    """(rule, status) pairs for a snippet."""
    result = check_text(textwrap.dedent(source), kind)
    assert result.error is None, result.error
    return {(f.rule, f.status) for f in result.findings}


def statuses(source: str, rule: str, kind: str = "python") -> set[str]:
    return {status for r, status in findings(source, kind) if r == rule}


KAFKA = 'spark.readStream.format("kafka").option("subscribe", "t").option("startingOffsets", "latest")' \
        '.option("maxOffsetsPerTrigger", 1000).load()'


# -- catalogue ----------------------------------------------------------------
def test_every_rule_maps_to_a_bundle_checklist_item_verbatim():
    if not PACK_CHECKLISTS.is_dir() or not any(PACK_CHECKLISTS.glob("*.yaml")):
        pytest.skip("knowledge pack checklists not present")
    items: dict[str, set[str]] = {}
    for path in PACK_CHECKLISTS.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        items[data["id"]] = {item["zh"] for section in data["sections"] for item in section["items"]}
    for rule in RULES.values():
        assert rule.checklist in items, rule.id
        assert rule.item in items[rule.checklist], f"{rule.id}: {rule.item!r} is not an item of {rule.checklist}"


def test_rules_md_is_generated_from_the_catalogue():
    text = (Path(__file__).resolve().parents[2] / "tools" / "lint" / "RULES.md").read_text(encoding="utf-8")
    assert rules_markdown() in text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert rules_markdown() in readme, "README's rule table is the catalogue's (regenerate it)"


# -- watermarks and state -----------------------------------------------------
def test_stream_aggregation_needs_a_watermark():
    assert statuses(f"df = {KAFKA}\ndf.groupBy('user_id').count()", "SE101") == {"FAIL"}
    assert statuses(
        f"df = {KAFKA}.withWatermark('ts', '10 minutes')\ndf.groupBy(F.window('ts', '5 minutes'), 'user_id').count()",
        "SE101",
    ) == {"PASS"}
    assert statuses(f"df = {KAFKA}.withWatermark('ts', '10 minutes')\ndf.groupBy('user_id').count()", "SE101") == {"PARTIAL"}


def test_watermark_after_the_aggregation_does_not_count():
    assert statuses(f"df = {KAFKA}\ndf.groupBy('user_id').count().withWatermark('ts', '1 minute')", "SE101") == {"FAIL"}


def test_batch_and_global_aggregations_are_not_flagged():
    assert not statuses("spark.read.table('t').groupBy('user_id').count()", "SE101")
    assert not statuses(f"df = {KAFKA}\ndf.groupBy().count()", "SE101")
    assert not statuses(f"df = {KAFKA}\ndf.agg(F.count('*'))", "SE101")


def test_streaming_dedup():
    assert statuses(f"({KAFKA}).dropDuplicates(['id'])", "SE103") == {"FAIL"}
    assert statuses(f"({KAFKA}).distinct()", "SE103") == {"FAIL"}
    assert statuses(f"({KAFKA}).withWatermark('ts', '1 hour').dropDuplicatesWithinWatermark(['id'])", "SE103") == {"PASS"}
    assert statuses(f"({KAFKA}).withWatermark('ts', '1 hour').dropDuplicates(['id', 'ts'])", "SE103") == {"PASS"}
    assert statuses(f"({KAFKA}).withWatermark('ts', '1 hour').dropDuplicates(['id'])", "SE103") == {"PARTIAL"}


def test_dedup_inside_foreach_batch_is_a_batch_operation():
    source = """
    def upsert(batch_df, batch_id):
        batch_df.dropDuplicates(['id']).write.mode('overwrite').saveAsTable('t')
    spark.readStream.table('s').writeStream.foreachBatch(upsert).option('checkpointLocation', '/Volumes/c/s/cp').start()
    """
    assert not statuses(source, "SE103")


def test_stream_stream_join():
    left = "a = spark.readStream.table('a').withWatermark('ta', '1 hour')\n"
    assert statuses(left + "b = spark.readStream.table('b')\na.join(b, 'id')", "SE102") == {"FAIL"}
    both = left + "b = spark.readStream.table('b').withWatermark('tb', '1 hour')\n"
    assert statuses(both + "a.join(b, 'id')", "SE102") == {"PARTIAL"}
    assert statuses(both + "a.join(b, F.expr('a.id = b.id AND tb BETWEEN ta AND ta + INTERVAL 1 HOUR'))", "SE102") == {
        "PASS"}
    assert not statuses(left + "a.join(spark.read.table('dim'), 'id')", "SE102")


def test_complete_output_mode_and_state_timeout():
    keyed = f"df = {KAFKA}\ndf.groupBy('user_id').count().writeStream.outputMode('complete').start()"
    assert statuses(keyed, "SE104") == {"FAIL"}
    global_agg = f"df = {KAFKA}\ndf.agg(F.count('*')).writeStream.outputMode('complete').format('memory').start()"
    assert not statuses(global_agg, "SE104")
    stateful = f"({KAFKA}).groupBy('user_id').applyInPandasWithState(f, 'a INT', 'b INT', 'append', GroupStateTimeout.NoTimeout)"
    assert statuses(stateful, "SE105") == {"PARTIAL"}
    assert not statuses(stateful.replace("NoTimeout", "ProcessingTimeTimeout"), "SE105")
    assert not statuses(stateful, "SE101"), "arbitrary stateful ops are not aggregations"


# -- checkpoints ----------------------------------------------------------------
def test_checkpoint_location():
    assert statuses(f"({KAFKA}).writeStream.toTable('t')", "SE201") == {"FAIL"}
    assert statuses(f"({KAFKA}).writeStream.option('checkpointLocation', '/Volumes/c/s/cp/q').toTable('t')", "SE201") == {
        "PASS"}
    assert not statuses(f"({KAFKA}).writeStream.format('console').start()", "SE201")
    session = "spark.conf.set('spark.sql.streaming.checkpointLocation', '/Volumes/c/s/cp')\n"
    assert statuses(session + f"({KAFKA}).writeStream.queryName('q').toTable('t')", "SE201") == {"PASS"}
    assert statuses(session + f"({KAFKA}).writeStream.toTable('t')", "SE201") == {"FAIL"}
    assert statuses(f"({KAFKA}).writeStream.toTable('t', checkpointLocation='/Volumes/c/s/cp/q')", "SE201") == {"PASS"}


def test_shared_and_ephemeral_checkpoints():
    shared = f"""
    CP = "/Volumes/c/s/cp/orders"
    df = {KAFKA}
    df.writeStream.option("checkpointLocation", CP).toTable("a")
    df.writeStream.option("checkpointLocation", "/Volumes/c/s/cp/orders/").toTable("b")
    """
    assert statuses(shared, "SE202") == {"FAIL"}
    per_call = """
    def start(df, name):
        return df.writeStream.option("checkpointLocation", f"/Volumes/c/s/cp/{name}").toTable(name)
    def start_other(df, name):
        return df.writeStream.option("checkpointLocation", f"/Volumes/c/s/cp/{name}").toTable(name)
    """
    assert not statuses(per_call, "SE202"), "paths built from parameters differ per call"
    assert statuses(f"({KAFKA}).writeStream.option('checkpointLocation', 'dbfs:/tmp/cp').toTable('t')", "SE203") == {
        "PARTIAL"}


# -- idempotency ------------------------------------------------------------------
def batch_query(body: str) -> str:
    return f"def sink(batch_df, batch_id):\n{textwrap.indent(textwrap.dedent(body), '    ')}\n" \
           f"(spark.readStream.table('s').writeStream.foreachBatch(sink)\n" \
           f" .option('checkpointLocation', '/Volumes/c/s/cp/q').start())\n"


def test_foreach_batch_idempotency():
    assert statuses(batch_query("batch_df.write.mode('append').saveAsTable('t')"), "SE301") == {"FAIL"}
    txn = "batch_df.write.option('txnAppId', 'q').option('txnVersion', batch_id).mode('append').saveAsTable('t')"
    assert statuses(batch_query(txn), "SE301") == {"PASS"}
    assert statuses(batch_query("batch_df.write.option('txnAppId', 'q').mode('append').saveAsTable('t')"), "SE301") == {
        "FAIL"}
    merge = "batch_df.createOrReplaceTempView('u')\nbatch_df.sparkSession.sql('MERGE INTO t USING u ON t.id = u.id " \
            "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *')"
    assert statuses(batch_query(merge), "SE301") == {"PASS"}
    assert statuses(batch_query(merge), "SE304") == {"REVIEW"}
    assert statuses(batch_query("batch_df.sparkSession.sql(f'INSERT INTO t SELECT * FROM {view}')"), "SE301") == {"FAIL"}
    assert statuses(batch_query("batch_df.write.mode('overwrite').saveAsTable('t')"), "SE301") == {"PASS"}


def test_foreach_batch_follows_helpers_and_reports_unknown_functions():
    helper = "def write_it(df):\n    df.write.mode('append').saveAsTable('t')\n\n" + batch_query("write_it(batch_df)")
    assert statuses(helper, "SE301") == {"FAIL"}
    imported = "from sinks import upsert\n(spark.readStream.table('s').writeStream.foreachBatch(upsert)" \
               ".option('checkpointLocation', '/Volumes/c/s/cp/q').start())"
    assert statuses(imported, "SE301") == {"REVIEW"}


def test_txn_version_and_app_id_must_be_stable():
    constant = "batch_df.write.option('txnAppId', 'q').option('txnVersion', 7).mode('append').saveAsTable('t')"
    assert statuses(batch_query(constant), "SE302") == {"FAIL"}
    volatile = "batch_df.write.option('txnAppId', str(uuid.uuid4())).option('txnVersion', batch_id).saveAsTable('t')"
    assert statuses(batch_query(volatile), "SE303") == {"FAIL"}


# -- sources --------------------------------------------------------------------
def test_kafka_offsets_and_rate_limits():
    bare = "spark.readStream.format('kafka').option('subscribe', 't').load()"
    assert statuses(bare, "SE205") == {"PARTIAL"}
    assert statuses(bare, "SE401") == {"PARTIAL"}
    earliest = "spark.readStream.format('kafka').option('startingOffsets', 'earliest').load()"
    assert statuses(earliest, "SE206") == {"REVIEW"}
    assert statuses(earliest.replace(".load()", ".option('maxOffsetsPerTrigger', 10).load()"), "SE206") == {"PASS"}
    lossy = "spark.readStream.format('kafka').option('failOnDataLoss', False).load()"
    assert statuses(lossy, "SE207") == {"PARTIAL"}


def test_options_that_cannot_be_read_do_not_raise_missing_option_findings():
    source = "def read(opts):\n    return spark.readStream.format('kafka').options(**opts).load()"
    assert not statuses(source, "SE205") and not statuses(source, "SE401")


def test_options_from_dicts_updates_and_subscripts():
    source = """
    OPTS = {"subscribe": "t"}
    OPTS["startingOffsets"] = "earliest"
    OPTS.update({"maxOffsetsPerTrigger": 100})
    spark.readStream.format("kafka").options(**OPTS).load()
    """
    assert findings(source) >= {("SE206", "PASS"), ("SE401", "PASS")}
    assert not statuses(source, "SE205")


def test_auto_loader_schema_rules():
    base = "spark.readStream.format('cloudFiles').option('cloudFiles.format', 'json')"
    assert statuses(base + ".load('/p')", "SE501") == {"FAIL"}
    assert not statuses(base + ".option('cloudFiles.schemaLocation', '/Volumes/s').load('/p')", "SE501")
    explicit = base + ".schema('id STRING').load('/p')"
    assert not statuses(explicit, "SE501")
    assert statuses(explicit, "SE503") == {"PARTIAL"}
    assert not statuses(base + ".option('rescuedDataColumn', '_rescued_data').schema('id STRING').load('/p')", "SE503")
    none_mode = base + ".option('cloudFiles.schemaLocation', '/s').option('cloudFiles.schemaEvolutionMode', 'none')" \
                       ".load('/p')"
    assert statuses(none_mode, "SE502") == {"PARTIAL"}
    assert not statuses(base + ".load('/p')", "SE402"), "Auto Loader's 1000-file default is a cap"
    assert statuses(base + ".option('cloudFiles.maxBytesPerTrigger', '10g').load('/p')", "SE402") == {"PASS"}
    in_pipeline = "import dlt\n@dlt.table\n@dlt.expect('ok', 'id IS NOT NULL')\ndef t():\n    return " + base + ".load('/p')"
    assert not statuses(in_pipeline, "SE501"), "declarative pipelines manage the schema location"


def test_triggers():
    def with_trigger(trigger: str) -> str:
        return f"({KAFKA}).writeStream.option('checkpointLocation', '/Volumes/c/s/q').trigger({trigger}).toTable('t')"

    assert statuses(with_trigger("processingTime='0 seconds'"), "SE403") == {"PARTIAL"}
    assert statuses(with_trigger("processingTime='0'"), "SE403") == {"PARTIAL"}
    assert not statuses(with_trigger("processingTime='10 seconds'"), "SE403")
    assert statuses(with_trigger("once=True"), "SE404") == {"PARTIAL"}
    assert not statuses(with_trigger("availableNow=True"), "SE404")
    assert statuses(with_trigger("continuous='1 second'"), "SE405") == {"REVIEW"}


# -- declarative pipelines and observability -------------------------------------
def test_declarative_tables_need_expectations():
    source = """
    from pyspark import pipelines as dp

    @dp.table
    def cleaned():
        return spark.readStream.table("src")

    @dp.materialized_view(name="daily")
    @dp.expect_or_drop("has_day", "day IS NOT NULL")
    def daily():
        return spark.read.table("raw")

    dp.create_streaming_table("target", expect_all={"k": "id IS NOT NULL"})
    """
    result = check_text(textwrap.dedent(source), "python")
    got = sorted((f.line, f.status) for f in result.findings if f.rule == "SE601")
    assert got == [(4, "PARTIAL"), (8, "PASS"), (13, "PASS")]


def test_query_monitoring():
    unnamed = f"({KAFKA}).writeStream.option('checkpointLocation', '/Volumes/c/s/q').toTable('t')"
    assert statuses(unnamed, "SE701") == {"PARTIAL"}
    assert not statuses(unnamed.replace(".toTable", ".queryName('q').toTable"), "SE701")
    assert statuses("q = " + unnamed + "\nprint(q.lastProgress)", "SE701") == {"PASS"}


# -- secrets ----------------------------------------------------------------------
SECRET_CASES = [
    ("python", 'jaas = \'PlainLoginModule required username="u" password="s3cr3t-Value";\'', "SE801", "s3cr3t-Value"),
    ("python", 'conn = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=AbCdEf-0123456789xyz="',
     "SE802", "AbCdEf-0123456789xyz="),
    ("python", 'key_id = "ASIAABCDEFGHIJKLMNOP"', "SE803", "ASIAABCDEFGHIJKLMNOP"),
    ("python", 'aws_secret_access_key = "abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB"', "SE803",
     "abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB"),
    ("python", 'host_token = "dapi0123456789abcdef0123456789abcdef"', "SE804", "dapi0123456789abcdef0123456789abcdef"),
    ("python", '.option("kafka.ssl.truststore.password", "trust-me-123")', "SE805", "trust-me-123"),
    ("json", '{"password": "Pa55w0rd!"}', "SE805", "Pa55w0rd!"),
    ("yaml", "db:\n  password: Pa55w0rd!\n", "SE805", "Pa55w0rd!"),
    ("sql", "SELECT * FROM read_kafka(`kafka.ssl.keystore.password` => 'ks-pass-9')", "SE805", "ks-pass-9"),
]


@pytest.mark.parametrize(("kind", "source", "rule", "secret"), SECRET_CASES)
def test_plaintext_secrets_are_reported_and_redacted(kind: str, source: str, rule: str, secret: str):
    result = check_text(source, kind)
    hits = [f for f in result.findings if f.rule == rule and f.status == "FAIL"]
    assert len(hits) == 1, result.findings
    assert secret not in hits[0].evidence and secret not in hits[0].message
    assert "dbutils.secrets.get" in hits[0].message and "{{secrets/scope/key}}" in hits[0].message


def test_no_rule_quotes_a_secret_in_its_evidence():
    # Other rules quote whole lines; a key on such a line must be masked there too.
    key = "ASIAQWERTYUIOPASDFGH"
    source = (
        "df = (spark.readStream.format('kafka').option('kafka.bootstrap.servers', 'b:9092')"
        f".option('subscribe', 't').option('aws_key', '{key}').load())\n"
        "df.groupBy('k').count().writeStream.outputMode('complete').toTable('t')\n"
    )
    findings = check_text(source, "python").findings
    assert any(f.rule != "SE803" and f.evidence for f in findings), findings
    assert all(key not in f.evidence and key not in f.message for f in findings), findings


@pytest.mark.parametrize(("kind", "source"), [
    ("python", 'jaas = f\'PlainLoginModule required username="{user}" password="{pw}";\''),
    ("python", 'pw = dbutils.secrets.get("kafka", "password")'),
    ("json", '{"password": "{{secrets/kafka/password}}", "token": "${var.token}"}'),
    ("yaml", "password: <your-password>\nsecret_scope: kafka\n"),
    ("sql", "SELECT * FROM read_kafka(`kafka.sasl.jaas.config` => secret('kafka', 'jaas'))"),
    ("python", 'if token == "expired":\n    pass'),
])
def test_references_and_placeholders_are_not_secrets(kind: str, source: str):
    result = check_text(source, kind)
    assert not [f for f in result.findings if f.topic == "security" and f.status == "FAIL"], result.findings


# -- SQL and configs ------------------------------------------------------------------
def test_sql_streaming_tables():
    sql = """
    CREATE OR REFRESH STREAMING TABLE agg (CONSTRAINT ok EXPECT (k IS NOT NULL))
    AS SELECT k, count(*) FROM STREAM src GROUP BY k;
    CREATE OR REFRESH STREAMING TABLE agg2 (CONSTRAINT ok EXPECT (k IS NOT NULL))
    AS SELECT window(ts, '1 minute') AS w, count(*) FROM STREAM src WATERMARK ts DELAY OF INTERVAL 5 MINUTES
    GROUP BY window(ts, '1 minute');
    CREATE OR REFRESH MATERIALIZED VIEW mv AS SELECT k, count(*) FROM src GROUP BY k;
    """
    result = check_text(textwrap.dedent(sql), "sql")
    got = sorted((f.rule, f.status, f.line) for f in result.findings)
    assert got == [("SE101", "FAIL", 3), ("SE101", "PASS", 6), ("SE601", "PARTIAL", 7), ("SE601", "PASS", 2),
                   ("SE601", "PASS", 4)]


def test_sql_read_kafka_options():
    sql = "CREATE STREAMING TABLE t (CONSTRAINT c EXPECT (value IS NOT NULL)) AS SELECT * FROM STREAM read_kafka(\n" \
          "  bootstrapServers => 'b:9092', subscribe => 'x', failOnDataLoss => 'false')"
    assert findings(sql, "sql") >= {("SE205", "PARTIAL"), ("SE207", "PARTIAL"), ("SE401", "PARTIAL")}


def test_config_jobs_and_pipelines():
    job = {
        "name": "stream", "continuous": {"pause_status": "UNPAUSED"},
        "tasks": [{"task_key": "t", "new_cluster": {"num_workers": 2}}],
    }
    import json

    got = findings(json.dumps(job, indent=1), "json")
    assert got == {("SE901", "PARTIAL"), ("SE904", "REVIEW"), ("SE905", "REVIEW")}
    batch_job = {"name": "nightly-report", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/r"}}]}
    assert not findings(json.dumps(batch_job), "json"), "batch jobs are not this linter's business"
    pipeline = "resources:\n  pipelines:\n    p:\n      continuous: true\n      serverless: true\n      libraries: []\n"
    assert findings(pipeline, "yaml") == {("SE901", "PARTIAL")}


def test_yaml_merge_keys_are_resolved():
    spec = """
    base: &base
      email_notifications: {on_failure: [a@example.com]}
      health: {rules: [{metric: STREAMING_BACKLOG_SECONDS, op: GREATER_THAN, value: 60}]}
    resources:
      jobs:
        j:
          <<: *base
          continuous: {pause_status: UNPAUSED}
          tasks: [{task_key: t, environment_key: default}]
    """
    assert not findings(textwrap.dedent(spec), "yaml")


# -- suppression ------------------------------------------------------------------------
def test_suppression_on_the_line_or_the_line_above():
    source = f"df = {KAFKA}\ndf.groupBy('user_id').count()  # streaming-engineer: ignore[SE101]"
    assert not statuses(source, "SE101")
    above = f"df = {KAFKA}\n# streaming-engineer: ignore[SE104, SE101]\ndf.groupBy('user_id').count()"
    assert not statuses(above, "SE101")
    other_rule = f"df = {KAFKA}\ndf.groupBy('user_id').count()  # streaming-engineer: ignore[SE103]"
    assert statuses(other_rule, "SE101") == {"FAIL"}
    two_lines_above = f"df = {KAFKA}\n# streaming-engineer: ignore[SE101]\n\ndf.groupBy('user_id').count()"
    assert statuses(two_lines_above, "SE101") == {"FAIL"}


def test_suppression_suppresses_one_finding_only():
    source = f"""
    df = {KAFKA}
    a = df.groupBy('a_id').count()  # streaming-engineer: ignore[SE101]
    b = df.groupBy('b_id').count()
    """
    result = check_text(textwrap.dedent(source), "python")
    assert [(f.rule, f.line) for f in result.findings if f.status == "FAIL"] == [("SE101", 4)]


def test_suppression_in_sql_yaml_and_whole_file():
    sql = "-- streaming-engineer: ignore[SE601]\nCREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM s;"
    assert not statuses(sql, "SE601", "sql")
    yml = "db:\n  password: Pa55w0rd!  # streaming-engineer: ignore[SE805]\n"
    assert not statuses(yml, "SE805", "yaml")
    whole = "# streaming-engineer: ignore-file[SE401,SE205]\nspark.readStream.format('kafka').load()"
    assert not statuses(whole, "SE401") and not statuses(whole, "SE205")
    bare = "spark.readStream.format('kafka').load()  # streaming-engineer: ignore"
    assert not {s for r, s in findings(bare) if s != "PASS"}


# -- serverless jobs ----------------------------------------------------------------------
def test_serverless_job_task_with_a_processing_time_trigger(tmp_path: Path):
    from tools.lint import check_paths

    (tmp_path / "job.yml").write_text(
        "resources:\n  jobs:\n    j:\n      tasks:\n        - task_key: ingest\n"
        "          notebook_task:\n            notebook_path: ./ingest\n"
        "        - task_key: on_cluster\n          job_cluster_key: c\n"
        "          notebook_task:\n            notebook_path: ./clustered\n",
        encoding="utf-8",
    )
    query = "spark.readStream.table('s').writeStream.queryName('q').option('checkpointLocation', '/Volumes/c/s/q')"
    (tmp_path / "ingest.py").write_text(query + ".trigger(processingTime='1 minute').toTable('t')\n", encoding="utf-8")
    (tmp_path / "clustered.py").write_text(query + ".trigger(processingTime='1 minute').toTable('u')\n",
                                           encoding="utf-8")
    results = {Path(r.path).name: r for r in check_paths([tmp_path])}
    assert [(f.rule, f.line) for f in results["ingest.py"].findings if f.status == "FAIL"] == [("SE406", 1)]
    assert not [f for f in results["clustered.py"].findings if f.rule == "SE406"], "a job cluster supports it"
    alone = check_paths([tmp_path / "ingest.py"])[0]
    assert not [f for f in alone.findings if f.rule == "SE406"], "without the job spec nothing says serverless"
    spec_only = check_paths([tmp_path / "job.yml"])[0]
    assert [(f.rule, f.line) for f in spec_only.findings if f.status == "FAIL"] == [("SE406", 5)]
