"""Hostile inputs, unit level: secrets, names, paths, files, bundles and stores that must not hurt (issue #15)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from agent.persistence import CheckpointError, open_checkpointer
from agent.session import screen
from knowledge.bundle import load_bundle
from knowledge.loader import PackError
from tools.diagnose.progress import ProgressError, load, parse_text
from tools.docs import shard
from tools.secrets import REMOVED, find_secret, redact
from tools.templates import find_secret as find_secret_from_templates
from tools.workspace import Workspace, WorkspaceError, read_regular, regular_files, safe_id

# ----- secrets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret"), [
    ("my kafka password is Hunter2x!", "Hunter2x!"),
    ("my password is correcthorsebattery", "correcthorsebattery"),
    ('{"bootstrap.servers": "b:9093", "sasl.password": "s3cr3t-value"}', "s3cr3t-value"),
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abcdEFGH/ijkl+mn==;EndpointSuffix=core.windows.net",
     "abcdEFGH/ijkl+mn=="),
    # Fake PEM blocks, split so the tracked file holds no key-shaped literal.
    ("-----BEGIN RSA " "PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4Zp\nq83kZ\n-----END RSA " "PRIVATE KEY-----", "MIIEowIBAAKCAQEAx4Zp"),
    ("-----BEGIN " "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    ("client_secret: 8Q~abcDEF.ghiJKL", "8Q~abcDEF.ghiJKL"),
    ("broker-1.example.com:9093,broker-2:9093?user=app&pass=hunter22", "hunter22"),
    ("SASL_SSL://svc:Sup3rPass@broker:9093", "Sup3rPass"),
    ("aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"),
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    # Formats found by the second hostile pass (tokens assembled so the file holds none).
    ("github_pat_" + "11ABCDEFG0123456789_" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "abcdefghijklmnopqrstuvwxyz"),
    ("xapp-1-" + "A0123456789-1234567890123-abcdef0123456789", "abcdef0123456789"),
    ("https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("https://acct.blob.core.windows.net/c?sv=2022-11-02&sp=rl&" + "sig=AbCdEf%2BGhIjKl%3D", "AbCdEf%2BGhIjKl%3D"),
    ("aws_session_token=" + "IQoJb3JpZ2luX2VjEJr//////////wEaCXVz", "IQoJb3JpZ2luX2VjEJr"),
    ("Authorization: Bearer " + "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27u", "dBjftJeZ4CVPmB92K27u"),
    ("AZURE_CLIENT_SECRET=" + "8Q~abcDEF.ghiJKL0123", "8Q~abcDEF.ghiJKL0123"),
    ("DATABRICKS_TOKEN=" + "abcDEF123456ghiJKL", "abcDEF123456ghiJKL"),
    (".option('awsSecretKey', '" + "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY')", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"),
    ("spark.conf.set('fs.azure.account.key.acct.dfs.core.windows.net', '" + "abcdEFGH/ijkl+mn0123==')", "abcdEFGH/ijkl+mn0123"),
    ("hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"),
    ("dose" + "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    # Disguised: a zero-width space in the key, full-width forms, a Cyrillic "а".
    ("pass\u200bword=Hunter2x!", "Hunter2x!"),
    ("ｐａｓｓｗｏｒｄ＝Ｈｕｎｔｅｒ２ｘ", "Ｈｕｎｔｅｒ２ｘ"),
    ("p\u0430ssword=Hunter2x!", "Hunter2x!"),
    # A plain word after "password:" or "client_secret:" at the end of a message (the lead's re-test).
    ("my kafka password: sunshine", "sunshine"),
    ("client_secret: Tangerine", "Tangerine"),
])
def test_secret_formats_are_removed_before_storage(text: str, secret: str) -> None:
    clean, error, reason = screen(text)
    assert not error and reason
    assert secret not in clean and REMOVED in clean
    assert find_secret_from_templates(text)  # the old import path still works


@pytest.mark.parametrize("text", [
    "b5f1c0a3d2e4f6a7b8c9d0e1f2a3b4c5d6e7f8a9",  # a git SHA
    "orders_events_topic_for_the_eu_region_v2",  # a 40-character topic name
    "OrdersEventsTopicForTheEuRegionVersion22",
    "mnt/raw/orders/checkpoints/bronze/events",  # a 40-character path
    "the password is stored in a vault, rotated monthly",
    "streaming/kafka-password",
    'password = "{{secrets/streaming/kafka}}"',
    "password=${KAFKA_PASSWORD}",
    'password = os.environ["KAFKA_PASSWORD"]',  # pasted code reading a secret is not one
    "password=kafka_password",
    "pwd = getpass()",
    "max_token: 700",
    "secret: streaming/kafka-jaas",
    '.option("secret.scope", "streaming")',
    "tokenizer=jieba",
    "Bearer token auth is used",
    "use a SAS token from the scope",
    "sig=1 in the chart",
    ".option('secretKey', dbutils.secrets.get('s', 'k'))",
])
def test_ids_and_references_are_not_taken_for_secrets(text: str) -> None:
    assert find_secret(text) is None
    assert screen(text) == (text, "", "")


def test_screening_ends_on_text_built_to_make_patterns_backtrack() -> None:
    """A 20,000-character ``a.a.a...`` message took minutes to screen (a pattern scanned back for a setting's name)."""
    import signal

    def stuck(*_):
        raise AssertionError("screening did not end")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)  # a guard against a hang, not a speed measurement (it takes well under a second)
    try:
        for text in ("a." * 9999, "a-" * 9999, ("x." * 30 + "password") * 280, "a://b:" * 3300):
            assert screen(text)[0] == text
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_redaction_keeps_the_setting_name() -> None:
    clean, reasons = redact('{"sasl.password": "s3cr3t-value"}')
    assert clean == '{"sasl.password": "[secret removed]"}' and reasons == ["a password"]


# ----- names and paths ----------------------------------------------------------------------------------------


def test_thread_ids_map_to_distinct_folders() -> None:
    assert safe_id("team/alpha") != safe_id("team-alpha")
    assert safe_id("a" * 80 + "x") != safe_id("a" * 80 + "y")
    assert safe_id("-") != safe_id(".") != safe_id("")
    assert safe_id("3f9a0c1b2d4e") == "3f9a0c1b2d4e"  # an engine-made id keeps its folder
    assert safe_id(safe_id("team/alpha")) != safe_id("team/alpha")  # a hashed form typed as an id is not it
    for value in ("team/alpha", "../../etc", "x" * 5000, "名字"):
        assert len(safe_id(value)) <= 80 and "/" not in safe_id(value) and safe_id(value) not in (".", "..")


def test_workspace_files_skip_a_symlink_leading_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "credentials").write_text("secret")
    workspace = Workspace(tmp_path / "ws")
    workspace.write("docs/plan.md", "# plan\n")
    (workspace.root / "leak").symlink_to(outside)
    (workspace.root / "leak.txt").symlink_to(outside / "credentials")
    (workspace.root / "dangling").symlink_to(tmp_path / "nowhere")
    assert workspace.files() == ["docs/plan.md"]


def test_long_names_and_file_parents_are_refused_plainly(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    workspace.write("docs/file.md", "x\n")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        workspace.write("docs/file.md/index.md", "y\n")
    with pytest.raises(WorkspaceError, match="too long"):
        workspace.write("a" * 300 + ".md", "y\n")
    with pytest.raises(WorkspaceError, match="too long"):
        workspace.resolve("x/" * 2000)


def test_shard_names_stay_within_file_name_limits() -> None:
    _index, shards = shard("# T\n\n## " + "长" * 300 + "\nbody\n")
    assert len(shards[0].filename.encode("utf-8")) <= 130


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_devices_are_not_read(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a regular file"):
        read_regular("/dev/zero", 1024)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(WorkspaceError, match="limit"):
        read_regular(big, 1024)
    assert read_regular(big, 4096) == b"x" * 2048


def test_folder_targets_are_capped(tmp_path: Path) -> None:
    for n in range(6):
        (tmp_path / f"f{n}.py").write_text("x = 1\n")
    (tmp_path / "link.py").symlink_to("/etc/hostname") if Path("/etc/hostname").exists() else None
    assert [p.name for p in regular_files(tmp_path, 10, 10_000)] == [f"f{n}.py" for n in range(6)]
    with pytest.raises(WorkspaceError, match="more than 5 files"):
        regular_files(tmp_path, 5, 10_000)


# ----- progress input ------------------------------------------------------------------------------------------


def test_deeply_nested_progress_is_refused_plainly() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ProgressError, match="nested"):
        parse_text(deep)
    lines = '{"a": ' * 5000 + "1" + "}" * 5000
    with pytest.raises(ProgressError):
        parse_text(lines + "\n" + lines)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_progress_from_a_device_is_refused() -> None:
    with pytest.raises(ProgressError, match="not a regular file"):
        load("/dev/zero")


# ----- bundles -------------------------------------------------------------------------------------------------

_AGENT = """==================== START: .bmad/agents/bomb.md ====================
# bomb

```yaml
{yaml}
```
==================== END: .bmad/agents/bomb.md ====================
"""
_GOOD_YAML = """agent:
  id: bomb
  name: Bomb
commands:
  - help: Show help
persona:
  role: tester"""


def _bundle(tmp_path: Path, yaml_text: str, extra: str = "") -> Path:
    path = tmp_path / "bundle.txt"
    path.write_text(_AGENT.format(yaml=yaml_text) + extra, encoding="utf-8")
    return path


def _no_staging(home: Path) -> bool:
    return not list((home / "bundles").glob("*.tmp")) if (home / "bundles").exists() else True


def test_a_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    layers = ["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
    for n, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[n]
        layers.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = _GOOD_YAML + "\nlols:\n" + "\n".join("  " + line for line in layers)
    with pytest.raises(PackError, match="alias"):
        load_bundle(_bundle(tmp_path, text), tmp_path / "home")


@pytest.mark.parametrize(("yaml_text", "message"), [
    (_GOOD_YAML.replace("  - help: Show help", "").replace("commands:", "commands: 5"), "'commands' must be a list"),
    (_GOOD_YAML.replace("persona:\n  role: tester", "persona: just a string"), "'persona' must be a mapping"),
    (_GOOD_YAML + "\ndependencies:\n  - tasks/a.md", "'dependencies' must be a mapping"),
    (_GOOD_YAML + "\ndependencies:\n  tasks: a.md", "'dependencies.tasks' must be a list"),
])
def test_wrong_types_in_a_bundle_are_pack_errors(tmp_path: Path, yaml_text: str, message: str) -> None:
    home = tmp_path / "home"
    with pytest.raises(PackError, match=message):
        load_bundle(_bundle(tmp_path, yaml_text), home)
    assert _no_staging(home)


@pytest.mark.parametrize(("resource", "message"), [
    ("==================== START: .bmad/templates/.. ====================\nx\n"
     "==================== END: .bmad/templates/.. ====================\n", "not a plain file name"),
    ("==================== START: .bmad/tasks/t.md ====================\n# T\ndocOutputLocation: ../..\n"
     "==================== END: .bmad/tasks/t.md ====================\n", "docOutputLocation"),
    ("==================== START: .bmad/tasks/t.md ====================\n# T\ndocOutputLocation: /etc/x.md\n"
     "==================== END: .bmad/tasks/t.md ====================\n", "docOutputLocation"),
])
def test_unsafe_resources_in_a_bundle_are_pack_errors(tmp_path: Path, resource: str, message: str) -> None:
    home = tmp_path / "home"
    with pytest.raises(PackError, match=message):
        load_bundle(_bundle(tmp_path, _GOOD_YAML, resource), home)
    assert _no_staging(home)


# ----- the checkpoint store ------------------------------------------------------------------------------------


def test_a_corrupt_checkpoint_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.sqlite").write_bytes(b"this is not a database" * 200)
    with pytest.raises(CheckpointError, match=r"checkpoints\.sqlite"):
        open_checkpointer(tmp_path, url="")


def test_the_store_waits_for_another_process_switching_to_wal(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "checkpoints.sqlite"
    # Another process is writing: SQLite refuses the switch to WAL at once ("database is locked"),
    # without waiting on its busy timeout, because waiting could deadlock.
    holder = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
    holder.execute("CREATE TABLE x (y)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO x VALUES (1)")
    timer = threading.Timer(1.0, lambda: holder.execute("COMMIT"))
    timer.start()
    try:
        saver = open_checkpointer(tmp_path, url="")
    finally:
        timer.join()
        holder.close()
    assert saver.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_home_is_private(tmp_path: Path) -> None:
    from agent.session import make_private

    home = tmp_path / "home"
    make_private(home)
    open_checkpointer(home, url="")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "checkpoints.sqlite").stat().st_mode) == 0o600
    for name in ("workspace", "transcripts", "locks"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o700


def test_an_existing_app_home_is_made_private(tmp_path: Path) -> None:
    from agent.session import make_private

    home = tmp_path / "old"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "checkpoints.sqlite").write_bytes(b"")
    os.chmod(home / "checkpoints.sqlite", 0o644)
    make_private(home)
    open_checkpointer(home, url="")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "checkpoints.sqlite").stat().st_mode) == 0o600


def test_a_home_first_made_by_a_knowledge_command_is_private(tmp_path: Path, capsys) -> None:
    """``ingest``/``index``/``ask`` may be the first command a user runs: the home they create is private."""
    from agent.cli import main

    home = tmp_path / "fresh"
    assert main(["--home", str(home), "ingest", "--remove", "nothing"]) == 2
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # A home an older version left open (an index and ingested documents, no checkpoints yet) is closed.
    old = tmp_path / "old"
    (old / "index").mkdir(parents=True)
    (old / "ingested").mkdir()
    for folder in (old, old / "index", old / "ingested"):
        os.chmod(folder, 0o755)
    main(["--home", str(old), "ingest", "--remove", "nothing"])
    for folder in (old, old / "index", old / "ingested"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert "nothing" in capsys.readouterr().err
    unused = tmp_path / "unused"
    code = tmp_path / "job.py"
    code.write_text("x = 1\n")
    main(["--home", str(unused), "check", str(code)])
    assert not unused.exists(), "`check` reads no home, so it creates none"


def test_json_helper_shapes() -> None:
    # The progress reader still reads ordinary progress after the depth guard.
    record = {"id": "q", "runId": "r", "batchId": 1, "timestamp": "2024-01-01T00:00:00.000Z", "numInputRows": 10,
              "inputRowsPerSecond": 1.0, "processedRowsPerSecond": 2.0, "durationMs": {"triggerExecution": 100},
              "sources": [{"description": "KafkaV2[Subscribe[t]]", "endOffset": json.dumps({"t": {"0": 5}})}]}
    log = parse_text(json.dumps([record]))
    assert sum(len(b) for b in log.queries.values()) == 1


def test_opening_a_home_again_never_opens_its_database_file(tmp_path, monkeypatch):
    """Closing any descriptor of a database file drops this process's POSIX locks on it, SQLite's included
    (another engine on the same home then risks a corrupt store: seen as "database disk image is malformed")."""
    import os

    import agent.persistence as persistence

    persistence.open_checkpointer(tmp_path)
    opened = []
    real_open = os.open

    def recording_open(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        opened.append(str(path))  # only descriptors that were really opened
        return fd

    monkeypatch.setattr(persistence.os, "open", recording_open)
    persistence.open_checkpointer(tmp_path)  # a second engine on the same home, as the eval runner and the UI open
    assert not [p for p in opened if p.endswith("checkpoints.sqlite")], opened
    assert (os.stat(tmp_path / "checkpoints.sqlite").st_mode & 0o777) == 0o600


# ----- bounded work inside the linter -------------------------------------------------------------------------


def test_a_dropped_target_table_is_still_told_apart() -> None:
    """The linter finds ``DROP TABLE`` once per file (it searched the file again for every query)."""
    from tools.lint import check_text

    reset = ("dbutils.fs.rm('/cp/q', True)\n"
             "spark.readStream.table('src').writeStream.option('checkpointLocation', '/cp/q').toTable('{target}')\n")
    rules = {f.rule for f in check_text(reset.format(target="cat.sch.orders"), "python").findings}
    assert "SE209" in rules, "deleting a query's checkpoint is a finding"
    rebuild = "spark.sql('DROP TABLE IF EXISTS cat.sch.orders')\n" + reset.format(target="cat.sch.orders")
    assert "SE209" not in {f.rule for f in check_text(rebuild, "python").findings}, "a deliberate full rebuild"
    other = "spark.sql('DROP TABLE IF EXISTS cat.sch.orders_old')\n" + reset.format(target="cat.sch.orders")
    assert "SE209" in {f.rule for f in check_text(other, "python").findings}, "another table dropped is no rebuild"


def test_sql_facts_keep_their_line_numbers() -> None:
    from tools.evidence.facts import sql_facts

    facts = sql_facts("select 1;\n\nselect 2;  insert into x values (1);\n-- c\nselect 3", "a.sql", 10)
    assert [(f.text, f.where) for f in facts] == [
        ("select 1", "a.sql:11"), ("select 2", "a.sql:13"), ("insert into x values (1)", "a.sql:13"),
        ("select 3", "a.sql:15")]


def test_a_time_budget_nests_and_stops_work() -> None:
    from tools.budget import OutOfTime, check_time, out_of_time, remaining, time_budget

    check_time()  # no budget: nothing to stop
    assert remaining() is None
    with time_budget(0.0):
        assert out_of_time()
        with time_budget(60.0):
            assert out_of_time(), "an inner budget never outlasts the outer one"
        with pytest.raises(OutOfTime):
            check_time()
    with time_budget(60.0):
        assert not out_of_time() and 0 < (remaining() or 0) <= 60


def test_the_models_checklist_tool_keeps_a_time_budget(tmp_path: Path, monkeypatch) -> None:
    """A model may call ``run_checklist`` on a big upload several times a turn: each call is bounded."""
    import types

    from knowledge.loader import load_pack
    from tools import budget, langchain_tools
    from tools.lint.python_rules import PythonChecker

    now = [0.0]
    monkeypatch.setattr(budget, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    original = PythonChecker.frame_of

    def slow(self, node):  # each chain the linter evaluates costs a second
        now[0] += 1.0
        return original(self, node)

    monkeypatch.setattr(PythonChecker, "frame_of", slow)
    workspace = Workspace(tmp_path / "ws")
    query = "q{n} = spark.readStream.format('kafka').load().writeStream.toTable('t{n}')\n"
    workspace.write("uploads/big.py", "".join(query.format(n=n) for n in range(200)))
    tools = {t.name: t for t in langchain_tools.make_tools(load_pack(), workspace)}
    report = tools["run_checklist"].invoke({"checklist": "streaming-readiness-checklist", "target": "uploads/big.py"})
    assert now[0] <= langchain_tools.CHECKLIST_TOOL_SECONDS + 1
    assert "time budget ran out" in report


def test_diagnose_out_that_cannot_be_a_folder_is_a_plain_error(tmp_path: Path, capsys) -> None:
    from tools.diagnose import cli as diagnose_cli

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "progress"
    taken = tmp_path / "a-file"
    taken.write_text("x")
    assert diagnose_cli.main([str(fixtures), "--out", str(taken)]) == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_a_bundle_that_is_a_named_pipe_is_refused_at_once(tmp_path: Path) -> None:
    """``--bundle fifo`` waited forever for a writer, and ``--bundle /dev/zero`` read 11 GB in 26 s."""
    import signal

    fifo = tmp_path / "bundle.txt"
    os.mkfifo(fifo)

    def stuck(*_):
        raise AssertionError("the bundle loader waited on a pipe")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(30)  # a guard against a hang, not a speed measurement
    try:
        with pytest.raises(PackError, match="not a regular file"):
            load_bundle(fifo, tmp_path / "home")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if Path("/dev/zero").exists():
        with pytest.raises(PackError, match="not a regular file"):
            load_bundle("/dev/zero", tmp_path / "home")
