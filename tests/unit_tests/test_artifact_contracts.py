"""Artefacts of different commands fit together, and every generated SQL file is Databricks SQL.

Proof by tools we did not write: every ``.sql`` file parses with sqlglot's ``databricks`` dialect; the
columns a single-table query reads exist in the table as the generating code produces it (the thread's
design records them). One thread runs many commands against one ``Design``, as a user would.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
import sqlglot
import yaml
from sqlglot import exp

from agent.nodes.tasks import design_questions, task_questions, values_for
from knowledge.loader import load_pack
from tests.unit_tests.test_artifacts import CUSTOM, DOMAIN
from tools.artifacts import generate, step_notes
from tools.artifacts.dlq import dlq_schema
from tools.design import Design
from tools.templates import render

PACK = load_pack()
# Statements sqlglot keeps as an opaque Command: valid Databricks SQL it does not model.
OPAQUE = ("GRANT", "REVOKE", "SHOW", "OPTIMIZE", "VACUUM")

# The order a user builds a pipeline in: sources, the pipeline, quality, state, recovery, operations, release.
THREAD = ["autoloader-streaming-ingest", "dlt-streaming-pipeline", "streaming-dq-expectations",
          "dedup-and-idempotency", "dlq-quarantine-ops", "watermarks-and-lateness", "state-store-management",
          "replay-and-recovery", "schema-evolution-live", "latency-slo-and-alerts", "canary-and-shadow",
          "blue-green-deploy", "streaming-runbook", "kafka-connector-setup", "eventhubs-connector-setup",
          "kinesis-connector-setup"]


def defaults(task_id: str, design: Design | None = None) -> dict[str, str]:
    """What #yolo answers in a thread with ``design`` (earlier answers offered as defaults)."""
    questions, known = design_questions(task_id, task_questions(PACK, PACK.tasks[task_id]), design or Design())
    return {**known, **{q["key"]: str(q["default"]) for q in questions if q["default"] is not None}}


def answer_sets() -> list[tuple[str, str, dict[str, str]]]:
    """(task, label, answers): the defaults, a realistic non-default set, and the serverless variant of it."""
    out = []
    for task_id in DOMAIN:
        base = defaults(task_id)
        custom = {**base, **CUSTOM[task_id][0]}
        out += [(task_id, "defaults", base), (task_id, "custom", custom),
                (task_id, "serverless", {**custom, "compute_kind": "serverless"})]
    return out


def statements(sql: str) -> list[exp.Expression]:
    """The parsed statements of a SQL file (a ParseError fails the test)."""
    return [s for s in sqlglot.parse(sql, read="databricks") if s is not None]


@pytest.mark.parametrize(("task_id", "label", "answers"), answer_sets(),
                         ids=[f"{t}-{label}" for t, label, _ in answer_sets()])
def test_every_generated_sql_file_parses_as_databricks_sql(task_id: str, label: str, answers: dict[str, str]) -> None:
    doc = PACK.tasks[task_id].doc_output_location
    for artifact in generate(task_id, answers, {}, doc):
        if not artifact.path.endswith(".sql"):
            continue
        for statement in statements(artifact.content):
            if isinstance(statement, exp.Command):
                assert statement.this.upper() in OPAQUE, (artifact.path, statement.sql()[:200])


def test_sql_parsing_rejects_what_databricks_rejects() -> None:
    with pytest.raises(sqlglot.errors.ParseError):
        statements("SELECT count(* FROM main.silver.events;")


@pytest.mark.parametrize("task_id", DOMAIN)
def test_each_custom_answer_reaches_the_artefacts_that_depend_on_it(task_id: str) -> None:
    answers, _ = CUSTOM[task_id]
    task = PACK.tasks[task_id]
    given = {**defaults(task_id), **answers}
    rendered = [render(PACK.templates[name], values_for(PACK.templates[name], given)).text
                for name in task.templates if name in PACK.templates]
    text = "\n".join([*(a.content for a in generate(task_id, given, {}, task.doc_output_location)
                        if isinstance(a.content, str)), *rendered, *step_notes(task_id, given)])
    questions = {q["key"]: q for q in task_questions(PACK, PACK.tasks[task_id])}
    missing = []
    for key, value in answers.items():
        kind = questions[key]["kind"] if key in questions else "text"
        if kind in ("duration", "percent", "positive_int", "choice"):
            continue  # normalised or turned into numbers and decisions (asserted by the CUSTOM needles)
        # A list ("email:a@x, webhook:id", "kafka, kinesis"; steps separated by ";") lands item by item.
        items = [value.split("/")[-1]] if kind == "secret_ref" else [
            part.split(":", 1)[-1].strip() for part in re.split(r"[,;]", value) if part.strip()]
        if not all(item in text for item in items):
            missing.append((key, value))
    assert not missing, (task_id, missing)


# -- one thread, many commands --------------------------------------------------------------------------


def run_thread(tasks: list[str], compute: str = "classic") -> tuple[Design, dict[str, dict[str, str]]]:
    """Generate ``tasks`` in order in one thread (one design); return the design and each task's files."""
    design = Design()
    files: dict[str, dict[str, str]] = {}
    for task_id in tasks:
        answers = {**defaults(task_id, design), "compute_kind": compute}
        doc = PACK.tasks[task_id].doc_output_location
        files[task_id] = {a.path: a.content for a in generate(task_id, answers, {}, doc, None, design)
                          if isinstance(a.content, str)}
    return design, files


def read_columns(statement: exp.Expression) -> list[tuple[str, str]]:
    """(table, column) for every SELECT that reads one table with no join: the columns it names."""
    found = []
    for select in statement.find_all(exp.Select):
        sources = [t for t in select.find_all(exp.Table) if t.find_ancestor(exp.Select) is select]
        if len(sources) != 1 or select.args.get("joins") or select.find(exp.Subquery) or select.args.get("with"):
            continue
        table = ".".join(p for p in (sources[0].catalog, sources[0].db, sources[0].name) if p)
        aliases = {a.alias for a in select.expressions if isinstance(a, exp.Alias)}
        for column in select.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is select and column.name not in aliases and not column.table:
                found.append((table, column.name))
    return found


def test_sql_reads_only_columns_the_generating_code_produces() -> None:
    design, files = run_thread(THREAD)
    checked = 0
    for task_id, by_path in files.items():
        for path, text in by_path.items():
            if not path.endswith(".sql"):
                continue
            for statement in statements(text):
                for table, column in read_columns(statement):
                    known = design.columns_of(table)
                    if not known:
                        continue  # a table no command of this thread writes (system tables, the user's own)
                    checked += 1
                    assert column in known, (task_id, PurePosixPath(path).name, table, column, sorted(known))
    assert checked >= 20


def test_one_thread_keeps_one_design() -> None:
    design, files = run_thread(THREAD)
    # One DLQ shape: every dead-letter or quarantine table has exactly the DLQ columns.
    dead = [t for t in design.tables.values() if t.role in ("dlq", "quarantine")]
    assert dead and all(t.columns == dlq_schema() for t in dead), [(t.name, t.columns) for t in dead]
    # One writer per table: no two commands' files write the same table (the replay and the DLQ repair
    # MERGE into the table they repair by key: that is their job, and idempotent).
    writers: dict[str, set[str]] = {}
    for task_id, path_map in files.items():
        if task_id == "replay-and-recovery":
            continue
        for path, text in path_map.items():
            if path.endswith(".py"):
                for table in re.findall(r'^(?:TARGET_TABLE|SILVER_TABLE|GOLD_TABLE|BRONZE_TABLE) = "([^"]+)"', text, re.M):
                    writers.setdefault(table, set()).add(task_id)
    assert not {t: w for t, w in writers.items() if len(w) > 1}, writers
    # Unique query names across the thread.
    names = re.findall(r'^QUERY_NAME = "([^"]+)"', "\n".join(
        text for path_map in files.values() for path, text in path_map.items() if path.endswith(".py")), re.M)
    assert len(names) == len(set(names)), names
    # Later commands were offered the earlier tables: the checks read the pipeline's Bronze.
    dq = files["streaming-dq-expectations"]
    dq_code = next(text for path, text in dq.items() if path.endswith("dq_expectations_pipeline.py"))
    assert 'SOURCE = "main.bronze.events' in dq_code and 'SILVER_TABLE = "main.silver.events_validated"' in dq_code
    assert design.notices and any("main.silver.events" in n for n in design.notices)


def test_the_slo_freshness_reads_the_gold_window_end() -> None:
    _, files = run_thread(["dlt-streaming-pipeline", "latency-slo-and-alerts"])
    alerts = next(t for p, t in files["latency-slo-and-alerts"].items() if p.endswith("slo_alerts.sql"))
    assert "max(window_end)" in alerts and "max(event_time)" not in alerts


def test_serverless_code_uses_available_now_and_no_session_state_settings() -> None:
    design, files = run_thread(THREAD, compute="serverless")
    assert design.serverless
    for by_path in files.values():
        for path, text in by_path.items():
            if not path.endswith(".py"):
                continue
            assert ".trigger(processingTime" not in text and "processingTime=TRIGGER_INTERVAL" not in text, path
            assert "spark.conf.set" not in text, path
            assert ".persist()" not in text, path
    kinesis = next(t for p, t in files["kinesis-connector-setup"].items() if p.endswith("kinesis_source.py"))
    assert '.option("serviceCredential", AWS_AUTH)' in kinesis


def test_classic_code_keeps_processing_time_and_the_state_settings() -> None:
    _, files = run_thread(["state-store-management", "kafka-connector-setup"], compute="classic")
    state = next(t for p, t in files["state-store-management"].items() if p.endswith("stateful_query.py"))
    kafka = next(t for p, t in files["kafka-connector-setup"].items() if p.endswith("kafka_source.py"))
    assert "spark.sql.streaming.stateStore.providerClass" in state
    assert "processingTime=TRIGGER_INTERVAL" in kafka


def test_the_design_survives_the_state_round_trip() -> None:
    design, _ = run_thread(["dlt-streaming-pipeline", "latency-slo-and-alerts"])
    again = Design.from_dict(design.to_dict())
    assert again == design
    assert again.table_by_role("gold").columns["window_end"] == "TIMESTAMP"
    assert again.default_for("canary-and-shadow", "production_table", "x") == again.table_by_role("gold").name


def test_a_file_written_earlier_is_never_silently_overwritten(tmp_path) -> None:
    from agent.nodes.tasks import change_summary, versioned_path
    from tools.workspace import Workspace

    workspace = Workspace(tmp_path)
    path = "docs/streaming/expectations-streaming.yaml"
    first = "rules:\n  - name: user_rule\n    expr: amount > 0\n"
    assert versioned_path(workspace, path, first) == path
    workspace.write(path, first)
    assert versioned_path(workspace, path, first) == path  # the same content: nothing is lost by rewriting it
    second = "rules:\n  - name: complete_id\n    expr: event_id IS NOT NULL\n"
    kept = versioned_path(workspace, path, second)
    assert kept == "docs/streaming/expectations-streaming.v2.yaml"
    summary = change_summary(workspace, path, second)
    assert "+2 −2 lines" in summary and "user_rule" in summary
    workspace.write(kept, second)
    assert workspace.read(path) == first  # the user's rule is still there
    assert versioned_path(workspace, path, "third\n") == "docs/streaming/expectations-streaming.v3.yaml"


@pytest.mark.parametrize("compute", ["classic", "serverless"])
def test_a_later_bundle_deploys_on_the_compute_the_thread_chose(compute: str) -> None:
    design = Design()
    for task_id, extra in (("kafka-connector-setup", {"compute_kind": compute}), ("dlt-streaming-pipeline", {})):
        answers = {**defaults(task_id, design), **extra}
        doc = PACK.tasks[task_id].doc_output_location
        files = {a.path: a.content for a in generate(task_id, answers, {}, doc, None, design)}
    bundle = yaml.safe_load(next(text for path, text in files.items() if path.endswith("databricks.yml")))
    pipeline = next(iter(bundle["resources"]["pipelines"].values()))
    assert bool(pipeline.get("serverless")) == (compute == "serverless"), pipeline
    assert ("clusters" in pipeline) == (compute == "classic"), pipeline


def test_a_nested_payload_and_a_decimal_measure_are_recorded_as_spark_produces_them() -> None:
    design = Design()
    answers = {**defaults("dlt-streaming-pipeline"), "source_format": "kafka", "measure_column": "amount",
               "payload_schema": "order_id STRING, event_ts TIMESTAMP, customer STRUCT<id: STRING, tier: STRING>, "
                                 "amount DECIMAL(12,2)", "event_time_column": "event_ts"}
    generate("dlt-streaming-pipeline", answers, {}, "docs/streaming/dlt-streaming.md", None, design)
    # Struct field names are names (kept as declared); sum() of DECIMAL(12,2) is DECIMAL(22,2), not DOUBLE.
    assert design.table_by_role("silver").columns["customer"] == "STRUCT<id: STRING, tier: STRING>"
    assert design.table_by_role("gold").columns["total_amount"] == "DECIMAL(22,2)"


def test_the_kafka_login_follows_the_brokers_sasl_mechanism(tmp_path) -> None:
    import importlib.util
    import json

    from tools.artifacts.base import artifact_dir

    # The source inventory's security note names SCRAM: the Kafka commands offer it, and ask no unused JAAS secret.
    design = Design()
    generate("source-inventory-streaming", {**defaults("source-inventory-streaming"),
                                            "security": "SASL_SSL with SCRAM-SHA-512, users in scope kafka-prod"},
             {}, "docs/streaming/source-inventory.md", None, design)
    for task_id in ("kafka-connector-setup", "dlt-streaming-pipeline"):
        questions, _ = design_questions(task_id, task_questions(PACK, PACK.tasks[task_id]), design)
        keys = {q["key"]: q for q in questions}
        assert keys["sasl_mechanism"]["default"] == "SCRAM-SHA-512", task_id
        assert "jaas" not in keys, task_id
    answers = {**defaults("kafka-connector-setup", design), "sasl_mechanism": "SCRAM-SHA-512"}
    files = {a.path: a.content for a in generate("kafka-connector-setup", answers, {}, "docs/streaming/kafka.md")}
    path = tmp_path / "kafka_source.py"
    path.write_text(files[str(artifact_dir("docs/streaming/kafka.md") / "kafka_source.py")], encoding="utf-8")
    spec = importlib.util.spec_from_file_location("kafka_scram", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    jaas = module.jaas_config("svc-payments", 'p"w')
    assert jaas == ('kafkashaded.org.apache.kafka.common.security.scram.ScramLoginModule required '
                    'username="svc-payments" password="p\\"w";')
    config = json.loads(files["docs/streaming/kafka-config.json"] if "docs/streaming/kafka-config.json" in files
                        else next(v for k, v in files.items() if k.endswith("-config.json")))
    assert config["kafka.sasl.mechanism"] == module.SASL_MECHANISM == "SCRAM-SHA-512"
    assert config["kafka.sasl.jaas.config"].startswith(module.LOGIN_MODULE)
    dlt = {a.path: a.content for a in generate("dlt-streaming-pipeline", {
        **defaults("dlt-streaming-pipeline"), "source_format": "kafka", "sasl_mechanism": "SCRAM-SHA-256"}, {},
        "docs/streaming/dlt.md")}
    code = next(v for k, v in dlt.items() if k.endswith("dlt_pipeline.py"))
    assert 'SASL_MECHANISM = "SCRAM-SHA-256"' in code and ".scram.ScramLoginModule" in code
    assert '.option("kafka.sasl.mechanism", SASL_MECHANISM)' in code


def test_a_pipeline_on_the_threads_bronze_reads_it_and_sums_its_measure() -> None:
    design = Design()
    kafka = {**defaults("kafka-connector-setup", design), "target_table": "fin.bronze.payments",
             "checkpoint_root": "/Volumes/fin/streaming/checkpoints/payments_bronze", "event_id_field": "payment_id",
             "payload_schema": "payment_id STRING, event_ts TIMESTAMP, amount DECIMAL(18,2), currency STRING"}
    generate("kafka-connector-setup", kafka, {}, "docs/streaming/kafka-connector.md", None, design)
    answers = {**defaults("dlt-streaming-pipeline", design), "table": "fin.silver.payments",
               "quarantine_table": "fin.quarantine.payments", "target_table": "fin.gold.payments_5m"}
    assert answers["source"] == "fin.bronze.payments" and answers["source_format"] == "delta"
    files = {PurePosixPath(a.path).name: a.content for a in generate(
        "dlt-streaming-pipeline", answers, {}, "docs/streaming/dlt-streaming.md", None, design)}
    code = files["dlt_pipeline.py"]
    # No second Bronze (the default main.bronze.events would sit outside the bundle's catalogs): Silver reads it.
    assert "BRONZE_TABLE" not in code and "readStream.table(SOURCE)" in code
    assert 'MEASURE = "amount"' in code and 'F.sum(MEASURE).alias(f"total_{MEASURE}")' in code
    assert design.table_by_role("gold").columns["total_amount"] == "DECIMAL(28,2)"
    assert design.table_by_role("bronze").name == "fin.bronze.payments"
    # Later commands offer the thread's catalog, never the pack's main.
    later = defaults("dedup-and-idempotency", design)
    assert later["source_table"] == "fin.bronze.payments" and later["target_table"] == "fin.silver.events"
    assert later["checkpoint"].startswith("/Volumes/fin/")


@pytest.mark.parametrize(("task_id", "topic"), [("kafka-connector-setup", "topic"), ("eventhubs-connector-setup", "event_hub"),
                                              ("kinesis-connector-setup", "stream_name")])
def test_offset_checks_tell_topics_apart(task_id: str, topic: str) -> None:
    answers = {**defaults(task_id), "topic": "payments.v2,refunds.v1", "event_hub": "payments,refunds",
               "stream": "clicks,views"}
    sql = next(a.content for a in generate(task_id, answers, {}, "docs/streaming/x.md") if a.path.endswith(".sql"))
    for statement in sqlglot.parse(sql, read="databricks"):
        groups = statement.args.get("group")
        # Partition 0 of two topics are two partitions: every per-partition check groups by the topic too.
        assert groups is not None and topic in {c.sql() for c in groups.expressions}, statement.sql()


def test_a_schema_change_on_a_pipelines_streaming_table_is_made_in_the_pipeline() -> None:
    design = Design()
    generate("dlt-streaming-pipeline", defaults("dlt-streaming-pipeline", design), {}, "docs/streaming/dlt.md", None,
             design)
    answers = {**defaults("schema-evolution-live", design), "change_summary": "add nullable column risk_score DOUBLE"}
    assert answers["target_table"] == design.table_by_role("silver").name
    sql = next(a.content for a in generate("schema-evolution-live", answers, {}, "docs/streaming/sel.md", None, design)
               if a.path.endswith("schema_change.sql"))
    statements = [s for s in sqlglot.parse(sql, read="databricks") if s is not None and not isinstance(s, exp.Semicolon)]
    # ALTER TABLE / COMMENT ON / RESTORE fail on a streaming table: only reads remain, the change is the pipeline's.
    assert statements and all(isinstance(s, (exp.Describe, exp.Select)) for s in statements), [s.sql() for s in statements]
    assert "dlt_pipeline.py" in sql and "risk_score" in sql


def test_the_pipeline_spec_says_what_the_pipeline_code_does() -> None:
    questions, _ = design_questions("dlt-streaming-pipeline", task_questions(
        PACK, PACK.tasks["dlt-streaming-pipeline"]), Design())
    assert "path" not in {q["key"] for q in questions}  # a declarative pipeline has no checkpoint location to set
    answers = {**defaults("dlt-streaming-pipeline"), "source_format": "kafka", "source": "device-events-raw",
               "pipeline_mode": "continuous", "table": "telemetry.silver.device_readings"}
    files = {PurePosixPath(a.path).name: a.content
             for a in generate("dlt-streaming-pipeline", answers, {}, "docs/streaming/dlt-streaming.md")}
    spec = yaml.safe_load(files["streaming-pipeline-spec.yaml"])["pipeline"]
    assert "checkpoint_location" not in spec and spec["mode"] == "continuous"
    assert spec["source"] == {"kind": "kafka", "name": "device-events-raw"}
    assert spec["output_table"] == "telemetry.silver.device_readings"
    assert f'SILVER_TABLE = "{spec["tables"]["silver"]}"' in files["dlt_pipeline.py"]
    assert f'GOLD_TABLE = "{spec["tables"]["gold"]}"' in files["dlt_pipeline.py"]


@pytest.mark.parametrize(("summary", "kind", "ddl"), [
    ("widen temperature to DOUBLE from FLOAT", "type widening", "ALTER COLUMN temperature TYPE DOUBLE"),
    ("change amount from INT to BIGINT", "type widening", "ALTER COLUMN amount TYPE BIGINT"),
])
def test_a_type_widening_summary_names_its_column_in_the_ddl(summary: str, kind: str, ddl: str) -> None:
    answers = {**defaults("schema-evolution-live"), "change_summary": summary, "change_type": kind}
    files = {PurePosixPath(a.path).name: a.content for a in generate("schema-evolution-live", answers, {}, "docs/s.md")}
    assert ddl in files["schema_change.sql"] and "new_column" not in files["schema_change.sql"]


def test_a_summary_without_a_column_leaves_no_statement_against_a_placeholder() -> None:
    answers = {**defaults("schema-evolution-live"), "change_summary": "make the payload richer",
               "change_type": "type widening"}
    sql = next(a.content for a in generate("schema-evolution-live", answers, {}, "docs/s.md")
               if a.path.endswith("schema_change.sql"))
    statements = [s for s in sqlglot.parse(sql, read="databricks") if s is not None and not isinstance(s, exp.Semicolon)]
    named = {node.name for s in statements for node in s.walk() if isinstance(node, exp.Identifier)}
    assert statements and "new_column" not in named, [s.sql() for s in statements]


def test_a_service_credential_on_an_older_classic_runtime_is_called_out() -> None:
    answers = {**defaults("kinesis-connector-setup"), "iam_role": "kinesis-reader-profile", "compute_kind": "classic",
               "runtime": "15.4 LTS"}
    code = next(a.content for a in generate("kinesis-connector-setup", answers, {}, "docs/k.md")
                if a.path.endswith("kinesis_source.py"))
    assert '.option("serviceCredential", AWS_AUTH)' in code and "need Databricks Runtime 16.1" in code
    notes = " ".join(step_notes("kinesis-connector-setup", answers))
    assert "16.1" in notes
    newer = {**answers, "runtime": "16.4 LTS"}
    assert "16.1" not in next(a.content for a in generate("kinesis-connector-setup", newer, {}, "docs/k.md")
                              if a.path.endswith("kinesis_source.py"))


def test_the_pipeline_diagram_draws_what_the_code_reads() -> None:
    from tools.artifacts import diagram

    design = Design()
    generate("kafka-connector-setup", {**defaults("kafka-connector-setup"), "target_table": "fin.bronze.payments"}, {},
             "docs/streaming/kafka-connector.md", None, design)
    answers = defaults("dlt-streaming-pipeline", design)
    flow = diagram("dlt-streaming-pipeline", answers, design)
    code = next(a.content for a in generate("dlt-streaming-pipeline", answers, {}, "docs/d.md", None, design)
                if a.path.endswith("dlt_pipeline.py"))
    assert "BRONZE_TABLE" not in code and "Bronze<br/>" not in flow and "fin.bronze.payments" in flow


@pytest.mark.parametrize("source", ["autoloader-streaming-ingest", "kafka-connector-setup", "kinesis-connector-setup"])
def test_the_disorder_measure_reads_the_bronze_table_the_thread_wrote(source: str) -> None:
    design = Design()
    generate(source, defaults(source, design), {}, "docs/streaming/src.md", None, design)
    bronze = design.table_by_role("bronze")
    answers = defaults("source-inventory-streaming", design)
    assert answers["bronze_table"] == bronze.name
    sql = next(a.content for a in generate("source-inventory-streaming", answers, {}, "docs/s.md", None, design)
               if a.path.endswith("measure_disorder.sql"))
    read = {c.name for s in sqlglot.parse(sql, read="databricks") if s is not None for c in s.find_all(exp.Column)}
    assert read <= set(bronze.columns), (source, sorted(read - set(bronze.columns)))
    # A column the user names that the thread's writer does not produce is kept, and the document says so.
    design.notices = []
    generate("source-inventory-streaming", {**answers, "arrival_column": "arrived_at"}, {}, "docs/s.md", None, design)
    assert any("`arrived_at`" in notice for notice in design.notices), design.notices


@pytest.mark.parametrize("source", ["kafka-connector-setup", "eventhubs-connector-setup", "kinesis-connector-setup"])
def test_later_commands_offer_the_event_time_and_id_the_bronze_payload_has(source: str) -> None:
    design = Design()
    payload = "click_id STRING, click_ts TIMESTAMP, page STRING"
    generate(source, {**defaults(source, design), "payload_schema": payload, "event_id_field": "click_id"}, {},
             "docs/streaming/src.md", None, design)
    bronze = design.table_by_role("bronze")
    for task_id in ("dedup-and-idempotency", "streaming-dq-expectations", "schema-evolution-live",
                    "dlt-streaming-pipeline"):
        answers = defaults(task_id, design)
        assert answers.get("source_table", answers.get("source")) == bronze.name, task_id
        for key in ("id_key", "id_column", "time_field", "event_time_column"):
            if key in answers:
                assert answers[key] in bronze.columns, (source, task_id, key, answers[key])


@pytest.mark.parametrize("task_id", DOMAIN)
def test_step_notes_carry_values_not_code(task_id: str) -> None:
    for answers in (defaults(task_id), {**defaults(task_id), **CUSTOM[task_id][0]}):
        for note in step_notes(task_id, answers):
            assert not re.search(r"\{[a-z_]+\.[a-z_]+\(", note), (task_id, note)  # an f-string that lost its f
