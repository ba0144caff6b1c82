"""A department (departments.repository.RESOURCE_FIELDS) as a FHIR Organization."""

from typing import Any

from app.fhir.responses import content_version
from app.fhir.systems import Systems

# http://terminology.hl7.org/CodeSystem/organization-type: what a department is.
DEPARTMENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/organization-type",
    "code": "dept",
    "display": "Hospital Department",
}


def organization(row: dict[str, Any], systems: Systems) -> dict[str, Any]:
    types: list[dict[str, Any]] = [{"coding": [DEPARTMENT_TYPE]}]
    if row["specialization"]:
        types.append({"text": row["specialization"]})
    shown: dict[str, Any] = {"active": True, "type": types, "name": row["name"]}
    if row["location"]:
        shown["address"] = [{"text": row["location"]}]
    if row["description"]:
        url = systems.extension("department-description")
        shown["extension"] = [{"url": url, "valueString": row["description"]}]
    return {
        "resourceType": "Organization",
        "id": str(row["id"]),
        "meta": {"versionId": content_version(shown), "lastUpdated": row["created_at"]},
        **shown,
    }
