"""Drive the compiled graph one user turn at a time (every front end uses this).

The driver screens raw input before it reaches the graph, so oversized,
binary or secret-bearing text is never stored in a checkpoint; it resumes a
waiting question with ``Command(resume=...)`` and otherwise starts a turn.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph.types import Command

from agent import prompts
from agent.context import Context, default_home
from agent.graph import build_graph
from agent.persistence import open_checkpointer
from agent.routing import parse
from agent.transcript import Transcript
from knowledge.loader import PACK_DIR
from tools.templates import _SECRET_PATTERNS, find_secret
from tools.workspace import Workspace

MAX_INPUT_CHARS = 20_000
DURABILITY = "exit"
"""When a turn's state is written: once, when the turn ends or stops at a question.

LangGraph's default writes a checkpoint after every step, in a background
thread; a turn runs three to eight steps, and those writes were most of the
graph's own cost per turn. A turn is the unit users see, so a crash mid-turn
loses only that turn's input, never an earlier one.
"""
OFFLINE_NOTICE = (
    "Offline engine: no OPENAI_API_KEY or AZURE_OPENAI_API_KEY is set, so answers come from the knowledge pack "
    "and rules, without a model."
)


@dataclass
class TurnResult:
    """What one turn produced (the ``run --script`` JSON Lines object)."""

    input: str
    output: str
    mode: str
    persona_active: bool
    pending_question: str | None
    artifacts: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The thread's state values when the turn ended (for front ends; not part of the JSON shape)."""
    waiting: Any = field(default=None, repr=False, compare=False)
    """The waiting question's interrupt value, if any (same)."""
    input_text: str = field(default="", repr=False, compare=False)
    """The screened input in full (``input`` is shortened for display; same)."""
    replies: list[str] = field(default_factory=list, repr=False, compare=False)
    """What the role said, without the waiting question (same)."""

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        out = asdict(self)
        for name in _FRONT_END_ONLY:
            out.pop(name)
        return out


_FRONT_END_ONLY = ("state", "waiting", "input_text", "replies")


def screen(text: str) -> tuple[str, str, str]:
    """Screen raw user text.

    Returns:
        ``(clean text, error, secret reason)``: ``error`` is ``too_long:N/LIMIT``
        or ``binary`` when the text must not be used; ``secret reason`` says what
        was removed when the text carried something that looks like a secret.

    """
    if len(text) > MAX_INPUT_CHARS:
        return "", f"too_long:{len(text)}/{MAX_INPUT_CHARS}", ""
    bad = sum(1 for c in text if (ord(c) < 32 and c not in "\t\n\r") or c == "\ufffd")
    if text and bad / len(text) > 0.1:
        return "", "binary", ""
    clean = "".join(c for c in text if ord(c) >= 32 or c in "\t\n").replace("\ufffd", "")
    reason = find_secret(clean) or ""
    if reason:
        for _why, pattern in _SECRET_PATTERNS:
            clean = pattern.sub("[secret removed]", clean)
    return clean, "", reason


def backend_status() -> str:
    """Which engine answers: the offline notice, or the configured model and endpoint (never the key)."""
    from agent.llm.backend import load_config

    config = load_config()
    return config.describe() if config is not None else OFFLINE_NOTICE


class Engine:
    """The compiled graph with its checkpointer and context."""

    def __init__(self, home: Path | str | None = None, pack_dir: Path | str | None = None,
                 bundle: Path | str | None = None, checkpointer: Any = None,
                 allow_local_files: bool = False) -> None:
        """Load the pack (or bundle) and open the checkpointer.

        Raises:
            knowledge.loader.PackError: when the pack or bundle cannot be loaded.

        """
        home_path = Path(home) if home else default_home()
        home_path.mkdir(parents=True, exist_ok=True)
        if bundle:
            from knowledge.bundle import load_bundle

            pack_dir = load_bundle(bundle, home_path).root
        self.context = Context(home=str(home_path), pack_dir=str(pack_dir or PACK_DIR),
                               allow_local_files=allow_local_files)
        self.pack = self.context.pack  # load now, so a broken pack fails at start, not mid-turn
        self.checkpointer = checkpointer or open_checkpointer(home_path)
        self.graph = build_graph().compile(checkpointer=self.checkpointer)

    @staticmethod
    def new_thread_id() -> str:
        """A fresh thread id."""
        return uuid.uuid4().hex[:12]

    def config(self, thread_id: str) -> dict[str, Any]:
        """The run config of a thread."""
        return {"configurable": {"thread_id": thread_id}}

    @property
    def workspace_root(self) -> Path:
        """The folder holding every thread's workspace."""
        return Path(self.context.home) / "workspace"

    def workspace(self, thread_id: str) -> Workspace:
        """The thread's workspace."""
        return Workspace.for_thread(self.context.home, thread_id)

    def _prepare(self, thread_id: str, text: str) -> tuple[Any, set[str], str, str]:
        """The graph input for a turn: a resume when a question waits, else a new input.

        Also the ids of the messages already in the state, which tell this turn's replies apart (the
        state keeps only the recent messages, so a count would not do).
        """
        snapshot = self.graph.get_state(self.config(thread_id))
        before = {m.id for m in snapshot.values.get("messages") or []}
        clean, error, secret = screen(text)
        if snapshot.interrupts:
            payload: Any = Command(resume={"text": clean, "error": error})
        else:
            payload = {"input": clean, "input_error": error}
            if not error and snapshot.values.get("persona_active", True):
                self._prefetch(clean)
        shown = text if not (error or secret) else clean
        return payload, before, shown, secret

    def warm_up(self) -> None:
        """Load what the first knowledge question would wait for: index, embedding model, Chinese tokenizer.

        A server calls this once it is up; it never raises.
        """
        from agent.context import retriever_for
        from knowledge.index import IndexUnavailableError

        try:
            retriever_for(self.context.home, self.context.pack_dir).search("水位线 watermark", k=1)
        except (IndexUnavailableError, OSError, RuntimeError, ValueError):
            pass  # the first real question reports what is wrong

    def _prefetch(self, text: str) -> None:
        """Start embedding free text now: the knowledge search it leads to then finds the vector ready.

        Free text (not a command, not a number) is answered from the knowledge
        base in every mode, and the query embedding is the slowest part of a
        search; it runs in C without the GIL, beside the graph's own work.
        """
        from agent.context import retriever_for
        from knowledge.index import IndexUnavailableError

        parsed = parse(text)
        if parsed.kind != "text":
            return
        try:
            retriever_for(self.context.home, self.context.pack_dir).prefetch(parsed.text[:4000])
        except (IndexUnavailableError, OSError, RuntimeError):
            pass  # only a head start: the search itself reports what is wrong

    def turn(self, thread_id: str, text: str) -> TurnResult:
        """Run one user turn on ``thread_id`` and report what it produced."""
        payload, before, shown, secret = self._prepare(thread_id, text)
        values = self.graph.invoke(payload, self.config(thread_id), context=self.context, durability=DURABILITY)
        return self._record(thread_id, self._result(thread_id, values, values.get("__interrupt__") or (), shown, before,
                                                    secret))

    def stream_turn(self, thread_id: str, text: str) -> Iterator[tuple[str, Any]]:
        """Run one turn, yielding events as they happen.

        Yields:
            ``("step", node name)`` as each node finishes, ``("token", text)``
            for streamed model tokens (``stream_mode="messages"``), ``("tool",
            {"name", "args", "ok"})`` for each tool the model called, and
            finally ``("done", TurnResult)``.
        """
        payload, before, shown, secret = self._prepare(thread_id, text)
        values: dict[str, Any] = {}
        interrupts: tuple = ()
        for mode, chunk in self.graph.stream(payload, self.config(thread_id), context=self.context, durability=DURABILITY,
                                             stream_mode=["updates", "messages", "custom", "values"]):
            if mode == "values":
                values = chunk
            elif mode == "custom":
                if isinstance(chunk, dict) and "tool" in chunk:
                    yield "tool", chunk["tool"]
            elif mode == "updates":
                for node in chunk:
                    if node == "__interrupt__":
                        interrupts = tuple(chunk[node])
                    elif not node.startswith("__"):
                        yield "step", node
            elif mode == "messages":
                message, _meta = chunk
                if getattr(message, "type", "") == "AIMessageChunk" and message.content:
                    yield "token", str(message.content)
        yield "done", self._record(thread_id, self._result(thread_id, values, interrupts, shown, before, secret))

    def threads(self) -> list[str]:
        """Every thread id the checkpointer holds, most recent first."""
        seen: list[str] = []
        for item in self.checkpointer.list(None):
            thread = (item.config.get("configurable") or {}).get("thread_id")
            if thread and thread not in seen:
                seen.append(thread)
        return seen

    def delete_thread(self, thread_id: str) -> None:
        """Forget a thread: its checkpoints, transcript and workspace."""
        import shutil

        self.checkpointer.delete_thread(thread_id)
        Transcript(self.context.home, thread_id).delete()
        shutil.rmtree(self.workspace(thread_id).root, ignore_errors=True)

    def transcript(self, thread_id: str) -> list[dict[str, Any]] | None:
        """The thread's turns from its start, ``{"user", "replies", "question"}`` each.

        ``None`` for a thread begun before transcripts were kept.
        """
        return Transcript(self.context.home, thread_id).turns()

    def _record(self, thread_id: str, result: TurnResult) -> TurnResult:
        """Add the turn to the thread's transcript; a transcript that cannot be written costs only itself."""
        try:
            Transcript(self.context.home, thread_id).append(result.input_text, result.replies, result.pending_question)
        except OSError:
            pass
        return result

    def _result(self, thread_id: str, values: dict[str, Any], interrupts: Sequence[Any], shown_input: str,
                before: set[str], secret: str) -> TurnResult:
        """The turn's output from the state it ended with (what the graph returned, not read back)."""
        outputs = [str(m.content) for m in values.get("messages") or [] if m.type == "ai" and m.id not in before]
        active = bool(values.get("persona_active", True))
        if secret:
            icon = self.pack.agent.icon if active else ""
            outputs.insert(0, prompts.SECRET_REDACTED.format(icon=icon, reason=secret).strip())
        replies = [o for o in outputs if o]
        pending = None
        if interrupts:
            value = interrupts[0].value
            pending = value.get("question") if isinstance(value, dict) else str(value)
            if isinstance(value, dict) and value.get("footer"):
                pending += "\n" + value["footer"]
            # A waiting question is the role speaking too: it carries the role's icon.
            outputs.append(f"{self.pack.agent.icon} {pending}" if active and self.pack.agent.icon else pending)
        workspace = self.workspace(thread_id)
        artifacts = [str(workspace.root / rel) for rel in values.get("artifacts") or []]
        mode = values.get("mode") or "commands"
        if interrupts:
            mode = "task"
        return TurnResult(
            input=re.sub(r"\s+", " ", shown_input)[:500],
            output="\n\n".join(o for o in outputs if o),
            mode=mode,
            persona_active=active,
            pending_question=pending,
            artifacts=artifacts,
            state=values,
            waiting=interrupts[0].value if interrupts else None,
            input_text=shown_input,
            replies=replies,
        )
