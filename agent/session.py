"""Drive the compiled graph one user turn at a time (every front end uses this).

The driver screens raw input before it reaches the graph, so oversized,
binary or secret-bearing text is never stored in a checkpoint; it resumes a
waiting question with ``Command(resume=...)`` and otherwise starts a turn.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph.types import Command

from agent import prompts
from agent.context import Context, default_home
from agent.context import make_private as make_private  # re-exported: it was defined here
from agent.graph import build_graph
from agent.persistence import open_checkpointer
from agent.routing import parse
from agent.screening import MAX_INPUT_CHARS as MAX_INPUT_CHARS  # re-exported: front ends import it from here
from agent.screening import SECRET_VALUE_ERROR, refused_secret, screen
from agent.threadlock import ThreadBusyError, ThreadLock, files_since
from agent.transcript import Transcript
from knowledge.loader import PACK_DIR
from tools.secrets import REMOVED
from tools.workspace import Workspace, WorkspaceError, safe_id

log = logging.getLogger(__name__)

DURABILITY = "exit"
"""When a turn's state is written: once, when the turn ends or stops at a question.

LangGraph's default writes a checkpoint after every step, in a background
thread; a turn runs three to eight steps, and those writes were most of the
graph's own cost per turn. A turn is the unit users see, so a crash mid-turn
loses only that turn's input, never an earlier one.
"""
THREAD_BUSY = (
    "{icon} This thread is busy: another turn of it is running right now (another window or process). "
    "I did not read this message; send it again when that turn has finished."
)
TURN_FAILED = (
    "{icon} I could not finish that: {reason}. Nothing of this turn was kept, and the conversation is where it "
    "was before it — try again differently, or `*help` for the commands."
)
UNSAVED_FILES = "Before it stopped, it had written {files} in the workspace."
UNFINISHED_TURN = (
    "{icon} The previous turn of this thread was stopped before it was saved, so the conversation resumes from "
    "before it; it had already written {files} in the workspace (they are kept; check them before use)."
)
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
    busy: bool = field(default=False, repr=False, compare=False)
    """The thread was busy with another turn, so this one did not run (same)."""

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        out = asdict(self)
        for name in _FRONT_END_ONLY:
            out.pop(name)
        return out


_FRONT_END_ONLY = ("state", "waiting", "input_text", "replies", "busy")


def _kind_of(waiting: Any) -> str | None:
    """The kind of the value a waiting question asks for (``secret_ref``, ``duration``, ...)."""
    return waiting.get("kind") if isinstance(waiting, dict) else None


def backend_status() -> str:
    """Which engine answers: the offline notice, or the configured model and endpoint (never the key)."""
    from agent.llm.backend import load_config

    config = load_config()
    return config.describe() if config is not None else OFFLINE_NOTICE


def failure_reason(exc: BaseException) -> str:
    """A short, plain reason for a failed turn (no server paths, no stack)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return "a file name or path in it is too long for the file system"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the server's disk is full"
    if isinstance(exc, WorkspaceError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "its input is nested too deeply to read"
    if isinstance(exc, MemoryError):
        return "it needed more memory than the server has"
    return f"an unexpected error ({type(exc).__name__})"




def _now() -> float:
    import time

    return time.time()


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
        make_private(home_path)
        if bundle:
            from knowledge.bundle import load_bundle

            pack_dir = load_bundle(bundle, home_path).root
        self.context = Context(home=str(home_path), pack_dir=str(pack_dir or PACK_DIR),
                               allow_local_files=allow_local_files)
        self.pack = self.context.pack  # load now, so a broken pack fails at start, not mid-turn
        self.checkpointer = checkpointer or open_checkpointer(home_path)
        self.graph = build_graph().compile(checkpointer=self.checkpointer)
        self.warmed = threading.Event()
        """Set once ``warm_up`` has loaded the index (front ends stop polling its progress then)."""

    @staticmethod
    def new_thread_id() -> str:
        """A fresh thread id."""
        return uuid.uuid4().hex[:12]

    def config(self, thread_id: str) -> dict[str, Any]:
        """The run config of a thread (at the checkpoint before a failed turn, when the last one failed).

        A turn that fails leaves a checkpoint with the error; the thread goes on from the one before it
        instead (LangGraph forks from a ``checkpoint_id``), so the question that was waiting still waits.
        """
        configurable: dict[str, Any] = {"thread_id": thread_id}
        try:
            rewind = self._rewind_path(thread_id).read_text(encoding="ascii").strip()
        except OSError:
            rewind = ""
        if rewind:
            configurable["checkpoint_id"] = rewind
        return {"configurable": configurable}

    def _rewind_path(self, thread_id: str) -> Path:
        return Path(self.context.home) / "locks" / f"{safe_id(thread_id)}.rewind"

    def _rewind(self, thread_id: str, checkpoint_id: str | None) -> None:
        """Make the thread go on from ``checkpoint_id`` (``None``: from its latest checkpoint again)."""
        path = self._rewind_path(thread_id)
        if checkpoint_id is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(checkpoint_id, encoding="ascii")

    @property
    def workspace_root(self) -> Path:
        """The folder holding every thread's workspace."""
        return Path(self.context.home) / "workspace"

    def workspace(self, thread_id: str) -> Workspace:
        """The thread's workspace."""
        return Workspace.for_thread(self.context.home, thread_id)

    def _prepare(self, thread_id: str, text: str, seen: dict[str, Any] | None = None,
                 size: int | None = None) -> tuple[Any, set[str], str, str]:
        """The graph input for a turn: a resume when a question waits, else a new input.

        Also the ids of the messages already in the state, which tell this turn's replies apart (the
        state keeps only the recent messages, so a count would not do).
        """
        snapshot = self.graph.get_state(self.config(thread_id))
        if seen is not None:
            seen["checkpoint_id"] = (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")
        before = {m.id for m in snapshot.values.get("messages") or []}
        clean, error, secret = screen(text, size)
        if snapshot.interrupts and not error and refused_secret(_kind_of(snapshot.interrupts[0].value), clean):
            # Shown and recorded as removed; the question says why and asks again.
            return (Command(resume={"text": "", "error": SECRET_VALUE_ERROR}), before, REMOVED,
                    screen(clean)[2] or "the secret itself rather than its scope/key")
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
        finally:
            self.warmed.set()

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

    def turn(self, thread_id: str, text: str, size: int | None = None) -> TurnResult:
        """Run one user turn on ``thread_id`` and report what it produced.

        Never raises for what happens inside the turn: a failure becomes a plain
        message from the role, and the thread stays where it was before the turn.
        """
        result: TurnResult | None = None
        for kind, value in self.stream_turn(thread_id, text, stream=False, size=size):
            if kind == "done":
                result = value
        assert result is not None  # stream_turn always ends with "done"
        return result

    def stream_turn(self, thread_id: str, text: str, stream: bool = True,
                    size: int | None = None) -> Iterator[tuple[str, Any]]:
        """Run one turn, yielding events as they happen.

        Only one turn of a thread runs at a time (across processes); another one
        meanwhile is answered "this thread is busy". A turn that fails is answered
        with what went wrong, and nothing of it is kept in the thread's state.

        Yields:
            ``("step", node name)`` as each node finishes, ``("token", text)``
            for streamed model tokens (``stream_mode="messages"``), ``("tool",
            {"name", "args", "ok"})`` for each tool the model called, and
            finally ``("done", TurnResult)``.
        """
        try:
            lock = ThreadLock(Path(self.context.home), thread_id).__enter__()
        except ThreadBusyError:
            busy = self._plain(thread_id, text, THREAD_BUSY.format(icon=self.pack.agent.icon or "•"))
            busy.busy = True
            yield "done", busy
            return
        except OSError as exc:
            yield "done", self._plain(thread_id, text, TURN_FAILED.format(icon=self.pack.agent.icon or "•",
                                                                                  reason=failure_reason(exc)))
            return
        try:
            notice = self._unfinished_notice(thread_id, lock.unfinished_since)
            started = _now()
            before = self.config(thread_id)
            seen: dict[str, Any] = {}
            try:
                events = self._run(thread_id, text, stream, seen, size)
                for kind, value in events:
                    if kind == "done":
                        if "checkpoint_id" in before["configurable"]:
                            self._rewind(thread_id, None)  # the fork is the thread's head now
                        if notice:
                            value.output = f"{notice}\n\n{value.output}"
                            value.replies.insert(0, notice)
                    yield kind, value
            except Exception as exc:  # the turn boundary: no failure inside a turn may end the conversation
                log.exception("turn failed on thread %s", thread_id)
                if seen.get("checkpoint_id"):
                    self._rewind(thread_id, seen["checkpoint_id"])
                written = self._unsaved_files(thread_id, started)
                reason = TURN_FAILED.format(icon=self.pack.agent.icon or "•", reason=failure_reason(exc))
                if written:
                    reason += " " + UNSAVED_FILES.format(files=", ".join(f"`{f}`" for f in written))
                yield "done", self._record(thread_id, self._plain(thread_id, text, "\n\n".join(
                    p for p in (notice, reason) if p)))
        finally:
            lock.__exit__(None, None, None)

    def _run(self, thread_id: str, text: str, stream: bool, seen: dict[str, Any],
             size: int | None = None) -> Iterator[tuple[str, Any]]:
        """The turn itself (the lock is held); ``seen`` receives the checkpoint id it started from."""
        payload, before, shown, secret = self._prepare(thread_id, text, seen, size)
        if not stream:
            values = self.graph.invoke(payload, self.config(thread_id), context=self.context, durability=DURABILITY)
            yield "done", self._record(thread_id, self._result(thread_id, values, values.get("__interrupt__") or (),
                                                               shown, before, secret))
            return
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

    def _unfinished_notice(self, thread_id: str, since: float | None) -> str:
        """What to tell the user when the thread's previous turn was killed before its state was saved."""
        if since is None:
            return ""
        written = self._unsaved_files(thread_id, since)
        if not written:
            return ""
        return UNFINISHED_TURN.format(icon=self.pack.agent.icon or "•",
                                              files=", ".join(f"`{f}`" for f in written))

    def _unsaved_files(self, thread_id: str, since: float) -> list[str]:
        """Workspace files written since ``since`` that the thread's saved state does not list."""
        try:
            known = list(self.graph.get_state(self.config(thread_id)).values.get("artifacts") or [])
            return files_since(self.workspace(thread_id), since, known)
        except Exception:  # only a courtesy to the user: never a reason to fail
            return []

    def _plain(self, thread_id: str, text: str, message: str) -> TurnResult:
        """A turn that only says ``message``; the thread's state is read (if it can be) but not changed."""
        clean, error, _secret = screen(text)
        shown = clean if not error else ""
        values: dict[str, Any] = {}
        pending = None
        try:
            snapshot = self.graph.get_state(self.config(thread_id))
            values = dict(snapshot.values or {})
            if snapshot.interrupts:
                waiting = snapshot.interrupts[0].value
                pending = str(waiting.get("question") if isinstance(waiting, dict) else waiting)
                if refused_secret(_kind_of(waiting), shown):
                    shown = REMOVED
        except Exception:
            log.exception("cannot read the state of thread %s", thread_id)
        active = bool(values.get("persona_active", True))
        icon = self.pack.agent.icon or "•"
        output = message + (f"\n\n{icon} {pending}" if pending else "")
        return TurnResult(input=re.sub(r"\s+", " ", shown)[:500], output=output,
                          mode="task" if pending else values.get("mode") or "commands", persona_active=active,
                          pending_question=pending, artifacts=[], state=values, input_text=shown, replies=[message])

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
        self._rewind(thread_id, None)
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
