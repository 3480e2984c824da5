"""Customer records (compacted topic ``cx.customers``) and their tombstones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from .common import NonEmptyStr, Timestamp, ValueTier
from .rejection import InvalidRecord, describe_validation_error, show_value

__all__ = ["CustomerRecord", "CustomerTombstone", "parse_customer"]


def _default_if_null(factory: Callable[[], Any]) -> BeforeValidator:
    """``null`` in the input means the field's default (the contract's defaults apply)."""

    def replace_null(value: Any) -> Any:
        return factory() if value is None else value

    return BeforeValidator(replace_null)


class CustomerRecord(BaseModel):
    """A customer's profile: who they are and which network resources serve them."""

    model_config = ConfigDict(extra="ignore")

    customer_id: NonEmptyStr
    segment: Annotated[str, Strict()] | None = None
    value_tier: Annotated[ValueTier, _default_if_null(lambda: ValueTier.bronze)] = Field(
        default=ValueTier.bronze, json_schema_extra={"description": "Missing or null means bronze."}
    )
    marketing_consent: Annotated[bool, Strict(), _default_if_null(lambda: False)] = Field(
        default=False, json_schema_extra={"description": "Missing or null means false."}
    )
    resources: Annotated[list[NonEmptyStr], _default_if_null(list)] = Field(
        default_factory=list,
        json_schema_extra={"description": "Every network resource that serves the customer; missing or null means none."},
    )
    updated_at: Timestamp | None = None


class CustomerTombstone(BaseModel):
    """A null value keyed by a customer id: erase that customer."""

    customer_id: NonEmptyStr


_EXPECTED: dict[str, str] = {
    "value_tier": "one of " + ", ".join(t.value for t in ValueTier),
    "resources[]": "a non-empty string (a network resource id)",
}

_validate_json = CustomerRecord.model_validate_json


def _decode_key(key: bytes) -> str:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecord("key is not valid UTF-8: a customer record's Kafka key must be its customer_id") from None


def parse_customer(key: bytes | None, value: bytes | None) -> CustomerRecord | CustomerTombstone:
    """A customer topic message → record or tombstone; raises :class:`InvalidRecord`.

    A null value with a key is a tombstone for that key. A key, when present, must equal
    the value's ``customer_id``.
    """
    try:
        if value is None:
            if not key:
                raise InvalidRecord("a tombstone (null value) needs the customer id as its Kafka key")
            return CustomerTombstone(customer_id=_decode_key(key))
        key_text = _decode_key(key) if key else None
        try:
            record = _validate_json(value)
        except ValidationError as error:
            raise InvalidRecord(describe_validation_error(error, expected=_EXPECTED)) from None
        if key_text is not None and key_text != record.customer_id:
            raise InvalidRecord(
                f"customer_id {show_value(record.customer_id)} does not match the Kafka key "
                f"{show_value(key_text)}: a customer record must be keyed by its customer_id"
            )
        return record
    except InvalidRecord:
        raise
    except (TypeError, ValueError, RecursionError) as error:  # not bytes, or a parser limit
        raise InvalidRecord(f"value is not a readable JSON document: {error}") from None
