"""Service quality records (topic ``cx.service.quality``): the hot path.

One record is parsed once, straight from its bytes by pydantic-core
(``model_validate_json``: measured faster than ``orjson.loads`` + ``model_validate`` and
it keeps JSON-strict semantics: booleans must be JSON booleans, numbers JSON numbers,
timestamps RFC 3339 strings).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .common import IdStr, Service, Timestamp
from .rejection import InvalidRecord, describe_validation_error

__all__ = ["QualityMetrics", "QualityRecord", "parse_quality", "METRIC_NAMES"]

StrictBool = Annotated[bool, Strict()]


def _number(**bounds: float) -> object:
    return Annotated[float, Strict(), Field(allow_inf_nan=False, **bounds)]


# The metric names of the contract, in its order.
METRIC_NAMES: tuple[str, ...] = (
    "call_dropped",
    "call_setup_failed",
    "mos",
    "latency_ms",
    "jitter_ms",
    "packet_loss_pct",
    "throughput_mbps",
    "video_stall_ratio",
    "message_failed",
)


class QualityMetrics(BaseModel):
    """What was measured. All optional; at least one present; unknown keys ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "anyOf": [{"required": [name]} for name in METRIC_NAMES],
            "description": "At least one known metric must be present (and not null); "
            "unknown metric names are ignored.",
        },
    )

    call_dropped: StrictBool | None = None
    call_setup_failed: StrictBool | None = None
    mos: _number(ge=1, le=5) | None = None  # type: ignore[valid-type]
    latency_ms: _number(ge=0) | None = None  # type: ignore[valid-type]
    jitter_ms: _number(ge=0) | None = None  # type: ignore[valid-type]
    packet_loss_pct: _number(ge=0, le=100) | None = None  # type: ignore[valid-type]
    throughput_mbps: _number(ge=0) | None = None  # type: ignore[valid-type]
    video_stall_ratio: _number(ge=0, le=1) | None = None  # type: ignore[valid-type]
    message_failed: StrictBool | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> QualityMetrics:
        if (
            self.call_dropped is None
            and self.mos is None
            and self.call_setup_failed is None
            and self.latency_ms is None
            and self.jitter_ms is None
            and self.packet_loss_pct is None
            and self.throughput_mbps is None
            and self.video_stall_ratio is None
            and self.message_failed is None
        ):
            raise PydanticCustomError("cx", "must contain at least one of " + ", ".join(METRIC_NAMES))
        return self


assert METRIC_NAMES == tuple(QualityMetrics.model_fields), "METRIC_NAMES must list QualityMetrics' fields"


class QualityRecord(BaseModel):
    """One measurement of one customer's service. Ids are at most MAX_ID_LENGTH (256)
    characters; event_time lies in 1970..9999 after conversion to UTC."""

    model_config = ConfigDict(extra="ignore")

    event_id: IdStr
    customer_id: IdStr
    event_time: Timestamp
    service: Service
    resource_id: IdStr | None = None
    metrics: QualityMetrics


_EXPECTED: dict[str, str] = {
    "service": "one of " + ", ".join(s.value for s in Service),
    "metrics.call_dropped": "a JSON boolean (true or false)",
    "metrics.call_setup_failed": "a JSON boolean (true or false)",
    "metrics.message_failed": "a JSON boolean (true or false)",
    "metrics.mos": "a number between 1 and 5",
    "metrics.latency_ms": "a number of at least 0",
    "metrics.jitter_ms": "a number of at least 0",
    "metrics.packet_loss_pct": "a number between 0 and 100",
    "metrics.throughput_mbps": "a number of at least 0",
    "metrics.video_stall_ratio": "a number between 0 and 1",
}

_validate_json = QualityRecord.model_validate_json


def parse_quality(value: bytes | None) -> QualityRecord:
    """A quality record's Kafka value → :class:`QualityRecord`; raises :class:`InvalidRecord`."""
    if value is None:
        raise InvalidRecord("value is empty (null): a quality record is required")
    try:
        return _validate_json(value)
    except ValidationError as error:
        raise InvalidRecord(describe_validation_error(error, expected=_EXPECTED)) from None
    except (TypeError, ValueError, RecursionError) as error:  # not bytes/str, or a parser limit
        raise InvalidRecord(f"value is not a readable JSON document: {error}") from None
