"""A patient (users.repository.PATIENT_RESOURCE_FIELDS) as a FHIR Patient."""

from typing import Any

from app.fhir.responses import content_version
from app.fhir.systems import Systems


def patient(row: dict[str, Any], systems: Systems) -> dict[str, Any]:
    """`sex` is already one of FHIR's administrative genders (female, male, other,
    unknown). Texts left empty are left out (FHIR has no empty string)."""
    shown: dict[str, Any] = {
        "identifier": [{"system": systems.username, "value": row["username"]}],
        "active": row["is_active"],
    }
    if row["full_name"]:
        shown["name"] = [{"text": row["full_name"]}]
    telecom = [{"system": "email", "value": row["email"]}]
    if row["phone"]:
        telecom.append({"system": "phone", "value": row["phone"]})
    shown["telecom"] = telecom
    if row["sex"] is not None:
        shown["gender"] = row["sex"]
    if row["date_of_birth"] is not None:
        shown["birthDate"] = row["date_of_birth"]
    return {
        "resourceType": "Patient",
        "id": str(row["id"]),
        "meta": {"versionId": content_version(shown), "lastUpdated": row["created_at"]},
        **shown,
    }
