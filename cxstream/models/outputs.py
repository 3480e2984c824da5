"""The documents cxstream produces, exactly as the wire contract describes them.

The service encodes plain dicts with orjson for speed; these models exist to generate the
published JSON Schemas and to let tests check what the service produced
(``ScoreDocument.model_validate_json(message_value)``). They are strict and refuse unknown
fields (numbers must be numbers, strings strings), so a document that drifts from the
contract fails loudly.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, WithJsonSchema, model_validator

from .common import NonEmptyStr, ValueTier, parse_time

__all__ = [
    "Reason",
    "Dimensions",
    "ScoreDocument",
    "TriggerData",
    "CloudEvent",
    "DeadLetter",
    "FaultImpact",
    "TRIGGER_TYPE_PREFIX",
    "CLOUDEVENT_CONTENT_TYPE",
]

TRIGGER_TYPE_PREFIX = "io.cxstream.trigger."
# The Kafka header ``content-type`` of a trigger message.
CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"


def _rfc3339(text: str) -> str:
    parse_time(text)  # ValueError names the problem
    return text


Rfc3339 = Annotated[
    str,
    Strict(),
    AfterValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "RFC 3339, UTC 'Z' or an offset."}),
]
Score = Annotated[float, Strict(), Field(ge=0, le=100, allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(_Out):
    """One contribution to a score: negative lowers it."""

    code: NonEmptyStr = Field(description="What contributed, e.g. voice.call_dropped or fault.CELL-0042.")
    impact: Annotated[float, Strict(), Field(allow_inf_nan=False)] = Field(description="Points added to the score (negative lowers it).")


class Dimensions(_Out):
    """Per-dimension experience, each 0–100 (100 the best)."""

    voice: Score
    data: Score
    video: Score
    messaging: Score
    availability: Score


class ScoreDocument(_Out):
    """A value of ``cx.scores`` (key: the customer id)."""

    customer_id: NonEmptyStr
    score: Score = Field(description="0–100, 100 the best experience.")
    previous_score: Score | None
    dimensions: Dimensions
    reasons: list[Reason] = Field(description="Largest contributions, most negative first.")
    active_faults: list[NonEmptyStr] = Field(description="Ids of the alarms impacting the customer now.")
    updated_at: Rfc3339


class TriggerData(_Out):
    """The ``data`` of a trigger CloudEvent."""

    customer_id: NonEmptyStr
    trigger: NonEmptyStr
    channel: Literal["care", "marketing"]
    rule_id: NonEmptyStr
    score: Score
    previous_score: Score | None
    reasons: list[Reason]
    faults: list[NonEmptyStr]
    value_tier: ValueTier
    segment: Annotated[str, Strict()] | None


class CloudEvent(_Out):
    """A value of ``cx.triggers.care`` / ``cx.triggers.marketing``: CloudEvents 1.0, structured mode."""

    specversion: Literal["1.0"]
    id: NonEmptyStr = Field(description="Deterministic for one firing (rule, customer, episode).")
    source: NonEmptyStr = Field(description="Absolute URI naming the deployment, e.g. urn:cxstream:default.")
    type: Annotated[str, Strict(), Field(pattern=r"^io\.cxstream\.trigger\.[A-Za-z0-9_.-]+$")]
    subject: NonEmptyStr
    time: Rfc3339 = Field(description="Event time of the record that caused the firing.")
    datacontenttype: Literal["application/json"]
    partitionkey: NonEmptyStr
    data: TriggerData

    @model_validator(mode="after")
    def _consistent(self) -> CloudEvent:
        problems = []
        if self.type != TRIGGER_TYPE_PREFIX + self.data.trigger:
            problems.append(f"type must be {TRIGGER_TYPE_PREFIX}{self.data.trigger} (got {self.type!r})")
        if self.subject != self.data.customer_id:
            problems.append(f"subject must be the customer id {self.data.customer_id!r} (got {self.subject!r})")
        if self.partitionkey != self.data.customer_id:
            problems.append(
                f"partitionkey must be the customer id {self.data.customer_id!r} (got {self.partitionkey!r})"
            )
        if ":" not in self.source:
            problems.append(f"source must be an absolute URI (got {self.source!r})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DeadLetter(_Out):
    """A value of ``cx.deadletter`` (key: the original key): a rejected input and why.

    It always fits the broker's 1 MB default: a value larger than CXSTREAM_MAX_RECORD_BYTES, or
    one whose dead letter would not fit, is carried truncated to its first 4096 bytes
    (``payload_truncated``, ``payload_bytes``); a key over 1024 bytes likewise (``key_truncated``,
    ``key_bytes``)."""

    source_topic: NonEmptyStr
    partition: Count
    offset: Count
    key: Annotated[str, Strict()] | None = Field(
        description="The original key as text (base64 when it is not UTF-8); its first 1024 bytes when key_truncated."
    )
    key_truncated: Annotated[bool, Strict()] = Field(
        default=False, description="true when key carries only the first 1024 bytes of the original key."
    )
    key_bytes: Count | None = Field(default=None, description="The original key's size in bytes, when key_truncated.")
    error: NonEmptyStr = Field(description="One sentence a person can act on, naming the field (at most 2000 characters).")
    payload: Annotated[str, Strict()] | None = Field(default=None, description="The original value as text, when it is UTF-8.")
    payload_b64: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$")] | None = Field(
        default=None, description="The original value, base64, when it is not UTF-8 (instead of payload)."
    )
    payload_truncated: Annotated[bool, Strict()] = Field(
        default=False,
        description="true when payload (or payload_b64) carries only the first 4096 bytes of the value: the value "
        "was larger than CXSTREAM_MAX_RECORD_BYTES, or its dead letter would not fit the broker's 1 MB limit.",
    )
    payload_bytes: Count | None = Field(
        default=None, description="The original value's size in bytes, when payload_truncated."
    )
    received_at: Rfc3339

    @model_validator(mode="after")
    def _one_payload(self) -> DeadLetter:
        problems = []
        if self.payload is not None and self.payload_b64 is not None:
            problems.append("payload and payload_b64 are exclusive: payload_b64 only when the value is not UTF-8")
        if self.payload_truncated != (self.payload_bytes is not None):
            problems.append("payload_bytes is set exactly when payload_truncated is true")
        if self.payload_truncated and self.payload is None and self.payload_b64 is None:
            problems.append("a truncated payload carries its first bytes in payload or payload_b64")
        if self.key_truncated != (self.key_bytes is not None) or (self.key_truncated and self.key is None):
            problems.append("key_bytes is set exactly when key_truncated is true, and then key is set")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ImpactCounts(_Out):
    """How many customers a fault impacts, in total and by value tier and segment."""

    total: Count
    by_tier: dict[Literal["platinum", "gold", "silver", "bronze"], Count] = Field(
        description="Every tier, zero included.")
    by_segment: dict[str, Count] = Field(description="By customer segment; 'unknown' when a customer has none.")


class FaultImpact(_Out):
    """A value of ``cx.fault_impact`` (key: the alarm id), and of ``GET /faults``: one fault and
    whom it hurts, over every worker's customers."""

    alarm_id: NonEmptyStr
    resource_id: NonEmptyStr
    resource_type: Annotated[str, Strict()] | None
    severity: Literal["critical", "major", "minor", "warning", "indeterminate"]
    raised_at: Rfc3339
    cleared_at: Rfc3339 | None
    active: Annotated[bool, Strict()]
    planned: Annotated[bool, Strict()]
    service_affecting: Annotated[bool, Strict()]
    duration_s: Annotated[float, Strict(), Field(ge=0)] | None = Field(description="Raise to clear, once cleared.")
    impacted: ImpactCounts = Field(description="At the clear, for a cleared fault: its final totals.")
    mean_score: Score | None = Field(description="Mean score of the impacted customers; null when none.")
    updated_at: Rfc3339 = Field(description="Event time of the alarm's latest change.")

    @model_validator(mode="after")
    def _consistent(self) -> FaultImpact:
        if self.active != (self.cleared_at is None):
            raise ValueError("active must be true exactly when cleared_at is null")
        if (self.duration_s is None) != (self.cleared_at is None):
            raise ValueError("duration_s is set exactly when cleared_at is")
        return self
