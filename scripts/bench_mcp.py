"""Tool-call latency of ``streaming-engineer mcp`` over stdio, measured with the MCP SDK's own client.

    python scripts/bench_mcp.py [--calls N] [--home DIR] [--json]

Starts the server as an IDE agent does (a subprocess speaking stdio), then
times N calls each of ``check`` on one pipeline file and ``search_knowledge`` (a different query each call), from the
client's side: request out to structured result back. Prints p50/p95/max per tool, and the first call of
each (which pays for imports and the index opening) separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PIPELINE = "pipelines/pyspark/kafka_orders_window_agg.py"
TOPICS = [
    "rows dropped by the watermark", "maxOffsetsPerTrigger", "checkpoint location per query", "Auto Loader schema hints",
    "exactly-once foreachBatch idempotent writes", "state store RocksDB", "水位线 迟到数据", "Event Hubs consumer group",
    "Kinesis enhanced fan-out", "DLT expectations quarantine",
]
ANGLES = ["", "in production", "on Databricks", "best practice", "troubleshooting", "for a new pipeline"]
QUERIES = [f"{topic} {angle}".strip() for angle in ANGLES for topic in TOPICS]
"""Distinct queries: a repeated one would hit the retriever's query-vector cache."""


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


async def measure(calls: int, home: str) -> dict:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, "STREAMING_ENGINEER_HOME": home, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent.cli", "mcp", "--root", str(FIXTURES)],
                                   env=env, cwd=str(ROOT))
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=600) as client:
        connected = time.perf_counter() - started
        results: dict = {"connect_s": round(connected, 3), "calls": calls}
        for tool, arguments in (("check", lambda n: {"paths": [PIPELINE]}),
                                ("search_knowledge", lambda n: {"query": QUERIES[n % len(QUERIES)], "k": 5})):
            times = []
            for n in range(calls + 1):
                t0 = time.perf_counter()
                result = await client.call_tool(tool, arguments(n))
                elapsed = (time.perf_counter() - t0) * 1000
                if result.is_error:
                    raise SystemExit(f"{tool} failed: {result.content[0].text}")
                times.append(elapsed)
            first, rest = times[0], times[1:]
            results[tool] = {"first_ms": round(first, 1), "p50_ms": round(statistics.median(rest), 1),
                             "p95_ms": round(percentile(rest, 0.95), 1), "max_ms": round(max(rest), 1)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=len(QUERIES) - 1, help="timed calls per tool, after one untimed first call")
    parser.add_argument("--home", default=os.environ.get("STREAMING_ENGINEER_HOME") or str(Path.home() / ".streaming-engineer"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(measure(args.calls, args.home))
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"stdio MCP server, {args.calls} calls per tool (connect: {results['connect_s']} s)")
    for tool in ("check", "search_knowledge"):
        r = results[tool]
        print(f"  {tool:17s} p50 {r['p50_ms']:7.1f} ms   p95 {r['p95_ms']:7.1f} ms   max {r['max_ms']:7.1f} ms"
              f"   (first call {r['first_ms']:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
