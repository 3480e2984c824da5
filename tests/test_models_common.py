"""Enumerations, time helpers and the validation-error wording shared by every model."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from pydantic import BaseModel, Field, ValidationError

from cxstream.models import InvalidRecord, Service, Severity, ValueTier, describe_validation_error, format_time, parse_time

T0 = datetime(2026, 11, 22, 10, 0, 5, tzinfo=timezone.utc).timestamp()


def test_enumerations() -> None:
    assert [s.value for s in Severity] == ["critical", "major", "minor", "warning", "indeterminate", "cleared"]
    assert [s.value for s in Service] == ["voice", "data", "video", "messaging"]
    assert [t.value for t in ValueTier] == ["platinum", "gold", "silver", "bronze"]
    assert Severity("major") == "major"  # str enums compare with their values


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (T0, "2026-11-22T10:00:05Z"),
        (T0 + 0.123, "2026-11-22T10:00:05.123Z"),
        (T0 + 0.5, "2026-11-22T10:00:05.500Z"),
        (T0 + 0.0004, "2026-11-22T10:00:05Z"),
        (T0 + 0.9996, "2026-11-22T10:00:06Z"),
        (0, "1970-01-01T00:00:00Z"),
        (0.001, "1970-01-01T00:00:00.001Z"),
        (-1.5, "1969-12-31T23:59:58.500Z"),
    ],
)
def test_format_time(epoch: float, text: str) -> None:
    assert format_time(epoch) == text


def test_format_time_is_deterministic_and_round_trips() -> None:
    for offset in (0, 0.001, 0.25, 59.999, 86399.5):
        text = format_time(T0 + offset)
        assert format_time(T0 + offset) == text
        assert parse_time(text) == pytest.approx(T0 + offset, abs=0.0005)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e20])
def test_format_time_refuses_non_times(bad: float) -> None:
    with pytest.raises(ValueError):
        format_time(bad)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-11-22T10:00:05Z", T0),
        ("2026-11-22T10:00:05z", T0),
        ("2026-11-22t10:00:05Z", T0),
        ("2026-11-22 10:00:05Z", T0),
        ("2026-11-22T11:00:05+01:00", T0),
        ("2026-11-22T05:30:05-04:30", T0),
        ("2026-11-22T10:00:05.123Z", T0 + 0.123),
        ("2026-11-22T10:00:05.123456789Z", T0 + 0.123456),
        ("2026-11-22T10:00:05.1+00:00", T0 + 0.1),
    ],
)
def test_parse_time(text: str, epoch: float) -> None:
    assert parse_time(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T10:00:05",  # naive
        "2026-11-22",
        "2026-11-22T10:00Z",
        "2026-13-22T10:00:05Z",
        "2026-11-31T10:00:05Z",
        "2026-11-22T25:00:05Z",
        "2026-11-22T10:00:05+0100",
        "2026-W47-7T10:00:05Z",
        "1795341605",
        "",
        "  2026-11-22T10:00:05Z",
        "2026-11-22T10:00:05Z\n",
    ],
)
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_parse_time_refuses_non_strings() -> None:
    with pytest.raises(ValueError):
        parse_time(1795341605)  # type: ignore[arg-type]


class _Sample(BaseModel):
    name: str
    count: int = Field(ge=0)
    items: list[int] = []


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Sample.model_validate(data)
    return caught.value


def test_describe_names_paths_and_joins() -> None:
    reason = describe_validation_error(_error({"count": -1, "items": [1, "x"]}))
    assert reason == "name is required; count must be at least 0 (got -1); items[1] must be an integer (got 'x')"


def test_describe_prefix_and_expectations() -> None:
    reason = describe_validation_error(
        _error({"name": "n", "count": -1}), prefix="event.sample", expected={"event.sample.count": "a count"}
    )
    assert reason == "event.sample.count must be a count (got -1)"


def test_describe_whole_value() -> None:
    assert describe_validation_error(_error([1])) == "value must be a JSON object (got a list)"


def test_describe_limits_the_number_of_problems() -> None:
    with pytest.raises(ValidationError) as caught:
        _Sample.model_validate({"name": "n", "count": 0, "items": ["a"] * 20})
    reason = describe_validation_error(caught.value)
    assert reason.count(";") == 5
    assert reason.endswith("and 15 more problems")


def test_describe_truncates_long_values() -> None:
    reason = describe_validation_error(_error({"name": "n", "count": "x" * 10_000}))
    assert len(reason) < 200


def test_invalid_record_never_has_an_empty_reason() -> None:
    assert InvalidRecord("  ").reason == "record is invalid"
    error = InvalidRecord("a is required")
    assert repr(error) == "InvalidRecord('a is required')"
    assert error.args == ("a is required",)


def test_invalid_record_pickles() -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(InvalidRecord("x must be y")))
    assert isinstance(copy, InvalidRecord) and copy.reason == "x must be y"
