"""Why an input record is rejected.

Every parse function in :mod:`cxstream.models` turns arbitrary bytes into a model or raises
:class:`InvalidRecord`, whose ``reason`` is one sentence a person can act on, naming the field
path in the input (``metrics.mos must be a number between 1 and 5 (got 7.2)``). The reason is
what goes into the dead letter's ``error`` and into the TMF642 listener's 400 answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .limits import MAX_REASON_CHARS, MAX_SHOWN_CHARS, TIME_RANGE_TEXT

__all__ = ["InvalidRecord", "describe_validation_error", "field_path", "show_value", "cap_text"]

# How many problems one reason lists before summarising the rest.
MAX_PROBLEMS = 5

TIMESTAMP_EXPECTATION = "an RFC 3339 timestamp with a UTC 'Z' or an offset, e.g. 2026-11-22T10:00:05Z"


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InvalidRecord(ValueError):
    """A record that cannot be used. ``str(exc) == exc.reason``: one sentence naming the field,
    at most MAX_REASON_CHARS characters (a longer one is cut, ending in "…"), so a reason never
    echoes a huge input."""

    def __init__(self, reason: str):
        reason = cap_text(reason.strip() or "record is invalid", MAX_REASON_CHARS)
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"InvalidRecord({self.reason!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,))


def show_value(value: Any) -> str:
    """Render an offending input value for a reason, JSON-flavoured and bounded in length."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"
    if isinstance(value, str):
        if len(value) > MAX_SHOWN_CHARS:
            return repr(value[: MAX_SHOWN_CHARS - 1] + "…")
        return repr(value)
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    return "a " + type(value).__name__


def field_path(loc: Iterable[str | int], prefix: str = "") -> str:
    """``("metrics", "mos")`` → ``metrics.mos``; list positions as ``resources[2]``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += "." + part
        else:
            path = part
    return path


_INDEX = re.compile(r"\[\d+\]")

# Generic wording by pydantic error type: "<path> <text>".
_GENERIC: dict[str, str] = {
    "bool_type": "must be a JSON boolean (true or false)",
    "bool_parsing": "must be a JSON boolean (true or false)",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_unicode": "must be a string",
    "float_type": "must be a JSON number",
    "float_parsing": "must be a JSON number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "too_short": "must not be empty",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "datetime_type": "must be " + TIMESTAMP_EXPECTATION,
    "datetime_parsing": "must be " + TIMESTAMP_EXPECTATION,
    "datetime_from_date_parsing": "must be " + TIMESTAMP_EXPECTATION,
    "datetime_object_invalid": "must be " + TIMESTAMP_EXPECTATION,
    "timezone_aware": "must have a UTC 'Z' or an offset (RFC 3339, e.g. 2026-11-22T10:00:05Z)",
}


def _generic(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _GENERIC:
        return _GENERIC[kind]
    if kind == "greater_than_equal":
        return f"must be at least {_num(ctx.get('ge'))}"
    if kind == "greater_than":
        return f"must be greater than {_num(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"must be at most {_num(ctx.get('le'))}"
    if kind == "less_than":
        return f"must be less than {_num(ctx.get('lt'))}"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected', '?')}"
    message = str(error.get("msg") or "is invalid")
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return "is invalid: " + message[:1].lower() + message[1:]


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _count(value: Any) -> str:
    """A size or a bound: ``1,024``."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def describe_validation_error(
    error: ValidationError,
    *,
    prefix: str = "",
    expected: Mapping[str, str] | None = None,
) -> str:
    """Turn a pydantic ValidationError into one reason: problems joined with ``'; '``.

    ``prefix`` is prepended to every field path (``event.alarm``). ``expected`` maps a field
    path without list positions (``metrics.mos``, ``resources[]``) to what the field must be
    (``a number between 1 and 5``), for wording better than the generic one. Errors raised
    with ``PydanticCustomError("cx", "...")`` carry their own wording after the path.
    """
    problems: list[str] = []
    for detail in error.errors(include_url=False):
        problem = _problem(detail, prefix, expected)
        if problem not in problems:
            problems.append(problem)
    if not problems:  # pragma: no cover - pydantic never raises an empty error
        return f"{prefix or 'value'} is invalid"
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"and {len(problems) - MAX_PROBLEMS} more problems")
    return "; ".join(shown)


def _problem(detail: ErrorDetails, prefix: str, expected: Mapping[str, str] | None) -> str:
    kind = detail["type"]
    loc = detail["loc"]
    path = field_path(loc, prefix) or "value"
    if kind == "json_invalid":
        ctx = detail.get("ctx") or {}
        return f"value is not valid JSON: {ctx.get('error', detail['msg'])}"
    if kind == "missing":
        return f"{path} is required"
    value = detail.get("input")
    ctx = detail.get("ctx") or {}
    if kind == "string_too_long":  # a bound of cxstream.models.limits: say the size, not the value
        size = f"{len(value):,} characters" if isinstance(value, str) else "too long"
        return f"{path} is {size}, more than the limit of {_count(ctx.get('max_length'))} characters"
    if kind == "too_long":
        actual = ctx.get("actual_length")
        what = f"has {actual:,} entries" if isinstance(actual, int) else "has too many entries"
        return f"{path} {what}, more than the limit of {_count(ctx.get('max_length'))}"
    if kind in ("greater_than_equal", "less_than_equal") and isinstance(value, str):
        # a time outside the calendar range (limits.MIN_TIME..MAX_TIME): the only bounded
        # field whose input is a string (pydantic renders the bound itself as text)
        return f"{path}: {cap_text(value, MAX_SHOWN_CHARS)} {TIME_RANGE_TEXT}"
    got = f" (got {show_value(value)})"
    if kind == "cx":  # our own sentence tail, already complete
        return f"{path} {detail['msg']}"
    if kind in ("value_error", "assertion_error"):  # raised by a validator: its message is the sentence
        message = str(detail["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if not loc:
            return message
        shown = not isinstance(value, (Mapping, list, tuple)) and show_value(value) not in message
        return f"{path} is invalid: {message}" + (got if shown else "")
    if expected:
        wanted = expected.get(_INDEX.sub("[]", path))
        if wanted is not None and kind not in ("model_type", "dict_type"):
            return f"{path} must be {wanted}{got}"
    return f"{path} {_generic(detail)}{got}"
