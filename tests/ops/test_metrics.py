"""/metrics: Prometheus text, series by route template (never the raw path), pool and auth."""

import subprocess
import sys
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from app.main import create_app


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[Any]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_not_raw_path(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    for department_id in (918273, 918274):
        response = await client.get(f"/api/department/{department_id}")
        assert response.status_code == 401
    after = await scrape(client)

    labels = {"method": "GET", "route": "/api/department/{department_id}", "status": "401"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 2
    )
    assert (
        value(after, "http_request_duration_seconds_count", **labels)
        - value(before, "http_request_duration_seconds_count", **labels)
        == 2
    )
    assert not any("918273" in str(labelset) for _, labelset in after)


async def test_unmatched_paths_share_one_label(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert (await client.get("/no/such/path/4711")).status_code == 404
    after = await scrape(client)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 1
    )
    assert not any("4711" in str(labelset) for _, labelset in after)


async def test_trailing_slash_twins_count_as_one_route(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/healthz/")).status_code == 200
    after = await scrape(client)
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 2
    )


async def test_unknown_methods_do_not_create_series(client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/healthz")
    samples = await scrape(client)
    methods = {dict(labelset).get("method") for name, labelset in samples}
    assert "BREW" not in methods
    assert "other" in methods


async def test_in_flight_gauge_sees_the_scrape_itself(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    assert value(samples, "http_requests_in_flight") >= 1


async def test_database_pool_usage_is_read_at_scrape_time(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    samples = await scrape(client)
    pool = app.state.engine.pool
    assert value(samples, "db_pool_size") == pool.size()
    # The test's own transaction holds a connection while the scrape runs.
    assert value(samples, "db_pool_connections", state="checked_out") >= 1
    assert ("db_pool_connections", frozenset({("state", "idle")})) in samples


async def test_login_failures_and_lockouts_are_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    attempt = {"username": "nobody_here", "password": "wrong password 123"}
    statuses = [(await client.post("/auth/login/", json=attempt)).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    after = await scrape(client)
    assert (
        value(after, "auth_login_failures_total") - value(before, "auth_login_failures_total") == 5
    )
    assert value(after, "auth_lockouts_total") - value(before, "auth_lockouts_total") == 1


async def test_unhandled_error_is_counted_as_500(settings: Settings, engine: Any) -> None:
    app = create_app(settings)
    app.state.engine = engine

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode/{item_id}", explode)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        before = await scrape(http)
        assert (await http.get("/explode/1")).status_code == 500
        after = await scrape(http)
    labels = {"method": "GET", "route": "/explode/{item_id}", "status": "500"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 1
    )
    assert value(after, "http_requests_in_flight") == 1  # only the scrape itself


async def test_documentation_routes_have_their_own_labels(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
    after = await scrape(client)
    for route in ("/openapi.json", "/docs"):
        labels = {"method": "GET", "route": route, "status": "200"}
        assert (
            value(after, "http_requests_total", **labels)
            - value(before, "http_requests_total", **labels)
            == 1
        )


async def test_metrics_answer_with_and_without_trailing_slash(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    response = await client.get("/metrics/")
    assert response.status_code == 200
    after = await scrape(client)
    labels = {"method": "GET", "route": "/metrics", "status": "200"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 2
    )  # "/metrics/" and the first of the two scrapes that bracket it
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


def test_services_may_count_without_importing_fastapi() -> None:
    code = "import sys, app.core.observability; sys.exit('fastapi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
