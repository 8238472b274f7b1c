"""Scripted conversations through ``streaming-engineer run --script`` (the JSON Lines contract)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from knowledge.loader import load_pack
from tests.conftest import FIXTURES, cli, read_elsewhere, require_seed, run_script

PACK = load_pack()
ICON = PACK.agent.icon
KEYS = {"input", "output", "mode", "persona_active", "pending_question", "artifacts"}


def in_character(turn: dict) -> bool:
    return turn["persona_active"] and turn["output"].startswith(ICON)


def test_first_turn_greets_then_lists_every_command(indexed_home: Path) -> None:
    (turn,) = run_script(["*help"], indexed_home)
    assert set(turn) == KEYS
    out = turn["output"]
    assert out.startswith(ICON) and PACK.agent.title in out and PACK.agent.name in out
    for number, command in enumerate(PACK.agent.commands, start=1):
        assert f"{number}. `{command.usage}`" in out
    assert len(PACK.agent.commands) == 29
    assert turn["mode"] == "commands" and turn["pending_question"] is None


def _answer_until_done(turns: list[dict]) -> None:
    for turn in turns:
        assert "Traceback" not in turn["output"]
        assert "not implemented" not in turn["output"].lower()


def test_every_command_is_routed_and_answered_in_character(indexed_home: Path) -> None:
    script: list[str] = []
    expected: list[str] = []
    for command in PACK.agent.commands:
        if command.name == "exit":
            continue
        if command.task and command.handler is None:
            script += [f"*{command.name}", "#yolo"]
            expected += [command.name, command.name + ":done"]
        elif command.name == "kb-mode":
            script += ["*kb-mode", "what does maxOffsetsPerTrigger do?", "*exit"]
            expected += ["kb-mode", "kb-answer", "kb-leave"]
        elif command.name == "create-doc":
            script += ["*create-doc", "*create-doc watermark-config-tmpl.yaml", "#yolo"]
            expected += ["create-doc:list", "create-doc:ask", "create-doc:done"]
        elif command.name == "execute-checklist":
            script += ["*execute-checklist", "*execute-checklist source-connector-checklist", "2", "1"]
            expected += ["checklist:list", "checklist:mode", "checklist:target", "checklist:done"]
        else:
            script.append(f"*{command.name}")
            expected.append(command.name)
    script.append("*exit")
    expected.append("exit")
    turns = run_script(script, indexed_home)
    assert len(turns) == len(script)
    _answer_until_done(turns)
    by_label = dict(zip(expected, turns, strict=True))
    for label, turn in by_label.items():
        if label != "exit":
            assert in_character(turn), (label, turn["output"][:300])
    # Task commands ask their first question, #yolo finishes them with a document at docOutputLocation.
    for command in PACK.agent.commands:
        if command.task and command.handler is None:
            assert by_label[command.name]["pending_question"], command.name
            done = by_label[command.name + ":done"]
            location = PACK.tasks[command.task].doc_output_location
            assert any(a.endswith(location) for a in done["artifacts"]), (command.name, done["output"][:300])
            assert Path(next(a for a in done["artifacts"] if a.endswith(location))).read_text(encoding="utf-8").startswith("# ")
    assert "Knowledge-base mode" in by_label["kb-mode"]["output"] and by_label["kb-mode"]["mode"] == "kb-mode"
    assert "maxOffsetsPerTrigger" in by_label["kb-answer"]["output"] and "Sources:" in by_label["kb-answer"]["output"]
    assert "*kb-mode" in by_label["kb-leave"]["output"] and by_label["kb-leave"]["mode"] == "commands"
    assert "watermark-config-tmpl.yaml" in by_label["create-doc:list"]["output"]
    assert by_label["create-doc:ask"]["pending_question"]
    assert any(a.endswith("docs/support/watermark-config.yaml") for a in by_label["create-doc:done"]["artifacts"])
    assert "source-connector-checklist" in by_label["checklist:list"]["output"]
    assert "Interactive" in by_label["checklist:mode"]["pending_question"]
    assert by_label["checklist:target"]["pending_question"]
    report = by_label["checklist:done"]
    assert any(a.endswith("docs/checklists/source-connector-checklist-report.md") for a in report["artifacts"])
    # Judged from behaviour: a standards document shows no Kafka source, so its items are N/A or REVIEW.
    assert any(s in report["output"] for s in ("PASS", "FAIL", "PARTIAL", "REVIEW", "N/A"))
    gate = by_label["release-gate"]
    assert any(v in gate["output"] for v in ("**Go**", "**No-Go**", "**Conditional Go**"))
    assert any(a.endswith("docs/gates/streaming-release.md") for a in gate["artifacts"])
    assert "Sharded" in by_label["shard-doc"]["output"] and "re-joined exactly" in by_label["shard-doc"]["output"]
    assert "# Release Gate" in by_label["doc-out"]["output"]
    assert "Goodbye" in by_label["exit"]["output"] and not by_label["exit"]["persona_active"]


def test_numbers_select_from_the_last_list(indexed_home: Path) -> None:
    turns = run_script(["*help", "2", "1", "0", "99"], indexed_home)
    assert turns[1]["mode"] == "kb-mode"  # 2 on the command list is *kb-mode
    assert "Connectors" in turns[2]["output"] and turns[2]["mode"] == "kb-mode"  # 1 on the topic list
    assert "not on the last list" in turns[3]["output"] and "not on the last list" in turns[4]["output"]


def test_plain_words_are_offered_as_the_matching_command(indexed_home: Path) -> None:
    turns = run_script(["kafka connector", "1"], indexed_home)
    assert "*kafka-connector" in turns[0]["output"] and "1. Yes" in turns[0]["output"]
    assert turns[1]["pending_question"] and "Kafka" in turns[1]["output"]
    # Words that fit several commands are asked about with a numbered choice.
    turns = run_script(["connector"], indexed_home)
    out = turns[0]["output"]
    assert "Several commands could fit" in out
    assert "*kafka-connector" in out and "*kinesis-connector" in out and "1." in out


def test_after_exit_the_program_no_longer_speaks_as_the_role(indexed_home: Path) -> None:
    turns = run_script(["*help", "*exit", "hello there", "*help", "*activate", "*help"], indexed_home)
    assert in_character(turns[1]) is False and "Goodbye" in turns[1]["output"]
    for turn in turns[2:4]:
        assert not turn["persona_active"] and not turn["output"].startswith(ICON)
        assert "*activate" in turn["output"] and turn["mode"] == "inactive"
    assert in_character(turns[4]) and in_character(turns[5])


def test_a_pending_question_survives_a_process_restart(indexed_home: Path) -> None:
    thread = "restart-" + uuid.uuid4().hex[:6]
    first = run_script(["*kafka-connector", "24"], indexed_home, thread)
    assert first[-1]["pending_question"] and "[2/" in first[-1]["pending_question"]
    second = run_script(["50000"], indexed_home, thread)  # a new process, same thread
    assert "[3/" in second[0]["pending_question"]
    done = run_script(["#yolo"], indexed_home, thread)
    doc = next(Path(a) for a in done[0]["artifacts"] if a.endswith("docs/streaming/kafka-connector.md"))
    text = doc.read_text(encoding="utf-8")
    assert "| 24 |" in text and "| 50000 |" in text


def test_questions_validate_answers_by_kind(indexed_home: Path) -> None:
    turns = run_script(["*kafka-connector", "many", "", "x" * 10_000, "-5", "12"], indexed_home)
    for turn in turns[1:5]:
        assert "Please answer again" in turn["output"] or "did not read" in turn["output"] or "did not get" in turn["output"]
        assert "[1/" in turn["pending_question"]
    assert "[2/" in turns[5]["pending_question"]


def test_seed_bundle_answers_help_with_its_commands(indexed_home: Path) -> None:
    seed = run_script(["*help"], indexed_home, None, "--bundle", str(require_seed()))
    for command in PACK.agent.commands:
        assert f"*{command.name}" in seed[0]["output"]


def test_another_agents_bundle_answers_with_its_own_commands(indexed_home: Path) -> None:
    fixture = FIXTURES / "bundles" / "analyst-bundle.txt"
    turns = run_script(["*help", "*metric-spec", "#yolo", "*kafka-connector"], indexed_home, None, "--bundle", str(fixture))
    out = turns[0]["output"]
    assert out.startswith("📊") and "湖仓分析师" in out
    assert "*profile-table" in out and "*metric-spec" in out and "*kafka-connector" not in out
    assert any(a.endswith("docs/analysis/metric-spec.md") for a in turns[2]["artifacts"])
    assert any(a.endswith("docs/analysis/metric-spec.yaml") for a in turns[2]["artifacts"])
    assert "not one of my commands" in turns[3]["output"]


@pytest.mark.parametrize("name", ["truncated-bundle.txt", "malformed-bundle.txt"])
def test_a_bad_bundle_is_a_clear_cli_error(indexed_home: Path, name: str) -> None:
    result = cli("--bundle", str(FIXTURES / "bundles" / name), "run", "--script", "-", home=indexed_home, stdin="*help\n")
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "cannot load bundle" in err and "Traceback" not in err
    assert ("truncated" in err) if name.startswith("truncated") else ("malformed" in err)


def test_bad_input_gets_a_clear_message_and_state_is_intact(indexed_home: Path) -> None:
    thread = "bad-" + uuid.uuid4().hex[:6]
    lines = b"\n".join([
        b"*help", b"", b"x" * 100_000, os.urandom(300).replace(b"\n", b"\x00"), b"*frobnicate", b"999",
        b"*kafka-connector", b"", b"\x00\x01\x02\xff\xfe" * 50, b"x" * 100_000, b"*help",
    ]) + b"\n"
    turns = run_script(lines, indexed_home, thread)
    assert len(turns) == 11
    assert "did not get any text" in turns[1]["output"]
    assert "100000 characters" in turns[2]["output"]
    assert "binary" in turns[3]["output"]
    assert "*frobnicate" in turns[4]["output"] and "not one of my commands" in turns[4]["output"]
    assert "not on the last list" in turns[5]["output"]
    for turn in turns[7:10]:  # bad answers to a pending question: re-asked, question still waiting
        assert turn["pending_question"] and "[1/" in turn["pending_question"]
    assert all(t["persona_active"] and t["output"].startswith(ICON) for t in turns)
    # *help during the question leaves the task cleanly and lists the commands.
    assert "I left" in turns[10]["output"] and "1. `*help`" in turns[10]["output"]


def test_secrets_typed_into_the_chat_are_never_stored(indexed_home: Path) -> None:
    thread = "secret-" + uuid.uuid4().hex[:6]
    secret = 'password="Sup3rS3cret!"'
    turns = run_script(["*kafka-connector", f"kafkashaded.PlainLoginModule required username=\"u\" {secret};"],
                       indexed_home, thread)
    assert "removed it before storing" in turns[1]["output"]
    db = read_elsewhere(indexed_home / "checkpoints.sqlite")
    assert b"Sup3rS3cret" not in db
    transcript = (indexed_home / "transcripts" / f"{thread}.jsonl").read_text(encoding="utf-8")
    assert "kafkashaded.PlainLoginModule" in transcript and "Sup3rS3cret" not in transcript
    for path in (indexed_home / "workspace").rglob("*"):
        if path.is_file():
            assert "Sup3rS3cret" not in path.read_text(encoding="utf-8", errors="replace")


def test_json_lines_are_one_object_per_turn(indexed_home: Path) -> None:
    result = cli("run", "--script", "-", home=indexed_home, stdin="*help\n*yolo\n*yolo\n")
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 3 and all(set(json.loads(line)) == KEYS for line in lines)
    assert "YOLO on" in json.loads(lines[1])["output"] and "YOLO off" in json.loads(lines[2])["output"]


def test_a_long_thread_keeps_recent_state_and_its_whole_transcript(tmp_path: Path) -> None:
    from agent.session import Engine
    from agent.state import KEEP_MESSAGES

    engine = Engine(home=tmp_path)  # its own home: these turns need no index
    thread = "long-" + uuid.uuid4().hex[:6]
    engine.turn(thread, "")
    outputs = [engine.turn(thread, "*yolo").output for _ in range(KEEP_MESSAGES)]
    # Every turn still reports its own reply, though the state dropped the oldest messages long ago.
    assert all("YOLO" in out for out in outputs)
    assert outputs[0] != outputs[1] and outputs[0] == outputs[-2] and outputs[1] == outputs[-1]
    assert len(engine.graph.get_state(engine.config(thread)).values["messages"]) <= KEEP_MESSAGES
    started = engine.turn(thread, "*kafka-connector")
    assert started.pending_question and started.mode == "task"
    turns = engine.transcript(thread)
    assert len(turns) == KEEP_MESSAGES + 2 and turns[0]["user"] == "" and turns[0]["replies"]
    assert [t["user"] for t in turns[1:-1]] == ["*yolo"] * KEEP_MESSAGES
    assert turns[-1]["question"] == started.pending_question
    engine.delete_thread(thread)
    assert engine.transcript(thread) is None
    engine.checkpointer.conn.close()
