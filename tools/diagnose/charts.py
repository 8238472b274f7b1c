"""Charts of a diagnosis as PNG bytes: rates, batch duration against the trigger, state.

Matplotlib's object API with the Agg canvas draws without a display and
without pyplot's global figure registry, so charts are safe to render from
the web app's worker threads. Matplotlib is imported only when a chart is
drawn: the text report needs none of it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.diagnose.detect import Diagnosis

INPUT_COLOR, PROCESSED_COLOR, LIMIT_COLOR, STATE_COLOR, MEMORY_COLOR, DROP_COLOR = (
    "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#ff7f0e")


def _figure(title: str):  # -> tuple[Figure, Axes]; matplotlib types stay out of the import path
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title(title, fontsize=11)
    axes.grid(True, alpha=0.3)
    axes.set_xlabel("batch")
    return figure, axes


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    # No "Software" entry: the same diagnosis renders to the same bytes.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def rates_chart(diagnosis: Diagnosis) -> bytes | None:
    """Input rate against processed rate per batch (falling behind shows as the green line below the blue)."""
    points = [(b.batch_id, b.input_rate, b.processed_rate) for b in diagnosis.batches
              if b.input_rate is not None or b.processed_rate is not None]
    if len(points) < 2:
        return None
    figure, axes = _figure(f"{diagnosis.query}: input vs processed rate")
    axes.plot([p[0] for p in points], [p[1] or 0 for p in points], marker="o", ms=3, color=INPUT_COLOR,
              label="inputRowsPerSecond")
    axes.plot([p[0] for p in points], [p[2] or 0 for p in points], marker="o", ms=3, color=PROCESSED_COLOR,
              label="processedRowsPerSecond")
    axes.set_ylabel("rows / s")
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def duration_chart(diagnosis: Diagnosis) -> bytes | None:
    """Batch duration per batch, with the trigger interval and the SLO latency target as lines."""
    points = [(b.batch_id, b.duration_ms) for b in diagnosis.batches if b.duration_ms is not None]
    if len(points) < 2:
        return None
    figure, axes = _figure(f"{diagnosis.query}: batch duration vs trigger")
    axes.bar([p[0] for p in points], [p[1] / 1000 for p in points], color=INPUT_COLOR, alpha=0.7,
             label="triggerExecution")
    if diagnosis.trigger_ms:
        axes.axhline(diagnosis.trigger_ms / 1000, color=LIMIT_COLOR, linestyle="--",
                     label=f"trigger {diagnosis.trigger_ms / 1000:g} s")
    slo = next((c for c in diagnosis.slo if c.unit == "ms"), None)
    if slo and slo.target / 1000 <= 3 * max(p[1] for p in points) / 1000:
        axes.axhline(slo.target / 1000, color=DROP_COLOR, linestyle=":", label=f"SLO p95 {slo.target / 1000:g} s")
    axes.set_ylabel("seconds")
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def state_chart(diagnosis: Diagnosis) -> bytes | None:
    """State rows and state memory per batch, with rows dropped by the watermark."""
    points = [(b.batch_id, b.state_rows, b.state_memory_bytes, b.dropped_by_watermark or 0)
              for b in diagnosis.batches if b.state_rows is not None]
    if len(points) < 2:
        return None
    figure, axes = _figure(f"{diagnosis.query}: state rows and memory")
    ids = [p[0] for p in points]
    axes.plot(ids, [p[1] for p in points], marker="o", ms=3, color=STATE_COLOR, label="state rows")
    if any(p[3] for p in points):
        axes.bar(ids, [p[3] for p in points], color=DROP_COLOR, alpha=0.6, label="dropped by watermark")
    axes.set_ylabel("rows")
    handles, labels = axes.get_legend_handles_labels()
    if any(p[2] is not None for p in points):
        memory = axes.twinx()
        memory.plot(ids, [(p[2] or 0) / (1 << 20) for p in points], color=MEMORY_COLOR, linestyle="--",
                    label="state memory (MiB)")
        memory.set_ylabel("MiB")
        more_handles, more_labels = memory.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    axes.legend(handles, labels, loc="upper left", fontsize=8)
    return _png(figure)


def lag_chart(diagnosis: Diagnosis) -> bytes | None:
    """How far the source is behind its latest data, when it says."""
    points = [(b.batch_id, b.lag) for b in diagnosis.batches if b.lag is not None]
    if len(points) < 2 or not any(p[1] for p in points):
        return None
    unit = next((b.lag_unit for b in reversed(diagnosis.batches) if b.lag_unit), "offsets")
    figure, axes = _figure(f"{diagnosis.query}: source backlog")
    axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, color=LIMIT_COLOR,
              label=f"{unit} behind latest")
    axes.set_ylabel(unit)
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


CHARTS = {"rates": rates_chart, "duration": duration_chart, "state": state_chart, "lag": lag_chart}


def render(diagnosis: Diagnosis) -> dict[str, bytes]:
    """Every chart that the query's progress has data for, by name (rates, duration, state, lag)."""
    charts = {}
    for name, draw in CHARTS.items():
        png = draw(diagnosis)
        if png:
            charts[name] = png
    return charts
