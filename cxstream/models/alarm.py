"""Network faults (topic ``cx.network.faults``): TMF642 v4 and v5 alarms and notifications.

A value is either a bare TMF642 ``Alarm`` or a notification envelope
``{"eventId", "eventTime", "eventType", "event": {...}}``. :func:`parse_fault` normalises
either into an :class:`AlarmNotification`: one :class:`AlarmChange` per alarm it changes.

The ``*In`` models describe the raw input shapes (TMF642 field names); they validate the
input and are the source of ``schemas/alarm-notification.schema.json``. Unknown fields are
ignored everywhere.

Bounds (:mod:`cxstream.models.limits`): ids (alarm, alarmedObject, related and cleared alarms,
eventId) at most MAX_ID_LENGTH (256) characters; free strings at most MAX_TEXT_LENGTH (1024);
``parentAlarm`` and ``correlatedAlarm`` at most MAX_RELATED_ALARMS (64) entries each,
``clearedAlarm`` at most MAX_CLEARED_ALARMS (1000), ``alarmPattern`` at most
MAX_ALARM_PATTERNS (64); every time in 1970..9999 after conversion to UTC.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from .common import Severity, TimestampText
from .limits import (
    MAX_ALARM_PATTERNS,
    MAX_CLEARED_ALARMS,
    MAX_ID_LENGTH,
    MAX_RELATED_ALARMS,
    MAX_TEXT_LENGTH,
)
from .rejection import InvalidRecord, describe_validation_error, show_value

__all__ = [
    "AlarmChange",
    "AlarmNotification",
    "parse_fault",
    "ALARM_EVENT_TYPES",
    "CLEAR_EVENT_TYPES",
    "ACCEPTED_EVENT_TYPES",
    "BARE_ALARM",
    "AlarmIn",
    "AlarmedObjectIn",
    "AlarmRefIn",
    "ClearAlarmIn",
]

BARE_ALARM = "Alarm"
# eventType → where its payload lives in ``event``.
ALARM_EVENT_TYPES: tuple[str, ...] = (
    "AlarmCreateEvent",
    "AlarmAttributeValueChangeEvent",
    "AlarmStateChangeEvent",
    "AlarmDeleteEvent",
)
CLEAR_EVENT_TYPES: dict[str, str] = {
    "ClearAlarmCreateEvent": "clearAlarm",  # v5
    "ClearAlarmStateChangeEvent": "clearAlarm",  # v5
    "ClearAlarmsCreateEvent": "clearAlarms",  # v4
    "ClearAlarmsStateChangeEvent": "clearAlarms",  # v4
}
ACCEPTED_EVENT_TYPES: tuple[str, ...] = ALARM_EVENT_TYPES + tuple(CLEAR_EVENT_TYPES)
_CANONICAL_EVENT_TYPE = {name.lower(): name for name in ACCEPTED_EVENT_TYPES}
_FULL_FORMS = (BARE_ALARM, "AlarmCreateEvent")
_DELETE = "AlarmDeleteEvent"
# ``@type`` values that name the reference class rather than the resource's type.
_GENERIC_REF_TYPES = frozenset({"alarmedobjectref", "alarmedobject", "resourceref", "entityref", "ref"})


# --------------------------------------------------------------------------- normalisers


def _alarm_id(value: Any) -> Any:
    """TMF642 v4 declares an integer id, v5 a string: both become a string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        if value is None:
            return value  # let the field report it as required/null
        raise PydanticCustomError("cx", "must be a string or an integer (got {shown})", {"shown": show_value(value)})
    if isinstance(value, int):
        return str(value)
    return value


def _required_alarm_id(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("cx", "must be a string or an integer (got null)")
    return _alarm_id(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _planned_indicator(value: Any) -> Any:
    if isinstance(value, str):
        key = value.replace("_", "").replace("-", "").replace(" ", "").lower()
        if key == "inservice":
            return "InService"
        if key == "outofservice":
            return "OutOfService"
    return value


def _case_insensitive(words: list[str], separators: bool = False) -> str:
    """An ECMA-262 pattern matching any of ``words`` in any case (JSON Schema has no ``(?i)``)."""

    def word(text: str) -> str:
        out = ""
        for i, char in enumerate(text):
            if separators and i and char.isupper():
                out += "[-_ ]*"
            out += f"[{char.upper()}{char.lower()}]" if char.isalpha() else char
        return out

    return "^(?:" + "|".join(word(w) for w in words) + ")$"


def _text_schema(description: str, words: list[str], separators: bool = False) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": _case_insensitive(words, separators), "description": description}
    )


_ID_SCHEMA = WithJsonSchema(
    {
        "anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}, {"type": "integer"}],
        "description": "The alarm's id: a string (TMF642 v5) or an integer (v4), normalised to a string.",
    }
)
AlarmId = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH), BeforeValidator(_required_alarm_id), _ID_SCHEMA
]
_OptionalId = Annotated[
    Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None, BeforeValidator(_alarm_id), _ID_SCHEMA
]
# With coerce_numbers_to_str below: numbers become strings.
_FreeText = Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
_RelatedAlarms = Annotated[list["AlarmRefIn"], Field(max_length=MAX_RELATED_ALARMS)]
_SEVERITY_TEXT = "critical, major, minor, warning, indeterminate or cleared; case-insensitive."


# --------------------------------------------------------------------------- raw input shapes


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, populate_by_name=True)


class AlarmRefIn(_In):
    """A reference to another alarm (parentAlarm, correlatedAlarm): {id}. Entries without an id are skipped."""

    id: _OptionalId = None


class AlarmedObjectIn(_In):
    """alarmedObject: the network resource in fault."""

    id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = Field(
        default=None, description="The resource id (cell, site, node, link…) matched against customers' resources."
    )
    referred_type: _FreeText | None = Field(default=None, alias="@referredType")
    type: _FreeText | None = Field(default=None, alias="@type")


class AlarmIn(_In):
    """A TMF642 Alarm as cxstream reads it (v4 or v5). Only id is always required; a bare alarm and the
    alarm of an AlarmCreateEvent also need alarmedObject.id, perceivedSeverity and alarmRaisedTime."""

    model_config = ConfigDict(title="Alarm")

    id: AlarmId
    alarmedObject: AlarmedObjectIn | None = None
    alarmedObjectType: _FreeText | None = None
    perceivedSeverity: Annotated[
        Severity,
        BeforeValidator(_lower),
        _text_schema(_SEVERITY_TEXT, [s.value for s in Severity]),
    ] | None = None
    state: Annotated[
        Literal["raised", "updated", "cleared"],
        BeforeValidator(_lower),
        _text_schema("raised, updated or cleared; case-insensitive.", ["raised", "updated", "cleared"]),
    ] | None = None
    alarmRaisedTime: TimestampText | None = None
    alarmChangedTime: TimestampText | None = None
    alarmClearedTime: TimestampText | None = None
    serviceAffecting: bool | None = Field(default=None, description="Absent means true (cxstream's policy).")
    plannedOutageIndicator: Annotated[
        Literal["InService", "OutOfService"],
        BeforeValidator(_planned_indicator),
        _text_schema(
            "InService or OutOfService (planned work); case, '_', '-' and spaces are not significant.",
            ["InService", "OutOfService"],
            separators=True,
        ),
    ] | None = None
    alarmType: _FreeText | None = Field(
        default=None, validation_alias=AliasChoices("alarmType", "alarmtype", "AlarmType")
    )
    probableCause: _FreeText | None = None
    specificProblem: _FreeText | None = None
    isRootCause: bool | None = None
    parentAlarm: _RelatedAlarms | None = None
    correlatedAlarm: _RelatedAlarms | None = None


class ClearAlarmIn(_In):
    """TMF642 ClearAlarm (v5, event.clearAlarm) / ClearAlarms (v4, event.clearAlarms)."""

    model_config = ConfigDict(title="ClearAlarms")

    alarmClearedTime: TimestampText | None = None
    clearedAlarm: Annotated[list[AlarmIn], Field(max_length=MAX_CLEARED_ALARMS)] | None = Field(
        default=None,
        description="The alarms cleared, by id; at least one is needed (an alarmPattern alone cannot be applied).",
    )
    alarmPattern: Annotated[list[Any], Field(max_length=MAX_ALARM_PATTERNS)] | None = Field(default=None, description="Accepted, not matched: cxstream needs ids.")


class _EnvelopeIn(_In):
    eventId: _OptionalId = None
    eventTime: TimestampText | None = None
    eventType: str
    event: dict[str, Any]


# --------------------------------------------------------------------------- normalised output


class AlarmChange(BaseModel):
    """One alarm's change, normalised from one notification."""

    alarm_id: str
    event_type: str
    full: bool
    clears: bool
    resource_id: str | None = None
    resource_type: str | None = None
    severity: Severity | None = None
    state: str | None = None
    raised_time: AwareDatetime | None = None
    changed_time: AwareDatetime | None = None
    cleared_time: AwareDatetime | None = None
    service_affecting: bool | None = None
    planned: bool | None = None
    alarm_type: str | None = None
    probable_cause: str | None = None
    specific_problem: str | None = None
    is_root_cause: bool | None = None
    related_alarm_ids: tuple[str, ...] = ()
    event_time: AwareDatetime | None = None


class AlarmNotification(BaseModel):
    """One value of the faults topic: the alarms it changes (several for a clear-alarms event)."""

    event_id: str | None
    event_type: str
    changes: list[AlarmChange]


# --------------------------------------------------------------------------- parsing

_EXPECTED: dict[str, str] = {
    "perceivedSeverity": "one of " + ", ".join(s.value for s in Severity) + " (any case)",
    "state": "one of raised, updated, cleared (any case)",
    "plannedOutageIndicator": "InService or OutOfService",
    "serviceAffecting": "a JSON boolean (true or false)",
    "isRootCause": "a JSON boolean (true or false)",
    "parentAlarm": "a list of {id} alarm references",
    "correlatedAlarm": "a list of {id} alarm references",
    "parentAlarm[]": "an {id} alarm reference",
    "correlatedAlarm[]": "an {id} alarm reference",
    "clearedAlarm": "a list of {id} alarm references",
    "clearedAlarm[]": "an {id} alarm reference",
}


def _expected_under(prefix: str) -> dict[str, str]:
    return {f"{prefix}.{path}" if prefix else path: text for path, text in _EXPECTED.items()}


_EXPECTED_BY_PREFIX: dict[str, dict[str, str]] = {}


def _validate(model: type[BaseModel], data: Any, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        expected = _EXPECTED_BY_PREFIX.get(prefix)
        if expected is None:
            expected = _EXPECTED_BY_PREFIX.setdefault(prefix, _expected_under(prefix))
        raise InvalidRecord(describe_validation_error(error, prefix=prefix, expected=expected)) from None


def _resource_type(alarm: AlarmIn) -> str | None:
    obj = alarm.alarmedObject
    if obj is not None:
        if obj.referred_type:
            return obj.referred_type
        if obj.type and obj.type.lower() not in _GENERIC_REF_TYPES:
            return obj.type
    return alarm.alarmedObjectType or None


def _related(alarm: AlarmIn) -> tuple[str, ...]:
    ids: dict[str, None] = {}  # ordered set
    for refs in (alarm.parentAlarm, alarm.correlatedAlarm):
        for ref in refs or ():
            if ref.id and ref.id != alarm.id:
                ids[ref.id] = None
    return tuple(ids)


def _change(
    alarm: AlarmIn,
    event_type: str,
    event_time: Any,
    *,
    clears: bool = False,
    cleared_time: Any = None,
) -> AlarmChange:
    severity = alarm.perceivedSeverity
    planned = alarm.plannedOutageIndicator
    cleared_time = alarm.alarmClearedTime or cleared_time
    return AlarmChange(
        alarm_id=alarm.id,
        event_type=event_type,
        full=event_type in _FULL_FORMS,
        clears=(
            clears
            or event_type == _DELETE
            or alarm.state == "cleared"
            or severity is Severity.cleared
            or cleared_time is not None
        ),
        resource_id=alarm.alarmedObject.id if alarm.alarmedObject is not None else None,
        resource_type=_resource_type(alarm),
        severity=severity,
        state=alarm.state,
        raised_time=alarm.alarmRaisedTime,
        changed_time=alarm.alarmChangedTime,
        cleared_time=cleared_time,
        service_affecting=alarm.serviceAffecting,
        planned=None if planned is None else planned == "OutOfService",
        alarm_type=alarm.alarmType,
        probable_cause=alarm.probableCause,
        specific_problem=alarm.specificProblem,
        is_root_cause=alarm.isRootCause,
        related_alarm_ids=_related(alarm),
        event_time=event_time,
    )


def _require_full(alarm: AlarmIn, prefix: str, form: str) -> None:
    missing = []
    if alarm.alarmedObject is None or alarm.alarmedObject.id is None:
        missing.append("alarmedObject.id")
    if alarm.perceivedSeverity is None:
        missing.append("perceivedSeverity")
    if alarm.alarmRaisedTime is None:
        missing.append("alarmRaisedTime")
    if missing:
        raise InvalidRecord("; ".join(f"{prefix}{name} is required for {form}" for name in missing))


def _event_type_list() -> str:
    return ", ".join(ACCEPTED_EVENT_TYPES)


def _parse_envelope(doc: dict[str, Any]) -> AlarmNotification:
    raw_type = doc.get("eventType")
    if not isinstance(raw_type, str):
        raise InvalidRecord(
            f"eventType must be a string naming a TMF642 alarm notification (got {show_value(raw_type)}); "
            f"expected one of {_event_type_list()}"
        )
    event_type = _CANONICAL_EVENT_TYPE.get(raw_type.lower())
    if event_type is None:
        raise InvalidRecord(
            f"eventType {show_value(raw_type)} is not a TMF642 alarm notification cxstream accepts "
            f"(expected one of {_event_type_list()})"
        )
    if "event" not in doc:
        raise InvalidRecord(f"event is required in a TMF642 notification (eventType {event_type})")
    envelope = _validate(_EnvelopeIn, doc, "")
    event = envelope.event
    event_time = envelope.eventTime

    if event_type in ALARM_EVENT_TYPES:
        if "alarm" not in event or event["alarm"] is None:
            raise InvalidRecord(f"event.alarm is required for {event_type}")
        alarm = _validate(AlarmIn, event["alarm"], "event.alarm")
        if event_type == "AlarmCreateEvent":
            _require_full(alarm, "event.alarm.", event_type)
        changes = [_change(alarm, event_type, event_time)]
        return AlarmNotification(event_id=envelope.eventId, event_type=event_type, changes=changes)

    # Clear-alarms: v5 ``clearAlarm``, v4 ``clearAlarms``; either spelling is read for either.
    key = CLEAR_EVENT_TYPES[event_type]
    other = "clearAlarms" if key == "clearAlarm" else "clearAlarm"
    if event.get(key) is None and event.get(other) is not None:
        key = other
    if event.get(key) is None:
        raise InvalidRecord(f"event.{key} is required for {event_type}")
    prefix = f"event.{key}"
    clear = _validate(ClearAlarmIn, event[key], prefix)
    if not clear.clearedAlarm:
        if clear.alarmPattern:
            raise InvalidRecord(
                f"{prefix}.clearedAlarm names no alarm id, only an alarmPattern: cxstream cannot apply "
                f"a pattern, so this {event_type} cannot be applied; list the cleared alarms by id in clearedAlarm"
            )
        raise InvalidRecord(
            f"{prefix}.clearedAlarm must name at least one cleared alarm by id for {event_type} to be applied"
        )
    changes = []
    seen: set[str] = set()
    for alarm in clear.clearedAlarm:
        if alarm.id in seen:
            continue
        seen.add(alarm.id)
        changes.append(_change(alarm, event_type, event_time, clears=True, cleared_time=clear.alarmClearedTime))
    return AlarmNotification(event_id=envelope.eventId, event_type=event_type, changes=changes)


def _parse_bare(doc: dict[str, Any]) -> AlarmNotification:
    alarm = _validate(AlarmIn, doc, "")
    _require_full(alarm, "", "a bare TMF642 alarm")
    return AlarmNotification(event_id=None, event_type=BARE_ALARM, changes=[_change(alarm, BARE_ALARM, None)])


def parse_fault(value: bytes | None) -> AlarmNotification:
    """A faults topic value → :class:`AlarmNotification`; raises :class:`InvalidRecord`."""
    if value is None:
        raise InvalidRecord("value is empty (null): a TMF642 alarm or notification is required")
    try:
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise InvalidRecord(f"value is not valid JSON: {error}") from None
        if not isinstance(doc, dict):
            raise InvalidRecord(
                f"value must be a JSON object: a TMF642 alarm or notification envelope (got {show_value(doc)})"
            )
        if "eventType" in doc and ("event" in doc or "id" not in doc):
            return _parse_envelope(doc)
        if "event" in doc and "id" not in doc:
            raise InvalidRecord(
                f"eventType is required in a TMF642 notification envelope (expected one of {_event_type_list()})"
            )
        return _parse_bare(doc)
    except InvalidRecord:
        raise
    except (TypeError, ValueError, RecursionError) as error:  # defensive: never any other exception
        raise InvalidRecord(f"value cannot be read as a TMF642 alarm: {error}") from None
