"""FHIR Practitioner and PractitionerRole: a doctor, and the role he holds in his
department. Admins and doctors, as the REST doctor routes."""

from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from app.auth.dependencies import reader_of
from app.fhir import bundle, search, systems
from app.fhir.practitioner import mapping
from app.fhir.responses import fhir_response, negotiate, resource_id, resource_response
from app.fhir.routing import fhir_router, read_route, search_routes
from app.fhir.search import Param
from app.fhir.systems import Systems
from app.users import service

router = fhir_router()
WHO = "Admins and doctors."
Mapping = Callable[[dict[str, Any], Systems], dict[str, Any]]

PRACTITIONER_PARAMS = (
    search.id_param(),
    search.last_updated("created_at", "When the doctor's account was made"),
    search.name_param(
        "Starts a word of the name (case-insensitive); `:contains` anywhere in it; `:exact` "
        "the whole name, as written",
        "http://hl7.org/fhir/SearchParameter/Practitioner-name",
    ),
    Param(
        "identifier",
        "token",
        "The license number, as `<license system>|<number>` or alone",
        search.token("license_number"),
        "license_number",
        definition="http://hl7.org/fhir/SearchParameter/Practitioner-identifier",
    ),
)
ROLE_PARAMS = (
    search.id_param(),
    search.last_updated("created_at", "When the doctor's account was made"),
    Param(
        "practitioner",
        "reference",
        "The doctor: `Practitioner/<id>` (a role has its doctor's id)",
        search.reference("Practitioner"),
        "id",
        modifiers=("Practitioner",),
        definition="http://hl7.org/fhir/SearchParameter/PractitionerRole-practitioner",
    ),
    Param(
        "organization",
        "reference",
        "The department: `Organization/<id>`",
        search.reference("Organization"),
        "department_id",
        modifiers=("Organization",),
        definition="http://hl7.org/fhir/SearchParameter/PractitionerRole-organization",
    ),
)


async def _read(request: Request, as_resource: Mapping) -> Response:
    negotiate(request)
    doctor_id = resource_id(request.path_params["resource_id"])
    row = await service.get_doctor(reader_of(request), doctor_id, account=True)
    return resource_response(request, as_resource(row, systems.of_request(request)))


async def _search(request: Request, params: tuple[Param, ...], as_resource: Mapping) -> Response:
    known = systems.of_request(request)
    query = await search.read(request, params, known.by_name)
    found = await service.search_doctors(
        reader_of(request), query.page, query.search, total=query.total
    )
    resources = [as_resource(row, known) for row in found.items]
    answer = bundle.searchset(request, query, resources, more=found.more, total=found.total)
    return fhir_response(answer)


async def fhir_read_practitioner(request: Request) -> Response:
    return await _read(request, mapping.practitioner)


async def fhir_search_practitioners(request: Request) -> Response:
    return await _search(request, PRACTITIONER_PARAMS, mapping.practitioner)


async def fhir_read_practitioner_role(request: Request) -> Response:
    return await _read(request, mapping.practitioner_role)


async def fhir_search_practitioner_roles(request: Request) -> Response:
    return await _search(request, ROLE_PARAMS, mapping.practitioner_role)


read_route(router, "Practitioner", fhir_read_practitioner, who=WHO)
search_routes(router, "Practitioner", fhir_search_practitioners, PRACTITIONER_PARAMS, who=WHO)
read_route(router, "PractitionerRole", fhir_read_practitioner_role, who=WHO)
search_routes(router, "PractitionerRole", fhir_search_practitioner_roles, ROLE_PARAMS, who=WHO)
