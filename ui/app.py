"""The chat app: one browser session, its own threads, the same graph as every front end.

Layout: a chat (streamed answers, step and tool bubbles, sources, the waiting
question, clickable menus, a command palette) beside a side panel (mode,
task progress, threads, artefacts with preview and download); a review tab
(upload pipeline files, run a checklist and the linter); a settings tab.

Isolation: each browser session holds an owner token (see ``ui.sessions``);
every handler checks that the thread it acts on belongs to that token, and
files are only ever read from the session's own thread workspaces.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from agent import prompts
from agent.session import MAX_INPUT_CHARS, OFFLINE_NOTICE, Engine, TurnResult, backend_status, screen
from tools.workspace import WorkspaceError
from ui import chat, panel, review
from ui.artifacts import download, download_all, preview
from ui.bodylimit import BodyLimit
from ui.feedback import feedback_path, record_feedback
from ui.sessions import ThreadRegistry, is_token, new_owner

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STORAGE_KEY = "streaming-engineer-owner"
ENGINE_COMMANDS = (
    ("yolo", "Toggle YOLO: skip confirmations and section-by-section refinement menus"),
    ("activate", "Bring the role back after *exit"),
)
FIRST_UPDATE_SECONDS = 1.0
"""A turn still running after this long shows the user's bubble and its steps before it ends.

Offline turns need tens of milliseconds of CPU; when they take longer it is because other sessions'
turns hold the CPU, and an early update (a full chat render) would take CPU from all of them: with
16 sessions sending back to back, p95 went from 1.76 s with a 0.25 s threshold to 1.06 s without.
"""
STREAM_SECONDS = 0.1
MODEL_CONCURRENCY = 16
MAX_CHATS = 1000
"""Chats kept in memory for quick turns; an older thread's chat is rebuilt from its transcript."""
MAX_TRACKED_PAGES = 5000
TOO_LONG_BUBBLE = "(a message of {size:,} characters — too long, not kept)"
MAX_THREADS_PER_BROWSER = 200
"""Each thread keeps its state, transcript and workspace, and every turn sends the list of a browser's threads
(~60 bytes a thread): a browser cannot start threads without end."""
MAX_REQUEST_BYTES = 1024 * 1024
INDEX_POLL_SECONDS = 1.5
"""Largest request body besides uploads: a message at the engine's limit is well under it, even JSON-escaped."""
CSS = """
.se-header h1 {margin: 0; font-size: 1.45rem;}
.se-header p {margin: 2px 0 0; opacity: .8;}
.se-badge {display: inline-block; color: #fff; border-radius: 999px; padding: 2px 10px; font-size: .85rem;
  margin-right: 4px;}
.se-thread {margin-top: 6px; font-size: .85rem; opacity: .8;}
.se-task {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; font-size: .9rem;}
.se-task progress {width: 100%; height: 10px; margin-top: 6px;}
.se-idle {opacity: .7;}
.se-question {margin-top: 6px; color: #b45309; font-weight: 600;}
.se-progress, .se-default {font-size: .8rem; opacity: .8;}
.se-menu .wrap {flex-direction: column; align-items: stretch; max-height: 260px; overflow-y: auto; flex-wrap: nowrap;}
.se-menu label {width: 100%;}
.se-backend {font-size: .8rem; opacity: .75; margin-top: 12px;}
.se-preview {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 10px;}
"""


def _browser_secret(home: Path) -> str:
    """A stable secret for the browser-stored owner token, so a restart keeps browsers' thread lists."""
    path = home / "ui" / "browser-secret"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        return value


class ChatApp:
    """The Blocks app and its event handlers, bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        """Wrap ``engine``; web users never name server files, so local-file targets are switched off."""
        if engine.context.allow_local_files:
            engine.context = dataclasses.replace(engine.context, allow_local_files=False)
        self.engine = engine
        self.home = Path(engine.context.home)
        self.registry = ThreadRegistry(self.home / "ui" / "threads.sqlite")
        self.backend = "offline" if backend_status() == OFFLINE_NOTICE else "model"
        self._shown: OrderedDict[str, dict] = OrderedDict()  # page (session hash) -> panel values it has
        self._shown_lock = threading.Lock()
        # Thread -> its chat as last shown, kept here rather than in a gr.State: Gradio rebuilds a state's
        # config (a copy of its value) every time it is set, which grew with the chat on every turn.
        self._chats: OrderedDict[str, list] = OrderedDict()
        self._chats_lock = threading.Lock()

    # ----- threads -------------------------------------------------------------------------------------------

    def _ensure(self, owner: str, thread: str) -> tuple[str, str, bool]:
        """A valid owner and a thread it owns (a fresh one when needed): ``(owner, thread, created)``."""
        owner = owner if is_token(owner) else new_owner()
        if thread and self.registry.owns(owner, thread):
            return owner, thread, False
        thread = self.engine.new_thread_id()
        self.registry.add(owner, thread)
        return owner, thread, True

    def _greet(self, owner: str) -> tuple[str, list]:
        """A new thread with the role's greeting."""
        thread = self.engine.new_thread_id()
        self.registry.add(owner, thread)
        result = self.engine.turn(thread, "")
        return thread, chat.turn_messages(result.output, result.pending_question)

    def _chat(self, thread: str) -> list:
        """The thread's chat as this app last showed it, or rebuilt from its transcript."""
        with self._chats_lock:
            shown = self._chats.get(thread)
            if shown is not None:
                self._chats.move_to_end(thread)
                return list(shown)
        turns = self.engine.transcript(thread)
        if turns is not None:  # the last turn's question is the one still waiting, if any
            return chat.history_from_transcript(turns, turns[-1].get("question") if turns else None)
        # A thread begun before transcripts were kept: its state has the recent messages.
        snapshot = self.engine.graph.get_state(self.engine.config(thread))
        waiting = snapshot.interrupts[0].value if snapshot.interrupts else None
        question = panel.view_from(self.engine, thread, snapshot.values or {}, waiting).question
        return chat.history_from_state(list(snapshot.values.get("messages") or []), question)

    def _keep_chat(self, thread: str, history: list) -> None:
        with self._chats_lock:
            self._chats[thread] = list(history)
            self._chats.move_to_end(thread)
            while len(self._chats) > MAX_CHATS:
                self._chats.popitem(last=False)

    def _thread_choices(self, owner: str) -> list[tuple[str, str]]:
        return [(f"{r.title} · {time.strftime('%d %b %H:%M', time.localtime(r.created))}", r.thread_id)
                for r in self.registry.threads(owner)]

    # ----- what every turn refreshes -------------------------------------------------------------------------

    def _panel(self, owner: str, thread: str, request: gr.Request | None = None, *, clear_text: bool = False,
               force: bool = False, result: TurnResult | None = None) -> dict:
        """The side panel, menu and buttons for ``thread``: only what changed since this page last got it.

        Every ``gr.update`` costs the server a component rebuild, so unchanged ones are left out
        (``force`` sends all: a page that was just loaded or switched threads has nothing yet).
        After a turn, its ``result`` carries the state, which is then not read again.
        """
        view = (panel.view_from(self.engine, thread, result.state, result.waiting) if result is not None and result.state
                else panel.view_of(self.engine, thread))
        entries = panel.choices(view)
        label = ("Options for the waiting question — click one to answer" if view.question is not None
                 else "The last numbered list — click an entry to choose it")
        waiting = view.question is not None
        task_kind = str((view.task or {}).get("kind") or "")
        wanted = {
            self.status: panel.status_html(view),
            self.task: panel.task_html(view),
            self.choice: dict(choices=entries, value=None, visible=bool(entries), label=label),
            self.default_button: dict(visible=waiting and view.default is not None,
                                      value=f"Use default: {(view.default or '')[:40]}"),
            self.yolo_button: dict(visible=waiting and task_kind in ("task", "create-doc")),
            self.text: dict(placeholder=panel.placeholder(view)),
            self.threads: dict(choices=self._thread_choices(owner), value=thread),
            self.files: dict(choices=view.files),
        }
        key = getattr(request, "session_hash", None) or ""
        with self._shown_lock:
            shown = {} if force or not key else self._shown.get(key, {})
            changed = {c: v for c, v in wanted.items() if shown.get(c._id) != v}
            if key:
                self._shown[key] = {**shown, **{c._id: v for c, v in changed.items()}}
                self._shown.move_to_end(key)
                while len(self._shown) > MAX_TRACKED_PAGES:
                    self._shown.popitem(last=False)
        updates = {c: (gr.update(**v) if isinstance(v, dict) else v) for c, v in changed.items()}
        if clear_text:  # a plain value when only the text changes: no component rebuild
            updates[self.text] = gr.update(value="", **changed[self.text]) if self.text in changed else ""
        return updates

    def _states(self, owner: str, thread: str, history: list, *, remember: bool = True, ids: bool = True) -> dict:
        """The session's state and the chat; ``remember`` also stores the owner token in the browser.

        ``ids=False`` leaves the owner and thread states out when they did not change: Gradio rebuilds a
        state component's config each time one is set.
        """
        self._keep_chat(thread, history)
        states = {self.chatbot: history}
        if ids or remember:
            states.update({self.owner: owner, self.thread: thread})
        if remember:
            states[self.browser_owner] = owner
        return states

    def _switch(self, owner: str, thread: str, history: list, request: gr.Request | None) -> dict:
        """Everything that changes when the shown thread changes."""
        return {
            **self._states(owner, thread, history), **self._panel(owner, thread, request, force=True),
            self.preview_md: gr.update(value="", visible=False), self.preview_code: gr.update(value="", visible=False),
            self.download: gr.update(value=None, visible=False), self.zip_file: gr.update(value=None, visible=False),
            self.files: gr.update(choices=self.engine.workspace(thread).files(), value=None),
        }

    # ----- handlers ------------------------------------------------------------------------------------------

    def on_load(self, browser_owner: str, request: gr.Request) -> dict:
        """Page load: find this browser's threads again (or start one) and show the latest."""
        owner = browser_owner if self.registry.known(browser_owner) else new_owner()
        records = self.registry.threads(owner)
        if records:
            thread = records[0].thread_id
            history = self._chat(thread)
        else:
            thread, history = self._greet(owner)
        return self._switch(owner, thread, history, request)

    def send(self, message: str, owner: str, thread: str, request: gr.Request | None = None) -> Iterator[dict]:
        """One user turn: stream the steps and tokens, then the output and the refreshed panel."""
        message = message if isinstance(message, str) else ""
        if not message.strip():
            yield {self.text: ""}
            return
        given, asked = owner, thread
        owner, thread, created = self._ensure(owner, thread)
        remember = owner != given  # a new token goes to the browser once, not on every turn
        ids = created or thread != asked
        history = [] if created else self._chat(thread)
        if len(message) > MAX_INPUT_CHARS:
            # Refused here, before it enters the chat: a kept copy would be re-sent to the browser on every turn.
            icon = self.engine.pack.agent.icon or "•"
            history += [chat.user_message(TOO_LONG_BUBBLE.format(size=len(message))),
                        *chat.turn_messages(prompts.TOO_LONG.format(icon=icon, size=len(message), limit=MAX_INPUT_CHARS),
                                            None)]
            yield {**self._states(owner, thread, history, remember=remember, ids=ids),
                   **self._panel(owner, thread, request, clear_text=True)}
            return
        shown, error, _secret = screen(message)  # what is shown and kept is what the engine keeps
        self.registry.retitle(owner, thread, shown if not error else "")
        turn = secrets.token_hex(4)
        history += [chat.user_message(shown if not error else "(not read)"), chat.steps_message(turn, [], done=False)]
        user_at, steps_at = len(history) - 2, len(history) - 1

        # A turn that ends within FIRST_UPDATE_SECONDS is sent once (every update costs the server a
        # full chat render, and offline turns are that quick); a longer one, or a model's answer as
        # soon as its first token arrives, shows the user's bubble and its steps, then tokens, at most
        # every STREAM_SECONDS.
        nodes: list[str] = []
        streamed = ""
        started = sent = time.monotonic()
        first = True
        result: TurnResult | None = None
        for kind, value in self.engine.stream_turn(thread, message):
            if kind == "step":
                nodes.append(value)
                history[steps_at] = chat.steps_message(turn, nodes, done=False)
            elif kind == "token":
                streamed += value
                history = [*history[: steps_at + 1], gr.ChatMessage(role="assistant", content=streamed)]
            elif kind == "done":
                result = value
                continue
            answering = first and kind == "token"
            if answering or time.monotonic() - sent >= (FIRST_UPDATE_SECONDS if first else STREAM_SECONDS):
                sent = time.monotonic()
                yield ({self.text: "", **self._states(owner, thread, history, remember=remember, ids=ids)} if first
                       else {self.chatbot: history})
                first = False
        history = history[: steps_at + 1]  # the streamed bubble is replaced by the final output
        history[steps_at] = chat.steps_message(turn, nodes, done=True, seconds=time.monotonic() - started)
        history += chat.tool_messages(turn, nodes)
        if result is not None:
            if result.input_text != shown and not error:  # an answer refused as a secret value: never shown back
                history[user_at] = chat.user_message(result.input_text)
            history += chat.turn_messages(result.output, result.pending_question)
        yield {**self._states(owner, thread, history, remember=remember, ids=ids),
               **self._panel(owner, thread, request, clear_text=True, result=result)}

    def choose(self, value: str | None, owner: str, thread: str, request: gr.Request) -> Iterator[dict]:
        """A click on a numbered entry sends its number."""
        if value:
            for update in self.send(str(value), owner, thread, request):
                # The clicked entry must not stay selected: the same number may be wanted again.
                update.setdefault(self.choice, gr.update(value=None))
                yield update

    def palette(self, value: str | None, owner: str, thread: str, request: gr.Request) -> Iterator[dict]:
        """A command picked from the palette is sent as typed."""
        if value:
            for update in self.send(str(value), owner, thread, request):
                yield {**update, self.commands: None}  # the palette is ready for the next pick

    def take_default(self, owner: str, thread: str, request: gr.Request) -> Iterator[dict]:
        """The "Use default" button answers the waiting question with its default."""
        yield from self.send("default", owner, thread, request)

    def take_all_defaults(self, owner: str, thread: str, request: gr.Request) -> Iterator[dict]:
        """The "#yolo" button takes every remaining default of the running task."""
        yield from self.send("#yolo", owner, thread, request)

    def new_thread(self, owner: str, request: gr.Request | None = None) -> dict:
        """Start a fresh thread with the greeting."""
        owner = owner if is_token(owner) else new_owner()
        if self.registry.count(owner) >= MAX_THREADS_PER_BROWSER:
            raise gr.Error(f"This browser already has {MAX_THREADS_PER_BROWSER} threads; delete some (🗑) "
                           "before starting another.")
        thread, history = self._greet(owner)
        return self._switch(owner, thread, history, request)

    def open_thread(self, selected: str | None, owner: str, thread: str, request: gr.Request | None = None) -> dict:
        """Show another of this browser's threads (resuming a waiting question as it was)."""
        if not selected or not self.registry.owns(owner, selected):
            raise gr.Error("That thread is not one of this browser's threads.")
        return self._switch(owner, selected, self._chat(selected), request)

    def delete_thread(self, owner: str, thread: str, request: gr.Request | None = None) -> dict:
        """Delete the shown thread (checkpoints and files), then show the next one or a new one."""
        if not thread or not self.registry.owns(owner, thread):
            raise gr.Error("There is no thread of this browser to delete.")
        self.engine.delete_thread(thread)
        self.registry.remove(owner, thread)
        with self._chats_lock:
            self._chats.pop(thread, None)
        records = self.registry.threads(owner)
        if records:
            return self._switch(owner, records[0].thread_id, self._chat(records[0].thread_id), request)
        new, history = self._greet(owner)
        return self._switch(owner, new, history, request)

    def show_file(self, relative: str | None, owner: str, thread: str) -> dict:
        """Preview a file of the shown thread (Markdown rendered, code highlighted) and offer it for download."""
        if not relative:
            return {self.preview_md: gr.update(visible=False), self.preview_code: gr.update(visible=False),
                    self.download: gr.update(value=None, visible=False)}
        if not self.registry.owns(owner, thread):
            raise gr.Error("That file is not in one of this browser's threads.")
        workspace = self.engine.workspace(thread)
        try:
            shown = preview(workspace, relative)
            copy = download(workspace, relative)
        except WorkspaceError as exc:
            raise gr.Error(str(exc)) from exc
        markdown = shown.markdown if shown.markdown is not None else shown.note
        return {
            self.preview_md: gr.update(value=markdown, visible=bool(markdown)),
            self.preview_code: gr.update(value=shown.code or "", language=shown.language, visible=shown.code is not None,
                                         label=relative),
            self.download: gr.update(value=copy, visible=True, label=f"⬇️ Download {Path(relative).name}"),
        }

    def zip_files(self, owner: str, thread: str) -> dict:
        """Every file of the shown thread as one zip."""
        if not self.registry.owns(owner, thread):
            raise gr.Error("There is no thread of this browser to download.")
        archive = download_all(self.engine.workspace(thread), thread)
        if archive is None:
            gr.Info("This thread has no files yet.")
        return gr.update(value=archive, visible=archive is not None)

    def run_review(self, files: list[str] | None, checklist: str, owner: str, thread: str,
                   request: gr.Request | None = None) -> dict:
        """Save the dropped files into the thread's ``uploads/``, run the checklist and the linter, report."""
        uploaded = [str(f) for f in files or []]
        given = owner
        owner, thread, created = self._ensure(owner, thread)
        history = [] if created else self._chat(thread)
        done = review.run_review(self.engine, thread, uploaded, checklist or review.ALL)
        if done.turns:
            names = ", ".join(s.removeprefix(f"{review.UPLOAD_DIR}/") for s in done.saved)
            history.append(chat.user_message(f"📎 Review {names} with `{checklist}`"))
            history.append(gr.ChatMessage(role="assistant", content="\n".join(f"- `{t.input}`" for t in done.turns),
                                          metadata={"title": f"⚙️ Ran *execute-checklist in {len(done.turns)} turns",
                                                    "status": "done"}))
            last = done.turns[-1]
            history += chat.turn_messages(last.output, last.pending_question)
        report_file = None
        if done.report_path:
            report_file = download(self.engine.workspace(thread), done.report_path)
        return {
            self.review_summary: review.summary_markdown(done),
            self.review_chart: review.sections_frame(done.reports),
            self.review_items: review.items_table(done.reports),
            self.review_findings: review.findings_table(done.findings),
            self.review_report: report_file,
            **self._states(owner, thread, history, remember=owner != given), **self._panel(owner, thread, request),
        }

    def on_like(self, data: gr.LikeData, owner: str, thread: str) -> None:
        """Save a thumbs up/down with its turn to the feedback file."""
        if not self.registry.owns(owner, thread):
            return
        index = data.index if isinstance(data.index, int) else data.index[0]
        view = panel.view_of(self.engine, thread)
        record_feedback(self.home, thread_id=thread, liked=bool(data.liked), history=self._chat(thread),
                        index=int(index), mode=view.mode, backend=self.backend)
        gr.Info("Thanks — your feedback was saved.")

    # ----- layout --------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        """Lay out the app and wire its events."""
        agent = self.engine.pack.agent
        with gr.Blocks(title=f"{agent.name} · {agent.title}", analytics_enabled=False, fill_width=True,
                       delete_cache=(3600, 86400)) as app:
            self.owner = gr.State("")
            self.thread = gr.State("")
            self.browser_owner = gr.BrowserState("", storage_key=STORAGE_KEY, secret=_browser_secret(self.home))
            with gr.Row(elem_classes="se-header"):
                gr.Markdown(f"# {agent.icon} {agent.name} · {agent.title}\n"
                            f"{agent.title_en or ''} — streaming pipelines on Databricks")
            self._sidebar()
            with gr.Tabs():
                with gr.Tab("💬 Chat", id="chat"):
                    self._chat_tab()
                with gr.Tab("📎 Review upload", id="review"):
                    self._review_tab()
                with gr.Tab("⚙️ Settings", id="settings"):
                    self._settings_tab()
            self._wire(app)
        return app

    def _sidebar(self) -> None:
        with gr.Sidebar(label="Threads", open=True, width=300, elem_id="se-sidebar"):
            gr.Markdown("### 🧵 Threads\nOnly the threads this browser created.")
            self.new_button = gr.Button("➕ New thread", variant="primary", size="sm", elem_id="se-new")
            self.threads = gr.Radio(label="Resume a thread", choices=[], elem_id="se-threads", elem_classes="se-menu")
            self.delete_button = gr.Button("🗑️ Delete this thread", size="sm", variant="stop", elem_id="se-delete")
            gr.Markdown(f"<div class='se-backend'>{backend_status()}</div>")

    def _chat_tab(self) -> None:
        agent = self.engine.pack.agent
        with gr.Row(equal_height=False):
            with gr.Column(scale=6):
                # Says why a first question waits while the knowledge index is prepared (an edited pack or
                # ingested documents are embedded here; the shipped pack loads at once).
                self.index_note = gr.Markdown(visible=False, elem_id="se-index-note")
                self.index_timer = gr.Timer(INDEX_POLL_SECONDS)
                self.chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, height=620, layout="bubble", buttons=["copy"],
                    group_consecutive_messages=False,
                    placeholder=f"{agent.icon} Starting {agent.name}…", elem_id="se-chat",
                )
                self.choice = gr.Radio(label="The last numbered list", choices=[], visible=False,
                                       elem_classes="se-menu", elem_id="se-menu")
                with gr.Row():
                    self.text = gr.Textbox(show_label=False, lines=1, max_lines=8, scale=8, autofocus=True,
                                           submit_btn=False, elem_id="se-input",
                                           placeholder="Message — *help, a command, a list number, or a question")
                    self.send_button = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="se-send")
                with gr.Row():
                    self.default_button = gr.Button("Use default", size="sm", visible=False, elem_id="se-default")
                    self.yolo_button = gr.Button("#yolo — take all remaining defaults", size="sm", visible=False)
                self.commands = gr.Dropdown(
                    label="Command palette — every command of the role (type to filter, pick to run)",
                    choices=self._palette_choices(), value=None, filterable=True, elem_id="se-palette",
                )
            with gr.Column(scale=4, min_width=320):
                self.status = gr.HTML(elem_id="se-status")
                self.task = gr.HTML(elem_id="se-task")
                with gr.Accordion("📁 Artefacts of this thread", open=True):
                    self.files = gr.Dropdown(label="Preview a file", choices=[], elem_id="se-files")
                    self.download = gr.DownloadButton("⬇️ Download", visible=False, size="sm", elem_id="se-download")
                    self.preview_md = gr.Markdown(visible=False, elem_id="se-preview-md", max_height=560,
                                                  elem_classes="se-preview")
                    self.preview_code = gr.Code(visible=False, interactive=False, max_lines=30,
                                                elem_id="se-preview-code")
                    self.zip_button = gr.Button("🗜️ Zip every file of this thread", size="sm", elem_id="se-zip")
                    self.zip_file = gr.File(label="All files", interactive=False, visible=False, height=60)

    def _palette_choices(self) -> list[tuple[str, str]]:
        entries = [(f"*{c.usage.lstrip('*')} — {c.description}", f"*{c.name}") for c in self.engine.pack.agent.commands]
        known = {value for _label, value in entries}
        entries += [(f"*{name} — {text}", f"*{name}") for name, text in ENGINE_COMMANDS if f"*{name}" not in known]
        return entries

    def _review_tab(self) -> None:
        checklists = [(f"{c.title}" + (f"（{c.title_zh}）" if c.title_zh else "") + f" · {c.id}", c.id)
                      for c in self.engine.pack.checklists.values()]
        checklists.insert(0, (f"All checklists ({len(checklists)})", review.ALL))
        gr.Markdown(f"Drop pipeline files (PySpark, DLT, SQL, job/pipeline YAML or JSON) — up to "
                    f"{review.MAX_UPLOAD_MB} MB each, {review.MAX_FILES} at once. They are saved in this thread's "
                    "workspace under `uploads/`, judged against the checklist and checked by the linter.")
        with gr.Row():
            self.uploads = gr.File(label=f"Pipeline files (≤ {review.MAX_UPLOAD_MB} MB each)", file_count="multiple",
                                   file_types=list(review.TEXT_SUFFIXES), scale=3, elem_id="se-uploads")
            with gr.Column(scale=2):
                self.checklist = gr.Dropdown(label="Checklist", choices=checklists, value=review.ALL,
                                             elem_id="se-checklist")
                self.review_button = gr.Button("Review", variant="primary", elem_id="se-review")
        self.review_summary = gr.Markdown(elem_id="se-review-summary")
        with gr.Row():
            self.review_chart = gr.BarPlot(x="Section", y="Pass rate (%)", color="Band", color_map=review.BANDS,
                                           y_lim=[0, 100], title="Pass rate per checklist section", height=320,
                                           x_label_angle=-25, scale=3)
            self.review_report = gr.File(label="Report (Markdown)", interactive=False, scale=1, elem_id="se-report")
        self.review_items = gr.Dataframe(review.items_table([]), label="Checklist items", wrap=True, interactive=False,
                                         max_height=520,
                                         column_widths=["90px", "20%", "35%", "45%"])
        self.review_findings = gr.Dataframe(review.findings_table([]), label="Linter findings", wrap=True,
                                            interactive=False, max_height=420)

    def _settings_tab(self) -> None:
        gr.Markdown(
            "### Backend\n"
            f"{backend_status()}\n\n"
            "### Your data\n"
            "- Threads, their waiting questions and their files survive restarts. This browser sees only the "
            "threads it created (the Threads sidebar lists, resumes and deletes them); each thread's files live in its own "
            "workspace, which no other browser can open.\n"
            f"- Uploads are limited to {review.MAX_UPLOAD_MB} MB per file and are stored in the thread's workspace.\n"
            "- 👍 / 👎 on an answer saves it with its turn to `feedback/feedback.jsonl` in the app home, "
            "which the eval suite reads.\n\n"
            "### Serving\n"
            "The app binds 127.0.0.1 by default; any other address requires `--auth user:password` "
            "(or `STREAMING_ENGINEER_AUTH`).",
            elem_id="se-settings",
        )

    def _wire(self, app: gr.Blocks) -> None:
        turn_outputs = [self.text, self.owner, self.browser_owner, self.thread, self.chatbot,
                        self.status, self.task, self.choice, self.default_button, self.yolo_button, self.threads,
                        self.files]
        switch_outputs = [*turn_outputs, self.preview_md, self.preview_code, self.download, self.zip_file]
        state = [self.owner, self.thread]
        app.load(self.on_load, inputs=[self.browser_owner], outputs=switch_outputs, api_visibility="private")
        self.text.submit(self.send, inputs=[self.text, *state], outputs=turn_outputs, api_name="send")
        self.send_button.click(self.send, inputs=[self.text, *state], outputs=turn_outputs, api_visibility="private")
        self.choice.input(self.choose, inputs=[self.choice, *state], outputs=turn_outputs, api_name="choose")
        self.commands.input(self.palette, inputs=[self.commands, *state], outputs=[*turn_outputs, self.commands],
                            api_name="palette")
        self.default_button.click(self.take_default, inputs=state, outputs=turn_outputs, api_visibility="private")
        self.yolo_button.click(self.take_all_defaults, inputs=state, outputs=turn_outputs, api_visibility="private")
        self.new_button.click(self.new_thread, inputs=[self.owner], outputs=switch_outputs, api_name="new_thread")
        self.threads.input(self.open_thread, inputs=[self.threads, self.owner, self.thread], outputs=switch_outputs,
                           api_name="open_thread")
        self.delete_button.click(self.delete_thread, inputs=[self.owner, self.thread], outputs=switch_outputs,
                                 api_name="delete_thread")
        self.files.input(self.show_file, inputs=[self.files, self.owner, self.thread],
                         outputs=[self.preview_md, self.preview_code, self.download], api_name="preview")
        self.zip_button.click(self.zip_files, inputs=[self.owner, self.thread], outputs=[self.zip_file],
                              api_name="download_all")
        self.review_button.click(
            self.run_review, inputs=[self.uploads, self.checklist, *state],
            outputs=[self.review_summary, self.review_chart, self.review_items, self.review_findings,
                     self.review_report, *turn_outputs],
            api_name="review",
        )
        self.chatbot.like(self.on_like, inputs=state, outputs=None, api_visibility="private")
        self.index_timer.tick(self.index_progress, outputs=[self.index_note, self.index_timer],
                              api_visibility="private", queue=False)

    def index_progress(self) -> tuple[dict, gr.Timer]:
        """The knowledge index's build progress, shown while it lasts; the timer stops once the index is ready."""
        from knowledge.index import build_status

        message = build_status()
        busy = message is not None or not self.engine.warmed.is_set()
        return gr.update(value=f"⏳ {message}" if message else "", visible=bool(message)), gr.Timer(active=busy)


def build_app(engine: Engine) -> gr.Blocks:
    """The Gradio Blocks app for ``engine``."""
    return ChatApp(engine).build()


def concurrency_limit() -> int:
    """How many turns the app runs at once; more wait in Gradio's queue, in order.

    Offline turns are CPU work that mostly holds the GIL: past two per core they only slow each other
    (16 sessions back to back: p95 1.13 s with 16 at once, 0.93 s with 4, on two cores). A model turn
    mostly waits for the endpoint, so with a model many run at once.
    """
    if backend_status() == OFFLINE_NOTICE:
        return max(2, 2 * (os.cpu_count() or 1))
    return MODEL_CONCURRENCY


def _credentials(host: str, auth: str | None) -> tuple[tuple[str, str] | None, str]:
    """``(credentials, error)`` for serving on ``host``: beyond loopback, authentication is required."""
    auth = auth or os.environ.get("STREAMING_ENGINEER_AUTH")
    credentials = None
    if auth:
        user, _, password = auth.partition(":")
        if not user or not password:
            return None, "--auth must be user:password"
        credentials = (user, password)
    if host not in LOOPBACK and credentials is None:
        return None, (f"refusing to serve on {host} without authentication "
                      "(use --auth user:password or STREAMING_ENGINEER_AUTH)")
    return credentials, ""


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
          block: bool = True) -> tuple[gr.Blocks, str]:
    """Build and launch the app; with ``block=False`` return at once (tests, benchmarks).

    Returns:
        The app and its local URL.

    Raises:
        ValueError: when the address or the credentials are refused.

    """
    credentials, error = _credentials(host, auth)
    if error:
        raise ValueError(error)
    # Started before the page is built and served: opening the index (Chroma), loading the embedding model
    # and the Chinese tokenizer then overlap Gradio's own start, and a first knowledge question asked as soon
    # as the page shows no longer waits for all of it (on a fresh home it waited for the warm-up's whole run).
    threading.Thread(target=engine.warm_up, name="warm-up", daemon=True).start()
    app = build_app(engine)
    app.queue(default_concurrency_limit=concurrency_limit())
    upload_limit = review.MAX_FILES * review.MAX_UPLOAD_BYTES + MAX_REQUEST_BYTES
    _server, url, _share = app.launch(
        app_kwargs={"middleware": [Middleware(BodyLimit, limit=MAX_REQUEST_BYTES, upload_limit=upload_limit)]},
        server_name=host, server_port=port, auth=credentials, show_error=False, prevent_thread_lock=True,
        max_file_size=review.MAX_UPLOAD_BYTES, theme=gr.themes.Soft(primary_hue="blue"), css=CSS, ssr_mode=False,
        quiet=not block, mcp_server=False, run_history=False, footer_links=["api", "gradio", "settings"],
    )
    if block:
        app.block_thread()
    return app, url


def launch(engine: Engine, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None) -> int:
    """Serve the app. Binding beyond loopback requires ``user:password`` authentication.

    Returns:
        A process exit code (2 when refused).

    """
    _credentials_ok, error = _credentials(host, auth)
    if error:
        print(f"streaming-engineer: error: {error}", file=sys.stderr)
        return 2
    print(backend_status(), file=sys.stderr)
    serve(engine, host, port, auth, block=True)
    return 0


__all__ = ["ChatApp", "build_app", "feedback_path", "launch", "serve"]
