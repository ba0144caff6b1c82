"""A Condition read back into the patient record it shows (the mapping's inverse), for
tests that hold the FHIR answer to the REST one, field for field."""

from datetime import datetime
from typing import Any

SYSTEM = "https://hospital.example.org/fhir/StructureDefinition/"


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _id(reference: dict[str, str], kind: str) -> int:
    found, _, number = reference["reference"].partition("/")
    assert found == kind, reference
    return int(number)


def record_of(condition: dict[str, Any]) -> dict[str, Any]:
    texts: dict[str, Any] = {"observations": None, "treatments": None, "notes": None}
    department = None
    for extension in condition["extension"]:
        name = extension["url"].removeprefix(SYSTEM)
        if name == "record-department":
            department = _id(extension["valueReference"], "Organization")
            continue
        field = name.removeprefix("record-")
        assert field in texts, extension
        if "valueString" in extension:
            texts[field] = extension["valueString"]
        else:
            assert extension["extension"] == [{"url": "empty", "valueBoolean": True}]
            texts[field] = ""
    return {
        "id": int(condition["id"]),
        "patient_id": _id(condition["subject"], "Patient"),
        "department_id": department,
        "author_id": _id(condition["recorder"], "Practitioner"),
        "diagnosis": condition["code"]["text"],
        **texts,
        "version": int(condition["meta"]["versionId"]),
        "created_at": _instant(condition["recordedDate"]),
        "updated_at": _instant(condition["meta"]["lastUpdated"]),
    }


def rest_record(record: dict[str, Any]) -> dict[str, Any]:
    """A REST record with its times parsed (so both sides compare as values)."""
    return {
        **record,
        "created_at": _instant(record["created_at"]),
        "updated_at": _instant(record["updated_at"]),
    }
