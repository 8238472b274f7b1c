"""Stream health diagnosis from StreamingQueryProgress events.

Read progress (``progress``), judge it (``detect``), draw it (``charts``) and
write it up (``report``). ``streaming-engineer diagnose`` (``cli``) and the
``*backpressure-tune`` / ``*latency-slo`` / ``*state-store`` commands
(``artifacts``) are the two ways in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tools.diagnose.detect import Diagnosis, Finding, Settings, diagnose_batches
from tools.diagnose.progress import ProgressError, ProgressLog, discover, load, parse_text
from tools.diagnose.slo import SloThresholds

__all__ = [
    "Diagnosis", "FileDiagnosis", "Finding", "ProgressError", "ProgressLog", "Settings", "SloThresholds",
    "chart_file_name", "diagnose_file", "diagnose_log", "diagnose_text", "discover", "parse_duration_ms",
]

_UNITS_MS = {"ms": 1, "millisecond": 1, "milliseconds": 1, "s": 1000, "sec": 1000, "secs": 1000, "second": 1000,
             "seconds": 1000, "m": 60000, "min": 60000, "mins": 60000, "minute": 60000, "minutes": 60000,
             "h": 3600000, "hour": 3600000, "hours": 3600000, "秒": 1000, "分钟": 60000, "小时": 3600000}


@dataclass
class FileDiagnosis:
    """Every query's diagnosis from one progress file."""

    path: str
    log: ProgressLog
    diagnoses: list[Diagnosis]


def parse_duration_ms(text: str | None) -> float | None:
    """``"1 minute"``, ``"500 ms"``, ``"30s"``, ``"2.5 seconds"`` → milliseconds; ``None`` for no text.

    Raises:
        ValueError: for text that is not a duration.

    """
    if text is None or not str(text).strip():
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z\u4e00-\u9fff]*)\s*$", str(text))
    unit = (match.group(2).lower() or "s") if match else ""
    if not match or unit not in _UNITS_MS:
        raise ValueError(f"not a duration: {text!r} (e.g. '1 minute', '30 seconds', '500 ms')")
    return float(match.group(1)) * _UNITS_MS[unit]


def diagnose_log(log: ProgressLog, settings: Settings | None = None) -> list[Diagnosis]:
    """Diagnose every query of a progress log."""
    return [diagnose_batches(query, batches, settings) for query, batches in log.queries.items()]


def diagnose_file(path: Path | str, settings: Settings | None = None) -> FileDiagnosis:
    """Read and diagnose one progress file.

    Raises:
        ProgressError: when the file holds no readable progress.

    """
    log = load(path)
    return FileDiagnosis(str(path), log, diagnose_log(log, settings))


def diagnose_text(text: str, name: str = "<text>", settings: Settings | None = None) -> FileDiagnosis:
    """Diagnose progress given as text (an upload's content)."""
    log = parse_text(text, name)
    return FileDiagnosis(name, log, diagnose_log(log, settings))


def chart_file_name(prefix: str, query: str, chart: str) -> str:
    """A file name for one chart: ``<prefix>-<query>-<chart>.png``, lower-case and path-safe."""
    safe_query = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:40] or "query"
    return f"{prefix}-{safe_query}-{chart}.png"
