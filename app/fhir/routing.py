"""How FHIR routes are declared: under /fhir/R4, a missing or forged token refused first
(an OperationOutcome 401, app.fhir.errors), answers and errors in `application/fhir+json`
in the schema, and each route marked with the FHIR interaction it serves, from which the
CapabilityStatement is built (app.fhir.capability). And how a read or a search of a
domain's rows is answered (`read_resource`, `search_resources`)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import Depends, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from app.auth.dependencies import get_claims, reader_of
from app.core.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from app.core.routing import APIRouter
from app.fhir import bundle, search, systems
from app.fhir.errors import MEDIA_TYPE
from app.fhir.responses import (
    BASE_PATH,
    FhirJSONResponse,
    fhir_response,
    negotiate,
    resource_id,
    resource_response,
)
from app.fhir.search import FORM, TOTALS, Param
from app.users.service import Found

TAG = "fhir"
INTERACTION = "x-fhir-interaction"
RESOURCE = "x-fhir-resource"
INCLUDES = "x-fhir-include"

_DESCRIPTIONS = {
    304: "Not modified: the client's If-None-Match names this version",
    400: "A search parameter or value this server cannot search with",
    401: "Missing, invalid, expired or revoked token",
    403: "The caller's role may never read this type",
    404: "Not found, or not visible to the caller",
    406: "Only JSON is served",
    415: "The body is not a form",
}
OUTCOME_SCHEMA = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}
ETAG = {"ETag": {"schema": {"type": "string"}, "description": 'The version, as W/"3"'}}
Endpoint = Callable[..., Any]
Row = dict[str, Any]
# A domain's row as a resource (app.fhir.<type>.mapping).
AsResource = Callable[[Row, systems.Systems], dict[str, Any]]


class FhirId(Convertor[str]):
    r"""A FHIR id (`[A-Za-z0-9\-\.]{1,64}`): `_search` and `_history` are never one, so
    `/Condition/_search` is the search's path alone (a GET there is a 405, not a read)."""

    regex = r"[A-Za-z0-9\-\.]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fhir_id", FhirId())


def fhir_router() -> APIRouter:
    """A resource type's router: every route refuses a missing or forged token first."""
    return APIRouter(prefix=BASE_PATH, tags=[TAG], dependencies=[Depends(get_claims)])


def public_router() -> APIRouter:
    return APIRouter(prefix=BASE_PATH, tags=[TAG])


def _schema(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": kind}},
    }


def responses(
    kind: str, description: str, *codes: int, headers: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    declared: dict[int | str, dict[str, Any]] = {
        200: {
            "description": description,
            "content": {MEDIA_TYPE: {"schema": _schema(kind)}},
            **({"headers": headers} if headers else {}),
        }
    }
    for code in codes:
        if code == 304:
            declared[code] = {"description": _DESCRIPTIONS[code], "headers": ETAG}
            continue
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[code],
            "content": {MEDIA_TYPE: {"schema": OUTCOME_SCHEMA}},
        }
        if code == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
            }
        declared[code] = entry
    return declared


def _marks(resource: str, interaction: str) -> dict[str, Any]:
    return {RESOURCE: resource, INTERACTION: interaction}


def path_parameter(name: str, description: str) -> dict[str, Any]:
    """An id in the path, as the schema declares it (a `fhir_id`)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_ID = path_parameter("resource_id", "The resource's logical id")


def read_route(
    router: APIRouter,
    resource: str,
    endpoint: Endpoint,
    *,
    who: str,
    path: str = "/{resource_id:fhir_id}",
    interaction: str = "read",
    extra: Sequence[dict[str, Any]] = (),
) -> None:
    """GET `/<Type><path>`: a resource (or a version of one, or its history). The
    endpoint reads its ids (`fhir_id`s) from `request.path_params`; they are declared
    here for the schema."""
    kind = "Bundle" if interaction == "history-instance" else resource
    codes = (400, 401, 403, 404, 406) if kind == "Bundle" else (304, 401, 403, 404, 406)
    router.add_api_route(
        f"/{resource}{path}",
        endpoint,
        methods=["GET"],
        name=endpoint.__name__,
        summary=f"{resource}: {interaction}",
        description=who,
        response_class=FhirJSONResponse,
        responses=responses(kind, kind, *codes, headers=None if kind == "Bundle" else ETAG),
        openapi_extra={"parameters": [_ID, *extra], **_marks(resource, interaction)},
    )


def search_routes(
    router: APIRouter,
    resource: str,
    endpoint: Endpoint,
    params: Sequence[Param],
    *,
    who: str,
    includes: Sequence[str] = (),
) -> None:
    """GET `/<Type>?…` and POST `/<Type>/_search` (the same parameters as a form)."""
    parameters = openapi_parameters(params, includes)
    codes = (400, 401, 403, 406)
    marks = {**_marks(resource, "search-type"), INCLUDES: list(includes)}
    router.add_api_route(
        f"/{resource}",
        endpoint,
        methods=["GET"],
        name=endpoint.__name__,
        summary=f"{resource}: search",
        description=who,
        response_class=FhirJSONResponse,
        responses=responses("Bundle", "A searchset Bundle", *codes),
        openapi_extra={"parameters": parameters, **marks},
    )
    form = {
        "type": "object",
        "properties": {
            parameter["name"]: parameter["schema"]
            for parameter in parameters
            if parameter["schema"].get("type") != "array"
        }
        | {
            parameter["name"]: {"type": "string"}
            for parameter in parameters
            if parameter["schema"].get("type") == "array"
        },
    }
    router.add_api_route(
        f"/{resource}/_search",
        endpoint,
        methods=["POST"],
        name=f"{endpoint.__name__}_by_post",
        summary=f"{resource}: search (POST)",
        description=f"{who} The parameters of the GET search, as a form body.",
        response_class=FhirJSONResponse,
        responses=responses("Bundle", "A searchset Bundle", *codes, 415),
        openapi_extra={
            "requestBody": {"required": False, "content": {FORM: {"schema": form}}},
            **marks,
        },
    )


def openapi_parameters(
    params: Sequence[Param], includes: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The search's query parameters as the OpenAPI schema declares them: FHIR repeats a
    parameter to AND it, so each takes a list."""
    declared: list[dict[str, Any]] = []
    for param in params:
        for modifier in ("", *param.modifiers):
            name = f"{param.name}:{modifier}" if modifier else param.name
            entry: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": False,
                "description": param.documentation,
                "schema": {"type": "array", "items": {"type": "string"}},
                "style": "form",
                "explode": True,
            }
            if not modifier:
                entry["x-fhir-type"] = param.type
                if param.definition:
                    entry["x-fhir-definition"] = param.definition
            declared.append(entry)
    declared.extend(
        [
            _control_parameter(
                "_count",
                f"Entries per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            ),
            _control_parameter(
                "_cursor",
                "Opaque: where the next page starts (from the Bundle's `next` link)",
                {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
            ),
            _control_parameter(
                "_total",
                "`accurate`: the Bundle's `total` counts every match",
                {"type": "string", "enum": list(TOTALS)},
            ),
            _control_parameter(
                "_format",
                "`json` (or `application/fhir+json`): the only format served",
                {"type": "string", "enum": sorted(_FORMAT_NAMES)},
            ),
        ]
    )
    if includes:
        declared.append(
            _control_parameter(
                "_include",
                f"Also return the resources referred to: {', '.join(includes)}",
                {"type": "string"},
            )
        )
    return declared


_FORMAT_NAMES = ("json", "application/json", "application/fhir+json")


def _control_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


async def read_resource(
    request: Request,
    read: Callable[..., Awaitable[Row]],
    as_resource: AsResource,
    **options: Any,
) -> Response:
    """A read: the row a domain's service `read`s for the id in the path (with
    `options`), as a resource with its ETag."""
    negotiate(request)
    row = await read(reader_of(request), resource_id(request.path_params["resource_id"]), **options)
    return resource_response(request, as_resource(row, systems.of_request(request)))


async def search_resources(
    request: Request,
    params: Sequence[Param],
    find: Callable[..., Awaitable[Found]],
    as_resource: AsResource,
) -> Response:
    """A search: the rows a domain's service `find`s for the request's parameters, as a
    searchset Bundle."""
    known = systems.of_request(request)
    query = await search.read(request, params, known.by_name)
    found = await find(reader_of(request), query.page, query.search, total=query.total)
    resources = [as_resource(row, known) for row in found.items]
    answer = bundle.searchset(request, query, resources, more=found.more, total=found.total)
    return fhir_response(answer)
