"""Pure functions that read the user's text: commands, numbers, fuzzy words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from knowledge.loader import Command, Pack

ENGINE_COMMANDS = ("yolo", "activate")
"""Commands the engine adds to every role (BMad core behaviour)."""

_INJECTION = re.compile(
    r"ignore (all |any )?(previous|prior|above|earlier) (instructions|prompts?)|"
    r"disregard (all |the )?(previous|prior|above) |forget (all |your )?(previous |prior )?instructions|"
    r"you are now (a |an )?|act as (a |an )?(?!streaming)|pretend (to be|you are)|new persona|"
    r"system prompt|jailbreak|忽略(之前|以上|前面)的?(所有)?(指令|说明)|你现在是|扮演",
    re.I,
)
_QUESTION_WORDS = re.compile(
    r"^(how|what|why|when|which|where|should|can|could|is|are|does|do|explain|怎么|如何|为什么|什么)\b", re.I
)


@dataclass(frozen=True)
class Parsed:
    """What a line of user text is."""

    kind: str  # command | number | text | empty
    name: str = ""
    args: tuple[str, ...] = ()
    number: int = 0
    text: str = ""


def parse(text: str) -> Parsed:
    """Classify one line of user text."""
    stripped = text.strip()
    if not stripped:
        return Parsed("empty")
    if stripped.startswith("*") and len(stripped) > 1 and not stripped.startswith("**"):
        words = stripped[1:].split()
        if words:
            name = words[0].lower().rstrip(".,;:!?")
            return Parsed("command", name=name, args=tuple(words[1:]), text=stripped)
    if re.fullmatch(r"\d{1,6}", stripped):
        return Parsed("number", number=int(stripped), text=stripped)
    return Parsed("text", text=stripped)


def looks_like_injection(text: str) -> bool:
    """Whether the text tries to change or drop the role."""
    return bool(_INJECTION.search(text))


def looks_like_question(text: str) -> bool:
    """Whether the text reads as a question rather than a command name."""
    return text.rstrip().endswith(("?", "？")) or bool(_QUESTION_WORDS.match(text.strip()))


def _command_words(pack: Pack, command: Command) -> str:
    words = [command.name.replace("-", " "), command.description.en]
    task = pack.task_for(command)
    if task:
        words += [task.title, task.title_zh]
    return " ".join(w for w in words if w)


def match_commands(pack: Pack, text: str, limit: int = 4) -> list[tuple[Command, float]]:
    """Commands whose name or title the words match, best first.

    Short inputs are compared with the command's name and task title; the
    score is rapidfuzz's token-set ratio (0-100).
    """
    query = text.lower().replace("-", " ").replace("_", " ").strip()
    if not query:
        return []
    scored = []
    for command in pack.agent.commands:
        name = command.name.replace("-", " ")
        task = pack.task_for(command)
        title = (task.title if task else "").lower()
        zh = task.title_zh if task else ""
        score = max(
            fuzz.token_set_ratio(query, name),
            fuzz.token_set_ratio(query, title) if title else 0,
            100.0 if zh and (query == zh.lower() or (len(query) >= 2 and query in zh.lower())) else 0,
            fuzz.ratio(query, name),
        )
        scored.append((command, float(score)))
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored[:limit]


def clear_match(pack: Pack, text: str) -> tuple[Command | None, list[Command]]:
    """One command that clearly matches, or the close candidates.

    Returns:
        ``(command, [])`` for a clear match, ``(None, candidates)`` when
        several fit, ``(None, [])`` when nothing does.

    """
    if len(text.split()) > 5 or looks_like_question(text):
        return None, []
    ranked = match_commands(pack, text)
    if not ranked or ranked[0][1] < 70:
        return None, []
    best, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if score >= 85 and score - runner_up >= 10:
        return best, []
    return None, [c for c, s in ranked if s >= 70]


def suggest(pack: Pack, name: str, limit: int = 3) -> list[Command]:
    """Commands whose names are close to an unknown ``*name``."""
    ranked = sorted(
        pack.agent.commands,
        key=lambda c: max(fuzz.ratio(name, c.name), fuzz.partial_ratio(name, c.name)),
        reverse=True,
    )
    return [c for c in ranked[:limit] if max(fuzz.ratio(name, c.name), fuzz.partial_ratio(name, c.name)) >= 50]


def best_named(names: list[str], query: str) -> tuple[str | None, list[str]]:
    """Fuzzy-pick a template or checklist by name.

    Returns:
        ``(name, [])`` when one clearly fits, else ``(None, candidates)``.

    """
    query = query.lower().strip()
    if not query:
        return None, []
    for name in names:
        base = name.lower()
        if query in (base, base.rsplit(".", 1)[0], base.replace("-tmpl", "").rsplit(".", 1)[0]):
            return name, []
    scored = sorted(((fuzz.WRatio(query, n.lower()), n) for n in names), reverse=True)
    if not scored or scored[0][0] < 60:
        return None, []
    top, name = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0
    if top >= 86 and top - second >= 5:
        return name, []
    return None, [n for s, n in scored if s >= 60][:6]
