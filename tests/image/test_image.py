"""The container image as built (`make image-test`): its configuration, its files, and the
server it runs: migrate a fresh PostgreSQL database, serve as the unprivileged user, log in as
the first admin, write and read, pass the HEALTHCHECK, stop on SIGTERM.

Commands run from the image's own file system with buildah (see buildah.py), so what runs is
the image's Python, its installed wheel and its environment; only the network is the host's.
"""

import json
import os
import re
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ThrowawayDatabases
from tests.image.buildah import (
    Container,
    Image,
    descendants,
    kill_all,
    process_name,
    process_uid,
)
from tests.live import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "image-test-" + "k" * 40
ADMIN = ("chief", "a long first-admin passphrase")
UID = 10001
RecordProperty = Callable[[str, object], None]  # pytest's record_property fixture
GRACE_SECONDS = 20  # `hospital-api serve --graceful-timeout`'s default
SQLITE_MAGIC = b"SQLite format 3\x00"
COMPILER = re.compile(
    r"(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|tcc|cc1|cc1plus|ld|as)(-[\d.]+)?"
    r"|x86_64-linux-gnu-(gcc|g\+\+|cpp|ld|as)(-[\d.]+)?"
)
# Build and test tools that must stay out, besides every distribution of the dev extra.
NOT_SHIPPED = {"pip", "setuptools", "wheel", "hypothesis", "pytest", "mypy", "ruff"}


@pytest.fixture(scope="module")
def image() -> Image:
    name = os.environ.get("HOSPITAL_IMAGE")
    if not name:
        pytest.fail("HOSPITAL_IMAGE names the image to test (`make image-test` builds it)")
    return Image.inspect(name)


@pytest.fixture(scope="module")
def container(image: Image) -> Iterator[Container]:
    box = Container(image)
    yield box
    box.close()


@pytest.fixture(scope="module")
async def empty_database(throwaway_databases: ThrowawayDatabases | None) -> str:
    if throwaway_databases is None:
        pytest.fail("TEST_DATABASE_URL names the PostgreSQL server the image's server uses")
    return await throwaway_databases.create()  # not migrated: the image does it


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"]["dev"]
    return {canonical(re.split(r"[^A-Za-z0-9._-]", item, maxsplit=1)[0]) for item in requirements}


def test_configuration(image: Image, record_property: RecordProperty) -> None:
    record_property("image", image.name)
    record_property("image size", f"{image.size / 1e6:.0f} MB")
    user, _, group = image.config["User"].partition(":")
    # Numeric, so that Kubernetes can check runAsNonRoot without the image's /etc/passwd.
    assert (user, group) == (str(UID), str(UID))
    assert image.config["Entrypoint"] == ["hospital-api"]
    assert image.config["Cmd"][0] == "serve"
    env = image.env
    assert env["ENVIRONMENT"] == "production"
    assert env["LOG_FORMAT"] == "json"
    assert int(env["WEB_CONCURRENCY"]) >= 2
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    test = image.config["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    assert "/healthz" in " ".join(test)
    # Elsewhere the image builds on the official slim image; here BASE_IMAGE replaces it.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.1[1-9]-slim$", dockerfile, re.M)


def test_files(image: Image) -> None:
    """A container no command has run in: the image's files as shipped."""
    box = Container(image)
    try:
        with box.mounted() as root:
            files = [
                Path(folder, name).relative_to(root)
                for folder, _, names in os.walk(root)
                for name in names
            ]
            folders = {Path(folder).relative_to(root) for folder, _, _ in os.walk(root)}
            sqlite = [path for path in files if _starts_with(root / path, SQLITE_MAGIC)]
            [site] = root.glob("opt/venv/lib/python3*/site-packages")
            shipped = {entry.name for entry in site.iterdir()}
            dist_info = {canonical(entry.name.split("-")[0]) for entry in site.glob("*.dist-info")}
            project_dist = list(site.glob("hospital_api-*.dist-info"))
            migrations = site / "app" / "migrations"
            versions = list((migrations / "versions").glob("*.py"))
            redoc_script = site / "fastapi_standalone_docs/static/redoc/redoc.standalone.js"
            assert (migrations / "env.py").is_file()
            assert (migrations / "script.py.mako").is_file()
            assert redoc_script.is_file()
            direct_url = [path / "direct_url.json" for path in project_dist]
            editable = [
                path for path in direct_url if path.exists() and "editable" in path.read_text()
            ]
    finally:
        box.close()

    assert len(files) > 1000  # the walk saw the whole file system
    assert not [folder for folder in folders if folder.name == ".git"]
    assert not [path for path in files if path.name == ".git"]
    assert not [path for path in files if "bin" in path.parts and COMPILER.fullmatch(path.name)]
    assert not [path for path in files if path.parts[:3] == ("usr", "lib", "gcc")]
    assert not sqlite
    assert not [path for path in files if path.name.startswith(".hospital_secret_key")]
    assert not (dev_distributions() | NOT_SHIPPED) & (dist_info | shipped)

    # The project as an installed wheel, migrations inside it, and no source tree anywhere.
    assert len(project_dist) == 1
    assert not editable
    assert not [name for name in shipped if "__editable__" in name or name.endswith(".egg-link")]
    assert len(versions) >= 5
    main_modules = [path for path in files if path.parts[-2:] == ("app", "main.py")]
    assert main_modules == [(site / "app" / "main.py").relative_to(root)]
    assert not [path for path in files if path.name in {"pyproject.toml", "alembic.ini"}]
    assert not {Path("app"), Path("src")} & folders


def _starts_with(path: Path, magic: bytes) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as file:
        return file.read(len(magic)) == magic


def test_production_refuses_to_start_without_a_secret_key(
    image: Image, container: Container
) -> None:
    refused = container.run(*image.config["Entrypoint"], "serve", timeout=60)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "SECRET_KEY" in refused.stderr


def test_migrate_serve_log_in_write_read_and_stop(
    image: Image,
    container: Container,
    empty_database: str,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    env = {"DATABASE_URL": empty_database, "SECRET_KEY": SECRET_KEY}
    entrypoint = image.config["Entrypoint"]

    whoami = container.run("id", "-u")
    assert whoami.returncode == 0, whoami.stderr
    assert int(whoami.stdout) != 0
    assert int(whoami.stdout) == UID

    migrated = container.run(*entrypoint, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Running upgrade  -> 0001" in migrated.stderr

    port = free_port()
    command = list(image.config["Cmd"])
    command[command.index("--host") + 1] = "127.0.0.1"  # the host's network: loopback only
    command[command.index("--port") + 1] = str(port)
    base_url = f"http://127.0.0.1:{port}"
    first_admin = {"FIRST_ADMIN_USERNAME": ADMIN[0], "FIRST_ADMIN_PASSWORD": ADMIN[1]}
    log = tmp_path / "server.log"
    requests = 20
    token = ""

    with log.open("w") as output:
        started = time.monotonic()
        runner = subprocess.Popen(
            container.command(*entrypoint, *command, env=env | first_admin),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        wait_until_ready(base_url, runner, timeout=90)
        record_property("start to ready", f"{time.monotonic() - started:.1f} s")
        [server] = [pid for pid in descendants(runner.pid) if process_name(pid) == "hospital-api"]
        workers = descendants(server)
        assert len(workers) >= 2
        assert {process_uid(pid) for pid in [server, *workers]} == {UID}

        http = httpx.Client(base_url=base_url, timeout=10)
        assert http.get("/readyz").json() == {"status": "ok"}
        login = http.post("/auth/login/", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = http.post(
            "/api/department/",
            json={"name": "Radiology", "location": "Building D"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        read = http.get(f"/api/department/{created.json()['id']}", headers=headers)
        assert read.status_code == 200
        assert read.json() == created.json()
        assert read.json()["name"] == "Radiology"

        # The documentation pages and their scripts come from the image's packages.
        assert http.get("/docs").status_code == 200
        assert http.get("/redoc").status_code == 200
        script = http.get("/docs/assets/redoc/redoc.standalone.js")
        assert script.status_code == 200
        assert len(script.content) > 500_000

        # One scrape sums every worker's counts (PROMETHEUS_MULTIPROC_DIR).
        for _ in range(requests):
            assert http.get("/healthz").status_code == 200
        counted = {
            sample.labels.get("route"): sample.value
            for family in text_string_to_metric_families(http.get("/metrics").text)
            for sample in family.samples
            if sample.name == "http_requests_total" and sample.labels.get("status") == "200"
        }
        assert counted.get("/healthz") == requests

        healthcheck = [
            part.replace(":8000/", f":{port}/") for part in image.config["Healthcheck"]["Test"][1:]
        ]
        probe = container.run(*healthcheck, timeout=30)
        assert probe.returncode == 0, probe.stderr

        # SIGTERM to the server, as a container runtime sends it to the container's process.
        os.kill(server, signal.SIGTERM)
        stopping = time.monotonic()
        code = runner.wait(timeout=GRACE_SECONDS + 10)
        assert time.monotonic() - stopping < GRACE_SECONDS
        assert code == 0
    finally:
        kill_all(runner)

    output = log.read_text()
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    routes = {line.get("route") for line in lines if line["logger"] == "app.access"}
    assert {"/auth/login", "/api/department", "/api/department/{department_id}"} <= routes
    for secret in (SECRET_KEY, ADMIN[1], token):
        assert secret not in output

    # Down, the HEALTHCHECK fails.
    assert container.run(*healthcheck, timeout=30).returncode != 0
