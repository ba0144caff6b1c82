"""A doctor (users.repository.DOCTOR_RESOURCE_FIELDS) as a FHIR Practitioner, and as the
PractitionerRole he holds: his department, with his specialization (one per doctor, with
the doctor's id)."""

from typing import Any

from app.fhir.responses import content_version
from app.fhir.systems import Systems


def practitioner(row: dict[str, Any], systems: Systems) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    if row["license_number"]:
        shown["identifier"] = [{"system": systems.license_number, "value": row["license_number"]}]
    shown["active"] = row["is_active"]
    if row["full_name"]:
        shown["name"] = [{"text": row["full_name"]}]
    shown["telecom"] = [{"system": "email", "value": row["email"]}]
    return _resource("Practitioner", row, shown)


def practitioner_role(row: dict[str, Any], _systems: Systems) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "active": row["is_active"],
        "practitioner": {"reference": f"Practitioner/{row['id']}"},
    }
    if row["full_name"]:
        shown["practitioner"]["display"] = row["full_name"]
    if row["department_id"] is not None:
        shown["organization"] = {"reference": f"Organization/{row['department_id']}"}
    if row["specialization"]:
        shown["specialty"] = [{"text": row["specialization"]}]
    return _resource("PractitionerRole", row, shown)


def _resource(kind: str, row: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "id": str(row["id"]),
        "meta": {"versionId": content_version(shown), "lastUpdated": row["created_at"]},
        **shown,
    }
