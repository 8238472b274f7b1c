"""Small, dependency-free statistics over per-batch series."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; ``None`` for no values."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    rank = (len(data) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return float(data[low] + (data[high] - data[low]) * (rank - low))


def median(values: Sequence[float]) -> float | None:
    """The median; ``None`` for no values."""
    return percentile(values, 50)


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean; ``None`` for no values."""
    return sum(values) / len(values) if values else None


def growth(values: Sequence[float]) -> tuple[float, float]:
    """How a series trends: (mean of the last third / mean of the first third, share of rising steps).

    A series that climbs steadily gives a large ratio *and* a high share; noise
    around a level gives a ratio near 1 and a share near one half. Fewer than
    four points say nothing: ``(1.0, 0.0)``.
    """
    if len(values) < 4:
        return 1.0, 0.0
    third = max(1, len(values) // 3)
    first, last = mean(values[:third]) or 0.0, mean(values[-third:]) or 0.0
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    rising = sum(1 for s in steps if s > 0) / len(steps)
    if first <= 0:
        return (math.inf if last > 0 else 1.0), rising
    return last / first, rising


def human_count(value: float | None) -> str:
    """``1234567`` → ``1.23M``; ``None`` → ``n/a``."""
    if value is None:
        return "n/a"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def human_bytes(value: float | None) -> str:
    """``1536`` → ``1.5 KiB``; ``None`` → ``n/a``."""
    if value is None:
        return "n/a"
    for size, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(value) >= size:
            return f"{value / size:.3g} {suffix}"
    return f"{int(value)} B"


def human_ms(value: float | None) -> str:
    """``1500`` → ``1.5 s``; ``90000`` → ``1.5 min``; ``None`` → ``n/a``."""
    if value is None:
        return "n/a"
    if value >= 60000:
        return f"{value / 60000:.3g} min"
    if value >= 1000:
        return f"{value / 1000:.3g} s"
    return f"{value:.0f} ms"
