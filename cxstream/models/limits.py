"""Bounds on input and output documents (contract v2, "Bounds").

Every string and list of an input document that grows with input has a bound here;
input beyond one is invalid (dead-lettered) with a reason naming the field and the
bound. Lengths of strings are in characters (Unicode code points), as JSON Schema's
``maxLength`` counts them. The output bounds keep every message cxstream produces
within the broker's default limit.

These are fixed, documented bounds (not configuration). The engine's own bounds
(``CXSTREAM_MAX_RECORD_BYTES``, ``CXSTREAM_MAX_FUTURE_S``, alarms per resource, …)
are in :mod:`cxstream.domain.limits`.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_RESOURCES_PER_CUSTOMER",
    "MAX_RELATED_ALARMS",
    "MAX_CLEARED_ALARMS",
    "MAX_ALARM_PATTERNS",
    "MIN_TIME",
    "MAX_TIME",
    "MIN_EPOCH",
    "MAX_EPOCH",
    "TIME_RANGE_TEXT",
    "MAX_SHOWN_CHARS",
    "MAX_REASON_CHARS",
    "MAX_MESSAGE_BYTES",
    "MAX_LISTED_FAULTS",
    "MAX_LISTED_REASONS",
]

# --------------------------------------------------------------------------- input: strings

#: An identifier: ``event_id``, ``customer_id``, ``resource_id`` (quality), a customer's
#: ``resources[]`` entries, an alarm's ``id``, ``alarmedObject.id``, the ids of
#: ``parentAlarm``/``correlatedAlarm``/``clearedAlarm`` entries, a notification's ``eventId``.
MAX_ID_LENGTH = 256

#: A free string kept by cxstream: a customer's ``segment``; an alarm's ``alarmType``,
#: ``probableCause``, ``specificProblem``, ``alarmedObjectType``,
#: ``alarmedObject.@type`` / ``@referredType``.
MAX_TEXT_LENGTH = 1024

# --------------------------------------------------------------------------- input: lists

#: A customer record's ``resources``: the network resources that serve one customer.
MAX_RESOURCES_PER_CUSTOMER = 64

#: An alarm's ``parentAlarm`` and ``correlatedAlarm`` lists, each.
MAX_RELATED_ALARMS = 64

#: A clear-alarms notification's ``clearedAlarm`` list (alarms cleared by one notification).
MAX_CLEARED_ALARMS = 1000

#: A clear-alarms notification's ``alarmPattern`` list (accepted, never matched).
MAX_ALARM_PATTERNS = 64

# --------------------------------------------------------------------------- input: times

#: Every input time, after conversion to UTC, lies in [MIN_TIME, MAX_TIME]: from the
#: start of 1970 to the last millisecond of 9999 (so it always formats back to RFC 3339).
MIN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
MIN_EPOCH = 0.0
MAX_EPOCH = 253402300799.999
TIME_RANGE_TEXT = "is outside 1970–9999 after conversion to UTC"

# --------------------------------------------------------------------------- reasons

#: How much of an offending input value a rejection reason quotes (then "…").
MAX_SHOWN_CHARS = 60

#: A rejection reason is at most this many characters (then "…"), whatever the input.
MAX_REASON_CHARS = 1000

# --------------------------------------------------------------------------- outputs

#: The broker's default message size limit (``message.max.bytes``, about 1 MB): every
#: message cxstream produces (key and value) stays below it.
MAX_MESSAGE_BYTES = 1_000_000

#: Alarm ids an output lists (a trigger's ``faults``, a score's ``active_faults``).
MAX_LISTED_FAULTS = 100

#: Reasons an output lists: the most the scoring configuration allows (``scoring.reasons``
#: is at most 50).
MAX_LISTED_REASONS = 50
