"""Keeping produced documents within the broker's message limit.

The input models bound every string and list that reaches an output (cxstream/models/limits.py),
and the encoders list at most MAX_LISTED_FAULTS alarm ids and MAX_LISTED_REASONS reasons, so a
document built from model-valid input is far below MAX_MESSAGE_BYTES (a trigger or a score at
every bound is about 250 KB). :func:`shrink_strings` is the last resort for state that did not
come through those models (say, restored from a changelog written before the bounds existed):
it cuts overlong strings of the listed entries so the message still fits.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..models.limits import MAX_ID_LENGTH, MAX_LISTED_FAULTS, MAX_LISTED_REASONS, MAX_MESSAGE_BYTES, MAX_TEXT_LENGTH

__all__ = ["capped", "capped_reasons", "capped_faults", "shrink_strings", "too_large", "MAX_MESSAGE_BYTES"]

T = TypeVar("T")


def capped(items: list[T], limit: int) -> list[T]:
    """``items`` itself when it is short enough (no copy on the hot path), else its first ``limit``."""
    return items if len(items) <= limit else items[:limit]


def capped_reasons(reasons: list[dict]) -> list[dict]:
    return capped(reasons, MAX_LISTED_REASONS)


def capped_faults(faults: list[str]) -> list[str]:
    return capped(faults, MAX_LISTED_FAULTS)


def _cut(text: Any, limit: int) -> Any:
    return text[: limit - 1] + "…" if isinstance(text, str) and len(text) > limit else text


def shrink_strings(data: dict, faults_key: str, segment: bool = True) -> None:
    """Cut, in place, the strings of ``data`` that the input bounds would have kept short:
    reason codes, the alarm ids under ``faults_key`` and the segment."""
    data["reasons"] = [{**reason, "code": _cut(reason.get("code"), MAX_TEXT_LENGTH)} for reason in data["reasons"]]
    data[faults_key] = [_cut(alarm_id, MAX_ID_LENGTH) for alarm_id in data[faults_key]]
    if segment and "segment" in data:
        data["segment"] = _cut(data["segment"], MAX_TEXT_LENGTH)


def too_large(what: str, size: int) -> ValueError:
    return ValueError(f"{what} is {size:,} bytes even with its lists and strings cut, "
                      f"more than the limit of {MAX_MESSAGE_BYTES:,} (MAX_MESSAGE_BYTES)")
