"""Customer records and tombstones."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from cxstream.models import CustomerRecord, CustomerTombstone, InvalidRecord, ValueTier, parse_customer

EXAMPLE = {
    "customer_id": "C100042",
    "segment": "consumer",
    "value_tier": "gold",
    "marketing_consent": True,
    "resources": ["CELL-0042", "SITE-0007", "OLT-3"],
    "updated_at": "2026-11-22T09:00:00Z",
}


def encode(doc: object) -> bytes:
    return orjson.dumps(doc)


def reason_for(key: bytes | None, value: object) -> str:
    raw = value if isinstance(value, (bytes, type(None))) else encode(value)
    with pytest.raises(InvalidRecord) as caught:
        parse_customer(key, raw)
    assert caught.value.reason == str(caught.value) != ""
    return caught.value.reason


def test_contract_example_parses() -> None:
    record = parse_customer(b"C100042", encode(EXAMPLE))
    assert isinstance(record, CustomerRecord)
    assert record.customer_id == "C100042"
    assert record.segment == "consumer"
    assert record.value_tier is ValueTier.gold
    assert record.marketing_consent is True
    assert record.resources == ["CELL-0042", "SITE-0007", "OLT-3"]
    assert record.updated_at == datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)


def test_record_without_key_is_accepted() -> None:
    assert parse_customer(None, encode(EXAMPLE)).customer_id == "C100042"


def test_only_customer_id_is_required_and_defaults_apply() -> None:
    record = parse_customer(None, b'{"customer_id": "C1"}')
    assert record == CustomerRecord(customer_id="C1")
    assert record.value_tier is ValueTier.bronze
    assert record.marketing_consent is False
    assert record.resources == []
    assert record.segment is None and record.updated_at is None


def test_nulls_mean_the_defaults() -> None:
    doc = {"customer_id": "C1", "value_tier": None, "marketing_consent": None, "resources": None, "segment": None}
    record = parse_customer(b"C1", encode(doc))
    assert record.value_tier is ValueTier.bronze
    assert record.marketing_consent is False
    assert record.resources == []


def test_defaults_are_not_shared_between_records() -> None:
    first = parse_customer(None, b'{"customer_id": "C1"}')
    second = parse_customer(None, b'{"customer_id": "C2", "resources": null}')
    first.resources.append("CELL-1")
    assert second.resources == []


@pytest.mark.parametrize("tier", ["platinum", "gold", "silver", "bronze"])
def test_every_value_tier(tier: str) -> None:
    assert parse_customer(None, encode({"customer_id": "C1", "value_tier": tier})).value_tier.value == tier


def test_unknown_fields_are_ignored() -> None:
    record = parse_customer(None, encode({**EXAMPLE, "email": "x@example.com", "address": {"city": "Lyon"}}))
    assert record.customer_id == "C100042"


def test_tombstone_with_key() -> None:
    result = parse_customer(b"C100042", None)
    assert isinstance(result, CustomerTombstone)
    assert result.customer_id == "C100042"


def test_tombstone_key_is_utf8() -> None:
    assert parse_customer("Cé-1".encode(), None).customer_id == "Cé-1"


@pytest.mark.parametrize("key", [None, b""])
def test_tombstone_without_key_is_invalid(key: bytes | None) -> None:
    assert reason_for(key, None) == "a tombstone (null value) needs the customer id as its Kafka key"


def test_key_must_match_customer_id() -> None:
    reason = reason_for(b"C2", EXAMPLE)
    assert "customer_id 'C100042'" in reason
    assert "Kafka key 'C2'" in reason


@pytest.mark.parametrize("value", [None, encode(EXAMPLE)])
def test_key_not_utf8_is_invalid(value: bytes | None) -> None:
    assert reason_for(b"\xff\xfe", value).startswith("key is not valid UTF-8")


@pytest.mark.parametrize(
    ("doc", "start"),
    [
        ({"segment": "consumer"}, "customer_id is required"),
        ({"customer_id": ""}, "customer_id must not be empty"),
        ({"customer_id": None}, "customer_id must be a string"),
        ({"customer_id": 100042}, "customer_id must be a string (got 100042)"),
        ({"customer_id": "C1", "value_tier": "diamond"}, "value_tier must be one of platinum, gold, silver, bronze (got 'diamond')"),
        ({"customer_id": "C1", "value_tier": "Gold"}, "value_tier must be one of"),
        ({"customer_id": "C1", "marketing_consent": "yes"}, "marketing_consent must be a JSON boolean"),
        ({"customer_id": "C1", "marketing_consent": 1}, "marketing_consent must be a JSON boolean"),
        ({"customer_id": "C1", "resources": "CELL-1"}, "resources must be a list"),
        ({"customer_id": "C1", "resources": ["CELL-1", ""]}, "resources[1] must be a non-empty string"),
        ({"customer_id": "C1", "resources": ["CELL-1", 7]}, "resources[1] must be a non-empty string"),
        ({"customer_id": "C1", "segment": 3}, "segment must be a string"),
        ({"customer_id": "C1", "updated_at": "2026-11-22T09:00:00"}, "updated_at must have a UTC 'Z' or an offset"),
        ({"customer_id": "C1", "updated_at": 1795338000}, "updated_at must be an RFC 3339 timestamp"),
    ],
)
def test_invalid_fields_are_named(doc: dict, start: str) -> None:
    assert reason_for(None, doc).startswith(start)


@pytest.mark.parametrize(
    ("value", "start"),
    [
        (b"", "value is not valid JSON"),
        (b"{customer_id: C1}", "value is not valid JSON"),
        (b"\x80\x81", "value is not valid JSON"),
        (b"[]", "value must be a JSON object"),
        (b'"C1"', "value must be a JSON object"),
    ],
)
def test_unreadable_values(value: bytes, start: str) -> None:
    assert reason_for(b"C1", value).startswith(start)
