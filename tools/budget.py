"""A time budget for one request's work, checked between small units of it.

A review in the web app (or a checklist run in the chat) lints files, extracts
their facts and judges checklist items; any of these can take long on a big
or hostile file. The request sets a budget with :func:`time_budget`; the work
calls :func:`check_time` between its units (a file, a cell, a query, a
checklist item), so it stops soon after the budget runs out instead of when the
unit it is in happens to end. Without a budget, :func:`check_time` does nothing
(``streaming-engineer check`` takes as long as the files need).

The deadline lives in a context variable: each request's thread (and the graph
nodes it runs, which LangGraph starts in a copy of its context) sees its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NOT_CHECKED = "not checked: the time budget of this request ran out"
"""The linter's error for a file it did not get to (or stopped in) because the budget ran out."""
NOT_JUDGED = "not judged: the time budget of this request ran out"
"""The reason of a checklist item left unjudged because the budget ran out."""

_DEADLINE: ContextVar[float | None] = ContextVar("streaming_engineer_deadline", default=None)


class OutOfTime(Exception):
    """The request's time budget ran out before this unit of work."""


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Run the block within ``seconds`` (``None``: no budget of its own); an enclosing budget that ends sooner wins."""
    outer = _DEADLINE.get()
    deadline = outer if seconds is None else time.monotonic() + max(seconds, 0.0)
    if outer is not None and deadline is not None:
        deadline = min(outer, deadline)
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left of the budget (``None`` when none is set)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def out_of_time() -> bool:
    """Whether a budget is set and has run out."""
    deadline = _DEADLINE.get()
    return deadline is not None and time.monotonic() >= deadline


def check_time() -> None:
    """Stop the work here when its budget has run out.

    Raises:
        OutOfTime: when a budget is set and has run out.

    """
    if out_of_time():
        raise OutOfTime


__all__ = ["NOT_CHECKED", "NOT_JUDGED", "OutOfTime", "check_time", "out_of_time", "remaining", "time_budget"]
