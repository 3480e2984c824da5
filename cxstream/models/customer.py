"""Customer records (compacted topic ``cx.customers``) and their tombstones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from .common import IdStr, Timestamp, ValueTier
from .limits import MAX_ID_LENGTH, MAX_RESOURCES_PER_CUSTOMER, MAX_TEXT_LENGTH
from .rejection import InvalidRecord, describe_validation_error, show_value

__all__ = ["CustomerRecord", "CustomerTombstone", "parse_customer"]


def _default_if_null(factory: Callable[[], Any]) -> BeforeValidator:
    """``null`` in the input means the field's default (the contract's defaults apply)."""

    def replace_null(value: Any) -> Any:
        return factory() if value is None else value

    return BeforeValidator(replace_null)


class CustomerRecord(BaseModel):
    """A customer's profile: who they are and which network resources serve them.

    Bounds (:mod:`cxstream.models.limits`): ``customer_id`` and each resource id at most
    MAX_ID_LENGTH (256) characters, ``segment`` at most MAX_TEXT_LENGTH (1024), at most
    MAX_RESOURCES_PER_CUSTOMER (64) ``resources``; ``updated_at`` in 1970..9999 (UTC)."""

    model_config = ConfigDict(extra="ignore")

    customer_id: IdStr
    segment: Annotated[str, Strict(), Field(max_length=MAX_TEXT_LENGTH)] | None = None
    value_tier: Annotated[ValueTier, _default_if_null(lambda: ValueTier.bronze)] = Field(
        default=ValueTier.bronze, json_schema_extra={"description": "Missing or null means bronze."}
    )
    marketing_consent: Annotated[bool, Strict(), _default_if_null(lambda: False)] = Field(
        default=False, json_schema_extra={"description": "Missing or null means false."}
    )
    resources: Annotated[list[IdStr], Field(max_length=MAX_RESOURCES_PER_CUSTOMER), _default_if_null(list)] = Field(
        default_factory=list,
        json_schema_extra={
            "description": "Every network resource that serves the customer; missing or null means none. "
            f"At most {MAX_RESOURCES_PER_CUSTOMER} resources of at most {MAX_ID_LENGTH} characters each."
        },
    )
    updated_at: Timestamp | None = None


class CustomerTombstone(BaseModel):
    """A null value keyed by a customer id: erase that customer."""

    customer_id: IdStr


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
            customer_id = _decode_key(key)
            if len(customer_id) > MAX_ID_LENGTH:
                raise InvalidRecord(
                    f"key is {len(customer_id):,} characters, more than the limit of {MAX_ID_LENGTH:,}: "
                    "a tombstone's Kafka key is a customer_id"
                )
            return CustomerTombstone(customer_id=customer_id)
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
