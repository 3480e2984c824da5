"""A customer's score over the last 24 hours, small enough to keep for every
customer: what the care page draws.

Stored flat as integers ``[minute, score, minute, score, ...]`` (epoch minutes,
score rounded to a whole point). A point is added only when the rounded score
moves; changes within ``STEP_MIN`` minutes of the last point fold into it,
keeping the lowest score (the care agent wants to see the dip, not hide it).
Beyond ``POINTS`` points the two closest in time merge, so a busy day keeps
its shape at a coarser grain; points older than 24 h go. A customer whose
score never left 100 stores nothing; one whose score moved all day stores at
most 24 points: 375 more bytes of state with two incidents (measured); see
docs/fault-impact.md for the memory budget.
"""

from __future__ import annotations

POINTS = 24
STEP_MIN = 5
WINDOW_MIN = 24 * 60


def record(trend: list[int] | None, minute: int, previous: float, score: float) -> list[int] | None:
    """Note ``score`` at ``minute`` (``previous``: the score just before).
    Returns the trend: ``trend`` itself, or a new list when it was None."""
    rounded = int(score + 0.5)
    if not trend:
        before = int(previous + 0.5)
        if rounded == before:
            return trend
        if trend is None:
            return [minute, before, minute, rounded]
        trend.extend((minute, before, minute, rounded))
        return trend
    if minute < trend[-2]:
        return trend  # out of order within the allowed lateness: the chart keeps its order
    if minute - trend[-2] < STEP_MIN:
        if rounded < trend[-1]:
            trend[-1] = rounded
        return trend
    if rounded == trend[-1]:
        return trend
    trend.extend((minute, rounded))
    horizon = minute - WINDOW_MIN
    while len(trend) > 4 and trend[2] < horizon:
        del trend[0:2]  # (the first point left stands for the level at the window's start)
    if len(trend) > 2 * POINTS:
        _merge_closest(trend)
    return trend


def _merge_closest(trend: list[int]) -> None:
    """Merge the two points closest in time (never the newest), keeping the lower score."""
    best, gap = 0, None
    for i in range(0, len(trend) - 4, 2):
        g = trend[i + 2] - trend[i]
        if gap is None or g < gap:
            best, gap = i, g
    trend[best + 1] = min(trend[best + 1], trend[best + 3])
    del trend[best + 2:best + 4]


def points(trend: list[int] | None, since_minute: int) -> list[tuple[int, int]]:
    """(minute, score) pairs from ``since_minute`` on; the one point just before it stands for its start."""
    trend = trend or ()
    pairs = [(trend[i], trend[i + 1]) for i in range(0, len(trend), 2)]
    inside = [p for p in pairs if p[0] >= since_minute]
    before = [p for p in pairs if p[0] < since_minute]
    if before:
        inside.insert(0, (since_minute, before[-1][1]))
    return inside
