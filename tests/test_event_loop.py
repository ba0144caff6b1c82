"""Every route runs on the event loop: neither its endpoint nor any of its dependencies is a
plain function, which FastAPI would run in its thread pool (a hop to a thread and back on
every request, for code that never blocks)."""

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.core.routing import all_routes
from app.main import create_app
from tests.conftest import make_settings


def _on_the_loop(call: Any) -> bool:
    """As FastAPI decides: a coroutine or an async generator (a function, or an instance's
    `__call__`) is awaited; anything else, a class included, goes to the thread pool."""
    if inspect.isclass(call):
        return False
    function = call if inspect.isroutine(call) else type(call).__call__
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _api_routes() -> list[APIRoute]:
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    routes = [getattr(route, "original_route", route) for route in all_routes(app)]
    return [route for route in routes if isinstance(route, APIRoute)]


def test_no_endpoint_or_dependency_runs_in_the_thread_pool() -> None:
    routes = _api_routes()
    assert len(routes) > 50  # the walk found the routers' routes
    in_the_pool = sorted(
        {
            f"{sorted(route.methods)} {route.path}: {getattr(call, '__name__', call)}"
            for route in routes
            for call in (route.endpoint, *_calls(route.dependant))
            if not _on_the_loop(call)
        }
    )
    assert in_the_pool == []
