"""Bounds of the input models (contract v2, "Bounds"; cxstream/models/limits.py).

Times must lie in 1970..9999 once converted to UTC; ids, free strings and lists have a
documented bound; input beyond a bound is InvalidRecord with a sentence naming the field
and the bound, and no reason ever echoes a huge input. Property tests drive the three
parsers with input at those edges: a model or InvalidRecord, never another exception, and
every accepted time formats back to RFC 3339.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.models import (
    AlarmNotification,
    CustomerRecord,
    CustomerTombstone,
    InvalidRecord,
    QualityRecord,
    format_time,
    parse_customer,
    parse_fault,
    parse_quality,
    parse_time,
)
from cxstream.models.limits import (
    MAX_ALARM_PATTERNS,
    MAX_CLEARED_ALARMS,
    MAX_EPOCH,
    MAX_ID_LENGTH,
    MAX_REASON_CHARS,
    MAX_RELATED_ALARMS,
    MAX_RESOURCES_PER_CUSTOMER,
    MAX_SHOWN_CHARS,
    MAX_TEXT_LENGTH,
    MAX_TIME,
    MIN_EPOCH,
    MIN_TIME,
)
from cxstream.models.rejection import cap_text

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# No rejection reason quotes this much of one input value.
MAX_ECHO = 200

QUALITY = {"event_id": "q-1", "customer_id": "C1", "event_time": "2026-11-22T10:00:05Z", "service": "voice",
           "resource_id": "CELL-1", "metrics": {"mos": 2.1}}
CUSTOMER = {"customer_id": "C1", "segment": "consumer", "value_tier": "gold", "marketing_consent": True,
            "resources": ["CELL-1"], "updated_at": "2026-11-22T09:00:00Z"}
ALARM = {"id": "ALM-1", "alarmedObject": {"id": "CELL-1", "@referredType": "Cell"}, "perceivedSeverity": "major",
         "alarmRaisedTime": "2026-11-22T10:00:00Z", "alarmType": "communicationsAlarm",
         "probableCause": "lossOfSignal", "specificProblem": "LOS", "correlatedAlarm": [{"id": "ALM-0"}]}


def dumps(doc: Any) -> bytes:
    """JSON bytes (raw UTF-8 or \\u escapes, integers of any size: what producers may send)."""
    ascii_only = len(doc) % 2 == 0 if isinstance(doc, dict) else True
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def quality(**fields: Any) -> bytes:
    return dumps({**QUALITY, **fields})


def customer(**fields: Any) -> bytes:
    return dumps({**CUSTOMER, **fields})


def alarm(**fields: Any) -> bytes:
    return dumps({**ALARM, **fields})


def create(alarm_doc: dict, **envelope: Any) -> bytes:
    return dumps({"eventId": "e1", "eventType": "AlarmCreateEvent", "event": {"alarm": alarm_doc}, **envelope})


def reject(parse, *args) -> str:
    with pytest.raises(InvalidRecord) as caught:
        parse(*args)
    return caught.value.reason


# --------------------------------------------------------------------------- times


def test_the_reported_poison_alarm_is_refused_with_a_sentence_naming_the_field() -> None:
    """Issue 11: this raise time was accepted and later crashed format_time ("time out of range")."""
    reason = reject(parse_fault, alarm(alarmRaisedTime="9999-12-31T23:59:59-23:59"))
    assert reason == "alarmRaisedTime: 9999-12-31T23:59:59-23:59 is outside 1970–9999 after conversion to UTC"
    envelope = create({**ALARM, "alarmRaisedTime": "9999-12-31T23:59:59-23:59"})
    assert reject(parse_fault, envelope).startswith("event.alarm.alarmRaisedTime: 9999-12-31T23:59:59-23:59 is outside")


@pytest.mark.parametrize(
    "text, inside",
    [
        ("1970-01-01T00:00:00Z", True),
        ("1970-01-01T00:00:00-00:01", True),  # 00:01 UTC
        ("1970-01-01T00:00:00+00:01", False),  # 1969-12-31T23:59 UTC
        ("1969-12-31T23:59:59.999999Z", False),
        ("1969-12-31T23:59:59-23:59", True),  # 1970-01-01T23:58:59 UTC
        ("0001-01-01T00:00:00+23:59", False),  # year 0 in UTC
        ("9999-12-31T23:59:59Z", True),
        ("9999-12-31T23:59:59.999Z", True),
        ("9999-12-31T23:59:59.9991Z", False),  # would round to year 10000 when formatted
        ("9999-12-31T23:59:59.999+00:01", True),
        ("9999-12-31T23:59:59-23:59", False),
        ("9999-12-31T00:01:00-23:59", False),  # 10000-01-01T00:00 UTC
        ("9999-12-31T00:00:59.999-23:59", True),
        ("9999-12-31T00:00:00-23:59", True),  # 9999-12-31T23:59 UTC
        ("2026-11-22T10:00:05.123456789+05:30", True),
    ],
)
def test_times_must_lie_in_1970_to_9999_after_conversion_to_utc(text: str, inside: bool) -> None:
    docs = {
        "event_time": (parse_quality, (quality(event_time=text),)),
        "updated_at": (parse_customer, (b"C1", customer(updated_at=text))),
        "alarmRaisedTime": (parse_fault, (alarm(alarmRaisedTime=text),)),
        "alarmChangedTime": (parse_fault, (alarm(alarmChangedTime=text),)),
        "eventTime": (parse_fault, (create(ALARM, eventTime=text),)),
        "event.clearAlarms.alarmClearedTime": (parse_fault, (dumps(
            {"eventType": "ClearAlarmsCreateEvent",
             "event": {"clearAlarms": {"alarmClearedTime": text, "clearedAlarm": [{"id": "A"}]}}}),)),
    }
    for field, (parse, args) in docs.items():
        if inside:
            parse(*args)
        else:
            reason = reject(parse, *args)
            assert reason == f"{field}: {text} is outside 1970–9999 after conversion to UTC", reason
    if inside:
        when = parse_time(text)
        assert MIN_EPOCH <= when <= MAX_EPOCH
        assert format_time(when).endswith("Z")
    else:
        with pytest.raises(ValueError, match="outside 1970–9999 after conversion to UTC"):
            parse_time(text)


def test_the_bounds_are_the_first_and_last_millisecond_of_the_range() -> None:
    assert MIN_TIME == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert MAX_TIME == datetime(10000 - 1, 12, 31, tzinfo=timezone.utc) + timedelta(days=1, milliseconds=-1)
    assert format_time(MIN_EPOCH) == "1970-01-01T00:00:00Z"
    assert format_time(MAX_EPOCH) == "9999-12-31T23:59:59.999Z"


def test_accepted_times_of_every_model_format_back() -> None:
    record = parse_quality(quality(event_time="9999-12-31T00:00:00-23:59"))
    assert format_time(record.event_time.timestamp()) == "9999-12-31T23:59:00Z"
    [change] = parse_fault(alarm(alarmRaisedTime="1969-12-31T23:59:59-23:59")).changes
    assert format_time(change.raised_time.timestamp()) == "1970-01-01T23:58:59Z"


# --------------------------------------------------------------------------- lengths

# (parse, build(value) -> args, field path in the reason, bound)
ID_FIELDS = [
    ("event_id", lambda v: (parse_quality, quality(event_id=v))),
    ("customer_id", lambda v: (parse_quality, quality(customer_id=v))),
    ("resource_id", lambda v: (parse_quality, quality(resource_id=v))),
    ("customer_id", lambda v: (parse_customer, None, customer(customer_id=v))),
    ("resources[1]", lambda v: (parse_customer, None, customer(resources=["R", v]))),
    ("id", lambda v: (parse_fault, alarm(id=v))),
    ("alarmedObject.id", lambda v: (parse_fault, alarm(alarmedObject={"id": v}))),
    ("correlatedAlarm[0].id", lambda v: (parse_fault, alarm(correlatedAlarm=[{"id": v}]))),
    ("parentAlarm[0].id", lambda v: (parse_fault, alarm(parentAlarm=[{"id": v}]))),
    ("eventId", lambda v: (parse_fault, dumps({"eventId": v, "eventType": "AlarmCreateEvent", "event": {"alarm": ALARM}}))),
    ("event.alarm.id", lambda v: (parse_fault, dumps({"eventType": "AlarmStateChangeEvent", "event": {"alarm": {"id": v}}}))),
    ("event.clearAlarms.clearedAlarm[0].id", lambda v: (parse_fault, dumps(
        {"eventType": "ClearAlarmsCreateEvent", "event": {"clearAlarms": {"clearedAlarm": [{"id": v}]}}}))),
]
TEXT_FIELDS = [
    ("segment", lambda v: (parse_customer, None, customer(segment=v))),
    ("alarmType", lambda v: (parse_fault, alarm(alarmType=v))),
    ("probableCause", lambda v: (parse_fault, alarm(probableCause=v))),
    ("specificProblem", lambda v: (parse_fault, alarm(specificProblem=v))),
    ("alarmedObjectType", lambda v: (parse_fault, alarm(alarmedObjectType=v))),
    ("alarmedObject.@type", lambda v: (parse_fault, alarm(alarmedObject={"id": "R", "@type": v}))),
    ("alarmedObject.@referredType", lambda v: (parse_fault, alarm(alarmedObject={"id": "R", "@referredType": v}))),
]


def _call(built: tuple) -> Any:
    parse, *args = built
    return parse(*args)


@pytest.mark.parametrize("field, build", ID_FIELDS + TEXT_FIELDS, ids=[f for f, _ in ID_FIELDS + TEXT_FIELDS])
@pytest.mark.parametrize("char", ["x", "é", "🛰", "\u0001"])
def test_strings_are_bounded_in_characters(field: str, build, char: str) -> None:
    bound = MAX_ID_LENGTH if (field, build) in ID_FIELDS else MAX_TEXT_LENGTH
    _call(build(char * bound))  # at the bound: accepted
    parse, *args = build(char * (bound + 1))
    reason = reject(parse, *args)
    assert reason == f"{field} is {bound + 1:,} characters, more than the limit of {bound:,} characters"


@pytest.mark.parametrize(
    "field, bound, build",
    [
        ("resources", MAX_RESOURCES_PER_CUSTOMER,
         lambda n: (parse_customer, None, customer(resources=[f"R{i}" for i in range(n)]))),
        ("parentAlarm", MAX_RELATED_ALARMS, lambda n: (parse_fault, alarm(parentAlarm=[{"id": f"A{i}"} for i in range(n)]))),
        ("correlatedAlarm", MAX_RELATED_ALARMS,
         lambda n: (parse_fault, alarm(correlatedAlarm=[{"id": f"A{i}"} for i in range(n)]))),
        ("event.clearAlarms.clearedAlarm", MAX_CLEARED_ALARMS, lambda n: (parse_fault, dumps(
            {"eventType": "ClearAlarmsCreateEvent",
             "event": {"clearAlarms": {"clearedAlarm": [{"id": f"A{i}"} for i in range(n)]}}}))),
        ("event.clearAlarm.alarmPattern", MAX_ALARM_PATTERNS, lambda n: (parse_fault, dumps(
            {"eventType": "ClearAlarmCreateEvent",
             "event": {"clearAlarm": {"clearedAlarm": [{"id": "A"}], "alarmPattern": [{}] * n}}}))),
    ],
)
def test_lists_are_bounded(field: str, bound: int, build) -> None:
    _call(build(bound))
    parse, *args = build(bound + 1)
    assert reject(parse, *args) == f"{field} has {bound + 1:,} entries, more than the limit of {bound:,}"


def test_a_customer_at_its_bounds_is_kept_whole() -> None:
    resources = [f"{i:03d}" + "r" * (MAX_ID_LENGTH - 3) for i in range(MAX_RESOURCES_PER_CUSTOMER)]
    record = parse_customer(b"C1", customer(resources=resources, segment="s" * MAX_TEXT_LENGTH))
    assert record.resources == resources and len(record.segment) == MAX_TEXT_LENGTH


def test_a_tombstone_key_longer_than_an_id_is_refused() -> None:
    assert parse_customer(b"k" * MAX_ID_LENGTH, None) == CustomerTombstone(customer_id="k" * MAX_ID_LENGTH)
    assert reject(parse_customer, b"k" * (MAX_ID_LENGTH + 1), None) == (
        f"key is {MAX_ID_LENGTH + 1} characters, more than the limit of {MAX_ID_LENGTH}: "
        "a tombstone's Kafka key is a customer_id")


# --------------------------------------------------------------------------- reasons never echo a huge input


def test_a_reason_quotes_at_most_a_short_prefix_of_a_value() -> None:
    huge = "Z" * 500_000
    for parse, args in [
        (parse_quality, (quality(service=huge),)),
        (parse_quality, (quality(metrics={"mos": huge}),)),
        (parse_customer, (None, customer(value_tier=huge))),
        (parse_customer, (b"C1", customer(customer_id="C2" + "Z" * 200))),
        (parse_fault, (alarm(perceivedSeverity=huge),)),
        (parse_fault, (dumps({"eventType": huge, "event": {}}),)),
        (parse_fault, (dumps({"eventType": "AlarmCreateEvent", "eventTime": huge, "event": {"alarm": ALARM}}),)),
    ]:
        reason = reject(parse, *args)
        assert "Z" * MAX_SHOWN_CHARS not in reason, reason
        assert len(reason) < 400, reason


def test_every_reason_is_capped() -> None:
    assert len(InvalidRecord("x" * 10_000).reason) == MAX_REASON_CHARS
    assert InvalidRecord("x" * 10_000).reason.endswith("…")
    assert InvalidRecord("short").reason == "short"
    assert cap_text("abc", 3) == "abc" and cap_text("abcd", 3) == "ab…"


# --------------------------------------------------------------------------- properties

offsets = st.one_of(st.just("Z"), st.sampled_from(["-23:59", "+23:59", "+00:00", "-00:01", "+00:01"]),
                    st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"),
                              st.integers(0, 23), st.integers(0, 59)))
edge_datetimes = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(1, 1, 2)),
    st.datetimes(datetime(1969, 12, 30), datetime(1970, 1, 2)),
    st.datetimes(datetime(9999, 12, 30), datetime(9999, 12, 31, 23, 59, 59, 999999)),
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)),
)


@st.composite
def edge_times(draw) -> str:
    local = draw(edge_datetimes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    if draw(st.booleans()):
        text += "." + draw(st.text("0123456789", min_size=1, max_size=9))
    return text + draw(offsets)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Three draws in four from ``good``: a record with several fields at their edges is still
    often valid, so both outcomes are exercised."""
    return st.integers(0, 3).flatmap(lambda n: bad if n == 0 else good)


def huge_strings(bound: int) -> st.SearchStrategy[str]:
    near = st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "🛰", "\u0000", '"', "\\", "\ud7ff"]),
                     st.sampled_from([1, bound - 1, bound, bound + 1, 10 * bound]))
    return mostly(st.one_of(st.text(min_size=1, max_size=8), near),
                  st.one_of(st.just(""), st.sampled_from(["Z" * 300_000, "\u0001" * 100_000])))


ids = huge_strings(MAX_ID_LENGTH)
texts = huge_strings(MAX_TEXT_LENGTH)
odd = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
                st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
times_or_odd = mostly(edge_times(), st.one_of(odd, texts))


def sized(strategy, bound: int) -> st.SearchStrategy[list]:
    return st.one_of(st.lists(strategy, max_size=4),
                     st.integers(bound - 1, bound + 1).flatmap(lambda n: st.lists(strategy, min_size=n, max_size=n)),
                     st.just([]))


def check_reason(error: InvalidRecord) -> None:
    reason = error.reason
    assert isinstance(reason, str) and reason
    assert len(reason) <= MAX_REASON_CHARS
    for run in ("Z" * MAX_ECHO, "x" * MAX_ECHO, "é" * MAX_ECHO, "\u0001" * MAX_ECHO):
        assert run not in reason, reason[:300]


def outcome(parse, *args) -> Any:
    try:
        return parse(*args)
    except InvalidRecord as error:
        check_reason(error)
        return None


def assert_time_formats(value: datetime | None) -> None:
    if value is not None:
        assert MIN_TIME <= value <= MAX_TIME
        assert format_time(value.timestamp()).endswith("Z")


quality_docs = st.fixed_dictionaries(
    {"event_id": mostly(ids, odd), "customer_id": ids, "event_time": times_or_odd,
     "service": st.sampled_from(["voice", "data", "video", "messaging"]),
     "metrics": st.fixed_dictionaries({"mos": st.floats(1, 5)})},
    optional={"resource_id": st.one_of(ids, st.none())},
)


@PROPERTY
@given(quality_docs)
def test_quality_records_at_the_edges_are_a_model_or_a_rejection(doc: dict) -> None:
    record = outcome(parse_quality, dumps(doc))
    if record is not None:
        assert isinstance(record, QualityRecord)
        assert len(record.event_id) <= MAX_ID_LENGTH and len(record.customer_id) <= MAX_ID_LENGTH
        assert record.resource_id is None or len(record.resource_id) <= MAX_ID_LENGTH
        assert_time_formats(record.event_time)


customer_docs = st.fixed_dictionaries(
    {"customer_id": ids},
    optional={"segment": st.one_of(texts, st.none()), "resources": mostly(sized(ids, MAX_RESOURCES_PER_CUSTOMER), odd),
              "updated_at": times_or_odd, "value_tier": st.sampled_from(["gold", "bronze", None]),
              "marketing_consent": st.booleans()},
)


@PROPERTY
@given(customer_docs, st.booleans())
def test_customer_records_at_the_edges_are_a_model_or_a_rejection(doc: dict, keyed: bool) -> None:
    key = doc["customer_id"].encode("utf-8", "surrogatepass") if keyed else None
    record = outcome(parse_customer, key, dumps(doc))
    if record is not None:
        assert isinstance(record, CustomerRecord)
        assert len(record.customer_id) <= MAX_ID_LENGTH
        assert record.segment is None or len(record.segment) <= MAX_TEXT_LENGTH
        assert len(record.resources) <= MAX_RESOURCES_PER_CUSTOMER
        assert all(len(r) <= MAX_ID_LENGTH for r in record.resources)
        assert_time_formats(record.updated_at)


refs = st.fixed_dictionaries({}, optional={"id": st.one_of(ids, st.integers(0, 2**63))})
alarm_docs = st.fixed_dictionaries(
    {"id": st.one_of(ids, st.integers(-(2**63), 2**63 - 1)),
     "alarmedObject": st.fixed_dictionaries({"id": ids}, optional={"@type": texts, "@referredType": texts}),
     "perceivedSeverity": st.sampled_from(["major", "CRITICAL", "cleared"]),
     "alarmRaisedTime": times_or_odd},
    optional={"alarmChangedTime": edge_times(), "alarmClearedTime": edge_times(), "alarmType": texts,
              "probableCause": mostly(texts, st.floats(allow_nan=False)), "specificProblem": texts,
              "alarmedObjectType": texts, "parentAlarm": sized(refs, MAX_RELATED_ALARMS),
              "correlatedAlarm": sized(refs, MAX_RELATED_ALARMS), "state": st.sampled_from(["raised", "cleared"])},
)


@st.composite
def fault_docs(draw) -> dict:
    alarm_doc = draw(alarm_docs)
    form = draw(st.sampled_from(["bare", "create", "change", "clear"]))
    if form == "bare":
        return alarm_doc
    if form == "create":
        return {"eventId": draw(st.one_of(ids, st.none())), "eventTime": draw(times_or_odd),
                "eventType": "AlarmCreateEvent", "event": {"alarm": alarm_doc}}
    if form == "change":
        return {"eventType": "AlarmStateChangeEvent", "eventTime": draw(edge_times()),
                "event": {"alarm": {"id": alarm_doc["id"], "alarmClearedTime": draw(times_or_odd)}}}
    cleared = draw(st.one_of(sized(refs, 4), st.integers(MAX_CLEARED_ALARMS, MAX_CLEARED_ALARMS + 1).map(
        lambda n: [{"id": f"A{i}"} for i in range(n)])))
    return {"eventType": "ClearAlarmsCreateEvent", "eventTime": draw(edge_times()),
            "event": {"clearAlarms": {"alarmClearedTime": draw(times_or_odd), "clearedAlarm": cleared,
                                      "alarmPattern": draw(sized(st.just({}), MAX_ALARM_PATTERNS))}}}


@PROPERTY
@given(fault_docs())
def test_faults_at_the_edges_are_a_model_or_a_rejection(doc: dict) -> None:
    notification = outcome(parse_fault, dumps(doc))
    if notification is not None:
        assert isinstance(notification, AlarmNotification)
        assert len(notification.changes) <= MAX_CLEARED_ALARMS
        for change in notification.changes:
            assert len(change.alarm_id) <= MAX_ID_LENGTH
            assert change.resource_id is None or len(change.resource_id) <= MAX_ID_LENGTH
            for text in (change.resource_type, change.alarm_type, change.probable_cause, change.specific_problem):
                assert text is None or len(text) <= MAX_TEXT_LENGTH
            assert len(change.related_alarm_ids) <= 2 * MAX_RELATED_ALARMS
            assert all(len(r) <= MAX_ID_LENGTH for r in change.related_alarm_ids)
            for value in (change.raised_time, change.changed_time, change.cleared_time, change.event_time):
                assert_time_formats(value)


MB = 1_000_000
odd_bytes = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\x00" * MB, b"\x01\x1f" * (MB // 2), b"\xff\xfe" * 4096, b"\xc3" * 10, b"\xed\xa0\x80",
                     b'{"a":' * 3000, b"[" * 100_000, b'"' + b"x" * MB + b'"', b"{}", b"null", b"1e999",
                     b'{"event_time": "9999-12-31T23:59:59-23:59"}', b"\xef\xbb\xbf{}"]),
    quality_docs.map(dumps).map(lambda raw: raw[: len(raw) // 2]),  # cut mid-document
)


@PROPERTY
@given(odd_bytes, st.one_of(st.none(), st.binary(max_size=16), st.just(b"k" * 100_000), st.just(b"\xff\xfe")))
def test_any_bytes_are_a_model_or_a_rejection(value: bytes, key: bytes | None) -> None:
    outcome(parse_quality, value)
    outcome(parse_fault, value)
    outcome(parse_customer, key, value)
    outcome(parse_customer, key, None)
