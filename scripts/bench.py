"""Kept for old habits: ``streaming-engineer bench`` is the benchmark now (see ``evals/bench.py``).

    python scripts/bench.py [--json] [--turns N] [--sessions N] [--files N] [--reuse-home]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.bench import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
