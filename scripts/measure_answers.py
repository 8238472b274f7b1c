"""Measure how the offline kb answers lead: key facts first, all key facts present.

For every answerable question of the knowledge eval set it retrieves and
composes the answer exactly as kb-mode does (hybrid search, k=5, then
:func:`knowledge.answer.compose_answer`) and states:

* **first sentence** - share of answers whose first sentence (as the eval
  reads it, :func:`evals.runner.first_sentence`) holds a labelled key fact;
* **all key facts** - share of answers that contain every labelled key fact;

overall, per language, and per half of a fixed split of the questions: a
``dev`` half (look at its misses while improving the composer) and a
``holdout`` half (do not look; it tells whether an improvement generalises).
The split is by a hash of the question id, so it is stable and does not
depend on the order of the file. Unanswerable questions must still be
declined.

Usage::

    python scripts/measure_answers.py                  # numbers only
    python scripts/measure_answers.py --show dev       # plus the dev half's misses
    python scripts/measure_answers.py --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from evals.runner import first_sentence  # noqa: E402
from knowledge.answer import compose_answer  # noqa: E402
from knowledge.retrieval import Retriever  # noqa: E402

KB_MODE_K = 5
"""Hits kb-mode composes from (agent/nodes/kb.py)."""


def half(question_id: str) -> str:
    """``dev`` or ``holdout``: a stable split by a hash of the id."""
    return "dev" if hashlib.sha256(question_id.encode("utf-8")).digest()[0] % 2 == 0 else "holdout"


def measure(dataset: Path, home: Path, pack: Path) -> dict[str, Any]:
    """Compose every question's answer and score it; returns per-question rows and the summaries."""
    data = yaml.safe_load(dataset.read_text(encoding="utf-8"))
    retriever = Retriever(home=home, pack_dir=pack)
    rows = []
    for item in data["questions"]:
        answer = compose_answer(item["question"], retriever.search(item["question"], k=KB_MODE_K))
        facts = [str(f) for f in item.get("key_facts", [])]
        lowered, lead = answer.text.lower(), first_sentence(answer.text)
        rows.append({
            "id": item["id"], "lang": item["lang"], "half": half(item["id"]),
            "kind": _kind(item["question"]),
            "first": any(f.lower() in lead.lower() for f in facts),
            "all": all(f.lower() in lowered for f in facts),
            "missing": [f for f in facts if f.lower() not in lowered],
            "lead": lead[:200], "facts": facts,
        })
    declined = [not compose_answer(q["question"], retriever.search(q["question"], k=KB_MODE_K)).found
                for q in data.get("unanswerable", [])]

    def summary(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return {"n": len(selected),
                "first_sentence_fact": statistics.mean(r["first"] for r in selected) if selected else None,
                "key_facts": statistics.mean(r["all"] for r in selected) if selected else None}

    groups = {"all": rows}
    for key in ("half", "lang"):
        for value in sorted({r[key] for r in rows}):
            groups[value] = [r for r in rows if r[key] == value]
    return {"groups": {name: summary(sel) for name, sel in groups.items()},
            "declined": f"{sum(declined)}/{len(declined)}", "rows": rows}


def _kind(question: str) -> str:
    from knowledge.answer import classify_question

    return classify_question(question)


def main(argv: list[str] | None = None) -> int:
    """Print the table (and, asked for, the misses of one half)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "evals" / "datasets" / "kb_questions.yaml")
    parser.add_argument("--pack", type=Path, default=ROOT / "knowledge" / "pack")
    parser.add_argument("--home", type=Path, help="app home with the index (default: a fresh temp home)")
    parser.add_argument("--show", choices=("dev", "holdout", "all"), help="list this half's misses")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    os.environ.pop("CHROMA_URL", None)
    with tempfile.TemporaryDirectory(prefix="se-answers-") as temp:
        home = args.home or Path(temp)
        os.environ["STREAMING_ENGINEER_HOME"] = str(home)
        results = measure(args.dataset, home, args.pack)

    print("| questions | n | first sentence holds a key fact | all key facts |")
    print("|---|---:|---:|---:|")
    for name, row in results["groups"].items():
        print(f"| {name} | {row['n']} | {row['first_sentence_fact']:.3f} | {row['key_facts']:.3f} |")
    print(f"\nUnanswerable questions declined: {results['declined']}")
    if args.show:
        for row in results["rows"]:
            if args.show != "all" and row["half"] != args.show:
                continue
            if not row["first"] or not row["all"]:
                print(f"\n{row['id']} [{row['kind']}] facts={row['facts']} missing={row['missing']}\n  lead: {row['lead']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
