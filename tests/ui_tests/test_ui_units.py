"""The app's pieces without a server: thread ownership, feedback records, upload checks, bubbles."""

from __future__ import annotations

import json

from tools.workspace import Workspace
from ui import chat, review
from ui.feedback import read_feedback, record_feedback, turn_of
from ui.sessions import DEFAULT_TITLE, ThreadRegistry, is_token, new_owner


def test_registry_keeps_threads_per_owner_and_hides_tokens(tmp_path):
    path = tmp_path / "threads.sqlite"
    registry = ThreadRegistry(path)
    alice, bob = new_owner(), new_owner()
    assert is_token(alice) and not is_token("../etc") and not is_token("")
    registry.add(alice, "t-alice")
    registry.add(bob, "t-bob")
    registry.retitle(alice, "t-alice", "*kafka-connector   please")
    assert [r.thread_id for r in registry.threads(alice)] == ["t-alice"]
    assert registry.threads(alice)[0].title == "*kafka-connector please"
    assert not registry.owns(alice, "t-bob") and registry.owns(bob, "t-bob")
    assert not registry.remove(alice, "t-bob")
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("threads.sqlite*"))
    assert b"t-alice" in stored and alice.encode() not in stored and bob.encode() not in stored
    assert registry.remove(bob, "t-bob") and not registry.owns(bob, "t-bob")
    registry.add(bob, "t-bob")
    reopened = ThreadRegistry(path)
    assert reopened.owns(bob, "t-bob") and reopened.known(alice)
    assert reopened.threads(bob)[0].title == DEFAULT_TITLE
    assert reopened.threads("not a token") == []


def test_registry_imports_an_earlier_json_registry_once(tmp_path):
    owner = new_owner()
    first = ThreadRegistry(tmp_path / "threads.sqlite")
    key = first._key(owner)
    legacy = {key: [{"thread_id": "old-1", "title": "Kafka setup", "created": 10.0},
                    {"thread_id": "old-2", "title": "New conversation", "created": 20.0}]}
    (tmp_path / "threads.json").write_text(json.dumps(legacy), encoding="utf-8")
    registry = ThreadRegistry(tmp_path / "threads.sqlite")
    assert [(r.thread_id, r.title) for r in registry.threads(owner)] == [("old-2", DEFAULT_TITLE), ("old-1", "Kafka setup")]
    assert not (tmp_path / "threads.json").exists() and (tmp_path / "threads.json.imported").exists()
    (tmp_path / "threads.json").write_text("{not json", encoding="utf-8")  # damaged: nothing imported, nothing lost
    assert ThreadRegistry(tmp_path / "threads.sqlite").owns(owner, "old-1")


def test_feedback_is_saved_with_its_turn(tmp_path):
    history = [
        {"role": "assistant", "content": "greeting"},
        {"role": "user", "content": "*kb-mode"},
        {"role": "assistant", "content": "steps", "metadata": {"title": "⚙️ Steps: route"}},
        {"role": "assistant", "content": [{"type": "text", "text": "Knowledge-base mode is on."}]},
        {"role": "user", "content": "next"},
    ]
    assert turn_of(history, 3) == ("*kb-mode", "Knowledge-base mode is on.")
    assert turn_of(history, 0) == ("", "greeting")
    record = record_feedback(tmp_path, thread_id="t1", liked=False, history=history, index=3, mode="kb-mode",
                             backend="offline")
    assert record["rating"] == "down" and record["input"] == "*kb-mode"
    lines = (tmp_path / "feedback" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["thread_id"] == "t1"
    (tmp_path / "feedback" / "feedback.jsonl").open("a").write("not json\n")
    assert [r["rating"] for r in read_feedback(tmp_path)] == ["down"]


def test_uploads_are_checked_and_kept_inside_the_workspace(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    good = tmp_path / "in" / "my pipeline.py"
    good.parent.mkdir()
    good.write_text("df = spark.readStream.format('kafka').load()\n", encoding="utf-8")
    big = tmp_path / "in" / "big.sql"
    big.write_bytes(b"-- x\n" * (review.MAX_UPLOAD_BYTES // 4))
    binary = tmp_path / "in" / "blob.json"
    binary.write_bytes(b"\x00\x01\x02")
    other = tmp_path / "in" / "picture.png"
    other.write_bytes(b"png")
    sneaky = tmp_path / "in" / "..evil.yaml"
    sneaky.write_text("a: 1\n", encoding="utf-8")
    saved, problems = review.save_uploads(workspace, [str(p) for p in (good, big, binary, other, sneaky)])
    assert saved == ["uploads/my-pipeline.py", "uploads/evil.yaml"]
    assert any("over the 2 MB limit" in p for p in problems)
    assert any("binary" in p for p in problems) and any("picture.png" in p for p in problems)
    assert all(p.startswith("uploads/") for p in workspace.files())


def test_kb_answers_fold_their_sources_and_topics():
    text = ("🌊 - Use a watermark [1]\n\nSources:\n[1] Watermarks — knowledge/wm.md — Docs: https://example.org/wm\n"
            "\nRelated topics: state\n\nTopics:\n1. Watermarks\n2. State")
    messages = chat.role_messages(text)
    assert messages[0].content.startswith("🌊 - Use a watermark [1]") and "Sources:" not in messages[0].content
    assert messages[1].metadata["title"].startswith("📚 Sources (1)") and "<https://example.org/wm>" in messages[1].content
    assert messages[2].metadata["title"].startswith("🗂️ Topics (2)")
    waiting = chat.turn_messages("intro\n\nHow many partitions?", "How many partitions?")
    assert waiting[-1].content.startswith("❓ **Waiting for your answer**") and waiting[0].content == "intro"


def test_a_transcript_rebuilds_the_chat_and_marks_only_the_waiting_question():
    turns = [{"user": "", "replies": ["🌊 Hello"], "question": None},
             {"user": "*kafka-connector", "replies": [], "question": "How many partitions?"},
             {"user": "24", "replies": [], "question": "Which format?"}]
    shown = chat.history_from_transcript(turns, "Which format?")
    assert [m.role for m in shown] == ["assistant", "user", "assistant", "user", "assistant"]
    assert shown[2].content == "How many partitions?"  # answered since: plain role text
    assert "Waiting for your answer" in shown[-1].content and "Which format?" in shown[-1].content
    many = [{"user": f"q{n}", "replies": [f"a{n}"], "question": None} for n in range(chat.MAX_SHOWN_TURNS + 5)]
    shown = chat.history_from_transcript(many, None)
    assert "5 earlier turns" in shown[0].content and shown[1].content == "q5" and shown[-1].content == "a" + str(len(many) - 1)


def test_index_progress_is_shown_while_the_index_is_prepared_and_polling_stops_after(tmp_path):
    from agent.session import Engine
    from knowledge.index import _Progress
    from ui.app import ChatApp

    app = ChatApp(Engine(home=tmp_path / "home"))
    progress = _Progress(owner=None, total=40, to_embed=12)
    progress.loaded(28)
    progress.embedded(3)
    try:
        note, timer = app.index_progress()
        assert note["visible"] and "embedding 3 of 12 new or changed passages" in note["value"]
        assert timer.active
    finally:
        progress.close()
    app.engine.warmed.set()  # what warm_up does once the index is loaded
    note, timer = app.index_progress()
    assert not note["visible"] and not timer.active
