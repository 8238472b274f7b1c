"""Measure the model path's token economy and agent overhead (measured here, never asserted by tests).

Drives the real graph and the real langchain-openai client against the local
OpenAI-compatible server (tests/support/openai_server.py, heuristic mode) over
conversations:

- kb-mode: every question of evals/datasets/kb_questions.yaml (answerable and
  unanswerable, English and Chinese), one thread, as a user would ask them;
- free conversation: the in-character questions below, one thread.

Tokens: the prompt tokens of every chat completion request the server got
(messages + tool definitions, counted with cl100k_base, see agent/llm/tokens.py),
per model call and per user turn (a turn may make several calls), against
pasting the whole agent bundle into a web chat, which sends at least the
bundle with every turn.

Overhead: per model turn, the wall time of ``Engine.turn`` minus the time
spent inside the chat model's HTTP calls (``ChatOpenAI._generate``, including
the local server's answer); then also minus the time the turn waited for the
query embedding (``QueryVectors.get``: e5 inference, which starts when the
turn starts), which leaves the agent's own code. It includes graph, checkpoint writes, retrieval,
prompt building and tool runs; retrieval (search plus the relevance gate,
``Sources.find``) is also reported on its own. Wall and CPU time are both
reported: CPU time does not count waiting for other processes on a busy
machine (the server runs in its own process, so its work is not counted).

    python scripts/measure_tokens.py [--home DIR] [--limit N] [--json]

With ``--endpoint URL`` it measures a real OpenAI-compatible server instead
(a local llama.cpp / llama-cpp-python server, see the README): per-turn
latency (p50/p95), model calls per turn, prompt tokens per call (cl100k
count of each request) and completion tokens per call (the server's usage,
or one streamed event per token), and the turns that fell back. The calls go
through a recording pass-through (``tests/support/llm.py``) that relays
streams chunk by chunk and closes the upstream connection when the app
closes its own. ``--app-root DIR`` measures another checkout's code (say,
main before a change) with this script:

    python scripts/measure_tokens.py --endpoint http://127.0.0.1:8080/v1 --limit 6 [--app-root ../main]
    python scripts/measure_tokens.py --endpoint http://127.0.0.1:8080/v1 --disconnect

Needs the knowledge index in the home (``streaming-engineer index``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SCRIPT_ROOT = Path(__file__).resolve().parents[1]
ROOT = SCRIPT_ROOT
if "--app-root" in sys.argv[:-1]:  # the code to measure, chosen before anything of it is imported
    ROOT = Path(sys.argv[sys.argv.index("--app-root") + 1]).resolve()
sys.path.insert(0, str(ROOT))

BUNDLE = ROOT.parent / "shared" / "seed" / "000_982d15b71eeea4ea.txt"
DATASET = ROOT / "evals" / "datasets" / "kb_questions.yaml"
CONVERSE = [
    "Which trigger should I use for a low latency kafka pipeline?",
    "What is the difference between at-least-once and exactly-once when writing to Delta?",
    "My stream's state store keeps growing, what should I look at first?",
    "How should I handle late events in a windowed aggregation?",
    "How do I keep Kafka credentials out of my notebooks?",
    "What metrics should I alert on for a streaming job?",
    "Can I change the schema of a running stream without downtime?",
    "How do I reprocess yesterday's data without duplicates?",
    "Where should the checkpoint of a production stream live?",
    "Auto Loader is slow to discover new files in a huge directory, what can I do?",
    "Write me a poem about the ocean.",
    "流式作业的成本怎么控制？",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load_questions(limit: int | None) -> list[str]:
    import yaml

    data = yaml.safe_load(DATASET.read_text(encoding="utf-8"))
    questions = [q["question"] for q in data.get("questions") or []] + [q["question"] for q in data.get("unanswerable") or []]
    return questions[:limit] if limit else questions


class Timers:
    """Wall and CPU time spent inside model HTTP calls and retrieval (patched in for the measurement)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.model = self.model_cpu = self.retrieval = self.retrieval_cpu = self.embedding = 0.0

    def install(self) -> None:
        from langchain_openai.chat_models.base import BaseChatOpenAI

        from agent.llm.grounding import Sources
        from knowledge.embeddings import QueryVectors

        def timed(owner: type, name: str, wall_field: str, cpu_field: str | None, stream: bool = False) -> None:
            original = getattr(owner, name)

            def add(start: float, cpu: float) -> None:
                setattr(self, wall_field, getattr(self, wall_field) + time.perf_counter() - start)
                if cpu_field:
                    setattr(self, cpu_field, getattr(self, cpu_field) + time.process_time() - cpu)

            def wrapper(*args, **kwargs):
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    return original(*args, **kwargs)
                finally:
                    add(start, cpu)

            def stream_wrapper(*args, **kwargs):
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    yield from original(*args, **kwargs)
                finally:
                    add(start, cpu)

            setattr(owner, name, stream_wrapper if stream else wrapper)

        # Model calls stream (agent/llm/calls.py); older code called _generate.
        timed(BaseChatOpenAI, "_generate", "model", "model_cpu")
        timed(BaseChatOpenAI, "_stream", "model", "model_cpu", stream=True)
        timed(Sources, "find", "retrieval", "retrieval_cpu")
        timed(QueryVectors, "get", "embedding", None)


def start_server(record: Path) -> tuple[subprocess.Popen, str]:
    """The local server in its own process, so its work is not counted as this process's CPU time."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.openai_server", "--port", "0", "--record", str(record)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, line.split(" on ", 1)[1].split()[0]


def run(home: Path, limit: int | None) -> dict:
    from agent.llm.tokens import count_request, count_text, encoder
    from agent.session import Engine

    record = Path(tempfile.mkdtemp()) / "requests.jsonl"
    record.touch()
    server, url = start_server(record)
    os.environ.update(OPENAI_API_KEY="measure-key", OPENAI_BASE_URL=url, STREAMING_ENGINEER_MODEL="local-test-model")
    os.environ.pop("AZURE_OPENAI_API_KEY", None)
    timers = Timers()
    timers.install()
    engine = Engine(home=home)
    bundle_tokens = count_text(BUNDLE.read_text(encoding="utf-8"))

    per_call: list[int] = []
    per_turn: list[int] = []
    calls_per_turn: list[int] = []
    overhead_ms: list[float] = []
    overhead_cpu_ms: list[float] = []
    retrieval_ms: list[float] = []
    retrieval_cpu_ms: list[float] = []
    embedding_ms: list[float] = []

    def requests() -> list[dict]:
        return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]

    def converse_turns(opening: list[str], questions: list[str]) -> None:
        thread = uuid.uuid4().hex[:10]
        for line in ["", *opening]:
            engine.turn(thread, line)
        engine.turn(thread, questions[0])  # warm-up: loads the embedding model, opens the index
        for question in questions:
            seen = len(requests())
            timers.reset()
            start, cpu = time.perf_counter(), time.process_time()
            engine.turn(thread, question)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            made = requests()[seen:]
            if not made:
                continue  # answered without the model (e.g. a redirect decided by state)
            tokens = [count_request(body["messages"], body.get("tools")) for body in made]
            per_call.extend(tokens)
            per_turn.append(sum(tokens))
            calls_per_turn.append(len(tokens))
            overhead_ms.append((wall - timers.model) * 1000)
            overhead_cpu_ms.append((cpu - timers.model_cpu) * 1000)
            retrieval_ms.append(timers.retrieval * 1000)
            retrieval_cpu_ms.append(timers.retrieval_cpu * 1000)
            embedding_ms.append(timers.embedding * 1000)

    try:
        converse_turns(["*kb-mode"], load_questions(limit))
        converse_turns([], CONVERSE[:limit] if limit else CONVERSE)
    finally:
        server.terminate()
        server.wait(timeout=10)

    def stats(values: list[float]) -> dict[str, float]:
        return {"p50": round(percentile(values, 0.5), 1), "p95": round(percentile(values, 0.95), 1),
                "mean": round(statistics.mean(values), 1)}

    mean_turn = statistics.mean(per_turn)
    return {
        "tokenizer": encoder()[0],
        "bundle_tokens": bundle_tokens,
        "model_turns": len(per_turn),
        "model_calls": len(per_call),
        "calls_per_turn_mean": round(statistics.mean(calls_per_turn), 2),
        "prompt_tokens_per_call": {"mean": round(statistics.mean(per_call)), "p50": percentile(per_call, 0.5),
                                   "p95": percentile(per_call, 0.95), "max": max(per_call)},
        "prompt_tokens_per_turn": {"mean": round(mean_turn), "p50": percentile(per_turn, 0.5),
                                   "p95": percentile(per_turn, 0.95), "max": max(per_turn)},
        "share_of_bundle_per_turn": round(mean_turn / bundle_tokens, 3),
        "share_of_bundle_per_call": round(statistics.mean(per_call) / bundle_tokens, 3),
        "overhead_ms_per_turn": stats(overhead_ms),
        "overhead_cpu_ms_per_turn": stats(overhead_cpu_ms),
        "retrieval_ms_per_turn": stats(retrieval_ms),
        "overhead_without_retrieval_ms": stats([o - r for o, r in zip(overhead_ms, retrieval_ms, strict=True)]),
        "retrieval_cpu_ms_per_turn": stats(retrieval_cpu_ms),
        "embedding_wait_ms_per_turn": stats(embedding_ms),
        "overhead_without_models_ms": stats([o - e for o, e in zip(overhead_ms, embedding_ms, strict=True)]),
        "overhead_cpu_without_retrieval_ms": stats([o - r for o, r in zip(overhead_cpu_ms, retrieval_cpu_ms, strict=True)]),
        "load_average": os.getloadavg()[0],
    }


def recording_proxy_class() -> type:
    """``RecordingProxy`` from this script's checkout (the measured code may predate it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("measure_recording", SCRIPT_ROOT / "tests" / "support" / "llm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the module runs
    spec.loader.exec_module(module)
    return module.RecordingProxy


FALLBACK_MARK = "The model endpoint did not answer ("


def run_endpoint(home: Path, endpoint: str, model: str, limit: int | None) -> dict:
    """Turns against a real server: latency per turn, tokens per call, fallbacks."""
    from agent.llm.tokens import count_request, encoder
    from agent.session import Engine

    with recording_proxy_class()(endpoint) as proxy:
        os.environ.update(OPENAI_API_KEY=os.environ.get("OPENAI_API_KEY") or "local-model", OPENAI_BASE_URL=proxy.url,
                          STREAMING_ENGINEER_MODEL=model)
        os.environ.pop("AZURE_OPENAI_API_KEY", None)
        engine = Engine(home=home)
        turns: list[dict] = []

        def conversation(opening: list[str], questions: list[str]) -> None:
            thread = uuid.uuid4().hex[:10]
            for line in ["", *opening]:
                engine.turn(thread, line)
            for question in questions:
                seen = len(proxy.calls)
                start = time.perf_counter()
                output = engine.turn(thread, question).output
                seconds = time.perf_counter() - start
                calls = proxy.calls[seen:]
                if not calls:
                    continue
                reason = output.split(FALLBACK_MARK, 1)[1].split(")", 1)[0] if FALLBACK_MARK in output else ""
                turns.append({"question": question, "seconds": round(seconds, 2), "fallback": reason, "calls": [
                    {"prompt_tokens": count_request(c.body.get("messages") or [], c.body.get("tools")),
                     "completion_tokens": (c.usage or {}).get("completion_tokens") or c.chunks,
                     "seconds": round(c.seconds, 2), "stream": bool(c.body.get("stream")),
                     "max_tokens": c.body.get("max_tokens") or c.body.get("max_completion_tokens"),
                     "tools": bool(c.body.get("tools")), "finish": c.finish_reason, "closed_by_app": c.client_closed}
                    for c in calls]})
                print(f"  {seconds:6.1f} s  {len(calls)} call(s)  {reason or 'answered'}  — {question[:60]}",
                      file=sys.stderr, flush=True)

        conversation(["*kb-mode"], load_questions(limit))
        conversation([], CONVERSE[:limit] if limit else CONVERSE)
        # Calls still running when the run ended (a server that went on after the app gave up) are not waited for.
    seconds = [t["seconds"] for t in turns]
    calls = [c for t in turns for c in t["calls"]]
    prompt = [c["prompt_tokens"] for c in calls]
    completion = [c["completion_tokens"] for c in calls]

    def stats(values: list[float]) -> dict[str, float]:
        return {"p50": round(percentile(values, 0.5), 1), "p95": round(percentile(values, 0.95), 1),
                "max": round(max(values), 1), "mean": round(statistics.mean(values), 1)}

    return {
        "tokenizer": encoder()[0], "endpoint": endpoint, "model": model, "model_turns": len(turns),
        "model_calls": len(calls), "turn_seconds": stats(seconds),
        "prompt_tokens_per_call": stats(prompt), "completion_tokens_per_call": stats(completion),
        "calls_per_turn_mean": round(len(calls) / max(1, len(turns)), 2),
        "fallbacks": [t["fallback"] for t in turns if t["fallback"]],
        "streamed_calls": sum(c["stream"] for c in calls), "limited_calls": sum(bool(c["max_tokens"]) for c in calls),
        "turns": turns, "load_average": os.getloadavg()[0],
    }


def print_endpoint(report: dict) -> None:
    """The endpoint measurement, readable."""
    seconds, prompt, completion = (report["turn_seconds"], report["prompt_tokens_per_call"],
                                   report["completion_tokens_per_call"])
    print(f"{report['model']} at {report['endpoint']}: {report['model_turns']} model turns, "
          f"{report['model_calls']} calls ({report['calls_per_turn_mean']} per turn); "
          f"{report['streamed_calls']} streamed, {report['limited_calls']} with an output limit")
    print(f"latency per turn: p50 {seconds['p50']} s, p95 {seconds['p95']} s, max {seconds['max']} s")
    print(f"prompt tokens per call ({report['tokenizer']}): mean {prompt['mean']}, p50 {prompt['p50']}, "
          f"p95 {prompt['p95']}")
    print(f"completion tokens per call: mean {completion['mean']}, p50 {completion['p50']}, "
          f"p95 {completion['p95']}, max {completion['max']}")
    reasons = report["fallbacks"]
    print(f"turns answered offline after a model failure: {len(reasons)}"
          + (f" ({'; '.join(sorted(set(reasons)))})" if reasons else "")
          + f" (load average {report['load_average']:.1f})")


def measure_disconnect(endpoint: str, model: str, tokens: int = 1500) -> dict:
    """Whether the server stops generating when the client goes away: a tiny request's latency after each case.

    A long generation (``tokens`` output tokens asked for) is started and abandoned twice: streamed and
    closed after 20 tokens, and not streamed and given up after 3 s (a client timeout). Right after each, a
    tiny request is timed: if the server went on with the abandoned generation, the tiny one waits for it.
    """
    import httpx

    url = f"{endpoint.rstrip('/')}/chat/completions"
    long = {"model": model, "temperature": 0, "max_tokens": tokens,
            "messages": [{"role": "user", "content": "Count from 1 to 5000, one number per line."}]}
    tiny = {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "Say OK."}]}

    def tiny_seconds() -> float:
        start = time.perf_counter()
        httpx.post(url, json=tiny, timeout=900).raise_for_status()
        return round(time.perf_counter() - start, 2)

    idle = tiny_seconds()
    start = time.perf_counter()
    events = 0
    with httpx.stream("POST", url, json={**long, "stream": True}, timeout=900) as response:
        for line in response.iter_lines():
            events += line.startswith("data: {")
            if events >= 20:
                break
    streamed_rate = 20 / (time.perf_counter() - start)
    after_stream_closed = tiny_seconds()
    try:
        httpx.post(url, json=long, timeout=3)
    except httpx.TimeoutException:
        pass
    after_plain_timeout = tiny_seconds()
    return {"tiny_request_idle_s": idle, "tokens_per_s_streamed": round(streamed_rate, 1),
            "tiny_request_after_stream_closed_s": after_stream_closed,
            "tiny_request_after_plain_request_timed_out_s": after_plain_timeout, "long_request_max_tokens": tokens}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="app home with the index (default $STREAMING_ENGINEER_HOME or ~/.streaming-engineer)")
    parser.add_argument("--limit", type=int, help="only the first N questions of each conversation")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--endpoint", metavar="URL", help="measure this OpenAI-compatible server (e.g. a local model)")
    parser.add_argument("--model", default="local-model", help="the model name sent to --endpoint")
    parser.add_argument("--app-root", metavar="DIR", help="measure the code of this checkout (default: this one)")
    parser.add_argument("--disconnect", action="store_true",
                        help="with --endpoint: only check whether the server stops generating when the client goes away")
    args = parser.parse_args()
    from agent.context import default_home

    home = Path(args.home).expanduser() if args.home else default_home()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.endpoint and args.disconnect:
        print(json.dumps(measure_disconnect(args.endpoint, args.model), indent=2))
        return 0
    if args.endpoint:
        report = run_endpoint(home, args.endpoint, args.model, args.limit)
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            print_endpoint(report)
        return 0
    report = run(home, args.limit)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    per_turn, per_call = report["prompt_tokens_per_turn"], report["prompt_tokens_per_call"]
    print(f"tokenizer: {report['tokenizer']}; whole bundle: {report['bundle_tokens']} tokens")
    print(f"{report['model_turns']} model turns, {report['model_calls']} model calls "
          f"({report['calls_per_turn_mean']} per turn)")
    print(f"prompt tokens per turn: mean {per_turn['mean']}, p50 {per_turn['p50']}, p95 {per_turn['p95']}, "
          f"max {per_turn['max']} = {report['share_of_bundle_per_turn']:.1%} of the whole bundle (target <= 20%)")
    print(f"prompt tokens per call: mean {per_call['mean']}, p95 {per_call['p95']}, max {per_call['max']} "
          f"= {report['share_of_bundle_per_call']:.1%} of the whole bundle")
    overhead, cpu, retrieval, rest = (report["overhead_ms_per_turn"], report["overhead_cpu_ms_per_turn"],
                                      report["retrieval_ms_per_turn"], report["overhead_without_retrieval_ms"])
    print(f"agent overhead per model turn, excluding model time (target <= 20 ms): wall p50 {overhead['p50']} ms, "
          f"p95 {overhead['p95']} ms; CPU p50 {cpu['p50']} ms, p95 {cpu['p95']} ms")
    rest_cpu, retrieval_cpu = report["overhead_cpu_without_retrieval_ms"], report["retrieval_cpu_ms_per_turn"]
    print(f"  of which retrieval (query embedding, BM25, relevance gate): wall p50 {retrieval['p50']} ms, "
          f"CPU p50 {retrieval_cpu['p50']} ms")
    waited, own = report["embedding_wait_ms_per_turn"], report["overhead_without_models_ms"]
    print(f"  of which waiting for the query embedding (e5 inference, started when the turn starts): "
          f"p50 {waited['p50']} ms, p95 {waited['p95']} ms")
    print(f"agent's own overhead, excluding both models' inference (chat model and query embedding): "
          f"wall p50 {own['p50']} ms, p95 {own['p95']} ms, mean {own['mean']} ms")
    print(f"  the rest (graph, checkpoints, prompt, tools): wall p50 {rest['p50']} ms, p95 {rest['p95']} ms; "
          f"CPU p50 {rest_cpu['p50']} ms, p95 {rest_cpu['p95']} ms (load average {report['load_average']:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
