"""Benchmark the web app (measured here, never asserted by tests).

1. Launch to first page: start ``streaming-engineer ui`` in a fresh process and
   time until ``GET /`` answers 200 with the page.
2. Turn latency under load: N concurrent sessions drive the ``/send`` API of
   the last app process started with a mix of commands, task answers, a
   finished task and kb answers, on the offline engine; prints p50/p95/max
   overall and per kind of turn. Each session asks its own kb questions (from
   evals/datasets/kb_questions.yaml), so no answer is served from another
   session's work. The sessions call Gradio's HTTP API (``/gradio_api/call/…``
   with a session hash, as gradio_client does) through a small httpx client:
   gradio_client itself costs more CPU per call than the app's turn, and on
   one machine the benchmark's clients would take the cores the app is being
   measured on (``--gradio-client`` uses it anyway).

    python scripts/bench_ui.py [--home DIR] [--sessions 16] [--rounds 2] [--think 0] [--gradio-client] [--json]

The home needs a built knowledge index (``streaming-engineer index``); without
``--home`` a temporary home is made and indexed first (minutes, not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KB_QUESTIONS = ROOT / "evals" / "datasets" / "kb_questions.yaml"
SCRIPT = [
    ("*help", "command"),
    ("*yolo", "command"),
    ("*yolo", "command"),
    ("*kafka-connector", "task started"),
    ("24", "task question answered"),
    ("default", "task question answered"),
    ("#yolo", "task finished (render, check, save)"),
    ("*kb-mode", "command"),
    ("how does maxOffsetsPerTrigger work?", "kb answer"),
    ("1", "kb answer"),
    ("*exit", "command"),
]


def kb_questions() -> list[str]:
    """The answerable questions of the eval dataset (English and Chinese)."""
    import yaml

    data = yaml.safe_load(KB_QUESTIONS.read_text(encoding="utf-8"))
    return [q["question"] for q in data.get("questions") or []]


def script_for(number: int, questions: list[str]) -> list[tuple[str, str]]:
    """The script of turn ``number`` of a session run, with its own kb question."""
    question = questions[number % len(questions)]
    return [(question if kind == "kb answer" and text != "1" else text, kind) for text, kind in SCRIPT]


class ApiSession:
    """One browser session over Gradio's HTTP API: ``/gradio_api/call/<name>`` with a session hash.

    The session hash keeps the app's per-session state (owner, thread,
    history) between calls, as it does for a page or gradio_client.
    """

    def __init__(self, url: str) -> None:
        """A keep-alive connection to the app at ``url``."""
        import secrets

        import httpx

        self.url = url.rstrip("/")
        self.session_hash = secrets.token_hex(6)
        self.http = httpx.Client(timeout=120)

    def predict(self, *data: object, api_name: str) -> list:
        """Call ``api_name`` and wait for its final output; raise on an error event."""
        name = api_name.strip("/")
        response = self.http.post(f"{self.url}/gradio_api/call/{name}",
                                  json={"data": list(data), "session_hash": self.session_hash})
        response.raise_for_status()
        event_id = response.json()["event_id"]
        event = ""
        with self.http.stream("GET", f"{self.url}/gradio_api/call/{name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line.split(":", 1)[1])
                    if event == "error":
                        raise RuntimeError(f"{name} failed: {payload}")
                    return payload
        raise RuntimeError(f"{name}: the stream ended without a result")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "STREAMING_ENGINEER_HOME": str(home), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "STREAMING_ENGINEER_AUTH"):
        env.pop(name, None)
    return env


def start_app(home: Path) -> tuple[subprocess.Popen, str, float]:
    """Start ``streaming-engineer ui`` in a fresh process: ``(process, url, seconds to the first page)``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "ui", "--port", str(port)], cwd=ROOT,
                            env=environment(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and b"<html" in response.read(4096).lower():
                    return proc, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def turn_latencies(url: str, sessions: int, rounds: int, think: float,
                   gradio_client: bool = False) -> tuple[dict[str, list[float]], float, list[str]]:
    """Per kind of turn, the latency of every ``/send`` call of ``sessions`` concurrent sessions.

    ``think`` seconds pass between a session's turns (0: each sends its next turn at once).
    """
    if gradio_client:
        from gradio_client import Client

        def connect() -> object:
            return Client(url, verbose=False)
    else:
        def connect() -> object:
            return ApiSession(url)

    questions = kb_questions()
    warm = connect()
    for text, _kind in SCRIPT:  # opens the index and warms every code path once
        warm.predict(text, api_name="/send")
    clients = [connect() for _ in range(sessions)]
    kinds: dict[str, list[float]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(sessions)
    errors: list[str] = []

    def drive(number: int, client) -> None:
        barrier.wait()
        for round_ in range(rounds):
            client.predict(api_name="/new_thread")
            for text, kind in script_for(number * rounds + round_, questions):
                start = time.perf_counter()
                try:
                    client.predict(text, api_name="/send")
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    with lock:
                        errors.append(f"{kind}: {exc!r}"[:200])
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    kinds.setdefault(kind, []).append(elapsed)
                if think:
                    time.sleep(think)

    started = time.perf_counter()
    workers = [threading.Thread(target=drive, args=(i, c)) for i, c in enumerate(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    return kinds, wall, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an app home with a built index (default: a temporary one)")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="times each session runs the script")
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds a session waits between its turns, like a reader (default 0: back to back)")
    parser.add_argument("--gradio-client", action="store_true",
                        help="drive the sessions with gradio_client instead of the small httpx client")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="se-bench-ui-"))
    if not (home / "index").exists():
        print(f"building the knowledge index in {home} (not timed)…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "agent.cli", "index"], cwd=ROOT, env=environment(home), check=True)

    launches = []
    for _ in range(args.launches - 1):
        proc, _url, seconds = start_app(home)
        launches.append(seconds)
        stop(proc)
    proc, url, seconds = start_app(home)  # the last one serves the load test
    launches.append(seconds)
    try:
        server_cpu, client_cpu, load = cpu_seconds(proc.pid), time.process_time(), os.getloadavg()[0]
        kinds, wall, errors = turn_latencies(url, args.sessions, args.rounds, args.think, args.gradio_client)
        server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu
        load = max(load, os.getloadavg()[0])
    finally:
        stop(proc)
    every = [t for values in kinds.values() for t in values]
    result = {
        "cpus": os.cpu_count(),
        "launch_to_first_page_s": {"runs": [round(t, 2) for t in launches], "median": round(statistics.median(launches), 2)},
        "concurrent_sessions": args.sessions,
        "think_s": args.think,
        "client": "gradio_client" if args.gradio_client else "httpx",
        "turns": len(every),
        "wall_s": round(wall, 2),
        "server_cpu_ms_per_turn": round(1000 * server_cpu / max(1, len([t for v in kinds.values() for t in v])), 1),
        "client_cpu_ms_per_turn": round(1000 * client_cpu / max(1, len([t for v in kinds.values() for t in v])), 1),
        "load_average": round(load, 1),
        "failed_turns": len(errors),
        "failures": errors[:5],
        "turn_latency_s": {"p50": round(percentile(every, 0.5), 3), "p95": round(percentile(every, 0.95), 3),
                           "max": round(max(every), 3)},
        "by_kind": {kind: {"n": len(v), "p50": round(percentile(v, 0.5), 3), "p95": round(percentile(v, 0.95), 3)}
                    for kind, v in kinds.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"machine: {result['cpus']} CPU(s), load average up to {result['load_average']} during the run")
    print(f"launch → first page: median {result['launch_to_first_page_s']['median']} s "
          f"(runs {result['launch_to_first_page_s']['runs']})")
    lat = result["turn_latency_s"]
    pause = f", {args.think} s between a session's turns" if args.think else ", turns back to back"
    print(f"{args.sessions} concurrent sessions{pause}, {len(every)} turns in {result['wall_s']} s: "
          f"p50 {lat['p50']} s · p95 {lat['p95']} s · max {lat['max']} s")
    for kind, stats in result["by_kind"].items():
        print(f"  {kind:40} n={stats['n']:4}  p50 {stats['p50']:.3f} s  p95 {stats['p95']:.3f} s")
    print(f"CPU per turn: app process {result['server_cpu_ms_per_turn']} ms, "
          f"benchmark clients {result['client_cpu_ms_per_turn']} ms")
    if errors:
        print(f"{len(errors)} turn(s) failed, e.g. {errors[0]}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
