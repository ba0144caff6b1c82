"""The process-level suites (real servers, a private PostgreSQL cluster) run on request
(`make reliability`, or `pytest tests/reliability`), not in the quick suite that a bare
`pytest` runs; the soak runs only when its file is named (`make soak`)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.cluster import PostgresCluster, postgres_cluster
from tests.reliability.hospital import Hospital, seed_hospital

PROCESS_SUITES = {
    "test_processes.py",
    "test_db_faults.py",
    "test_pool_exhaustion.py",
    "test_graceful_shutdown.py",
    "test_sqlite_processes.py",
}


def _named(path: Path, config: pytest.Config) -> bool:
    return any(Path(str(arg).split("::")[0]).resolve() == path.resolve() for arg in config.args)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name == "test_soak.py":
        return not _named(collection_path, config)
    if collection_path.name in PROCESS_SUITES:
        return config.args_source == pytest.Config.ArgsSource.TESTPATHS
    return None


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster of the module's own, which its tests may stop."""
    with postgres_cluster() as running:
        yield running


@pytest.fixture(scope="module")
async def hospital(cluster: PostgresCluster) -> Hospital:
    """The module's hospital on its private cluster (a module may define its own instead)."""
    return await seed_hospital(cluster)
