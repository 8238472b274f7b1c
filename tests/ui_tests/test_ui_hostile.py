"""The web app under hostile input, through its HTTP API (issue #15): bounded requests, no kept secrets."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import read_elsewhere
from tests.ui_tests.conftest import REVIEW, Session, text_of

PASSWORD = "Hunter2-Zq9!"


@pytest.fixture
def session(ui_server):
    s = Session(ui_server.url)
    yield s
    s.close()


def _everything(home: Path, needle: str) -> list[str]:
    return [str(p) for p in home.rglob("*") if p.is_file() and not p.is_symlink() and needle.encode() in read_elsewhere(p)]


def test_an_oversized_message_never_enters_the_chat(session, ui_server) -> None:
    from agent.session import MAX_INPUT_CHARS

    session.send("*help")
    thread = session.thread_ids()[0]
    marker = "Q" * (MAX_INPUT_CHARS + 500)
    out = session.send(marker)
    texts = [text_of(m) for m in out["chat"]]
    assert not any(marker[:1000] in t for t in texts), "the message is not echoed back"
    assert any("too long, not kept" in t for t in texts) and any("I take at most" in t for t in texts)
    assert len(json.dumps(out["chat"])) < 200_000
    out = session.send("*help")
    assert not any(marker[:1000] in text_of(m) for m in out["chat"]), "nor re-sent on later turns"
    assert not (ui_server.engine.transcript(thread) or []) or all(
        marker[:1000] not in json.dumps(t) for t in ui_server.engine.transcript(thread))


def test_a_request_body_over_the_limit_is_refused(ui_server) -> None:
    from ui.app import MAX_REQUEST_BYTES

    body = json.dumps({"data": ["x" * (MAX_REQUEST_BYTES + 10), "", ""], "fn_index": 0, "session_hash": "abc"})
    response = httpx.post(f"{ui_server.url.rstrip('/')}/gradio_api/queue/join", content=body,
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413

    def chunks():
        for _ in range(3):
            yield b"x" * (MAX_REQUEST_BYTES // 2)

    response = httpx.post(f"{ui_server.url.rstrip('/')}/gradio_api/queue/join", content=chunks(),
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413, "a chunked body without a length is bounded too"


def test_a_secret_in_a_message_is_never_shown_back_or_kept(session, ui_server) -> None:
    session.send("*help")
    thread = session.thread_ids()[0]
    out = session.send(f"my kafka password is {PASSWORD}")
    texts = [text_of(m) for m in out["chat"]]
    assert not any(PASSWORD in t for t in texts) and any("[secret removed]" in t for t in texts)
    ui_server.engine.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _everything(ui_server.home / "transcripts", PASSWORD) == []
    assert _everything(ui_server.home / "ui", PASSWORD) == []
    assert PASSWORD.encode() not in read_elsewhere(ui_server.home / "checkpoints.sqlite")
    assert thread


def test_a_password_at_a_secret_question_is_not_echoed(session, ui_server) -> None:
    out = session.send("*kafka-connector")
    for _ in range(40):
        if "scope/key" in (session.last.get("task") or ""):
            break
        out = session.send("default")
    else:
        pytest.fail("the secret question never came")
    out = session.send(PASSWORD)
    texts = [text_of(m) for m in out["chat"]]
    assert not any(PASSWORD in t for t in texts) and any("did not keep it" in t for t in texts)
    ui_server.engine.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _everything(ui_server.home / "transcripts", PASSWORD) == []
    assert PASSWORD.encode() not in read_elsewhere(ui_server.home / "checkpoints.sqlite")


def test_a_review_is_bounded(session, ui_server, tmp_path, monkeypatch) -> None:
    from gradio_client import handle_file

    from ui import review

    monkeypatch.setattr(review, "MAX_REVIEW_BYTES", 6_000)
    monkeypatch.setattr(review, "MAX_FINDINGS_PER_FILE", 3)
    files = []
    for n in range(3):
        path = tmp_path / f"job_{n}.py"
        path.write_text("df = spark.readStream.format('kafka').load()\n" * 100, encoding="utf-8")  # 4.5 KB
        files.append(path)
    session.send("*help")
    result = session.call(REVIEW, [handle_file(str(f)) for f in files], "streaming-readiness-checklist",
                          api_name="/review")
    summary = result["summary"]
    assert "job_0.py" in summary and "job_1.py: a review judges at most" in summary
    per_file = [row for row in result["findings"]["data"] if row[3].startswith("uploads/job_0.py")]
    assert len(per_file) <= 4 and any("more findings in this file are not listed" in row[4] for row in per_file)


def test_a_review_stops_at_its_time_budget(session, ui_server, tmp_path, monkeypatch) -> None:
    from gradio_client import handle_file

    from ui import review

    monkeypatch.setattr(review, "REVIEW_SECONDS", 0.0)
    path = tmp_path / "job.py"
    path.write_text("df = spark.readStream.format('kafka').load()\n", encoding="utf-8")
    session.send("*help")
    result = session.call(REVIEW, [handle_file(str(path))], "all", api_name="/review")
    assert "time ran out" in result["summary"]
    assert len({row[1] for row in result["items"]["data"]}) < len(ui_server.engine.pack.checklists)


def test_a_workspace_symlink_does_not_break_the_panel_or_the_zip(session, ui_server, tmp_path) -> None:
    session.send("*help")
    thread = session.thread_ids()[0]
    workspace = ui_server.engine.workspace(thread)
    workspace.write("docs/a.md", "# a\n")
    secret = tmp_path / "outside.txt"
    secret.write_text("outside")
    (workspace.root / "leak.txt").symlink_to(secret)
    out = session.send("*help")
    assert session.files() == ["docs/a.md"]
    zipped = session.call(("zip_file",), api_name="/download_all")
    assert zipped["zip_file"]
    assert out


def _review(session, tmp_path, selection: str, lines: int = 40):
    from gradio_client import handle_file

    path = tmp_path / "job.py"
    query = "q{n} = spark.readStream.format('kafka').load().writeStream.option('checkpointLocation', '/cp/{n}')" \
            ".toTable('t{n}')\n"
    path.write_text("".join(query.format(n=n) for n in range(lines)), encoding="utf-8")
    session.send("*help")
    return session.call(REVIEW, [handle_file(str(path))], selection, api_name="/review")


def test_a_review_lints_each_file_once(session, ui_server, tmp_path, monkeypatch) -> None:
    """The review's tables, its report and the same checklist in the conversation share one linting."""
    from tools.lint import engine

    linted: list[str] = []
    original = engine.check_file

    def counted(path):
        linted.append(str(path))
        return original(path)

    monkeypatch.setattr(engine, "check_file", counted)
    result = _review(session, tmp_path, "streaming-readiness-checklist")
    assert "also ran as `*execute-checklist`" in result["summary"], result["summary"]
    assert [Path(p).name for p in linted] == ["job.py"]


def test_a_lint_pass_stops_at_the_review_budget(session, ui_server, tmp_path, monkeypatch) -> None:
    """The budget is kept inside a lint pass, not only between checklists (a clock that moves as the linter works)."""
    import types

    from tools import budget
    from tools.lint.python_rules import PythonChecker
    from ui import review

    now = [0.0]
    monkeypatch.setattr(budget, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(review, "REVIEW_SECONDS", 30.0)
    steps = []
    original = PythonChecker.frame_of

    def slow(self, node):  # each chain the linter evaluates costs a second
        steps.append(now[0])
        now[0] += 1.0
        return original(self, node)

    monkeypatch.setattr(PythonChecker, "frame_of", slow)
    result = _review(session, tmp_path, "all", lines=400)
    assert "time ran out" in result["summary"] and "was not linted" in result["summary"], result["summary"]
    assert now[0] <= 30.0 + 1.0, "the linter stopped within the budget (plus the one step it was in)"
    assert len(steps) < 400, "it did not evaluate the rest of the file"
    assert not result["items"]["data"] or all(row[0] in ("REVIEW", "N/A", "PASS", "FAIL", "PARTIAL")
                                              for row in result["items"]["data"])
    assert any("not checked: the time budget" in row[4] for row in result["findings"]["data"])


def test_threads_per_browser_are_bounded(session, ui_server, monkeypatch) -> None:
    """Every thread keeps state, a transcript and files, and every turn sends the thread list: threads are bounded."""
    from gradio_client.exceptions import AppError

    from tests.ui_tests.conftest import SWITCH
    from ui import app

    monkeypatch.setattr(app, "MAX_THREADS_PER_BROWSER", 3)
    session.send("*help")
    for _ in range(2):
        session.call(SWITCH, api_name="/new_thread")
    assert len(session.thread_ids()) == 3
    with pytest.raises(AppError, match="already has 3 threads"):
        session.call(SWITCH, api_name="/new_thread")
    session.call(SWITCH, api_name="/delete_thread")
    session.call(SWITCH, api_name="/new_thread")  # after a delete there is room again
    assert len(session.thread_ids()) == 3


def test_upload_names_keep_their_suffix_and_stay_apart() -> None:
    """``订单流.py`` was cut to ``py`` and refused as "not a pipeline file"; two such names collided."""
    from ui.review import TEXT_SUFFIXES, safe_name

    names = [safe_name(n) for n in ("订单流.py", "支付.py", "a" * 300 + ".sql", "../../etc/job.yaml", "evil\u202ecod.py")]
    assert all(n.endswith(TEXT_SUFFIXES) for n in names), names
    assert len(set(names)) == len(names) and all("/" not in n and len(n) <= 100 for n in names)
    assert names[3] == "job.yaml"
