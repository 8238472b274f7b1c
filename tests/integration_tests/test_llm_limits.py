"""Bounded model calls, cancellation and servers without tool calling, over HTTP to the local server.

Each model call carries an output-token limit, streams, and is closed when it
loops or runs past its time limit; the server sees the connection close
before its answer is done, and the next turn answers normally. An endpoint
that does not call tools is asked once and then answered without tools.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from agent.llm import capabilities, prompts
from agent.llm.calls import Prompt, echoing, repeating
from agent.llm.conversation import app_wording
from agent.session import Engine
from knowledge.loader import load_pack
from tests.support.llm import model_env, stub_retrieval, tool_names
from tests.support.openai_server import FakeOpenAI, _pieces, looping, slow, text, tool_call

PACK = load_pack()
ICON = PACK.agent.icon
QUESTION = "How do I stop a kafka stream from reading a whole day of offsets in one batch?"
LONG_ANSWER = " ".join(f"Step {n}: raise maxOffsetsPerTrigger by {n * 1000} offsets and watch batch {n}." for n in range(400))


@pytest.fixture(autouse=True)
def _fresh_capabilities():
    capabilities.forget_all()
    yield
    capabilities.forget_all()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with FakeOpenAI() as srv:
        model_env(monkeypatch, srv, timeout=5, retries=0)
        yield srv


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    stub_retrieval(monkeypatch)
    return Engine(home=tmp_path)


def started(engine: Engine) -> str:
    thread = uuid.uuid4().hex[:10]
    engine.turn(thread, "")
    return thread


def _closed_early(record) -> bool:
    """Whether the server saw the client close the stream (it notices at its next write or two)."""
    deadline = time.monotonic() + 5
    while not record.disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    return record.disconnected


def _fell_back(output: str, reason: str) -> None:
    assert output.startswith(f"{ICON} The model endpoint did not answer ({reason})"), output[:300]
    assert "maxOffsetsPerTrigger" in output  # the offline engine answered the same turn


# ---------------------------------------------------------------------------
# Bounded generation


def test_a_looping_answer_is_cut_the_connection_closed_and_the_next_turn_answers(engine: Engine,
                                                                                 server: FakeOpenAI) -> None:
    thread = started(engine)
    server.script(looping("Set maxOffsetsPerTrigger [1]. ", "The batch is the batch is the batch. ", times=400))
    events = list(engine.stream_turn(thread, QUESTION))
    streamed = "".join(v for k, v in events if k == "token")
    _fell_back(events[-1][1].output, "it kept repeating itself, so the answer was cut")
    assert 240 <= len(streamed) < 2000  # cut soon after the loop was clear, not at the end of 15,000 characters
    looped = server.chat_requests[-1]
    assert _closed_early(looped) and looped.chunks_sent < 300, looped.chunks_sent
    server.script(text("Cap each micro-batch with maxOffsetsPerTrigger [1]."))
    after = engine.turn(thread, QUESTION).output
    assert after.startswith(f"{ICON} Cap each micro-batch with maxOffsetsPerTrigger [1].")


def test_the_answer_limit_is_sent_and_an_answer_at_the_limit_falls_back(engine: Engine, server: FakeOpenAI,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_ENGINEER_MAX_TOKENS", "60")
    thread = started(engine)
    server.script(text(LONG_ANSWER))
    out = engine.turn(thread, QUESTION).output
    _fell_back(out, "the answer reached its 60-token limit and was cut")
    assert server.chat_requests[-1].body["max_tokens"] == 60
    assert "max_completion_tokens" not in server.chat_requests[-1].body  # a compatible server reads max_tokens


def test_a_call_is_cut_at_its_time_limit_however_steadily_it_streams(engine: Engine, server: FakeOpenAI,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_ENGINEER_CALL_SECONDS", "1")
    thread = started(engine)
    server.script(text(LONG_ANSWER[:3000], chunk_delay=0.02))  # 250 chunks, 5 s: each chunk well within the timeout
    out = engine.turn(thread, QUESTION).output
    _fell_back(out, "it was still answering after 1 seconds, so the answer was cut")
    assert _closed_early(server.chat_requests[-1]) and server.chat_requests[-1].chunks_sent < 250
    server.script(text("Use maxOffsetsPerTrigger [1]."))
    assert engine.turn(thread, QUESTION).output.startswith(f"{ICON} Use maxOffsetsPerTrigger [1].")


def test_the_time_limit_holds_while_the_server_has_sent_nothing(engine: Engine, server: FakeOpenAI,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # A server still reading a long prompt sends no token for minutes; the call ends at its own limit all the same,
    # before the client's read timeout (5 s here) and long before the server's answer (20 s).
    monkeypatch.setenv("STREAMING_ENGINEER_CALL_SECONDS", "1")
    thread = started(engine)
    server.script(slow(20, text("Use maxOffsetsPerTrigger [1].")))
    out = engine.turn(thread, QUESTION).output
    _fell_back(out, "it was still answering after 1 seconds, so the answer was cut")
    assert server.chat_requests[-1].chunks_sent == 0  # the turn was over before the server said anything
    server.script(text("Use maxOffsetsPerTrigger [1]."))
    assert engine.turn(thread, QUESTION).output.startswith(f"{ICON} Use maxOffsetsPerTrigger [1].")


def test_a_reply_that_echoes_its_prompt_is_cut_and_the_next_turn_answers(engine: Engine, server: FakeOpenAI) -> None:
    thread = started(engine)
    # What a base model does with chat turns it was never trained on: it repeats its input.
    server.script(text(f"{QUESTION} user\n{QUESTION} user\n", chunk_delay=0.01))
    _fell_back(engine.turn(thread, QUESTION).output, "it repeated the question instead of answering, so the answer "
                                                     "was cut")
    rules = prompts.APP_RULES.format(searched=prompts.SEARCHED)
    server.script(text(f"Sure. {rules}", chunk_delay=0.01))
    _fell_back(engine.turn(thread, QUESTION).output, "it repeated its instructions, so the answer was cut")
    assert server.chat_requests[-1].chunks_sent < len(_pieces(rules))  # cut while it streamed
    server.script(text("Use maxOffsetsPerTrigger [1]."))
    assert engine.turn(thread, QUESTION).output.startswith(f"{ICON} Use maxOffsetsPerTrigger [1].")


def test_echo_detection_spares_what_the_role_may_say() -> None:
    wording = app_wording("kb-mode", prompts.STEP_KB)
    guard = Prompt(instructions=wording, question="what does maxOffsetsPerTrigger do?")
    agent = PACK.agent
    spared = [
        f"As the role says: {agent.identity.en}. " + " ".join(p.en for p in agent.core_principles),  # the greeting's
        "Set maxOffsetsPerTrigger to cap how many offsets one micro-batch reads from Kafka. Without it a restarted "
        "query reads everything since its last checkpoint in one huge batch. [1]",  # a passage, quoted
        "What does maxOffsetsPerTrigger do? It caps the offsets read per micro-batch [1].",  # restated once
        "The knowledge base has no answer to that.",
    ]
    for reply in spared:
        assert echoing(reply, guard) == "", reply
    assert echoing("hi there", Prompt(wording, "hi there")) == ""  # a short message is left to the loop check
    copied = wording[wording.index("Stay in this role"):][:120]
    assert echoing(f"Well. {copied}", guard) == "instructions"
    assert echoing('"What does  maxOffsetsPerTrigger do?" ifades\nWhat does maxOffsetsPerTrigger do?', guard) == "question"


def test_loop_detection_spares_ordinary_answers() -> None:
    code = "\n".join(f'    .option("kafka.topic.{n}", "orders_{n}")' for n in range(40))
    table = "| key | value |\n|---|---|\n" + "\n".join(f"| opt{n} | {n * 7} |" for n in range(40))
    assert not repeating(LONG_ANSWER) and not repeating(code) and not repeating(table)
    assert not repeating("=" * 80 + "\nTitle\n" + "=" * 80)
    assert repeating("Intro. " + "the watermark is " * 20)
    assert repeating("Intro. " + "- Check the checkpoint location.\n" * 8 + "- Check the che")
    assert repeating("ha" * 150)


# ---------------------------------------------------------------------------
# Value extraction: bounded, and never for secrets


def _secret_question(engine: Engine, thread: str) -> None:
    for command in PACK.agent.commands:
        task = PACK.task_for(command) if command.task else None
        if task is None or command.handler:
            continue
        from agent.nodes.tasks import task_questions

        for index, question in enumerate(task_questions(PACK, task)):
            if question["kind"] == "secret_ref":
                result = engine.turn(thread, f"*{command.name}")
                for _ in range(index):
                    result = engine.turn(thread, "default")
                assert f"[{index + 1}/" in result.pending_question
                return
    raise AssertionError("no task asks for a secret reference")


def test_a_refused_secret_answer_is_never_sent_to_the_model(engine: Engine, server: FakeOpenAI) -> None:
    thread = started(engine)
    _secret_question(engine, thread)
    before = len(server.chat_requests)
    result = engine.turn(thread, "my password is Hunter2Sunshine and the scope is prod")
    assert "Please answer again" in result.output and "I read that as" not in result.output
    assert len(server.chat_requests) == before  # no extraction call: the refused text went nowhere
    assert all("Hunter2Sunshine" not in str(r.body) for r in server.chat_requests)


def test_extraction_is_one_short_line(engine: Engine, server: FakeOpenAI) -> None:
    thread = started(engine)
    for command in PACK.agent.commands:
        task = PACK.task_for(command) if command.task else None
        if task is None or command.handler:
            continue
        from agent.nodes.tasks import task_questions

        kinds = [q["kind"] for q in task_questions(PACK, task)]
        if "duration" in kinds:
            index = kinds.index("duration")
            engine.turn(thread, f"*{command.name}")
            for _ in range(index):
                engine.turn(thread, "default")
            break
    server.script(text("10 minutes\nBecause you said roughly ten."))
    result = engine.turn(thread, "hmm, roughly ten minutes I think")
    body = server.chat_requests[-1].body
    assert body["max_tokens"] == 40 and body["stop"] == ["\n"] and body["stream"]
    assert "I read that as `10 minutes`" in result.output  # the server stopped at the line break


# ---------------------------------------------------------------------------
# Servers without tool calling


def _kb_turns(engine: Engine) -> tuple[str, str]:
    thread = started(engine)
    engine.turn(thread, "*kb-mode")
    first = engine.turn(thread, "what does maxOffsetsPerTrigger do for kafka?").output
    second = engine.turn(thread, "and kafka minPartitions?").output
    return first, second


def _assert_plain(request_body: dict, passage_words: str) -> None:
    assert "tools" not in request_body and not any(m["role"] == "system" for m in request_body["messages"])
    last = request_body["messages"][-1]
    assert last["role"] == "user" and passage_words in last["content"]
    assert "search_knowledge" not in last["content"]  # no tool is mentioned to a model that has none
    assert "The user's message:" in last["content"]


@pytest.mark.parametrize("mode", ["ignore", "reject"])
def test_a_server_without_tools_is_asked_once_and_answered_without_tools(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    stub_retrieval(monkeypatch)
    with FakeOpenAI(tools=mode) as srv:
        model_env(monkeypatch, srv, retries=0, tools="auto")
        first, second = _kb_turns(Engine(home=tmp_path))
        bodies = [r.body for r in srv.chat_requests]
    probes = [b for b in bodies if tool_names(b) == {"ready"}]
    assert len(probes) == 1 and "tool_choice" not in probes[0]  # asked once for the whole session, choice left free
    answers = [b for b in bodies if b not in probes]
    assert len(answers) == 2
    for body in answers:
        _assert_plain(body, "maxOffsetsPerTrigger")
    for out in (first, second):
        assert out.startswith(ICON) and "did not answer" not in out
        assert "[1]" in out and "Sources:\n[1] Kafka — Rate limiting" in out and "Topics:" in out


def test_a_server_without_tools_is_not_asked_when_no_passage_matches(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stub_retrieval(monkeypatch)
    with FakeOpenAI(tools="ignore") as srv:
        model_env(monkeypatch, srv, retries=0, tools="off")
        engine = Engine(home=tmp_path)
        thread = started(engine)
        off_topic = engine.turn(thread, "give me a recipe for lasagna with spinach").output
        engine.turn(thread, "*kb-mode")
        unanswered = engine.turn(thread, "how do I tune the garbage collector of my phone?").output
        srv.script(text("Use maxOffsetsPerTrigger [1]."))
        answered = engine.turn(thread, "what does maxOffsetsPerTrigger do for kafka?").output
        bodies = [r.body for r in srv.chat_requests]
    # Nothing to ground on and no way to search: the offline engine answers in role, without a failure notice.
    assert off_topic.startswith(f"{ICON} That is outside my remit") and "did not answer" not in off_topic
    assert "did not answer" not in unanswered and "Topics:" in unanswered
    assert len(bodies) == 1 and "maxOffsetsPerTrigger" in bodies[0]["messages"][-1]["content"]
    assert answered.startswith(f"{ICON} Use maxOffsetsPerTrigger [1].")


def test_a_server_with_tools_is_asked_once_and_offered_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub_retrieval(monkeypatch)
    with FakeOpenAI() as srv:
        model_env(monkeypatch, srv, retries=0, tools="auto")
        engine = Engine(home=tmp_path)
        thread = started(engine)
        engine.turn(thread, QUESTION)
        engine.turn(thread, "what about the kafka backlog after a restart?")
        bodies = [r.body for r in srv.chat_requests]
    assert sum(tool_names(b) == {"ready"} for b in bodies) == 1
    answers = [b for b in bodies if tool_names(b) != {"ready"}]
    assert answers and all("search_knowledge" in tool_names(b) for b in answers)
    assert all(b["messages"][0]["role"] == "system" for b in answers)


def test_tools_refused_on_a_real_call_switch_the_endpoint_to_plain_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub_retrieval(monkeypatch)
    with FakeOpenAI(tools="reject") as srv:
        model_env(monkeypatch, srv, retries=0, tools="on")  # told it has tools: it refuses them on the first call
        first, second = _kb_turns(Engine(home=tmp_path))
        bodies = [r.body for r in srv.chat_requests]
    assert [bool(b.get("tools")) for b in bodies] == [True, False, False]  # refused once, then never offered
    assert "did not answer" not in first and "did not answer" not in second
    assert "Sources:\n[1] Kafka — Rate limiting" in first


def test_an_endpoint_that_is_down_fails_the_turn_without_remembering(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        model_env(monkeypatch, srv, retries=0, tools="auto")
        url = srv.url
    thread = started(engine)
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # nobody listens there any more
    out = engine.turn(thread, QUESTION).output
    _fell_back(out, "the connection failed or was cut off")
    with FakeOpenAI() as again:
        model_env(monkeypatch, again, retries=0, tools="auto")
        again.script(tool_call("ready", {}), text("Use maxOffsetsPerTrigger [1]."))
        assert engine.turn(thread, QUESTION).output.startswith(f"{ICON} Use maxOffsetsPerTrigger [1].")


# ---------------------------------------------------------------------------
# Configuration


def test_limits_come_from_the_environment_and_bad_values_are_ignored() -> None:
    from agent.llm.backend import DEFAULT_MAX_TOKENS, build_chat_model, load_config
    from agent.llm.calls import limit_kwargs, limits_for

    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "STREAMING_ENGINEER_MAX_TOKENS": "512",
           "STREAMING_ENGINEER_MAX_TOKENS_EXTRACT": "many", "STREAMING_ENGINEER_MAX_TOKENS_JUDGE": "0",
           "STREAMING_ENGINEER_CALL_SECONDS": "45", "STREAMING_ENGINEER_TOOLS": "sometimes"}
    config = load_config(env)
    assert config.token_limit("answer") == 512 and config.call_seconds == 45 and config.tools == "auto"
    assert config.token_limit("extract") == DEFAULT_MAX_TOKENS["extract"]
    assert config.token_limit("judge") == DEFAULT_MAX_TOKENS["judge"]
    extract = limits_for("extract", config)
    assert (extract.max_tokens, extract.seconds, extract.stop) == (DEFAULT_MAX_TOKENS["extract"], 45, ("\n",))

    from langchain_core.messages import HumanMessage

    compatible = build_chat_model(config, "k")
    body = compatible._get_request_payload([HumanMessage("hi")], **limit_kwargs(compatible, extract))
    assert body["extra_body"]["max_tokens"] == 40 and "max_completion_tokens" not in body and body["stop"] == ["\n"]
    openai_proper = build_chat_model(load_config({"OPENAI_API_KEY": "k"}), "k")
    body = openai_proper._get_request_payload([HumanMessage("hi")], **limit_kwargs(openai_proper, extract))
    assert body["max_completion_tokens"] == 40 and "extra_body" not in body  # what OpenAI reads
    default = openai_proper._get_request_payload([HumanMessage("hi")])
    assert default["max_completion_tokens"] == DEFAULT_MAX_TOKENS["answer"]  # even a call made without the helper
