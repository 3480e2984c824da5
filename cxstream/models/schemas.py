"""JSON Schemas of the wire contract, generated from the models.

``python -m cxstream.models.schemas`` writes them into ``schemas/`` (sorted keys, 2-space
indent, trailing newline); ``tests/test_schemas.py`` fails when the files drift from
:func:`generate`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .alarm import ALARM_EVENT_TYPES, CLEAR_EVENT_TYPES, AlarmIn, ClearAlarmIn
from .customer import CustomerRecord
from .outputs import CloudEvent, DeadLetter, FaultImpact, ScoreDocument
from .quality import QualityRecord

__all__ = ["generate", "write", "render", "SCHEMA_DIR", "DIALECT"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
CONTRACT_VERSION = 2


def _strip_property_titles(node: Any) -> Any:
    """Drop the titles pydantic derives from field names ("Event Id"): noise for readers."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {
                    name: _strip_property_titles({k: v for k, v in prop.items() if k != "title"})
                    for name, prop in value.items()
                }
            else:
                out[key] = _strip_property_titles(value)
        return out
    if isinstance(node, list):
        return [_strip_property_titles(item) for item in node]
    return node


def _document(name: str, title: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    body = _strip_property_titles(body)
    schema = {
        "$schema": DIALECT,
        "$id": f"urn:cxstream:schema:{name.removesuffix('.schema.json')}:v{CONTRACT_VERSION}",
    }
    schema.update(body)
    schema["title"] = title
    schema["description"] = description
    return schema


def _model(name: str, model: type[BaseModel], title: str, description: str) -> dict[str, Any]:
    return _document(name, title, description, model.model_json_schema(mode="validation"))


def _rename_defs(schema: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Give ``$defs`` the TMF642 names (``AlarmIn`` → ``Alarm``), references included."""
    text = json.dumps(schema)
    for old, new in names.items():
        text = text.replace(f'"#/$defs/{old}"', f'"#/$defs/{new}"')
    renamed = json.loads(text)
    renamed["$defs"] = {names.get(key, key): value for key, value in renamed["$defs"].items()}
    return renamed


def _alarm_schema(name: str) -> dict[str, Any]:
    _, top = models_json_schema(
        [(AlarmIn, "validation"), (ClearAlarmIn, "validation")], ref_template="#/$defs/{model}"
    )
    top = _rename_defs(
        top,
        {"AlarmIn": "Alarm", "AlarmedObjectIn": "AlarmedObject", "AlarmRefIn": "AlarmRef", "ClearAlarmIn": "ClearAlarms"},
    )
    defs: dict[str, Any] = top["$defs"]
    ref = "#/$defs/{}".format

    # An alarm in full (a bare alarm, AlarmCreateEvent): these must be present.
    defs["FullAlarm"] = {
        "description": "A TMF642 Alarm in full: a bare alarm or the alarm of an AlarmCreateEvent.",
        "allOf": [
            {"$ref": ref("Alarm")},
            {
                "required": ["id", "alarmedObject", "perceivedSeverity", "alarmRaisedTime"],
                "properties": {
                    "alarmedObject": {
                        "type": "object",
                        "required": ["id"],
                        "properties": {"id": {"type": "string", "minLength": 1}},
                    },
                    "perceivedSeverity": {"type": "string"},
                    "alarmRaisedTime": {"type": "string"},
                },
            },
        ],
    }
    # A clear-alarms task must name the cleared alarms by id.
    clear = defs["ClearAlarms"]
    clear["required"] = ["clearedAlarm"]
    clear["properties"]["clearedAlarm"] = {
        "type": "array",
        "minItems": 1,
        "items": {"$ref": ref("Alarm")},
        "description": clear["properties"]["clearedAlarm"].get("description", ""),
    }

    envelope_fields = {
        "eventId": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        "eventTime": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    }
    partial_types = [t for t in ALARM_EVENT_TYPES if t != "AlarmCreateEvent"]
    defs["AlarmCreateEvent"] = {
        "type": "object",
        "description": "Alarm raised: event.alarm in full.",
        "required": ["eventType", "event"],
        "properties": {
            **envelope_fields,
            "eventType": {"const": "AlarmCreateEvent"},
            "event": {"type": "object", "required": ["alarm"], "properties": {"alarm": {"$ref": ref("FullAlarm")}}},
        },
    }
    defs["AlarmChangeEvent"] = {
        "type": "object",
        "description": "Attribute change, state change or delete: event.alarm carries what changed "
        "(at least id). A delete clears the alarm.",
        "required": ["eventType", "event"],
        "properties": {
            **envelope_fields,
            "eventType": {"enum": partial_types},
            "event": {"type": "object", "required": ["alarm"], "properties": {"alarm": {"$ref": ref("Alarm")}}},
        },
    }
    defs["ClearAlarmsEvent"] = {
        "type": "object",
        "description": "Clear-alarms task (v5 event.clearAlarm, v4 event.clearAlarms): every alarm its "
        "clearedAlarm list names by id is cleared.",
        "required": ["eventType", "event"],
        "properties": {
            **envelope_fields,
            "eventType": {"enum": list(CLEAR_EVENT_TYPES)},
            "event": {
                "type": "object",
                "anyOf": [{"required": ["clearAlarm"]}, {"required": ["clearAlarms"]}],
                "properties": {
                    "clearAlarm": {"$ref": ref("ClearAlarms")},
                    "clearAlarms": {"$ref": ref("ClearAlarms")},
                },
            },
        },
    }
    body = {
        "$defs": dict(sorted(defs.items())),
        "anyOf": [
            {"$ref": ref("FullAlarm")},
            {"$ref": ref("AlarmCreateEvent")},
            {"$ref": ref("AlarmChangeEvent")},
            {"$ref": ref("ClearAlarmsEvent")},
        ],
    }
    return _document(
        name,
        "TMF642 alarm or notification (cx.network.faults)",
        "A bare TMF642 v4/v5 Alarm, or a notification envelope {eventId, eventTime, eventType, event}. "
        "eventType and perceivedSeverity/state are matched case-insensitively; unknown fields are ignored.",
        body,
    )


def generate() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema, for every document of the wire contract."""
    names = {
        "alarm-notification.schema.json": None,
        "quality-record.schema.json": (
            QualityRecord,
            "Service quality record (cx.service.quality)",
            "One measurement of one customer's service; unknown fields are ignored.",
        ),
        "customer-record.schema.json": (
            CustomerRecord,
            "Customer record (cx.customers)",
            "A customer's profile, keyed by customer_id; a null value (tombstone) erases the customer.",
        ),
        "score.schema.json": (
            ScoreDocument,
            "Score document (cx.scores)",
            "The latest customer experience score of one customer, keyed by customer_id.",
        ),
        "trigger-cloudevent.schema.json": (
            CloudEvent,
            "Trigger CloudEvent (cx.triggers.care, cx.triggers.marketing)",
            "CloudEvents 1.0 structured mode; type is io.cxstream.trigger.<data.trigger>, subject and "
            "partitionkey are data.customer_id.",
        ),
        "fault-impact.schema.json": (
            FaultImpact,
            "Fault impact (cx.fault_impact, GET /faults)",
            "One fault and the customers it impacts, counted over every worker; keyed by alarm id, "
            "written whenever it changes and a last time when the fault clears.",
        ),
        "deadletter.schema.json": (
            DeadLetter,
            "Dead letter (cx.deadletter)",
            "An input that cannot be used, with the reason; payload_b64 instead of payload when the value "
            "is not UTF-8. Under 1 MB always: a value larger than CXSTREAM_MAX_RECORD_BYTES (or one whose "
            "dead letter would not fit) is carried truncated to its first 4096 bytes, with payload_truncated "
            "and payload_bytes.",
        ),
    }
    schemas: dict[str, dict[str, Any]] = {}
    for name, spec in names.items():
        schemas[name] = _alarm_schema(name) if spec is None else _model(name, *spec)
    return schemas


def render(schema: dict[str, Any]) -> str:
    """The file text of one schema: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else SCHEMA_DIR
    for path in write(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
