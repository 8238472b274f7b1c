"""Issue #2's numbers: cold start to greeting for ``run --script``, and p50/p95 of offline command turns in-process.

    python scripts/bench_commands.py [--threads 60]

Command turns here are the ones that need no retrieval (``*help``, ``*yolo``, a number, ``*exit``,
``*activate``, starting a task and answering its question); ``streaming-engineer bench`` reports every route.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRIPT = ("*help", "*yolo", "*yolo", "3", "*exit", "*activate", "*watermark-lateness", "10 minutes", "*help")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=60)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="se-bench-")
    os.environ["STREAMING_ENGINEER_HOME"] = home
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--script", "-"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(b"*help\n")
    proc.stdin.close()
    proc.stdout.readline()
    cold = time.perf_counter() - start
    proc.wait()
    from agent.session import Engine

    engine = Engine(home=home)
    latencies = []
    for n in range(args.threads):
        for text in SCRIPT:
            began = time.perf_counter()
            engine.turn(f"bench-{n}", text)
            latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
    print(f"cold start to greeting (run --script): {cold:.2f} s")
    print(f"offline command turns: n={len(latencies)} p50 {p50:.1f} ms p95 {p95:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
