"""Route conventions shared by every domain router."""

from collections.abc import Callable, Iterable
from typing import Any

import fastapi
from fastapi.routing import APIRoute

BODY_METHODS = {"POST", "PUT", "PATCH"}
BODY_TOO_LARGE = {"description": "The request body is over the size limit (1 MiB)."}


def all_routes(app: Any) -> Iterable[Any]:
    """Every route of the app under its full path, each with `matches(scope)` and `methods`:
    FastAPI 0.130 and later keep included routers nested (iter_route_contexts walks them),
    earlier versions copy their routes into `app.routes`."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = walk(app.routes) if walk is not None else app.routes
    return routes


def operation_id(route: APIRoute) -> str:
    """`list_doctors`, not `list_doctors_api_doctors__get`, so generated clients read well."""
    return route.name


class APIRouter(fastapi.APIRouter):
    """Every path answers with and without its trailing slash, directly (no redirect).

    The documented path is registered as written; its twin (slash toggled) serves the same
    endpoint and stays out of the schema. Domain routers use this class with full paths
    and no prefix, so each twin is made exactly once.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("generate_unique_id_function", operation_id)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if {method.upper() for method in kwargs.get("methods") or ()} & BODY_METHODS:
            # The body limit middleware answers 413 for every route that takes a body.
            kwargs["responses"] = {413: BODY_TOO_LARGE, **(kwargs.get("responses") or {})}
        super().add_api_route(path, endpoint, **kwargs)
        twin = path[:-1] if path.endswith("/") else path + "/"
        if twin and twin != "/":
            super().add_api_route(twin, endpoint, **{**kwargs, "include_in_schema": False})
