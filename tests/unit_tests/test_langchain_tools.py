"""The LangChain tools do the same work as the engine, and refuse unsafe requests as text."""

from __future__ import annotations

import json
from pathlib import Path

from knowledge.loader import load_pack
from tools.langchain_tools import make_tools
from tools.workspace import Workspace

PACK = load_pack()


def tools(tmp_path: Path) -> dict:
    return {t.name: t for t in make_tools(PACK, Workspace(tmp_path / "ws"))}


def test_tools_have_schemas_for_bind_tools(tmp_path: Path) -> None:
    found = tools(tmp_path)
    assert {"render_template", "run_checklist", "write_doc", "shard_doc", "doc_out", "list_commands",
            "describe_command"} <= set(found)
    assert "name" in found["render_template"].args and "values" in found["render_template"].args


def test_render_write_shard_and_read_back(tmp_path: Path) -> None:
    t = tools(tmp_path)
    out = json.loads(t["render_template"].invoke({"name": "watermark-config-tmpl.yaml", "values": {"delay": "5 minutes"}}))
    assert 'delay_threshold: "5 minutes"' in out["text"]
    doc = "# Plan\n\nintro\n\n## One\na\n\n## Two\nb\n"
    assert t["write_doc"].invoke({"path": "docs/plan.md", "content": doc}) == "written: docs/plan.md"
    assert "re-joins exactly: True" in t["shard_doc"].invoke({"document": "docs/plan.md", "destination": "docs/plan"})
    assert t["doc_out"].invoke({"path": "docs/plan/one.md"}).startswith("# One")
    assert "error" in t["write_doc"].invoke({"path": "../../escape.md", "content": "x"})
    assert not (tmp_path / "escape.md").exists()


def test_checklist_and_command_tools(tmp_path: Path) -> None:
    t = tools(tmp_path)
    report = t["run_checklist"].invoke({"checklist": "watermarking-lateness-checklist",
                                        "target": "df.withWatermark('event_time', '10 minutes') freshness SLO p95"})
    assert "# Checklist report" in report and "withWatermark" in report
    first_item = report.split("## Items")[1].splitlines()[4]
    # A watermark with no window: evidenced in part, the rest is for a reviewer — never PASS from the words.
    assert first_item.startswith("| REVIEW") and "withWatermark" in first_item
    assert "not evidenced by these files: window" in report
    assert t["run_checklist"].invoke({"checklist": "nope", "target": "x"}).startswith("error")
    assert "*kafka-connector" in t["list_commands"].invoke({})
    assert "docs/streaming/kafka-connector.md" in t["describe_command"].invoke({"name": "*kafka-connector"})
