"""The Dockerfile's own steps, run outside Docker (no engine here): install, migrate, serve.

The Dockerfile is parsed, not copied: its COPY and RUN lines build a mirror of the image's
file system in a temporary folder (/app and /opt/venv mapped there), and its ENV, ENTRYPOINT,
CMD and HEALTHCHECK are what is run. Only the interpreter differs (this machine's python3,
not the image's) and the listening address and port (loopback, a free port).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.servers import free_port, start_server, stop, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 48

pytestmark = pytest.mark.slow_ops


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for key, argument in self.instructions if key == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.base}"
        return found[-1]


def parse_dockerfile(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())  # join continued lines
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "ARG" and not stages:
            name, _, default = argument.partition("=")
            args[name] = default
        elif keyword == "FROM":
            base, _, alias = re.sub(r"\s+AS\s+", " AS ", argument, flags=re.I).partition(" AS ")
            for name, value in args.items():
                base = base.replace("${" + name + "}", value)
            stages.append(Stage(base=base, name=alias.strip() or None))
        else:
            stages[-1].instructions.append((keyword, argument))
    return stages


def exec_form(argument: str) -> list[str]:
    value = json.loads(argument)
    assert isinstance(value, list), f"not in exec form: {argument}"
    return [str(part) for part in value]


class Mirror:
    """The image's file system under a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def rewrite(self, text: str) -> str:
        return re.sub(r"(?<![\w.$])/(app|opt|tmp)\b", lambda m: f"{self.root}/{m.group(1)}", text)


def image_env(stage: Stage, mirror: Mirror) -> dict[str, str]:
    env: dict[str, str] = {"PATH": os.environ["PATH"]}
    for argument in stage.all("ENV"):
        for pair in shlex.split(argument):
            name, _, value = pair.partition("=")
            env[name] = mirror.rewrite(value.replace("$PATH", env["PATH"]))
    return env


def build(stages: list[Stage], mirror: Mirror, interpreter_dir: Path) -> None:
    """Every stage's WORKDIR, COPY (from the build context) and RUN, in order."""
    for stage in stages:
        workdir = mirror.path("/")
        for keyword, argument in stage.instructions:
            if keyword == "WORKDIR":
                workdir = mirror.path(argument)
                workdir.mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY" and not argument.startswith("--from"):
                *sources, target = shlex.split(argument)
                destination = (
                    workdir / target if not target.startswith("/") else mirror.path(target)
                )
                for source in sources:
                    origin = ROOT / source
                    if origin.is_dir():
                        shutil.copytree(
                            origin,
                            destination,
                            dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                        )
                    else:
                        destination.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, destination / origin.name)
            elif keyword == "RUN" and stage.name is not None:  # the builder's (not useradd)
                command = mirror.rewrite(argument)
                env = {
                    "PATH": f"{interpreter_dir}:{os.environ['PATH']}",
                    "HOME": os.environ.get("HOME", "/root"),
                }
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert done.returncode == 0, f"RUN {argument}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stage, Mirror]:
    stages = parse_dockerfile(ROOT / "Dockerfile")
    assert len(stages) >= 2, "a multi-stage build"
    mirror = Mirror(tmp_path_factory.mktemp("image"))
    interpreter_dir = tmp_path_factory.mktemp("interpreter")
    # `python` in the RUN lines: this machine's base interpreter, as the image's would be.
    base = getattr(sys, "_base_executable", sys.executable)
    (interpreter_dir / "python").symlink_to(base)
    build(stages, mirror, interpreter_dir)
    return stages[-1], mirror


def test_final_stage_is_slim_non_root_and_self_checking() -> None:
    stages = parse_dockerfile(ROOT / "Dockerfile")
    final = stages[-1]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", final.base)
    user = final.last("USER").split(":")[0]
    assert user.isdigit()  # numeric, so that Kubernetes can verify runAsNonRoot
    assert int(user) != 0
    assert "/healthz" in final.last("HEALTHCHECK")
    assert exec_form(final.last("ENTRYPOINT")) == ["hospital-api"]
    assert exec_form(final.last("CMD"))[0] == "serve"
    for command in final.all("RUN"):  # no compilers or package caches in the final image
        assert "apt-get" not in command
        assert "pip" not in command
    env = image_env(final, Mirror(Path("/")))
    assert env["ENVIRONMENT"] == "production"
    assert int(env["WEB_CONCURRENCY"]) >= 2


def test_install_migrate_serve_and_stop(image: tuple[Stage, Mirror], tmp_path: Path) -> None:
    final, mirror = image
    env = image_env(final, mirror)
    env |= {"HOME": str(tmp_path), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hospital.db"}
    workdir = mirror.path(final.last("WORKDIR"))
    entrypoint = exec_form(final.last("ENTRYPOINT"))
    entrypoint[0] = str(mirror.path("/opt/venv/bin") / entrypoint[0])

    # Production refuses to start without a signing key, with a clear message.
    refused = subprocess.run(
        [*entrypoint, "serve"], env=env, cwd=workdir, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "SECRET_KEY" in refused.stderr

    env["SECRET_KEY"] = SECRET
    migrated = subprocess.run(
        [*entrypoint, "migrate"], env=env, cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    port = free_port()
    command = exec_form(final.last("CMD"))
    command[command.index("--host") + 1] = "127.0.0.1"
    if "--port" in command:
        command[command.index("--port") + 1] = str(port)
    else:
        command += ["--port", str(port)]
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = start_server([*entrypoint, *command], env, workdir, log)
    try:
        wait_until_ready(base_url, server)
        assert httpx.get(f"{base_url}/readyz", timeout=5).json() == {"status": "ok"}
        requests = 30
        for _ in range(requests):
            assert httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200

        # With several workers, one scrape sums them all (PROMETHEUS_MULTIPROC_DIR).
        scrape = httpx.get(f"{base_url}/metrics", timeout=5)
        counted = {
            sample.labels.get("route"): sample.value
            for family in text_string_to_metric_families(scrape.text)
            for sample in family.samples
            if sample.name == "http_requests_total" and sample.labels.get("status") == "200"
        }
        assert counted.get("/healthz") == requests

        healthcheck = exec_form(final.last("HEALTHCHECK").split(" CMD ", 1)[1].strip())
        healthcheck = [part.replace(":8000/", f":{port}/") for part in healthcheck]
        probe = subprocess.run(healthcheck, env=env, capture_output=True, timeout=30)
        assert probe.returncode == 0, probe.stderr
    finally:
        stop(server, log)
    output = log.read_text()

    access = [json.loads(line) for line in output.splitlines() if '"app.access"' in line]
    assert len(access) >= requests
    assert {entry["route"] for entry in access} >= {"/healthz", "/readyz", "/metrics"}
    assert SECRET not in output
