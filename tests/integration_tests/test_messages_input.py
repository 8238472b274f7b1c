"""The compiled graph takes a turn as standard chat ``messages`` as well as ``input`` (LangGraph Server convention)."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agent.context import Context
from agent.graph import build_graph

FAKE_KEY = "AKIA" + "QWERTYUIOPASDFGH"


def _graph():
    return build_graph().compile(checkpointer=InMemorySaver())


def _humans(values: dict) -> list[str]:
    return [str(m.content) for m in values["messages"] if m.type == "human"]


def test_a_messages_turn_runs_the_command_and_stores_the_message_once(indexed_home: Path) -> None:
    graph, context = _graph(), Context(home=str(indexed_home))
    config = {"configurable": {"thread_id": "m1"}}
    out = graph.invoke({"messages": [{"role": "user", "content": "*help"}]}, config, context=context)
    assert _humans(out) == ["*help"]
    assert "*kafka-connector" in out["messages"][-1].content

    # Content blocks, as agent-chat-ui sends them; the task's first question is an interrupt.
    blocks = [{"type": "text", "text": "*kafka-connector"}]
    out = graph.invoke({"messages": [{"role": "user", "content": blocks}]}, config, context=context)
    assert out["__interrupt__"] and out["__interrupt__"][0].value["question"]
    assert _humans(out) == ["*help", "*kafka-connector"]

    # A plain resume value answers the question; a bad one gets the question again.
    first_question = graph.get_state(config).interrupts[0].value["question"]
    out = graph.invoke(Command(resume="many"), config, context=context)
    assert out["__interrupt__"][0].value["question"] == first_question
    out = graph.invoke(Command(resume="12"), config, context=context)
    assert out["__interrupt__"][0].value["question"] != first_question
    assert _humans(out)[:2] == ["*help", "*kafka-connector"]


def test_input_turns_are_unchanged_and_do_not_replay_an_old_message(indexed_home: Path) -> None:
    graph, context = _graph(), Context(home=str(indexed_home))
    config = {"configurable": {"thread_id": "m2"}}
    graph.invoke({"input": "*help"}, config, context=context)
    out = graph.invoke({"input": "*yolo"}, config, context=context)
    assert _humans(out) == ["*help", "*yolo"]
    out = graph.invoke({"messages": [HumanMessage("*yolo")]}, config, context=context)
    assert _humans(out) == ["*help", "*yolo", "*yolo"]
    assert out["yolo"] is False  # toggled twice
    out = graph.invoke({"input": "*help"}, config, context=context)
    assert _humans(out) == ["*help", "*yolo", "*yolo", "*help"]


def test_a_secret_in_a_message_is_not_stored(indexed_home: Path) -> None:
    graph, context = _graph(), Context(home=str(indexed_home))
    config = {"configurable": {"thread_id": "m3"}}
    out = graph.invoke({"messages": [{"role": "user", "content": f"my key is {FAKE_KEY}"}]}, config, context=context)
    stored = str(graph.get_state(config).values)
    assert FAKE_KEY not in stored
    assert FAKE_KEY not in str(out["messages"])
