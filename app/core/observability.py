"""Prometheus metrics and the one-line-per-request access log, from one pure ASGI middleware.

Metrics live in each process. With several uvicorn workers on one host, point
PROMETHEUS_MULTIPROC_DIR at an empty directory (a tmpfs) that the workers share: /metrics then
sums the counters and histograms of every worker (prometheus-client's multiprocess mode). The
database pool gauges are always those of the worker that answers the scrape. In Kubernetes, run
one worker per pod and let Prometheus scrape every pod instead (docs/deploying.md, "Metrics").

Services count login refusals with `LOGIN_FAILURES.inc()` and `LOCKOUTS.inc()`; this module
does not import fastapi, so that they may.
"""

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The *_created series only add noise to every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
MULTIPROCESS = bool(MULTIPROCESS_DIR)
if MULTIPROCESS_DIR:  # before the first metric below opens its file there
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)
UNMATCHED = "unmatched"
_LABELS = ("method", "route", "status")
# Any other method is counted as "other", so a client cannot create series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", _LABELS)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending the last byte of its response.",
    _LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight", "HTTP requests being served now.", multiprocess_mode="livesum"
)
LOGIN_FAILURES = Counter(
    "auth_login_failures", "Failed logins: unknown user, wrong password or inactive user."
)
LOCKOUTS = Counter(
    "auth_lockouts", "Logins refused (429) because the username had too many recent failures."
)
RATE_LIMITED = Counter(
    "rate_limited_requests", "Requests refused (429) by a per-address rate limit.", ["policy"]
)

access_log = logging.getLogger("app.access")

# (method, route, status) -> the counter and histogram children; labels are bounded, and
# looking a child up here is cheaper than `.labels()` on every request.
_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


class RouteTemplates:
    """Maps the route that served a request to its full path template.

    FastAPI (0.130 and later) keeps an included router's routes as they were declared, so
    the route in the scope knows "/doctors/{doctor_id}" but not the "/api" it was mounted
    under, and plain Starlette routes (/docs, /openapi.json) leave only their endpoint in the
    scope: the full templates come from walking the app's routes once.
    """

    def __init__(self) -> None:
        # id -> (the route or endpoint itself, kept so that its id is not reused; template)
        self._known: dict[int, tuple[object, str]] = {}

    def __call__(self, scope: Scope) -> str:
        key = scope.get("route") or scope.get("endpoint")
        if key is None:
            return UNMATCHED
        known = self._known.get(id(key))
        if known is None:
            self._learn(scope.get("app"))
            known = self._known.get(id(key))
        path = known[1] if known else getattr(key, "path_format", None)
        if not isinstance(path, str):
            return UNMATCHED
        # Every path is served with and without its trailing slash: count the two as one.
        return path.rstrip("/") or "/"

    def _learn(self, app: object) -> None:
        from fastapi import routing  # here, so that services may import this module

        routes = getattr(app, "routes", None)
        walk = getattr(routing, "iter_route_contexts", None)
        if routes is None or walk is None:  # older FastAPI: routes carry their full path
            return
        for context in walk(routes):
            path = context.path_format
            if not isinstance(path, str):
                continue
            route = context.original_route
            self._known[id(route)] = (route, path)
            endpoint = getattr(route, "endpoint", None)
            if endpoint is not None and not isinstance(route, routing.APIRoute):
                self._known.setdefault(id(endpoint), (endpoint, path))


def _observe(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, str(status))
    children = _children.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), LATENCY.labels(*key))
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


class ObservabilityMiddleware:
    """Count, time and log every HTTP request; sits inside the request-id middleware."""

    def __init__(self, app: ASGIApp, log_requests: bool = True) -> None:
        self.app = app
        self.route_template = RouteTemplates()
        self.log_requests = log_requests  # else only the 5xx answers are logged

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = self.route_template(scope)
            _observe(method, route, status, seconds)
            if (self.log_requests or status >= 500) and access_log.isEnabledFor(logging.INFO):
                _log_request(scope, method, route, status, seconds)


def _log_request(scope: Scope, method: str, route: str, status: int, seconds: float) -> None:
    """One line per request: the route template, never the raw path or query string."""
    state = scope.get("state") or {}
    client = scope.get("client")
    duration_ms = round(seconds * 1000, 2)
    access_log.log(
        logging.ERROR if status >= 500 else logging.INFO,
        "%s %s %s %.2fms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "request_id": state.get("request_id"),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "user_id": state.get("user_id"),
            "ip": client[0] if client else None,  # the peer, or the client a proxy named
        },
    )


class PoolCollector(Collector):
    """The database connection pool of one app, read when scraped."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        engine = getattr(self.app.state, "engine", None)
        pool = engine.pool if engine is not None else None
        if pool is None or not hasattr(pool, "checkedout"):
            return []  # a pool without accounting (NullPool, StaticPool): nothing to report
        size = GaugeMetricFamily("db_pool_size", "Connections the pool keeps open.")
        size.add_metric([], pool.size())
        overflow = GaugeMetricFamily(
            "db_pool_max_overflow", "Connections the pool may open beyond its size."
        )
        overflow.add_metric([], max(getattr(pool, "_max_overflow", 0), 0))
        connections = GaugeMetricFamily(
            "db_pool_connections", "Open pool connections by state.", labels=["state"]
        )
        connections.add_metric(["checked_out"], pool.checkedout())
        connections.add_metric(["idle"], pool.checkedin())
        return [size, overflow, connections]


def render(app: Any) -> bytes:
    """The exposition text: this process's (or every worker's) metrics, then the pool's."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    pool = CollectorRegistry(auto_describe=False)
    pool.register(PoolCollector(app))
    return text + generate_latest(pool)


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format (a plain route, outside the OpenAPI schema)."""
    return Response(render(request.app), media_type=CONTENT_TYPE_LATEST)
