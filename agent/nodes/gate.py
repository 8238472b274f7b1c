"""``*release-gate``: judge the thread's artefacts, decide Go / Conditional Go / No-Go, write the deploy script."""

from __future__ import annotations

import datetime as dt

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes.common import add_artifacts, icon, pack_of, say, workspace_of
from agent.state import State
from tools.release_gate import CONDITIONAL, DEPLOY_SCRIPT, GO, GateDecision, decide, deploy_script, kinds_line

RULE = ("Rule: any FAIL → No-Go; PARTIAL or REVIEW items → Conditional Go (each is a named condition below); "
        "every applicable item PASS → Go; nothing judged → No-Go. Items are judged from what the artefacts do "
        "(code, SQL, configs, answers, concrete decisions), never from this document, headings or comments.")


def gate_document(decision: GateDecision, header: str, definition_of_done: list[str]) -> str:
    """The gate record: verdict, the evidence it rests on, the judged files, conditions or actions, deploy."""
    totals = {s: sum(r["counts"].get(s, 0) for r in decision.results) for s in ("PASS", "FAIL", "PARTIAL", "REVIEW", "N/A")}
    lines = [
        "# Release Gate (Streaming) · 发布门禁", "", header, "",
        f"## Verdict · 结论: **{decision.verdict}**", "",
        f"Decision: **{decision.verdict}** — {len(decision.artefacts)} artefact(s) ({kinds_line(decision.artefacts)}) "
        f"judged against {len(decision.results)} checklist result(s): "
        + " · ".join(f"{s} {n}" for s, n in totals.items()) + ".", "",
        RULE, "",
        "## Evidence · 证据", "",
        "| Checklist | From | PASS | FAIL | PARTIAL | N/A | REVIEW | Pass rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in decision.results:
        c = r["counts"]
        rate = f"{r['pass_rate']:.0%}" if r.get("pass_rate") is not None else "n/a"
        lines.append(f"| {r['title']} | {r.get('source', '')} | {c.get('PASS', 0)} | {c.get('FAIL', 0)} | "
                     f"{c.get('PARTIAL', 0)} | {c.get('N/A', 0)} | {c.get('REVIEW', 0)} | {rate} |")
    if not decision.results:
        lines.append("| (no checklist has been run in this thread: nothing to judge) | | | | | | | |")
    lines += ["", "## Artefacts judged · 工件", "", "| File | Kind | SHA-256 |", "|---|---|---|"]
    lines += [f"| `{a.path}` | {a.kind} | `{a.sha256[:12]}` |" for a in decision.artefacts] or ["| (none) | | |"]
    if decision.actions:
        lines += ["", "## Action items · 行动项 (blocking: No-Go)", ""] + [f"- [ ] {a}" for a in decision.actions]
    if decision.conditions:
        title = "Conditions · 放行条件" if decision.verdict == CONDITIONAL else "Also open · 其他待办"
        lines += ["", f"## {title}", ""] + [f"- [ ] {c}" for c in decision.conditions]
    if not decision.results:
        lines += ["", "## Action items · 行动项", "",
                  "- [ ] Run the domain commands or `*execute-checklist` so the gate has evidence."]
    lines += ["", "## Deploy · 部署", ""]
    if decision.verdict == GO and decision.bundles:
        lines.append(f"`{DEPLOY_SCRIPT}` checks that the judged files are unchanged, then runs `databricks bundle "
                     f"validate -t prod` and `databricks bundle deploy -t prod` in: "
                     + ", ".join(f"`{b}`" for b in decision.bundles) + ".")
    elif decision.verdict == GO:
        lines.append(f"`{DEPLOY_SCRIPT}`: the thread has no Asset Bundle to deploy.")
    else:
        lines.append(f"`{DEPLOY_SCRIPT}` refuses to deploy (exit 1) until the gate says Go.")
    lines += ["", "Not judged: this document and the checklist reports — they restate judgements and are no "
              "evidence of behaviour.", "", "## Definition of done · 完成定义", ""]
    lines += [f"- {d}" for d in definition_of_done]
    return "\n".join(lines) + "\n"


def release_gate(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Judge the thread's artefacts and checklist results, decide, write the record and the deploy script."""
    pack = pack_of(runtime)
    workspace = workspace_of(runtime, config)
    command = pack.command("release-gate")
    task = pack.task_for(command) if command else None
    location = task.doc_output_location if task else "docs/gates/streaming-release.md"
    files: dict[str, str] = {}
    for rel in state.get("artifacts") or []:
        if rel in (location, DEPLOY_SCRIPT):
            continue
        try:
            files[rel] = workspace.resolve(rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError):
            continue
    decision = decide(pack, files, list(state.get("checklist_results") or []))
    header = f"> {pack.agent.icon} {pack.agent.name} · `*release-gate` · {dt.date.today().isoformat()}"
    workspace.write(location, gate_document(decision, header, list(pack.agent.definition_of_done)))
    workspace.write(DEPLOY_SCRIPT, deploy_script(decision, location))
    open_items = decision.actions or decision.conditions
    reply = (f"{icon(runtime)} Release gate: **{decision.verdict}** — {len(decision.artefacts)} artefact(s) judged "
             f"against {len(decision.results)} checklist result(s); {len(decision.actions)} blocking action item(s), "
             f"{len(decision.conditions)} condition(s). Written to `{location}`; `{DEPLOY_SCRIPT}` "
             + ("deploys the thread's bundles to prod." if decision.verdict == GO else "refuses to deploy until a Go."))
    if open_items:
        reply += "\n" + "\n".join(f"- {item}" for item in open_items[:6])
        if len(open_items) > 6:
            reply += f"\n- … and {len(open_items) - 6} more in `{location}`"
    return {
        "messages": [say(reply)],
        "artifacts": add_artifacts(state, location, DEPLOY_SCRIPT),
        "current_doc": location,
    }


__all__ = ["GO", "release_gate"]
