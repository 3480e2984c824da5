"""Enumerations and time helpers shared by every document of the wire contract."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from enum import Enum
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

from .limits import MAX_EPOCH, MAX_ID_LENGTH, MAX_TIME, MIN_EPOCH, MIN_TIME, TIME_RANGE_TEXT

__all__ = [
    "Severity",
    "Service",
    "ValueTier",
    "Timestamp",
    "TimestampText",
    "RFC3339_PATTERN",
    "NonEmptyStr",
    "IdStr",
    "format_time",
    "parse_time",
]


class Severity(str, Enum):
    """TMF642 ``perceivedSeverity`` (ITU-T X.733)."""

    critical = "critical"
    major = "major"
    minor = "minor"
    warning = "warning"
    indeterminate = "indeterminate"
    cleared = "cleared"


class Service(str, Enum):
    """The service a quality record measures."""

    voice = "voice"
    data = "data"
    video = "video"
    messaging = "messaging"


class ValueTier(str, Enum):
    """A customer's value tier."""

    platinum = "platinum"
    gold = "gold"
    silver = "silver"
    bronze = "bronze"


# A timestamp in an input document: an RFC 3339 *string* with ``Z`` or an offset, in
# 1970..9999 after conversion to UTC (``9999-12-31T23:59:59-23:59`` is valid RFC 3339 but
# year 10000 in UTC: refused). Strict, so a JSON number (epoch seconds) is refused rather
# than guessed at. The range is checked by pydantic-core itself (an instant comparison,
# offsets included), which costs next to nothing on the hot path.
_IN_RANGE = Field(ge=MIN_TIME, le=MAX_TIME)
_TIME_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 with a UTC 'Z' or an offset; after conversion to UTC from "
        "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.",
    }
)
Timestamp = Annotated[AwareDatetime, Strict(), _IN_RANGE, _TIME_SCHEMA]

# An identifier: a non-empty JSON string.
NonEmptyStr = Annotated[str, Strict(), Field(min_length=1)]

# An identifier of the input (event, customer, resource id): a non-empty JSON string of at
# most MAX_ID_LENGTH characters.
IdStr = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_ID_LENGTH)]


def format_time(epoch_seconds: float) -> str:
    """Epoch seconds → RFC 3339 UTC: ``2026-11-22T10:00:05Z``, or ``…05.123Z`` when the
    time has a non-zero millisecond part. Rounded to the millisecond, so deterministic.
    ValueError for a time that is not finite or outside years 1..9999."""
    if not math.isfinite(epoch_seconds):
        raise ValueError(f"not a finite time: {epoch_seconds!r}")
    millis = round(epoch_seconds * 1000)
    seconds, ms = divmod(millis, 1000)
    minute, second = divmod(seconds, 60)
    if minute == _last_minute[0]:  # most times in a flush share their minute: no gmtime
        prefix = _last_minute[1]
    else:
        try:
            t = time.gmtime(minute * 60)
        except (OverflowError, OSError) as error:
            raise ValueError(f"time out of range: {epoch_seconds!r}") from error
        if not 1 <= t.tm_year <= 9999:
            raise ValueError(f"time out of range: {epoch_seconds!r}")
        prefix = "%04d-%02d-%02dT%02d:%02d:" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min)
        _last_minute[:] = [minute, prefix]
    if ms:
        return "%s%02d.%03dZ" % (prefix, second, ms)
    return "%s%02dZ" % (prefix, second)


_last_minute: list = [None, ""]  # the minute format_time formatted last, and its text


RFC3339_PATTERN = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_FRACTION = re.compile(r"\.(\d{1,9})")


def parse_time(text: str) -> float:
    """RFC 3339 with ``Z`` or an offset → epoch seconds. ValueError for a naive or bad one,
    or one outside 1970..9999 after conversion to UTC."""
    if not isinstance(text, str) or RFC3339_PATTERN.fullmatch(text) is None:
        raise ValueError(
            f"not an RFC 3339 timestamp with a UTC 'Z' or an offset: {text!r}"
            if isinstance(text, str)
            else f"not an RFC 3339 timestamp string: {type(text).__name__}"
        )
    normalised = text.upper().replace(" ", "T")
    if normalised.endswith("Z"):
        normalised = normalised[:-1] + "+00:00"
    # datetime takes at most microseconds: trim (not round) longer fractions.
    normalised = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), normalised, count=1)
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError as error:
        raise ValueError(f"not a valid RFC 3339 timestamp: {text!r} ({error})") from None
    if not MIN_TIME <= parsed <= MAX_TIME:
        raise ValueError(f"{text} {TIME_RANGE_TEXT}")
    return parsed.timestamp()


def _rfc3339_text(value: object) -> object:
    if isinstance(value, str) and RFC3339_PATTERN.fullmatch(value) is not None:
        return value
    raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 timestamp string")


# The same as :data:`Timestamp` for documents validated in Python mode (after
# ``orjson.loads``), where a strict datetime would refuse every string.
# (Constraints before the BeforeValidator, so pydantic-core checks them, not a Python function.)
TimestampText = Annotated[AwareDatetime, _IN_RANGE, BeforeValidator(_rfc3339_text), _TIME_SCHEMA]

assert MIN_TIME.timestamp() == MIN_EPOCH and MAX_TIME.timestamp() == MAX_EPOCH
