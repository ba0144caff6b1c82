"""FHIR Organization: a department, for every authenticated caller (as the REST
department routes)."""

from fastapi import Request
from starlette.responses import Response

from app.auth.dependencies import reader_of
from app.departments import service
from app.fhir import bundle, search, systems
from app.fhir.organization import mapping
from app.fhir.responses import fhir_response, negotiate, resource_id, resource_response
from app.fhir.routing import fhir_router, read_route, search_routes

router = fhir_router()
WHO = "Every authenticated caller."

PARAMS = (
    search.id_param(),
    search.last_updated("created_at", "When the department was made"),
    search.name_param(
        "Starts a word of the name (case-insensitive); `:contains` anywhere in it; `:exact` "
        "the whole name, as written",
        "http://hl7.org/fhir/SearchParameter/Organization-name",
    ),
)


async def fhir_read_organization(request: Request) -> Response:
    negotiate(request)
    department_id = resource_id(request.path_params["resource_id"])
    row = await service.get_department(reader_of(request), department_id, created=True)
    return resource_response(request, mapping.organization(row, systems.of_request(request)))


async def fhir_search_organizations(request: Request) -> Response:
    known = systems.of_request(request)
    query = await search.read(request, PARAMS, known.by_name)
    found = await service.search_departments(
        reader_of(request), query.page, query.search, total=query.total
    )
    resources = [mapping.organization(row, known) for row in found.items]
    answer = bundle.searchset(request, query, resources, more=found.more, total=found.total)
    return fhir_response(answer)


read_route(router, "Organization", fhir_read_organization, who=WHO)
search_routes(router, "Organization", fhir_search_organizations, PARAMS, who=WHO)
