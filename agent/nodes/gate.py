"""``*release-gate``: aggregate every checklist result and artefact into a verdict."""

from __future__ import annotations

import datetime as dt

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes.common import add_artifacts, icon, pack_of, say, workspace_of
from agent.state import State
from tools.checklist import Target, run_checklist

GO, NO_GO, CONDITIONAL = "Go", "No-Go", "Conditional Go"


def verdict(results: list[dict]) -> str:
    """No-Go on any FAIL (or no evidence at all), Conditional Go on PARTIAL/REVIEW, else Go."""
    if not results:
        return NO_GO
    counts = {s: sum(r["counts"].get(s, 0) for r in results) for s in ("FAIL", "PARTIAL", "REVIEW", "PASS")}
    if counts["FAIL"]:
        return NO_GO
    if counts["PARTIAL"] or counts["REVIEW"]:
        return CONDITIONAL
    return GO if counts["PASS"] else NO_GO


def release_gate(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Run the release-readiness checklist on the thread's artefacts, aggregate all results, decide."""
    pack = pack_of(runtime)
    workspace = workspace_of(runtime, config)
    command = pack.command("release-gate")
    task = pack.task_for(command) if command else None
    location = task.doc_output_location if task else "docs/gates/streaming-release.md"
    artifacts = [a for a in (state.get("artifacts") or []) if a != location]
    targets = []
    for rel in artifacts:
        try:
            path = workspace.resolve(rel)
            targets.append(Target(rel, path.read_text(encoding="utf-8"), path))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
    results = list(state.get("checklist_results") or [])
    gate_checklists = [c for c in (task.checklists if task else ()) if c in pack.checklists]
    new_results = []
    if targets:
        for checklist_id in gate_checklists:
            summary = run_checklist(pack.checklists[checklist_id], targets).summary()
            summary["source"] = location
            new_results.append(summary)
    everything = results + new_results
    decision = verdict(everything)
    today = dt.date.today().isoformat()
    lines = [
        "# Release Gate (Streaming) · 发布门禁", "",
        f"> {pack.agent.icon} {pack.agent.name} · `*release-gate` · {today}", "",
        f"## Verdict · 结论: **{decision}**", "",
        "Rule: any FAIL → No-Go; PARTIAL or REVIEW items → Conditional Go (the action items below are the conditions); "
        "all PASS → Go. No evidence at all → No-Go.", "",
        "## Evidence · 证据", "",
        "| Checklist | From | PASS | FAIL | PARTIAL | N/A | REVIEW | Pass rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in everything:
        c = r["counts"]
        rate = f"{r['pass_rate']:.0%}" if r.get("pass_rate") is not None else "n/a"
        lines.append(f"| {r['title']} | `{r.get('source', '')}` | {c.get('PASS', 0)} | {c.get('FAIL', 0)} | "
                     f"{c.get('PARTIAL', 0)} | {c.get('N/A', 0)} | {c.get('REVIEW', 0)} | {rate} |")
    if not everything:
        lines.append("| (no checklist has been run in this thread, and there are no artefacts to check) | | | | | | | |")
    lines += ["", "## Artefacts · 工件", ""] + ([f"- `{a}`" for a in artifacts] or ["- (none)"])
    actions = []
    for r in everything:
        for item in r.get("failed") or []:
            fix = f" — {item['recommendation']}" if item.get("recommendation") else ""
            actions.append(f"- [ ] **{item['status']}** {item['text']} ({r['checklist']}): {item['reason']}{fix}")
        actions += [f"- [ ] Review: {text} ({r['checklist']})" for text in r.get("review") or []]
    if not everything:
        actions.append("- [ ] Run the domain commands and `*execute-checklist` so the gate has evidence.")
    lines += ["", "## Action items · 行动项", ""] + (actions or ["- none"])
    lines += ["", "## Definition of done · 完成定义", ""] + [f"- {d}" for d in pack.agent.definition_of_done]
    workspace.write(location, "\n".join(lines) + "\n")
    reply = (f"{icon(runtime)} Release gate: **{decision}** — {len(everything)} checklist result(s), "
             f"{len(artifacts)} artefact(s), {len(actions)} action item(s). Written to `{location}`.")
    if actions:
        reply += "\n" + "\n".join(actions[:6])
    return {
        "messages": [say(reply)],
        "artifacts": add_artifacts(state, location),
        "current_doc": location,
        "checklist_results": results + new_results,
    }
