"""FHIR Condition: a patient record, read, vread, history and search, visible exactly as
`GET /api/patient_records/{id}` (records.policy, emergency grants included) and audited
as its REST twins. A record the caller may not see is a 404, never in a Bundle."""

from fastapi import Request
from starlette.responses import Response

from app.auth.dependencies import reader_of
from app.core.filters import Search
from app.fhir import bundle, search, systems
from app.fhir.condition import mapping
from app.fhir.patient.mapping import patient
from app.fhir.responses import fhir_response, negotiate, resource_id, resource_response
from app.fhir.routing import fhir_router, path_parameter, read_resource, read_route, search_routes
from app.fhir.search import Param, Query
from app.records import service

router = fhir_router()
WHO = (
    "A doctor reads his department's records (and every record of a patient he holds an "
    "emergency grant for, when the search names that patient); a patient his own. Admins "
    "are refused. Audited."
)
PATIENT = "patient"
INCLUDES = ("Condition:subject", "Condition:subject:Patient", "Condition:patient")


def _patient_param(name: str, definition: str) -> Param:
    return Param(
        name,
        "reference",
        "The patient: `Patient/<id>` (or the id alone)",
        search.reference("Patient"),
        "patient_id",
        modifiers=("Patient",),
        definition=definition,
        narrows_to=PATIENT,
    )


PARAMS = (
    search.id_param(),
    search.last_updated("updated_at", "When the record last changed"),
    _patient_param("patient", "http://hl7.org/fhir/SearchParameter/clinical-patient"),
    _patient_param("subject", "http://hl7.org/fhir/SearchParameter/Condition-subject"),
    Param(
        "recorded-date",
        "date",
        "When the record was first written, with the prefixes eq, ne, gt, ge, lt, le",
        search.date_value("instant"),
        "created_at",
        definition="http://hl7.org/fhir/SearchParameter/Condition-recorded-date",
    ),
)
_VERSION = path_parameter("version_id", "The record's version")


async def fhir_read_condition(request: Request) -> Response:
    return await read_resource(request, service.get_record, mapping.condition)


async def fhir_vread_condition(request: Request) -> Response:
    negotiate(request)
    record_id = resource_id(request.path_params["resource_id"])
    version = resource_id(request.path_params["version_id"])
    record = await service.get_version(reader_of(request), record_id, version)
    return resource_response(request, mapping.condition(record, systems.of_request(request)))


async def fhir_condition_history(request: Request) -> Response:
    """Every version, newest first (FHIR's order), a page at a time."""
    record_id = resource_id(request.path_params["resource_id"])
    query = await search.read(request, (), {})
    _current, versions, more = await service.get_history(
        reader_of(request), record_id, query.page, newest_first=True
    )
    known = systems.of_request(request)
    resources = [mapping.condition(version, known) for version in versions]
    before = versions[-1]["version"] if more else None
    return fhir_response(bundle.history(request, query.pairs, resources, next_before=before))


def _narrowed(query: Query) -> tuple[int | None, Search]:
    """The one patient the search names (his records, grants included, as the REST list
    with `patient_id`); several, or none that exist, narrow the caller's own records."""
    named = query.references.get(PATIENT, [])
    distinct = {frozenset(ids) for ids in named}
    if len(distinct) == 1:
        [ids] = distinct
        if len(ids) == 1:
            [patient_id] = ids
            return patient_id, query.search
    for alternatives in named:
        query.search.add("patient_id", [("eq", (one,)) for one in sorted(alternatives)])
    return None, query.search


async def fhir_search_conditions(request: Request) -> Response:
    known = systems.of_request(request)
    query = await search.read(request, PARAMS, known.by_name, INCLUDES)
    patient_id, criteria = _narrowed(query)
    found = await service.search_records(
        reader_of(request),
        query.page,
        patient_id,
        criteria,
        with_subject=bool(query.includes),
        total=query.total,
    )
    conditions = [mapping.condition(record, known) for record in found.records]
    included = [patient(subject, known) for subject in found.subjects]
    answer = bundle.searchset(
        request,
        query,
        conditions,
        more=found.more,
        included=included,
        total=found.total,
    )
    return fhir_response(answer)


read_route(router, "Condition", fhir_read_condition, who=WHO)
read_route(
    router,
    "Condition",
    fhir_vread_condition,
    who=WHO + " A version of the record, as its history keeps it.",
    path="/{resource_id:fhir_id}/_history/{version_id:fhir_id}",
    interaction="vread",
    extra=[_VERSION],
)
read_route(
    router,
    "Condition",
    fhir_condition_history,
    who=WHO + " Every version of the record, newest first.",
    path="/{resource_id:fhir_id}/_history",
    interaction="history-instance",
)
search_routes(router, "Condition", fhir_search_conditions, PARAMS, who=WHO, includes=INCLUDES)
