"""Latency-SLO thresholds: the pack's latency SLO template, or the team's own rendering of it.

The template (``knowledge/pack/templates/latency-slo-tmpl.yaml``) holds the
SLIs (``sli.pipeline_latency_p95_ms``, ``sli.end_to_end_freshness_p95_min``)
and the alert thresholds (``thresholds.warn`` / ``thresholds.critical``:
``latency_ms``, ``freshness_min``). ``*latency-slo`` renders it with the
team's values; ``diagnose --slo FILE`` reads any file of that shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "knowledge" / "pack" / "templates" / "latency-slo-tmpl.yaml"


@dataclass(frozen=True)
class SloThresholds:
    """The latency and freshness objectives with their alert thresholds.

    Attributes:
        latency_p95_ms: the SLI target for p95 batch latency (trigger execution), in ms.
        freshness_p95_min: the SLI target for p95 end-to-end freshness, in minutes.
        warn_latency_ms: latency that raises a warning.
        critical_latency_ms: latency that pages.
        warn_freshness_min: freshness that raises a warning.
        critical_freshness_min: freshness that pages.
        source: where the values came from (for the report).
    """

    latency_p95_ms: float = 30000
    freshness_p95_min: float = 10
    warn_latency_ms: float = 40000
    critical_latency_ms: float = 60000
    warn_freshness_min: float = 15
    critical_freshness_min: float = 30
    source: str = "built-in defaults"


def _get(data: Any, *keys: str) -> float | None:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    try:
        return float(data) if data is not None and not isinstance(data, bool) else None
    except (TypeError, ValueError):
        return None


def from_text(text: str, source: str) -> SloThresholds:
    """Thresholds from YAML ``text`` shaped like the template; missing values keep the defaults.

    Raises:
        ValueError: when ``text`` is not YAML or holds none of the template's values.

    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not YAML ({exc.__class__.__name__})") from exc
    base = SloThresholds()
    values = {
        "latency_p95_ms": _get(data, "sli", "pipeline_latency_p95_ms"),
        "freshness_p95_min": _get(data, "sli", "end_to_end_freshness_p95_min"),
        "warn_latency_ms": _get(data, "thresholds", "warn", "latency_ms"),
        "critical_latency_ms": _get(data, "thresholds", "critical", "latency_ms"),
        "warn_freshness_min": _get(data, "thresholds", "warn", "freshness_min"),
        "critical_freshness_min": _get(data, "thresholds", "critical", "freshness_min"),
    }
    found = {k: v for k, v in values.items() if v is not None}
    if not found:
        raise ValueError(f"{source}: no latency-SLO values (sli.pipeline_latency_p95_ms, thresholds.warn.latency_ms, ...)")
    return SloThresholds(**{**base.__dict__, **found, "source": source})


def load(path: Path | str | None = None) -> SloThresholds:
    """Thresholds from ``path``, or from the pack's template when no path is given."""
    target = Path(path) if path else TEMPLATE
    if not target.is_file():
        if path:
            raise ValueError(f"{path}: not a file")
        return SloThresholds()
    source = str(path) if path else "knowledge/pack/templates/latency-slo-tmpl.yaml"
    return from_text(target.read_text(encoding="utf-8"), source)
