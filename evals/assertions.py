r"""Assertions on what a turn (or a template render) produced.

A turn's ``expect`` block maps assertion names to what they require::

    expect:
      contains: ["Kafka", "maxOffsetsPerTrigger"]   # every string, case-insensitive
      any_of: ["at-least-once", "至少一次"]          # at least one of them
      not_contains: ["As an AI"]
      regex: "Written to `docs/.+\\.md`"             # re.search; (?i) etc. inline
      not_regex: "\\{\\{\\w+\\}\\}"
      mode: task                                     # commands | kb-mode | task | inactive
      persona_active: true
      in_role: true          # the role speaks (its icon opens the reply) and nothing breaks character
      pending: true          # a question waits (or a string the question contains)
      route: [route, start_task, ask_input]          # these nodes, in this order (others may come between)
      route_exact: [route, show_help]                # exactly these nodes
      route_excludes: [converse]
      tool_calls: [search_knowledge]                 # or {includes: [...], excludes: [...]}
      parses: json           # fenced json/yaml blocks of the reply parse (at least one must exist)
      max_chars: 4000
      artifact_count: {min: 2}
      artifacts:             # files of the thread's workspace
        - path: docs/streaming/kafka-connector.md
          contains: ["## Checklist results"]
          parses: markdown   # json | yaml | markdown
        - glob: "docs/streaming/*.json"
          parses: json
        - path: docs/x.md
          exists: false

Each assertion gives a :class:`Check`; a turn passes when all its checks do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

OUT_OF_ROLE = (
    "as an ai language model", "i am chatgpt", "i'm chatgpt", "i am an ai assistant created by",
    "arr matey", "ahoy", "as a pirate", "here is a poem", "here's a poem", "system prompt:",
)
"""Phrases that only appear when the role was dropped (checked by ``in_role``)."""

_FENCE_RE = re.compile(r"^```[ \t]*(\w+)?[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class ToolCall:
    """A tool the turn used: ``model`` (a model's tool call) or ``engine`` (the offline node called it directly)."""

    name: str
    source: str = "engine"


@dataclass
class Observation:
    """What one turn produced, as the assertions see it.

    Attributes:
        input: the text sent.
        output: the role's reply (every message of the turn, and the waiting question).
        mode: commands | kb-mode | task | inactive.
        persona_active: whether the role speaks.
        pending_question: the question waiting for an answer, if any.
        artifacts: absolute paths of every file the thread has produced.
        route: the nodes that ran, in order (the node waiting on a question last).
        tool_calls: the tools used, in order.
        workspace: the thread's workspace folder.
        icon: the role's icon.
        seconds: wall time of the turn.

    """

    input: str
    output: str
    mode: str
    persona_active: bool
    pending_question: str | None
    artifacts: list[str]
    route: list[str]
    tool_calls: list[ToolCall] = field(default_factory=list)
    workspace: Path = Path(".")
    icon: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Check:
    """The outcome of one assertion."""

    name: str
    ok: bool
    message: str = ""


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [str(value)]
    return [str(v) for v in value]


def text_checks(text: str, expect: Mapping[str, Any], what: str = "reply") -> list[Check]:
    """``contains``, ``any_of``, ``not_contains``, ``regex``, ``not_regex``, ``parses``, ``max_chars`` on a text."""
    checks: list[Check] = []
    lowered = text.lower()
    if "contains" in expect:
        missing = [s for s in _strings(expect["contains"]) if s.lower() not in lowered]
        checks.append(Check("contains", not missing, f"{what} lacks {missing}" if missing else ""))
    if "any_of" in expect:
        options = _strings(expect["any_of"])
        ok = any(s.lower() in lowered for s in options)
        checks.append(Check("any_of", ok, "" if ok else f"{what} has none of {options}"))
    if "not_contains" in expect:
        present = [s for s in _strings(expect["not_contains"]) if s.lower() in lowered]
        checks.append(Check("not_contains", not present, f"{what} contains {present}" if present else ""))
    for pattern in _strings(expect.get("regex")):
        ok = re.search(pattern, text, re.M) is not None
        checks.append(Check("regex", ok, "" if ok else f"{what} does not match /{pattern}/"))
    for pattern in _strings(expect.get("not_regex")):
        match = re.search(pattern, text, re.M)
        checks.append(Check("not_regex", match is None, f"{what} matches /{pattern}/: {match.group(0)[:80]!r}" if match else ""))
    if "parses" in expect:
        checks.append(_parses_blocks(text, str(expect["parses"]), what))
    if "max_chars" in expect:
        ok = len(text) <= int(expect["max_chars"])
        checks.append(Check("max_chars", ok, "" if ok else f"{what} is {len(text)} characters (> {expect['max_chars']})"))
    if "min_chars" in expect:
        ok = len(text) >= int(expect["min_chars"])
        checks.append(Check("min_chars", ok, "" if ok else f"{what} is {len(text)} characters (< {expect['min_chars']})"))
    return checks


def parse_error(text: str, fmt: str) -> str | None:
    """Why ``text`` is not valid ``fmt`` (json, yaml or markdown), or ``None`` when it is."""
    fmt = fmt.lower()
    try:
        if fmt == "json":
            json.loads(text)
        elif fmt in ("yaml", "yml"):
            yaml.safe_load(text)
        elif fmt in ("markdown", "md"):
            if not re.search(r"^#{1,2} \S", text, re.M):
                return "no level-1 or level-2 heading"
            if len(re.findall(r"^\s{0,3}```", text, re.M)) % 2:
                return "an unclosed code fence"
        else:
            return f"unknown format {fmt!r}"
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return None


def _parses_blocks(text: str, fmt: str, what: str) -> Check:
    langs = {"json": {"json"}, "yaml": {"yaml", "yml"}}.get(fmt, {fmt})
    blocks = [body for lang, body in _FENCE_RE.findall(text) if (lang or "").lower() in langs]
    if not blocks:
        return Check("parses", False, f"{what} has no ```{fmt} block")
    for body in blocks:
        error = parse_error(body, fmt)
        if error:
            return Check("parses", False, f"a ```{fmt} block of the {what} does not parse: {error}")
    return Check("parses", True)


def is_subsequence(expected: list[str], actual: list[str]) -> bool:
    """Whether ``expected`` appears in ``actual`` in order (other items may come between)."""
    remaining = iter(actual)
    return all(any(node == step for step in remaining) for node in expected)


def route_checks(route: list[str], expect: Mapping[str, Any]) -> list[Check]:
    """``route`` (ordered subsequence), ``route_exact`` and ``route_excludes``."""
    checks = []
    shown = " → ".join(route) or "(no node ran)"
    if "route" in expect:
        wanted = _strings(expect["route"])
        ok = is_subsequence(wanted, route)
        checks.append(Check("route", ok, "" if ok else f"route {shown} does not pass through {' → '.join(wanted)}"))
    if "route_exact" in expect:
        wanted = _strings(expect["route_exact"])
        ok = route == wanted
        checks.append(Check("route_exact", ok, "" if ok else f"route {shown} is not {' → '.join(wanted)}"))
    if "route_excludes" in expect:
        hit = [n for n in _strings(expect["route_excludes"]) if n in route]
        checks.append(Check("route_excludes", not hit, f"route {shown} went through {hit}" if hit else ""))
    return checks


def tool_call_checks(calls: list[ToolCall], spec: Any) -> list[Check]:
    """``tool_calls``: a list of names that must be used, or ``{includes, excludes, ordered}``."""
    if not isinstance(spec, Mapping):
        spec = {"includes": spec}
    names = [c.name for c in calls]
    shown = ", ".join(f"{c.name} ({c.source})" for c in calls) or "none"
    wanted = _strings(spec.get("includes"))
    checks = []
    if wanted:
        ok = is_subsequence(wanted, names) if spec.get("ordered") else all(w in names for w in wanted)
        checks.append(Check("tool_calls", ok, "" if ok else f"tool calls [{shown}] lack {wanted}"))
    banned = [n for n in _strings(spec.get("excludes")) if n in names]
    if "excludes" in spec:
        checks.append(Check("tool_calls", not banned, f"tool calls [{shown}] include {banned}" if banned else ""))
    return checks


def in_role_check(obs: Observation, want: bool) -> Check:
    """The role speaks: it is active, its icon opens the reply, and no out-of-role phrase appears."""
    reply = obs.output.lstrip()
    # A turn that only asks the next question (an interrupt) shows the question as is, without the icon.
    only_asks = bool(obs.pending_question) and reply.startswith(obs.pending_question.strip()[:40])
    opens = reply.startswith(obs.icon) or only_asks if obs.icon else True
    # A phrase the user wrote may be quoted back (an answer refused as invalid); only the role's own words count.
    broke = [p for p in OUT_OF_ROLE if p in obs.output.lower() and p not in obs.input.lower()]
    if want:
        problems = ([] if obs.persona_active else ["the role is not active"]) + \
                   ([] if opens else [f"the reply does not open with {obs.icon}: {obs.output[:60]!r}"]) + \
                   ([f"out-of-role phrase {broke}"] if broke else [])
        return Check("in_role", not problems, "; ".join(problems))
    ok = not obs.persona_active and not opens
    return Check("in_role", ok, "" if ok else "the role still speaks after it was left")


def artifact_checks(obs: Observation, specs: Iterable[Mapping[str, Any]]) -> list[Check]:
    """Files of the thread's workspace: exist (or not), contain, match, parse."""
    checks = []
    for spec in specs:
        checks += _artifact_spec(obs, spec) or [Check("artifacts", True)]
    return checks


def _artifact_spec(obs: Observation, spec: Mapping[str, Any]) -> list[Check]:
    root = obs.workspace
    if "glob" in spec:
        files = sorted(p for p in root.glob(str(spec["glob"])) if p.is_file())
        minimum = int(spec.get("min_count", 1))
        if len(files) < minimum:
            return [Check("artifacts", False, f"{len(files)} file(s) match {spec['glob']} (want at least {minimum})")]
    else:
        path = root / str(spec["path"])
        if not spec.get("exists", True):
            return [Check("artifacts", not path.exists(), f"{spec['path']} exists but should not" if path.exists() else "")]
        if not path.is_file():
            return [Check("artifacts", False, f"{spec['path']} was not written")]
        # A file on disk that the thread does not list is one the user cannot find.
        if spec.get("listed", True) and path.resolve() not in {Path(p).resolve() for p in obs.artifacts}:
            return [Check("artifacts", False, f"{spec['path']} exists but is not in the thread's artefact list")]
        files = [path]
    checks = []
    content_keys = {k: v for k, v in spec.items() if k in ("contains", "not_contains", "any_of", "regex", "not_regex")}
    for file in files:
        rel = file.relative_to(root).as_posix()
        text = file.read_text(encoding="utf-8", errors="replace")
        checks += [Check("artifacts", c.ok, c.message) for c in text_checks(text, content_keys, what=rel)]
        if spec.get("parses"):
            error = parse_error(text, str(spec["parses"]))
            message = f"{rel} does not parse as {spec['parses']}: {error}" if error else ""
            checks.append(Check("artifacts", error is None, message))
    return checks


def _count_check(name: str, actual: int, spec: Any) -> Check:
    if isinstance(spec, Mapping):
        low, high = spec.get("min"), spec.get("max")
    else:
        low = high = int(spec)
    ok = (low is None or actual >= int(low)) and (high is None or actual <= int(high))
    return Check(name, ok, "" if ok else f"{actual} (want {spec})")


def _mode(obs: Observation, want: Any) -> list[Check]:
    ok = obs.mode == str(want)
    return [Check("mode", ok, "" if ok else f"mode is {obs.mode}, want {want}")]


def _persona(obs: Observation, want: Any) -> list[Check]:
    ok = obs.persona_active == bool(want)
    return [Check("persona_active", ok, "" if ok else f"persona_active is {obs.persona_active}")]


def _pending(obs: Observation, want: Any) -> list[Check]:
    question = obs.pending_question or ""
    if isinstance(want, bool):
        ok = bool(question) == want
        return [Check("pending", ok, "" if ok else ("no question waits" if want else f"a question waits: {question[:80]!r}"))]
    ok = str(want).lower() in question.lower()
    return [Check("pending", ok, "" if ok else f"the waiting question {question[:120]!r} lacks {want!r}")]


_TURN_CHECKS: dict[str, Callable[[Observation, Any], list[Check]]] = {
    "mode": _mode,
    "persona_active": _persona,
    "pending": _pending,
    "in_role": lambda obs, want: [in_role_check(obs, bool(want))],
    "tool_calls": lambda obs, want: tool_call_checks(obs.tool_calls, want),
    "artifacts": lambda obs, want: artifact_checks(obs, want),
    "artifact_count": lambda obs, want: [_count_check("artifact_count", len(obs.artifacts), want)],
}
_TEXT_KEYS = {"contains", "any_of", "not_contains", "regex", "not_regex", "parses", "max_chars", "min_chars"}
_ROUTE_KEYS = {"route", "route_exact", "route_excludes"}
TURN_KEYS = frozenset(_TURN_CHECKS) | _TEXT_KEYS | _ROUTE_KEYS
"""Every assertion a turn's ``expect`` block may use."""
RENDER_KEYS = frozenset(_TEXT_KEYS | {"missing", "secrets_replaced", "raises", "notices"})
"""Every assertion a ``render`` case's ``expect`` block may use."""


def check_turn(obs: Observation, expect: Mapping[str, Any]) -> list[Check]:
    """Every assertion of ``expect`` against the observed turn."""
    checks = text_checks(obs.output, expect)
    checks += route_checks(obs.route, expect)
    for key, handler in _TURN_CHECKS.items():
        if key in expect:
            checks += handler(obs, expect[key])
    return checks
