"""A patient record (records.repository.FIELDS) as a FHIR Condition, losing nothing: the
diagnosis is its `code.text`, the clinical texts and the department are extensions, the
version and times are its meta and `recordedDate`."""

from typing import Any

from app.fhir.systems import Systems

# The record's texts beside the diagnosis, each an extension named record-<field>.
TEXTS = ("observations", "treatments", "notes")
DEPARTMENT = "record-department"
# An empty text (FHIR strings are never empty): the extension holds this one instead.
EMPTY = {"url": "empty", "valueBoolean": True}


def condition(row: dict[str, Any], systems: Systems) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [
        {
            "url": systems.extension(DEPARTMENT),
            "valueReference": {"reference": f"Organization/{row['department_id']}"},
        }
    ]
    for name in TEXTS:
        value = row[name]
        if value is None:
            continue
        url = systems.extension(f"record-{name}")
        text = {"url": url, "valueString": value} if value else {"url": url, "extension": [EMPTY]}
        extensions.append(text)
    return {
        "resourceType": "Condition",
        "id": str(row["id"]),
        "meta": {"versionId": str(row["version"]), "lastUpdated": row["updated_at"]},
        "extension": extensions,
        "code": {"text": row["diagnosis"]},
        "subject": {"reference": f"Patient/{row['patient_id']}"},
        "recordedDate": row["created_at"],
        "recorder": {"reference": f"Practitioner/{row['author_id']}"},
    }
