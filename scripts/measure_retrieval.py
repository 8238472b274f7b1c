"""Measure the knowledge retrieval: quality, answer key facts, speed and memory.

Builds the index of the whole pack in a fresh temporary home (unless
``--home`` is given), then reports, for dense-only, BM25-only and hybrid
retrieval, English and Chinese questions separately:

* recall@5 - share of questions with at least one labelled source in the top 5;
* MRR@10 - mean reciprocal rank of the first labelled source in the top 10;

and for the offline composer the share of answers containing every labelled
key fact, the share whose first sentence contains one (the answer leads with
the answer), plus the "no answer" behaviour on unanswerable questions. Speed:
index build time for the whole pack (with an empty vector cache, then again
into a new home from the filled cache), cold load (a fresh process: import,
open the index, first query) for an English and a Chinese question, query
p50/p95 (warm), and resident memory.

Usage::

    python scripts/measure_retrieval.py            # fresh build in a temp home
    python scripts/measure_retrieval.py --home DIR # reuse/update an index there
    python scripts/measure_retrieval.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # prove nothing needs the network
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from evals.runner import first_sentence  # noqa: E402
from knowledge.answer import compose_answer  # noqa: E402
from knowledge.index import KnowledgeIndex  # noqa: E402
from knowledge.retrieval import Retriever  # noqa: E402

MODES = ("dense", "bm25", "hybrid")

COLD_SCRIPT = r"""
import json, os, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from knowledge.retrieval import Retriever
t_import = time.perf_counter()
r = Retriever(pack_dir=sys.argv[2])
_ = r.lexical
t_open = time.perf_counter()
hits = r.search(sys.argv[3], k=5)
t_query = time.perf_counter()
rss = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
print(json.dumps({"import_s": t_import - t0, "open_s": t_open - t_import,
                  "first_query_s": t_query - t_open, "total_s": t_query - t0,
                  "rss_mb": rss, "top": hits[0].id if hits else None}))
"""


def matches(hit_id: str, label: str) -> bool:
    """Whether a hit id satisfies a source label (see the dataset header)."""
    if hit_id == label or hit_id.startswith(label + "#"):
        return True
    return "#" in label and hit_id.startswith(label)


def first_rank(ids: list[str], labels: list[str]) -> int | None:
    """1-based rank of the first hit matching any label."""
    for rank, hit_id in enumerate(ids, start=1):
        if any(matches(hit_id, label) for label in labels):
            return rank
    return None


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def validate(dataset: list[dict[str, Any]], retriever: Retriever) -> list[str]:
    """Labels that match no passage, and key facts absent from all labelled passages."""
    passages = retriever.passages()
    problems = []
    for item in dataset:
        labelled = [p for p in passages if any(matches(p.id, s) for s in item["sources"])]
        if not labelled:
            problems.append(f"{item['id']}: no passage matches {item['sources']}")
            continue
        text = " ".join(p.embed_text.lower() for p in labelled)
        for fact in item.get("key_facts", []):
            if str(fact).lower() not in text:
                problems.append(f"{item['id']}: key fact {fact!r} not in its labelled passages")
    return problems


def cold_load(pack: Path, home: Path, query: str) -> dict[str, Any]:
    """Time a fresh process that imports, opens the index and answers one query."""
    env = dict(os.environ, STREAMING_ENGINEER_HOME=str(home))
    out = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(ROOT), str(pack), query],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_ask(question: str) -> dict[str, Any]:
    """Time ``streaming-engineer ask`` in a fresh process, fresh home and empty vector cache (a new user's first ask)."""
    with tempfile.TemporaryDirectory(prefix="se-fresh-") as fresh:
        env = dict(os.environ, STREAMING_ENGINEER_HOME=str(Path(fresh) / "home"),
                   STREAMING_ENGINEER_EMBED_CACHE=str(Path(fresh) / "cache"), PYTHONPATH=str(ROOT))
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "agent.cli", "ask", question, "--json"], capture_output=True,
                             text=True, env=env, cwd=ROOT, check=True)
        seconds = time.perf_counter() - started
        embedded = len(list((Path(fresh) / "cache").rglob("*.npy")))
    return {"seconds": seconds, "passage_vectors_embedded": embedded,
            "cited": [s["id"] for s in json.loads(out.stdout)["sources"]]}


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "evals" / "datasets" / "kb_questions.yaml")
    parser.add_argument("--pack", type=Path, default=ROOT / "knowledge" / "pack")
    parser.add_argument("--home", type=Path, help="index home to reuse (default: a fresh temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--show-misses", action="store_true", help="list questions missed by hybrid")
    args = parser.parse_args(argv)

    os.environ.pop("CHROMA_URL", None)
    temp = None
    if args.home is None:
        temp = tempfile.TemporaryDirectory(prefix="se-measure-")
        home = Path(temp.name)
    else:
        home = args.home
    os.environ["STREAMING_ENGINEER_HOME"] = str(home)
    # A private, empty vector cache, so the build time is a real cold build.
    cache = tempfile.TemporaryDirectory(prefix="se-measure-cache-")
    os.environ["STREAMING_ENGINEER_EMBED_CACHE"] = cache.name

    data = yaml.safe_load(args.dataset.read_text(encoding="utf-8"))
    questions = data["questions"]
    unanswerable = data.get("unanswerable", [])

    started = time.perf_counter()
    report = KnowledgeIndex(home=home, pack_dir=args.pack).sync(progress=True)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="se-measure-home2-") as home2:
        started = time.perf_counter()
        KnowledgeIndex(home=Path(home2), pack_dir=args.pack).sync(progress=False)
        cached_build_s = time.perf_counter() - started

    first_ask = fresh_ask("How do I stop a Kafka stream from taking the whole backlog in one micro-batch after an outage?")
    cold_en = cold_load(args.pack, home, "how do I limit records per batch from kafka")
    cold_zh = cold_load(args.pack, home, "Kafka 每个微批最多读多少条怎么限制？")

    retriever = Retriever(home=home, pack_dir=args.pack)
    retriever.search("warm up", k=5)
    problems = validate(questions, retriever)

    results: dict[str, Any] = {"modes": {}, "misses": []}
    latencies: dict[str, list[float]] = {m: [] for m in MODES}
    for mode in MODES:
        per_lang: dict[str, dict[str, list[float]]] = {}
        for item in questions:
            hits = retriever.search(item["question"], k=10, mode=mode)
            ids = [h.id for h in hits]
            rank = first_rank(ids, item["sources"])
            bucket = per_lang.setdefault(item["lang"], {"recall": [], "rr": []})
            bucket["recall"].append(1.0 if rank is not None and rank <= 5 else 0.0)
            bucket["rr"].append(1.0 / rank if rank else 0.0)
            if mode == "hybrid" and (rank is None or rank > 5):
                results["misses"].append({"id": item["id"], "top": ids[:5]})
        for _ in range(args.repeat):
            for item in questions:
                t = time.perf_counter()
                retriever.search(item["question"], k=5, mode=mode)
                latencies[mode].append((time.perf_counter() - t) * 1000)
        results["modes"][mode] = {
            lang: {
                "n": len(v["recall"]),
                "recall@5": statistics.mean(v["recall"]),
                "mrr@10": statistics.mean(v["rr"]),
            }
            for lang, v in per_lang.items()
        }

    # Offline composed answers: key facts, and "no answer" on off-topic questions.
    fact_ok: dict[str, list[float]] = {}
    fact_share: list[float] = []
    answer_ms: list[float] = []
    answer_lens: list[int] = []
    not_found_answerable = []
    fact_misses = []
    first_ok: dict[str, list[float]] = {}
    lead_misses: list[dict[str, str]] = []
    for item in questions:
        t = time.perf_counter()
        hits = retriever.search(item["question"], k=5)
        answer = compose_answer(item["question"], hits)
        answer_ms.append((time.perf_counter() - t) * 1000)
        body = answer.body.lower()
        facts = [str(f) for f in item.get("key_facts", [])]
        present = [f for f in facts if f.lower() in body]
        ok = len(present) == len(facts)
        lead = first_sentence(answer.body).lower()
        first_ok.setdefault(item["lang"], []).append(1.0 if any(f.lower() in lead for f in facts) else 0.0)
        if not first_ok[item["lang"]][-1]:
            lead_misses.append({"id": item["id"], "first": first_sentence(answer.body)[:160]})
        fact_ok.setdefault(item["lang"], []).append(1.0 if ok else 0.0)
        fact_share.append(len(present) / len(facts) if facts else 1.0)
        answer_lens.append(len(answer.body))
        if not answer.found:
            not_found_answerable.append(item["id"])
        if not ok:
            fact_misses.append({"id": item["id"], "missing": [f for f in facts if f not in present]})
    refused = [
        item["id"] for item in unanswerable if not compose_answer(item["question"], retriever.search(item["question"], k=5)).found
    ]

    all_ok = [v for vs in fact_ok.values() for v in vs]
    results.update(
        {
            "passages": report.total,
            "by_kind": report.by_kind,
            "build_s": build_s,
            "cached_build_s": cached_build_s,
            "embedded": report.embedded,
            "first_ask_fresh_home": first_ask,
            "cold_en": cold_en,
            "cold_zh": cold_zh,
            "latency_ms": {m: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for m, v in latencies.items()},
            "answer_ms": {"p50": percentile(answer_ms, 50), "p95": percentile(answer_ms, 95)},
            "key_facts": {
                "all": statistics.mean(all_ok),
                **{lang: statistics.mean(v) for lang, v in fact_ok.items()},
                "fact_share": statistics.mean(fact_share),
            },
            "first_sentence_fact": {
                "all": statistics.mean([v for vs in first_ok.values() for v in vs]),
                **{lang: statistics.mean(v) for lang, v in first_ok.items()},
            },
            "answer_chars_median": statistics.median(answer_lens),
            "answerable_marked_not_found": not_found_answerable,
            "unanswerable_refused": f"{len(refused)}/{len(unanswerable)}",
            "rss_mb": rss_mb(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "dataset_problems": problems,
            "fact_misses": fact_misses,
            "lead_misses": lead_misses,
        }
    )

    n_en = sum(1 for q in questions if q["lang"] == "en")
    n_zh = sum(1 for q in questions if q["lang"] == "zh")
    print(f"\nDataset: {len(questions)} questions ({n_en} English, {n_zh} Chinese), {len(unanswerable)} unanswerable")
    print(
        f"Index: {report.total} passages {report.by_kind}; build {build_s:.1f} s ({report.embedded} embedded); "
        f"into a new home from the vector cache {cached_build_s:.1f} s\n"
    )
    print("| retrieval | recall@5 EN | MRR@10 EN | recall@5 ZH | MRR@10 ZH | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for mode in MODES:
        m = results["modes"][mode]
        lat = results["latency_ms"][mode]
        en, zh = m.get("en", {}), m.get("zh", {})
        print(
            f"| {mode} | {en.get('recall@5', 0):.3f} | {en.get('mrr@10', 0):.3f} | {zh.get('recall@5', 0):.3f} "
            f"| {zh.get('mrr@10', 0):.3f} | {lat['p50']:.1f} | {lat['p95']:.1f} |"
        )
    kf = results["key_facts"]
    print(
        f"\nOffline answers with all key facts: {kf['all']:.3f} (EN {kf.get('en', 0):.3f}, ZH {kf.get('zh', 0):.3f}); "
        f"mean share of key facts {kf['fact_share']:.3f}; median answer {results['answer_chars_median']:.0f} chars; "
        f"search+compose p50 {results['answer_ms']['p50']:.1f} ms, p95 {results['answer_ms']['p95']:.1f} ms"
    )
    fs = results["first_sentence_fact"]
    print(f"Offline answers whose first sentence holds a key fact: {fs['all']:.3f} "
          f"(EN {fs.get('en', 0):.3f}, ZH {fs.get('zh', 0):.3f})")
    print(
        f"Unanswerable questions answered with 'not found': {results['unanswerable_refused']}; "
        f"answerable questions wrongly 'not found': {len(not_found_answerable)} {not_found_answerable}"
    )
    for label, cold in (("EN", cold_en), ("ZH", cold_zh)):
        print(
            f"Cold load {label} (fresh process): import {cold['import_s']:.2f} s + open index {cold['open_s']:.2f} s "
            f"+ first query {cold['first_query_s']:.2f} s = {cold['total_s']:.2f} s; RSS {cold['rss_mb']:.0f} MB"
        )
    print(f"First `ask` in a fresh home (new process, empty vector cache): {first_ask['seconds']:.1f} s, "
          f"{first_ask['passage_vectors_embedded']} passage vectors embedded")
    print(f"RSS after the run: {results['rss_mb']:.0f} MB (peak {results['peak_rss_mb']:.0f} MB, includes the build)")
    if problems:
        print("\nDataset problems:\n  " + "\n  ".join(problems))
    if args.show_misses:
        print("\nHybrid misses (top 5):")
        for miss in results["misses"]:
            print(f"  {miss['id']}: {miss['top']}")
        print("Key-fact misses:")
        for miss in fact_misses:
            print(f"  {miss['id']}: missing {miss['missing']}")
        print("First sentence without a key fact:")
        for miss in lead_misses:
            print(f"  {miss['id']}: {miss['first']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    if temp is not None:
        temp.cleanup()
    cache.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
