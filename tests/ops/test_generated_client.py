"""A Python client generated from /openapi.json by openapi-python-client logs in and lists
departments against a live server (`make ops-test` installs the generator)."""

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import seed
from tests.live import start

pytestmark = pytest.mark.slow_ops
PACKAGE = "hospital_client"


def generator() -> str:
    folders = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    found = shutil.which("openapi-python-client", path=folders)
    assert found, "openapi-python-client is not installed (make ops-test installs it)"
    return found


@pytest.fixture
def on_sys_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


async def test_generated_client_logs_in_and_lists_departments(
    fresh_database_url: Callable[[], Any], on_sys_path: Path
) -> None:
    database_url = await fresh_database_url()
    seeded = await seed(database_url)
    config = on_sys_path / "client.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: hospital-client\n")

    async with await start(database_url, on_sys_path) as live:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        generated = subprocess.run(
            [
                generator(),
                "generate",
                "--url",
                f"{live.url}/openapi.json",
                "--config",
                str(config),
                "--meta",
                "none",
                "--output-path",
                str(on_sys_path / PACKAGE),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert generated.returncode == 0, generated.stdout + generated.stderr

        # Clean operation ids make readable modules: api/departments/list_departments.py.
        modules = {path.stem for path in (on_sys_path / PACKAGE / "api").glob("*/*.py")}
        assert {"login", "list_departments", "list_records"} <= modules
        assert not [name for name in modules if "_api_" in name or name.endswith("_get")]

        client_module = importlib.import_module(PACKAGE)
        login = importlib.import_module(f"{PACKAGE}.api.auth.login")
        list_departments = importlib.import_module(f"{PACKAGE}.api.departments.list_departments")

        # The login body: the generator names it after the content type and the schema
        # (JSON or the OAuth2 form; both are {username, password}).
        models = importlib.import_module(f"{PACKAGE}.models")
        login_bodies = sorted(name for name in models.__all__ if name.lower().startswith("login"))
        assert login_bodies
        body_type = next(
            (getattr(models, name) for name in login_bodies if "json" in name.lower()),
            getattr(models, login_bodies[0]),
        )
        body = body_type(username=seeded.doctor_username, password=seeded.password)

        anonymous = client_module.Client(base_url=live.url, raise_on_unexpected_status=True)
        response = login.sync_detailed(client=anonymous, body=body)
        assert response.status_code == 200
        token = response.parsed.access_token
        assert response.parsed.token_type == "bearer"

        authenticated = client_module.AuthenticatedClient(base_url=live.url, token=token)
        departments = list_departments.sync(client=authenticated)
        assert isinstance(departments, list)
        assert [department.name for department in departments] == [seeded.department]
