"""The published JSON Schemas in schemas/ are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxstream.models import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
GENERATED = schemas.generate()
EXPECTED_FILES = {
    "alarm-notification.schema.json",
    "quality-record.schema.json",
    "customer-record.schema.json",
    "score.schema.json",
    "trigger-cloudevent.schema.json",
    "deadletter.schema.json",
    "fault-impact.schema.json",
}
REGENERATE = "schemas/ is out of date: run `python -m cxstream.models.schemas` and commit the result"


def test_every_contract_document_has_a_schema() -> None:
    assert set(GENERATED) == EXPECTED_FILES
    assert schemas.SCHEMA_DIR == SCHEMA_DIR


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_schema_file_is_up_to_date(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.is_file(), f"{name} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == schemas.render(GENERATED[name]), f"{name} differs; {REGENERATE}"


def test_no_stale_schema_files() -> None:
    stale = {p.name for p in SCHEMA_DIR.glob("*.json")} - set(GENERATED)
    assert not stale, f"{sorted(stale)} are not generated any more; {REGENERATE}"


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_schema_is_a_2020_12_document(name: str) -> None:
    schema = GENERATED[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:cxstream:schema:")
    assert schema["title"] and schema["description"]
    json.dumps(schema, allow_nan=False)  # plain JSON
    text = json.dumps(schema)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}:
        assert ref in schema.get("$defs", {}), f"{name}: dangling $ref {ref}"


def test_render_format() -> None:
    text = schemas.render({"b": 1, "a": {"d": [1], "c": None}})
    assert text == '{\n  "a": {\n    "c": null,\n    "d": [\n      1\n    ]\n  },\n  "b": 1\n}\n'


def test_write_produces_the_same_files(tmp_path: Path) -> None:
    written = schemas.write(tmp_path)
    assert {p.name for p in written} == EXPECTED_FILES
    for path in written:
        assert path.read_text(encoding="utf-8") == (SCHEMA_DIR / path.name).read_text(encoding="utf-8")


def test_alarm_schema_describes_the_accepted_event_types() -> None:
    from cxstream.models import ACCEPTED_EVENT_TYPES

    text = json.dumps(GENERATED["alarm-notification.schema.json"])
    for event_type in ACCEPTED_EVENT_TYPES:
        assert f'"{event_type}"' in text
    defs = GENERATED["alarm-notification.schema.json"]["$defs"]
    assert defs["ClearAlarms"]["required"] == ["clearedAlarm"]
    assert set(defs["FullAlarm"]["allOf"][1]["required"]) == {"id", "alarmedObject", "perceivedSeverity", "alarmRaisedTime"}


def test_quality_schema_requires_one_metric() -> None:
    metrics = GENERATED["quality-record.schema.json"]["$defs"]["QualityMetrics"]
    assert {tuple(alt["required"]) for alt in metrics["anyOf"]} == {(name,) for name in metrics["properties"]}
