"""The chat app: one thread per browser session, driving the same graph as the CLI."""

from __future__ import annotations

import os
import sys

import gradio as gr

from agent.session import Engine, TurnResult, backend_status

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _status(result: TurnResult | None, thread: str) -> str:
    if result is None:
        return f"**Thread** `{thread}`"
    mode = result.mode if result.persona_active else "inactive (role exited)"
    waiting = "yes — your next message answers it" if result.pending_question else "no"
    return f"**Thread** `{thread}` · **Mode** {mode} · **Question waiting** {waiting}"


def build_app(engine: Engine) -> gr.Blocks:
    """The Gradio Blocks app for ``engine``."""
    agent = engine.pack.agent
    with gr.Blocks(title=f"{agent.name} · {agent.title}") as app:
        gr.Markdown(f"# {agent.icon} {agent.name} · {agent.title}\n{backend_status()}")
        thread = gr.State("")
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=560)
                text = gr.Textbox(label="Message", placeholder="Type *help, a number from the last list, or a question",
                                  lines=2)
                send = gr.Button("Send", variant="primary")
            with gr.Column(scale=1):
                status = gr.Markdown()
                files = gr.Files(label="Artefacts of this thread")

        def start() -> tuple:
            thread_id = engine.new_thread_id()
            result = engine.turn(thread_id, "")
            return thread_id, [{"role": "assistant", "content": result.output}], _status(result, thread_id), []

        def respond(message: str, history: list, thread_id: str) -> tuple:
            thread_id = thread_id or engine.new_thread_id()
            result = engine.turn(thread_id, message or "")
            history = [*(history or []), {"role": "user", "content": message or ""},
                       {"role": "assistant", "content": result.output}]
            return "", history, thread_id, _status(result, thread_id), result.artifacts

        app.load(start, outputs=[thread, chat, status, files])
        for trigger in (text.submit, send.click):
            trigger(respond, inputs=[text, chat, thread], outputs=[text, chat, thread, status, files])
    return app


def launch(engine: Engine, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None) -> int:
    """Serve the app. Binding beyond loopback requires ``user:password`` authentication.

    Returns:
        A process exit code (2 when refused).

    """
    auth = auth or os.environ.get("STREAMING_ENGINEER_AUTH")
    credentials = None
    if auth:
        user, _, password = auth.partition(":")
        if not user or not password:
            print("streaming-engineer: error: --auth must be user:password", file=sys.stderr)
            return 2
        credentials = (user, password)
    if host not in LOOPBACK and credentials is None:
        print(f"streaming-engineer: error: refusing to serve on {host} without authentication "
              "(use --auth user:password or STREAMING_ENGINEER_AUTH)", file=sys.stderr)
        return 2
    print(backend_status(), file=sys.stderr)
    app = build_app(engine)
    app.queue(default_concurrency_limit=16)
    app.launch(server_name=host, server_port=port, auth=credentials, show_error=False,
               allowed_paths=[str(engine.workspace_root)])
    return 0
