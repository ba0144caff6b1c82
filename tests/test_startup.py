"""Start-up refusals as an operator meets them (a real process for each entry point), and
the production defaults."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import Settings

BIN = Path(sys.executable).parent
ENTRY_POINTS = {
    "hospital-api serve": [str(BIN / "hospital-api"), "serve", "--port", "0"],
    "uvicorn app.main:app": [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0"],
}


def start(tmp_path: Path, command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'start.db'}",
        **env,
    }
    return subprocess.run(
        command,
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"ENVIRONMENT": "production"}, "SECRET_KEY", id="no key"),
        pytest.param(
            {"ENVIRONMENT": "production", "SECRET_KEY": "short but secret"},
            "SECRET_KEY",
            id="short key",
        ),
        pytest.param({"ENVIRONMENT": "staging"}, "ENVIRONMENT", id="unknown environment"),
    ],
)
def test_a_configuration_that_cannot_run_is_one_line_and_exit_2(
    tmp_path: Path, entry_point: str, env: dict[str, str], names: str
) -> None:
    result = start(tmp_path, ENTRY_POINTS[entry_point], **env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    assert names in lines[0]
    assert "short but secret" not in result.stderr + result.stdout  # never the value


def test_production_logs_json_by_default() -> None:
    settings = Settings(environment="production", secret_key="k" * 40)
    assert settings.log_format == "json"
    assert Settings(environment="development").log_format == "text"
    assert Settings(environment="test").log_format == "text"


def test_an_explicit_log_format_wins_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(environment="production", log_format="text").log_format == "text"
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("LOG_FORMAT", "text")
    assert Settings().log_format == "text"
    monkeypatch.delenv("LOG_FORMAT")
    assert Settings().log_format == "json"
