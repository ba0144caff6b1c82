"""Route conventions shared by every domain router.

- Every path answers with and without its trailing slash, directly (no redirect): one
  route whose pattern takes both, documented as written.
- The app's routes are one flat list (`add_routes`), hot ones first. FastAPI 0.130 and
  later keep an included router nested, and match a request against each level's routes
  again, on every request; a flat list is matched once.
"""

import re
from collections.abc import Callable, Iterable
from typing import Any

import fastapi
from fastapi import FastAPI
from fastapi.routing import APIRoute

BODY_METHODS = {"POST", "PUT", "PATCH"}
BODY_TOO_LARGE = {"description": "The request body is over the size limit (1 MiB)."}


def all_routes(app: Any) -> Iterable[Any]:
    """Every route of the app under its full path, each with `matches(scope)`, `methods`
    and `path` (nested included routers walked, if any)."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = walk(app.routes) if walk is not None else app.routes
    return routes


def operation_id(route: APIRoute) -> str:
    """`list_doctors`, not `list_doctors_api_doctors__get`, so generated clients read well."""
    return route.name


class Route(APIRoute):
    """An APIRoute that also answers its path with the trailing slash toggled."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        pattern = self.path_regex.pattern.removesuffix("$").removesuffix("/")
        self.path_regex = re.compile(pattern + "/?$")


class APIRouter(fastapi.APIRouter):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("generate_unique_id_function", operation_id)
        kwargs.setdefault("route_class", Route)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if {method.upper() for method in kwargs.get("methods") or ()} & BODY_METHODS:
            # The body limit middleware answers 413 for every route that takes a body.
            kwargs["responses"] = {413: BODY_TOO_LARGE, **(kwargs.get("responses") or {})}
        super().add_api_route(path, endpoint, **kwargs)


def add_routes(app: FastAPI, *routers: fastapi.APIRouter) -> None:
    """The routers' routes, as they are (prefix, tags and dependencies already applied),
    appended to the app's own list in this order."""
    for router in routers:
        app.router.routes.extend(router.routes)
