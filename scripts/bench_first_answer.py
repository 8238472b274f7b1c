"""Time a new user's first kb-mode answer in the web app (measured here, never asserted by tests).

Starts ``streaming-engineer`` (README's first command: the web app) in a fresh
process with a fresh home and an empty vector cache, waits until ``GET /``
serves the page, then at once drives the app's HTTP API as a browser session
does (``/gradio_api/call/send`` with a session hash): ``*kb-mode``, then one
question. Prints, per run, the seconds from launch to the page, and from the
page to the kb answer, plus the load average (the machine may be shared).

    python scripts/bench_first_answer.py [--runs 3] [--question "..."] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_ui import ApiSession, start_app, stop  # noqa: E402

QUESTION = "How do I stop a Kafka stream from taking the whole backlog in one micro-batch after an outage?"


def one_run(question: str) -> dict[str, object]:
    """One fresh launch: seconds to the page, then to the first kb answer."""
    with tempfile.TemporaryDirectory(prefix="se-first-answer-") as temp:
        home, cache = Path(temp) / "home", Path(temp) / "vector-cache"
        os.environ["STREAMING_ENGINEER_EMBED_CACHE"] = str(cache)  # inherited by the app: no earlier vectors
        load_before = os.getloadavg()[0]
        proc, url, page_s = start_app(home)
        try:
            started = time.perf_counter()
            session = ApiSession(url)
            session.predict("*kb-mode", api_name="/send")
            mode_s = time.perf_counter() - started
            reply = session.predict(question, api_name="/send")
            answer_s = time.perf_counter() - started
        finally:
            stop(proc)
        embedded = len(list(cache.rglob("*.npy")))
    return {"page_s": round(page_s, 2), "kb_mode_s": round(mode_s, 2), "first_answer_after_page_s": round(answer_s, 2),
            "passage_vectors_embedded": embedded, "load_before": round(load_before, 2),
            "answer_start": _last_reply(reply)[:120]}


def _last_reply(outputs: list) -> str:
    """The assistant's reply to the last user message in ``/send``'s outputs (the chat history is one of them)."""
    for value in outputs:
        if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
            reply: list[str] = []
            for message in reversed(value):
                if message.get("role") == "user":
                    break
                if (message.get("metadata") or {}).get("title"):
                    continue  # a step of the turn ("route", "answer_kb"), not the reply
                content = message.get("content")
                if isinstance(content, list):  # Gradio 6: a list of parts, text parts as {"type": "text", ...}
                    content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
                reply.insert(0, str(content))
            return " ".join(reply)
    return ""


def main() -> int:
    """Run the launches and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [one_run(args.question) for _ in range(args.runs)]
    summary = {"cpus": os.cpu_count(), "runs": runs,
               "median_first_answer_after_page_s": statistics.median(r["first_answer_after_page_s"] for r in runs)}
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    for number, run in enumerate(runs, start=1):
        print(f"run {number}: page served after {run['page_s']} s; first kb answer {run['first_answer_after_page_s']} s "
              f"after the page (*kb-mode {run['kb_mode_s']} s); {run['passage_vectors_embedded']} passage vectors "
              f"embedded; load average before {run['load_before']}\n  answer: {run['answer_start']!r}")
    print(f"median: first kb answer {summary['median_first_answer_after_page_s']} s after the page was served")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
