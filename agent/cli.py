"""The ``streaming-engineer`` command line."""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from agent.screening import MAX_INPUT_CHARS

if TYPE_CHECKING:
    from agent.session import Engine

DESCRIPTION = "Streaming Engineer (数据流工程师): an AI pair for streaming pipelines on Databricks."


def _engine(args: argparse.Namespace, allow_local_files: bool = True) -> Engine:
    # The engine (LangGraph, checkpoints) is imported only by the commands that converse: `check`,
    # `diagnose`, `ask` and `mcp` start without it (about 3 s of imports a linter run in CI would pay).
    from agent.persistence import CheckpointError
    from agent.session import Engine
    from knowledge.loader import PackError

    try:
        return Engine(home=args.home, bundle=args.bundle, allow_local_files=allow_local_files)
    except PackError as exc:
        source = f"bundle {args.bundle}" if args.bundle else "the knowledge pack"
        print(f"streaming-engineer: error: cannot load {source}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except CheckpointError as exc:
        print(f"streaming-engineer: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


MAX_SCRIPT_BYTES = 64 * 1024 * 1024
"""A script longer than this is stopped there (a script is typed turns, not data)."""
MAX_LINE_BYTES = 4 * (MAX_INPUT_CHARS + 1)
"""Bytes read of one line; a longer line is still one turn, refused as too long, and the rest of it skipped."""


def script_lines(stream: BinaryIO) -> Iterator[tuple[str, int]]:
    """The script's lines and their lengths in characters, each read with a bound.

    A line without end (``/dev/zero``) cannot exhaust memory: past ``MAX_LINE_BYTES``
    only its length is counted, so the turn can say how long it really was.

    Raises:
        ScriptTooLongError: once the script passes ``MAX_SCRIPT_BYTES``.

    """
    total = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES)
        if not raw:
            return
        total += len(raw)
        chars = _chars(raw)
        more = raw
        while not more.endswith(b"\n"):  # an over-long line: count the rest without keeping it
            more = stream.readline(MAX_LINE_BYTES)
            if not more:
                break
            total += len(more)
            chars += _chars(more)
            if total > MAX_SCRIPT_BYTES:
                break
        if total > MAX_SCRIPT_BYTES:
            raise ScriptTooLongError(f"the script is over {MAX_SCRIPT_BYTES // (1024 * 1024)} MB; stopped there")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        yield line, len(line) if more is raw else chars


def _chars(data: bytes) -> int:
    """UTF-8 characters in ``data`` (bytes that do not continue a character), line ends excluded."""
    return len(data) - sum(1 for b in data if b & 0xC0 == 0x80) - data.count(b"\n") - data.count(b"\r")


class ScriptTooLongError(ValueError):
    """A script past the size limit."""


def _open_script(name: str) -> BinaryIO:
    """The script file, which must be a regular file (or ``-`` for standard input).

    Raises:
        OSError: when it cannot be opened, or is a device, pipe or folder.

    """
    if name == "-":
        return sys.stdin.buffer
    # Non-blocking open: opening a named pipe blocks until a writer comes, before its type could be checked.
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file (use - to read standard input)")
    return os.fdopen(fd, "rb")


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        stream = _open_script(args.script)
    except OSError as exc:
        print(f"streaming-engineer: error: cannot read script {args.script}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    from agent.session import backend_status

    engine = _engine(args)
    thread = args.thread or engine.new_thread_id()
    print(backend_status(), file=sys.stderr)
    print(f"thread: {thread}", file=sys.stderr)
    with stream:
        try:
            for line, size in script_lines(stream):
                result = engine.turn(thread, line, size=size)
                print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
                if result.busy:  # the rest of the script would be answered against a thread in another's hands
                    print(f"streaming-engineer: error: thread {thread} is busy in another process; stopped",
                          file=sys.stderr)
                    return 3
        except ScriptTooLongError as exc:
            print(f"streaming-engineer: error: {exc}", file=sys.stderr)
            return 2
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from agent.session import backend_status

    engine = _engine(args)
    thread = args.thread or engine.new_thread_id()
    print(backend_status())
    print(f"(thread {thread} — continue it later with: streaming-engineer chat --thread {thread}; Ctrl-D to quit)\n")
    snapshot = engine.graph.get_state(engine.config(thread))
    if not snapshot.values.get("activated"):
        print(engine.turn(thread, "").output + "\n")
    elif snapshot.interrupts:
        print(str(snapshot.interrupts[0].value.get("question", "")) + "\n")
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        _stream_turn(engine, thread, line)


def _stream_turn(engine: Engine, thread: str, line: str) -> None:
    """Run one turn, printing model tokens as they arrive, then the rest of the turn's output.

    A model answer is printed live; what the turn adds around it (sources,
    menus) follows when the turn ends. When the streamed text is not part of
    the final output (the model failed mid-reply and the offline engine
    answered), the whole output is printed after it.
    """
    streamed = ""
    for kind, value in engine.stream_turn(thread, line):
        if kind == "token":
            if not streamed:
                print(f"{engine.pack.agent.icon} ", end="", flush=True)
            streamed += value
            print(value, end="", flush=True)
        elif kind == "done":
            output = value.output
            position = output.find(streamed.strip()) if streamed.strip() else -1
            if position >= 0:
                print(output[position + len(streamed.strip()):] + "\n")
            else:
                print(("\n\n" if streamed else "") + output + "\n")


def _cmd_ui(args: argparse.Namespace) -> int:
    from ui.app import launch

    engine = _engine(args, allow_local_files=False)
    return launch(engine, host=args.host, port=args.port, auth=args.auth)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="streaming-engineer", description=DESCRIPTION)
    parser.add_argument("--bundle", metavar="FILE", help="serve the agent of this BMad web bundle instead of the pack")
    parser.add_argument("--home", metavar="DIR", help="app folder (default $STREAMING_ENGINEER_HOME or ~/.streaming-engineer)")
    parser.set_defaults(func=_cmd_ui, host="127.0.0.1", port=7860, auth=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ui = sub.add_parser("ui", help="the web app on 127.0.0.1:7860 (the default)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=7860)
    ui.add_argument("--auth", metavar="USER:PASSWORD", help="required to bind beyond 127.0.0.1 (or STREAMING_ENGINEER_AUTH)")
    ui.set_defaults(func=_cmd_ui)

    chat = sub.add_parser("chat", help="a terminal conversation with the role")
    chat.add_argument("--thread", help="continue this thread")
    chat.set_defaults(func=_cmd_chat)

    run = sub.add_parser("run", help="one user turn per script line; prints one JSON object per turn")
    run.add_argument("--script", required=True, metavar="FILE", help="the script file, or - for standard input")
    run.add_argument("--thread", help="continue this thread")
    run.set_defaults(func=_cmd_run)

    from knowledge import cli as kb_cli

    for name, helptext in (("ask", "answer a question from the knowledge base"),
                           ("search", "retrieval only: the best passages for a query"),
                           ("index", "build (or refresh) the knowledge index"),
                           ("ingest", "add a folder of your team's Markdown/text documents to the index")):
        command = sub.add_parser(name, help=helptext)
        getattr(kb_cli, f"add_{name}_arguments")(command)
        command.set_defaults(func=getattr(kb_cli, f"run_{name}"))

    from tools.lint import cli as lint_cli

    check = sub.add_parser("check", help="review pipeline code and configs; exit 1 on any FAIL")
    lint_cli.add_arguments(check)
    check.set_defaults(func=lint_cli.run)

    from tools.diagnose import cli as diagnose_cli

    diagnose = sub.add_parser("diagnose", help="stream health from StreamingQueryProgress JSON; exit 1 when unhealthy")
    diagnose_cli.add_arguments(diagnose)
    diagnose.set_defaults(func=diagnose_cli.run)

    from agent import mcp_server

    mcp = sub.add_parser("mcp", help="the role's tools as an MCP server (stdio; --http for streamable HTTP)")
    mcp_server.add_arguments(mcp)
    mcp.set_defaults(func=mcp_server.run)

    from evals import bench as bench_cli
    from evals import cli as eval_cli

    evaluate = sub.add_parser("eval", help="run the eval suite, write reports; exit 1 below the thresholds")
    eval_cli.add_arguments(evaluate)
    evaluate.set_defaults(func=eval_cli.run)

    bench = sub.add_parser("bench", help="measure speed and memory on this machine (table, or --json)")
    bench_cli.add_arguments(bench)
    bench.set_defaults(func=bench_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streaming-engineer`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home:
        os.environ["STREAMING_ENGINEER_HOME"] = args.home
    if args.command not in _HOMELESS:
        from agent.context import default_home, make_private

        try:
            make_private(default_home())  # before `index`, `ingest` or `ask` create the home with the default mode
        except OSError as exc:  # a file, a device or a read-only place given as the home
            print(f"streaming-engineer: error: cannot use {default_home()} as the app folder: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 2
    return int(args.func(args) or 0)


_HOMELESS = frozenset({"check", "diagnose", "bench"})
"""Commands that read nothing of the app home (bench makes its own): they create none."""


if __name__ == "__main__":
    raise SystemExit(main())
