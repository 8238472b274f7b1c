"""Hostile inputs end to end (issue #15): what a user who attacks the role through its front ends finds.

Each test repeats one attack as a user would (``run --script``, ``diagnose``,
``--bundle``, the engine every front end drives) and checks what matters:
no secret stored, no turn that dies, no unbounded read, nothing outside the
workspace, a thread that stays usable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.session import Engine
from agent.threadlock import ThreadLock
from tests.conftest import ROOT, cli, read_elsewhere

PASSWORD = "Hunter2-Zq9!"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh app home (no index: tasks and checklists work offline without one)."""
    path = tmp_path / "home"
    os.environ.pop("OPENAI_API_KEY", None)
    os.environ.pop("AZURE_OPENAI_API_KEY", None)
    return path


def stored_anywhere(home: Path, needle: str) -> list[str]:
    """Every file under ``home`` whose bytes contain ``needle``."""
    hits = []
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle.encode() in read_elsewhere(path):
            hits.append(str(path.relative_to(home)))
    return hits


def answer_until_secret_question(engine: Engine, thread: str) -> dict:
    result = engine.turn(thread, "*kafka-connector")
    for _ in range(40):
        assert result.waiting, result.output
        if result.waiting.get("kind") == "secret_ref":
            return result.waiting
        result = engine.turn(thread, "default")
    raise AssertionError("the Kafka task asked no secret scope/key")


# ----- secrets ------------------------------------------------------------------------------------------------


def test_a_password_typed_at_a_secret_question_is_stored_and_sent_nowhere(home: Path, monkeypatch) -> None:
    import agent.nodes.tasks as tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks, "extract_value", lambda ask, kind, text, choices: sent.append(text))
    engine = Engine(home=home)
    question = answer_until_secret_question(engine, "s1")
    result = engine.turn("s1", PASSWORD)
    assert "did not keep it anywhere" in result.output and "removed it before storing" in result.output
    assert result.waiting["key"] == question["key"], "asked again"
    assert PASSWORD not in result.output and PASSWORD not in json.dumps(result.to_dict())
    assert sent == [], "a secret answer is never sent to the model for extraction"
    engine.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert stored_anywhere(home, PASSWORD) == []
    # The thread goes on: a scope/key is taken.
    result = engine.turn("s1", "streaming/kafka-jaas")
    assert result.waiting is None or result.waiting.get("key") != question["key"]
    assert stored_anywhere(home, PASSWORD) == []


def test_a_password_resumed_straight_into_the_graph_is_kept_nowhere(home: Path) -> None:
    """A LangGraph Server client answers a question with ``Command(resume=...)``, past the session's screen."""
    from langgraph.types import Command

    engine = Engine(home=home)
    question = answer_until_secret_question(engine, "s5")

    def resume(value):
        return engine.graph.invoke(Command(resume=value), engine.config("s5"), context=engine.context,
                                   durability="exit")

    for value in (PASSWORD, {"text": PASSWORD}, f"password={PASSWORD}"):
        out = resume(value)
        waiting = out["__interrupt__"][0].value
        assert waiting["key"] == question["key"], "asked again"
        said = str(out["messages"][-1].content)
        assert "did not keep it anywhere" in said or "is not" in said, said
        assert PASSWORD not in str(engine.graph.get_state(engine.config("s5")).values)
    # A secret in an answer to an ordinary question is screened as typed input is.
    resume("streaming/kafka-user")
    while (waiting := engine.graph.get_state(engine.config("s5")).interrupts[0].value)["kind"] == "secret_ref":
        resume("streaming/kafka-x")
    resume(f"topic_a password={PASSWORD}")
    engine.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert PASSWORD not in str(engine.graph.get_state(engine.config("s5")).values)
    assert stored_anywhere(home, PASSWORD) == []


@pytest.mark.parametrize("message", [
    f"my kafka password is {PASSWORD}",
    f'{{"bootstrap.servers": "b1:9093", "sasl.password": "{PASSWORD}"}}',
    f"client_secret: {PASSWORD}",
    f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={PASSWORD}==;EndpointSuffix=core.windows.net",
])
def test_secrets_in_messages_are_removed_before_storage(home: Path, message: str) -> None:
    engine = Engine(home=home)
    result = engine.turn("s2", message)
    assert "[secret removed]" in result.input and "removed it before storing" in result.output
    engine.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert stored_anywhere(home, PASSWORD) == []


def test_a_password_inside_a_bootstrap_servers_answer_reaches_no_file(home: Path) -> None:
    engine = Engine(home=home)
    result = engine.turn("s3", "*kafka-connector")
    while result.waiting and result.waiting.get("key") != "servers":
        result = engine.turn("s3", "default")
    assert result.waiting, "the Kafka task asks for the bootstrap servers"
    result = engine.turn("s3", f"broker-1.example.com:9093?user=app&pass={PASSWORD}")
    assert result.waiting and result.waiting["key"] == "servers", "what is left of the answer is no value: asked again"
    assert "held what looks like a secret" in result.output
    for _ in range(40):
        if not result.waiting:
            break
        result = engine.turn("s3", "default")
    engine.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert stored_anywhere(home, PASSWORD) == []
    assert stored_anywhere(home / "workspace", "[secret removed]") == [], "no config or code holds the stub"


def test_a_git_sha_and_a_long_topic_name_are_accepted(home: Path) -> None:
    engine = Engine(home=home)
    for text in ("b5f1c0a3d2e4f6a7b8c9d0e1f2a3b4c5d6e7f8a9", "OrdersEventsTopicForTheEuRegionVersion22"):
        result = engine.turn("s4", text)
        assert result.input == text and "removed it" not in result.output


# ----- no turn dies ---------------------------------------------------------------------------------------------


def test_a_failure_inside_a_turn_is_a_plain_message_and_the_thread_goes_on(home: Path, monkeypatch) -> None:
    import errno

    from tools.workspace import Workspace

    engine = Engine(home=home)
    result = engine.turn("g1", "*dlq-ops")
    before = result.waiting["key"]
    original = Workspace.write

    def full_disk(self, relative, content):
        original(self, relative, content)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Workspace, "write", full_disk)
    failed = engine.turn("g1", "#yolo")
    assert "could not finish that" in failed.output and "disk is full" in failed.output
    assert "Traceback" not in failed.output and str(home) not in failed.output
    assert "it had written" in failed.output, "the files an unfinished run wrote are named"
    assert failed.waiting is None and failed.pending_question, "the question it was at is asked again"
    monkeypatch.setattr(Workspace, "write", original)
    again = engine.turn("g1", "#yolo")
    assert "Done" in again.output and not again.waiting, again.output
    assert before


HOSTILE_SCRIPT = [
    "*create-doc " + "a" * 300,
    "*shard-doc " + "b" * 300 + ".md",
    "*doc-out " + "c/" * 2000 + "x.md",
    "*execute-checklist streaming-readiness",
    "2",
    "d/" * 2000,
    "*execute-checklist streaming-readiness",
    "2",
    "[" * 50_000,
    "*execute-checklist streaming-readiness",
    "2",
    "/dev/zero",
    "*help",
]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_hostile_script_runs_to_its_end(home: Path) -> None:
    stdin = "\n".join(HOSTILE_SCRIPT) + "\n"
    result = cli("run", "--script", "-", "--thread", "h1", home=home, stdin=stdin, timeout=300)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    turns = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(turns) == len(HOSTILE_SCRIPT), "every line got its turn"
    assert "not a regular file" in turns[-2]["output"]
    assert "*help" in turns[-1]["output"] or "Commands" in turns[-1]["output"]
    assert all(str(home) not in t["output"] for t in turns), "no server path shown"


def test_shard_doc_under_an_existing_file_is_refused_plainly(home: Path) -> None:
    engine = Engine(home=home)
    workspace = engine.workspace("h2")
    workspace.write("docs/plan.md", "# Plan\n\n## One\nx\n\n## Two\ny\n")
    workspace.write("docs/file.txt", "z\n")
    result = engine.turn("h2", "*shard-doc docs/plan.md docs/file.txt/parts")
    assert "could not shard" in result.output and "is a file, not a folder" in result.output
    assert engine.turn("h2", "*shard-doc docs/plan.md docs/parts").output.count("docs/parts/") >= 3


def test_a_symlink_leading_out_of_a_workspace_breaks_nothing(home: Path, tmp_path: Path) -> None:
    from ui.artifacts import download_all

    engine = Engine(home=home)
    engine.turn("h3", "*help")
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = " + "K" * 40)
    workspace = engine.workspace("h3")
    workspace.write("docs/a.md", "# a\n")
    (workspace.root / "creds").symlink_to(secret)
    (workspace.root / "etc").symlink_to(tmp_path)
    assert workspace.files() == ["docs/a.md"]
    archive = download_all(workspace, "h3")
    import zipfile

    assert zipfile.ZipFile(archive).namelist() == ["docs/a.md"]
    assert "`*help`" in engine.turn("h3", "*help").output


def test_a_whole_workspace_as_target_is_named_relative(home: Path) -> None:
    engine = Engine(home=home)
    workspace = engine.workspace("h6")
    workspace.write("uploads/job.py", "df = spark.readStream.format('kafka').load()\n")
    engine.turn("h6", "*execute-checklist streaming-readiness")
    engine.turn("h6", "2")
    result = engine.turn("h6", ".")
    assert "on uploads/job.py" in result.output and str(home) not in result.output


def test_folder_targets_name_files_relative_to_the_workspace(home: Path) -> None:
    engine = Engine(home=home)
    workspace = engine.workspace("h4")
    for n in range(3):
        workspace.write(f"uploads/job_{n}.py", "df = spark.readStream.format('kafka').load()\n")
    engine.turn("h4", "*execute-checklist streaming-readiness")
    engine.turn("h4", "2")
    result = engine.turn("h4", "uploads")
    assert "uploads/job_0.py" in result.output and str(workspace.root) not in result.output
    report = workspace.read("docs/checklists/streaming-readiness-checklist-report.md")
    assert str(home) not in report


def test_a_checklist_run_in_the_chat_keeps_its_time_budget(home: Path, monkeypatch) -> None:
    """A checklist on a file whose linting outlasts the budget stops inside the linter and says what it left out."""
    import types

    from agent.nodes import checklist
    from tools import budget
    from tools.lint.python_rules import PythonChecker

    now = [0.0]
    monkeypatch.setattr(budget, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(checklist, "CHECKLIST_SECONDS", 20.0)
    original = PythonChecker.frame_of

    def slow(self, node):  # each chain the linter evaluates costs a second
        now[0] += 1.0
        return original(self, node)

    monkeypatch.setattr(PythonChecker, "frame_of", slow)
    engine = Engine(home=home)
    query = "q{n} = spark.readStream.format('kafka').load().writeStream.toTable('t{n}')\n"
    engine.workspace("h7").write("jobs/big.py", "".join(query.format(n=n) for n in range(300)))
    engine.turn("h7", "*execute-checklist streaming-readiness")
    engine.turn("h7", "2")
    result = engine.turn("h7", "jobs/big.py")
    assert now[0] <= 21.0, "stopped inside the lint pass, within the budget"
    assert "time budget ran out" in result.output and "`jobs/big.py` was not linted" in result.output, result.output
    assert not result.waiting and "Report written" in result.output
    assert "`*help`" in engine.turn("h7", "*help").output


def test_a_folder_over_the_caps_is_refused_with_the_limits(home: Path) -> None:
    from agent.nodes.checklist import MAX_TARGET_FILES

    engine = Engine(home=home)
    workspace = engine.workspace("h5")
    for n in range(MAX_TARGET_FILES + 1):
        workspace.write(f"many/f{n}.py", "x = 1\n")
    engine.turn("h5", "*execute-checklist streaming-readiness")
    engine.turn("h5", "2")
    result = engine.turn("h5", "many")
    assert f"more than {MAX_TARGET_FILES} files" in result.output and result.pending_question


# ----- files that never end ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_run_script_and_diagnose_refuse_devices(home: Path) -> None:
    result = cli("run", "--script", "/dev/zero", home=home, timeout=120)
    assert result.returncode == 2 and b"not a regular file" in result.stderr
    result = cli("diagnose", "/dev/zero", home=home, timeout=120)
    assert result.returncode == 2 and b"/dev/zero" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_progress_from_a_device_is_not_read() -> None:
    from tools.diagnose.progress import ProgressError, load

    with pytest.raises(ProgressError, match="not a regular file"):
        load("/dev/zero")


def test_an_endless_line_on_standard_input_is_one_refused_turn(home: Path) -> None:
    stdin = b"x" * (3 * 1024 * 1024) + b"\n*help\n"
    result = cli("run", "--script", "-", "--thread", "z1", home=home, stdin=stdin, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    turns = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(turns) == 2 and f"{3 * 1024 * 1024} characters" in turns[0]["output"], "its real length"
    assert len(turns[0]["input"]) <= 500


def test_diagnose_on_deeply_nested_json_says_so(tmp_path: Path, home: Path) -> None:
    deep = tmp_path / "progress.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    result = cli("diagnose", str(deep), home=home, timeout=120)
    assert result.returncode == 2 and b"nested" in result.stderr + result.stdout
    assert b"Traceback" not in result.stderr


# ----- hostile bundles --------------------------------------------------------------------------------------------


def test_a_bundle_with_an_alias_bomb_is_refused_at_start(tmp_path: Path, home: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n, name in enumerate("bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{'abcdefghi'[n]}"] * 9) + "]")
    bundle = tmp_path / "bomb.txt"
    bundle.write_text(
        "==================== START: .bmad/agents/bomb.md ====================\n# bomb\n\n```yaml\n"
        "agent:\n  id: bomb\n  name: Bomb\ncommands:\n  - help: Show help\nlols:\n"
        + "\n".join("  " + line for line in lines)
        + "\n```\n==================== END: .bmad/agents/bomb.md ====================\n"
    )
    result = cli("--bundle", str(bundle), "run", "--script", "-", home=home, stdin="*help\n", timeout=120)
    assert result.returncode == 2 and b"alias" in result.stderr
    assert not list((home / "bundles").glob("*.tmp")) if (home / "bundles").exists() else True


# ----- concurrency and crashes --------------------------------------------------------------------------------


def test_a_second_script_on_a_busy_thread_is_told_so(home: Path) -> None:
    Engine(home=home).turn("c1", "*help")
    with ThreadLock(home, "c1"):
        result = cli("run", "--script", "-", "--thread", "c1", home=home, stdin="*help\n*dlq-ops\n", timeout=120)
    assert result.returncode == 3 and b"busy" in result.stderr
    turns = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(turns) == 1 and "busy" in turns[0]["output"], "the rest of the script is not run against it"
    # Free again: the thread answers normally.
    assert "busy" not in Engine(home=home).turn("c1", "*help").output


def test_the_same_thread_in_one_process_is_busy_too(home: Path) -> None:
    engine = Engine(home=home)
    with ThreadLock(home, "c2"):
        result = engine.turn("c2", "*help")
    assert result.busy and "busy" in result.output
    assert not engine.turn("c2", "*help").busy


def test_eight_processes_open_a_fresh_home_at_once(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    code = ("import sys; from pathlib import Path; from agent.persistence import open_checkpointer; "
            "open_checkpointer(Path(sys.argv[1]), url='').conn.execute('select count(*) from checkpoints')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], cwd=ROOT, stderr=subprocess.PIPE)
             for _ in range(8)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-500:] for e in errors if e]


def test_a_corrupt_store_is_a_clear_error(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "checkpoints.sqlite").write_bytes(b"garbage" * 1000)
    result = cli("run", "--script", "-", home=home, stdin="*help\n", timeout=120)
    assert result.returncode == 2
    assert b"checkpoints.sqlite" in result.stderr and b"Traceback" not in result.stderr


KILL_AFTER_FIRST_WRITE = textwrap.dedent("""
    import os, signal, sys
    from tools.workspace import Workspace
    from agent.session import Engine

    original = Workspace.write
    def write_then_die(self, relative, content):
        path = original(self, relative, content)
        if os.environ.get("KILL_AFTER_WRITES"):
            left = int(os.environ["KILL_AFTER_WRITES"]) - 1
            os.environ["KILL_AFTER_WRITES"] = str(left)
            if left == 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return path
    Workspace.write = write_then_die
    engine = Engine(home=sys.argv[1])
    engine.turn("k1", "*dlq-ops")
    os.environ["KILL_AFTER_WRITES"] = "3"
    engine.turn("k1", "#yolo")
""")


def test_a_run_killed_between_its_files_and_its_state_is_reconciled(home: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_WRITE, str(home)], cwd=ROOT, capture_output=True,
                          timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    engine = Engine(home=home)
    written = engine.workspace("k1").files()
    assert len(written) == 3
    state = engine.graph.get_state(engine.config("k1"))
    assert state.interrupts and not state.values.get("artifacts"), "the state is from before the run"
    result = engine.turn("k1", "#yolo")
    assert "stopped before it was saved" in result.output
    assert all(f"`{path}`" in result.output for path in written)
    assert "Done" in result.output
    assert "stopped before" not in engine.turn("k1", "*help").output, "said once"


def test_a_named_pipe_as_script_is_refused_at_once(home: Path, tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: `run --script` waited forever before checking its type."""
    fifo = tmp_path / "script.fifo"
    os.mkfifo(fifo)
    result = cli("run", "--script", str(fifo), home=home, timeout=120)
    assert result.returncode == 2 and b"not a regular file" in result.stderr


@pytest.mark.parametrize("where", ["/dev/null", "file"])
def test_a_home_that_cannot_be_a_folder_is_a_plain_error(tmp_path: Path, where: str) -> None:
    if where == "file":
        where = str(tmp_path / "file")
        Path(where).write_text("x")
    result = cli("--home", where, "run", "--script", "-", home=tmp_path / "unused", stdin="*help\n", timeout=120)
    assert result.returncode == 2 and b"cannot use" in result.stderr and b"Traceback" not in result.stderr
