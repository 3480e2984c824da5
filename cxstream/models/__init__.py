"""The documents of the wire contract: inputs parsed from bytes, outputs described exactly.

Every ``parse_*`` function takes Kafka bytes and returns a model or raises
:class:`InvalidRecord`, whose ``reason`` names the field to fix; no other exception escapes.
"""

from .alarm import (
    ACCEPTED_EVENT_TYPES,
    ALARM_EVENT_TYPES,
    BARE_ALARM,
    CLEAR_EVENT_TYPES,
    AlarmChange,
    AlarmNotification,
    parse_fault,
)
from .common import RFC3339_PATTERN, Service, Severity, ValueTier, format_time, parse_time
from .customer import CustomerRecord, CustomerTombstone, parse_customer
from .outputs import (
    CLOUDEVENT_CONTENT_TYPE,
    TRIGGER_TYPE_PREFIX,
    CloudEvent,
    DeadLetter,
    Dimensions,
    Reason,
    ScoreDocument,
    TriggerData,
)
from .quality import METRIC_NAMES, QualityMetrics, QualityRecord, parse_quality
from .rejection import InvalidRecord, describe_validation_error

__all__ = [
    # rejection
    "InvalidRecord",
    "describe_validation_error",
    # common
    "Severity",
    "Service",
    "ValueTier",
    "format_time",
    "parse_time",
    "RFC3339_PATTERN",
    # quality
    "QualityMetrics",
    "QualityRecord",
    "parse_quality",
    "METRIC_NAMES",
    # customer
    "CustomerRecord",
    "CustomerTombstone",
    "parse_customer",
    # alarm
    "AlarmChange",
    "AlarmNotification",
    "parse_fault",
    "ACCEPTED_EVENT_TYPES",
    "ALARM_EVENT_TYPES",
    "CLEAR_EVENT_TYPES",
    "BARE_ALARM",
    # outputs
    "Reason",
    "Dimensions",
    "ScoreDocument",
    "TriggerData",
    "CloudEvent",
    "DeadLetter",
    "TRIGGER_TYPE_PREFIX",
    "CLOUDEVENT_CONTENT_TYPE",
]
