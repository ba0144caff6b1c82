"""Every resource and Bundle the facade answers, checked against FHIR R4 (4.0.1).

The structure comes from fhirclient 4.x's models, generated from the R4 4.0.1
StructureDefinitions, parsed strictly: every element must exist in the definition, with
its type, its cardinality (a list or one value) and every required element present;
dates, dateTimes and instants in their formats; nested resources (Bundle entries)
likewise. The models do not check the codes of required bindings, so the ones our
resources use are checked here against the R4 value sets.
"""

from typing import Any

from fhirclient.models.fhirelementfactory import FHIRElementFactory

# Required bindings (R4 4.0.1 value sets) of the elements our resources carry, by path.
REQUIRED_CODES: dict[str, set[str]] = {
    "Patient.gender": {"male", "female", "other", "unknown"},
    "*.telecom.system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
    "Bundle.type": {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    },
    "Bundle.entry.search.mode": {"match", "include", "outcome"},
    "Bundle.entry.request.method": {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"},
    "OperationOutcome.issue.severity": {"fatal", "error", "warning", "information"},
    "OperationOutcome.issue.code": {
        "invalid",
        "structure",
        "required",
        "value",
        "invariant",
        "security",
        "login",
        "unknown",
        "expired",
        "forbidden",
        "suppressed",
        "processing",
        "not-supported",
        "duplicate",
        "multiple-matches",
        "not-found",
        "deleted",
        "too-long",
        "code-invalid",
        "extension",
        "too-costly",
        "business-rule",
        "conflict",
        "transient",
        "lock-error",
        "no-store",
        "exception",
        "timeout",
        "incomplete",
        "throttled",
        "informational",
    },
    "CapabilityStatement.status": {"draft", "active", "retired", "unknown"},
    "CapabilityStatement.kind": {"instance", "capability", "requirements"},
    "CapabilityStatement.fhirVersion": {"4.0.1"},
    "CapabilityStatement.rest.mode": {"client", "server"},
    "CapabilityStatement.rest.resource.interaction.code": {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    },
    "CapabilityStatement.rest.resource.versioning": {
        "no-version",
        "versioned",
        "versioned-update",
    },
    "CapabilityStatement.rest.resource.conditionalRead": {
        "not-supported",
        "modified-since",
        "not-match",
        "full-support",
    },
    "CapabilityStatement.rest.resource.searchParam.type": {
        "number",
        "date",
        "string",
        "token",
        "reference",
        "composite",
        "quantity",
        "uri",
        "special",
    },
}


def _codes(value: Any, path: str) -> list[str]:
    problems = []
    if isinstance(value, dict):
        kind = value.get("resourceType")
        here = kind if kind else path
        for key, item in value.items():
            problems.extend(_codes(item, f"{here}.{key}"))
    elif isinstance(value, list):
        for item in value:
            problems.extend(_codes(item, path))
    else:
        allowed = REQUIRED_CODES.get(path)
        if allowed is None and path.endswith(".telecom.system"):
            allowed = REQUIRED_CODES["*.telecom.system"]
        if allowed is not None and value not in allowed:
            problems.append(f"{path}: {value!r} is not in its required value set")
    return problems


def _empty_strings(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _empty_strings(item, f"{path}.{key}")]
    if isinstance(value, list):
        if not value:
            return [f"{path}: an empty array (FHIR leaves the element out)"]
        return [p for item in value for p in _empty_strings(item, path)]
    if isinstance(value, str) and not value:
        return [f"{path}: an empty string (FHIR leaves the element out)"]
    return []


def validate(resource: dict[str, Any]) -> None:
    """Raise (fhirclient's FHIRValidationError, or AssertionError) unless `resource` is a
    valid FHIR R4 4.0.1 resource; a Bundle with each of its entries' resources."""
    FHIRElementFactory.instantiate(resource["resourceType"], resource)
    problems = _codes(resource, resource["resourceType"]) + _empty_strings(resource)
    assert not problems, problems
