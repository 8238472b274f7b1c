"""Measure a hostile review (issue #15): ``python scripts/measure_hostile_review.py CHECKLIST|all KB_PER_FILE``.

Twenty uploads of ``KB_PER_FILE`` each, judged by the review tab's own code on a fresh home; prints the
time, the peak RSS and what the review kept (a measurement, never asserted by tests).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from agent.session import Engine
from ui import review

LINE = 'df = spark.readStream.format("kafka").option("subscribe", "t").load()\n'


def main(selection: str, kb_per_file: float) -> None:
    """Run one review of twenty generated PySpark files and print what it cost."""
    engine = Engine(home=Path(tempfile.mkdtemp()))
    source = Path(tempfile.mkdtemp())
    files = []
    for n in range(20):
        path = source / f"big_{n}.py"
        path.write_text(LINE * int(kb_per_file * 1024 / len(LINE)), encoding="utf-8")
        files.append(str(path))
    started = time.monotonic()
    done = review.run_review(engine, "measure", files, selection)
    elapsed = time.monotonic() - started
    workspace = engine.workspace("measure")
    size = (workspace.root / done.report_path).stat().st_size if done.report_path else 0
    print(f"elapsed {elapsed:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"files judged {len(done.saved)}/20, checklists judged {len(done.reports)}, findings {len(done.findings)}, "
          f"report {size} bytes")
    for problem in done.problems[-2:]:
        print(" -", problem[:200])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all", float(sys.argv[2]) if len(sys.argv) > 2 else 1900)
