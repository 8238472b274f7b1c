"""Benchmark the offline engine on this machine (speed is measured here, never asserted by tests).

Reports cold start to greeting for ``run --script`` (a fresh process) and the
p50/p95 of offline turns in-process, per kind of turn.

    python scripts/bench.py [--turns 200] [--json]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cold_start(home: Path, runs: int = 3) -> list[float]:
    times = []
    env = {**os.environ, "STREAMING_ENGINEER_HOME": str(home)}
    env.pop("OPENAI_API_KEY", None)
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--script", "-"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        proc.stdin.write(b"*help\n")
        proc.stdin.close()
        proc.stdout.readline()
        times.append(time.perf_counter() - start)
        proc.wait()
    return times


def turn_latencies(home: Path, turns: int) -> dict[str, list[float]]:
    os.environ["STREAMING_ENGINEER_HOME"] = str(home)
    from agent.session import Engine

    engine = Engine(home=home)
    kinds: dict[str, list[float]] = {"command (*help, *yolo, numbers)": [], "task question answered": [],
                                     "task finished (#yolo: render, check, save)": [], "kb answer": []}
    engine.turn("warm", "*kb-mode")
    engine.turn("warm", "what is a watermark?")  # opens the index once
    n = 0
    while n < turns:
        thread = f"bench-{n}"
        for text, kind in (("*help", "command (*help, *yolo, numbers)"), ("*yolo", "command (*help, *yolo, numbers)"),
                           ("*yolo", "command (*help, *yolo, numbers)"), ("2", "command (*help, *yolo, numbers)"),
                           ("how does maxOffsetsPerTrigger work?", "kb answer"), ("*exit", "command (*help, *yolo, numbers)"),
                           ("*watermark-lateness", "command (*help, *yolo, numbers)"),
                           ("10 minutes", "task question answered"),
                           ("#yolo", "task finished (#yolo: render, check, save)")):
            start = time.perf_counter()
            engine.turn(thread, text)
            kinds[kind].append((time.perf_counter() - start) * 1000)
            n += 1
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=180)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        subprocess.run([sys.executable, "-m", "agent.cli", "index"], cwd=ROOT, check=True,
                       env={**os.environ, "STREAMING_ENGINEER_HOME": str(home)}, capture_output=True)
        cold = cold_start(home)
        kinds = turn_latencies(home, args.turns)
    report = {
        "cold_start_to_greeting_s": {"median": statistics.median(cold), "runs": [round(t, 2) for t in cold]},
        "turn_ms": {k: {"n": len(v), "p50": round(percentile(v, 0.5), 1), "p95": round(percentile(v, 0.95), 1)}
                    for k, v in kinds.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"cold start to greeting (run --script): median {report['cold_start_to_greeting_s']['median']:.2f} s "
              f"over {len(cold)} runs")
        print(f"{'turn kind':48} {'n':>5} {'p50 ms':>8} {'p95 ms':>8}")
        for kind, row in report["turn_ms"].items():
            print(f"{kind:48} {row['n']:>5} {row['p50']:>8} {row['p95']:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
