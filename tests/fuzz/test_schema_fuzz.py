"""Schema fuzzing: schemathesis drives the app in-process from its own OpenAPI schema.

Every operation is exercised once per role (anonymous, patient, doctor, admin, each with a
real token) with valid and invalid data, and every response must pass schemathesis's
default checks: no 5xx, only declared status codes, bodies and headers as declared, invalid
input refused, authentication enforced. The data lives in a fresh database with real
commits, seeded with a department, a doctor in it, a patient with a record, and an admin.

FUZZ_EXAMPLES (default 5) bounds the generated examples per operation and role;
`make fuzz` raises it.
"""

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis import engine
from schemathesis.engine import Status, events
from schemathesis.python import asgi
from sqlalchemy import update

from app.auth.tokens import issue_login
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.main import create_app
from app.users.models import User
from tests.conftest import make_settings
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20261127"))
ROLES = ("anonymous", "patient", "doctor", "admin")

# Answers the contract gives to valid-looking input that the schema cannot rule out: 422 for
# rules beyond the schema (a common password, an unknown patient), 412 for a stale If-Match,
# and FHIR's 400 for a search value that is no value (a date, a cursor: strings to a schema).
POSITIVE_DATA_STATUSES = ["2xx", "400", "401", "403", "404", "409", "412", "422", "429"]


@dataclass
class World:
    settings: Settings
    user_ids: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def renew(self, role: str) -> None:
        """After a 401 (a fuzzed logout, deactivation, ...): reactivate the seeded users and
        log this role in again, so the rest of the run still fuzzes as that role."""
        with self.lock:
            self.tokens[role] = _in_own_loop(lambda: self._renew(role))

    async def _renew(self, role: str) -> str:
        engine = create_engine(self.settings)
        try:
            async with create_sessionmaker(engine)() as session:
                await session.execute(
                    update(User).where(User.id.in_(self.user_ids.values())).values(is_active=True)
                )
                user_id = self.user_ids[role]
                pair = await issue_login(
                    session,
                    self.settings.signing_key(),
                    self.settings,
                    user_id=user_id,
                    role=role,
                )
                await session.commit()
                return pair.access.token
        finally:
            await engine.dispose()


def _in_own_loop(work: Callable[[], Any]) -> Any:
    """Run a coroutine to completion on a private event loop, in a thread of its own (the
    test itself is synchronous and the app runs on schemathesis's loop)."""
    result: list[Any] = []

    def target() -> None:
        result.append(asyncio.run(work()))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if not result:
        raise RuntimeError("renewing the token failed (see the thread's traceback)")
    return result[0]


async def seed(database_url: str) -> World:
    world_settings = make_settings(database_url)
    engine = create_engine(world_settings)
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session)
            users = {
                "patient": await create_patient(session),
                "doctor": await create_doctor(session, department),
                "admin": await create_admin(session),
            }
            await create_record(
                session, patient=users["patient"], doctor=users["doctor"], department=department
            )
            world = World(world_settings, {role: user.id for role, user in users.items()})
            for role, user in users.items():
                world.tokens[role] = (await tokens_for(session, world_settings, user)).access
    finally:
        await engine.dispose()
    return world


@pytest.fixture(scope="session")
async def fuzz_world(fresh_database_url: Callable[[], Any]) -> World:
    return await seed(await fresh_database_url())


@pytest.fixture(scope="session")
def fuzz_app(fuzz_world: World) -> Iterator[Any]:
    yield create_app(fuzz_world.settings)  # its lifespan owns an engine on schemathesis's loop
    asgi.shutdown_lifespans()


def token_provider(world: World, role: str) -> type:
    class RoleToken:
        """The role's real token; fetched again after a 401 (a fuzzed logout or deactivation
        ended it), so the rest of the run still speaks as that role."""

        fetched = False

        def get(self, _case: schemathesis.Case, _ctx: schemathesis.AuthContext) -> str:
            if self.fetched:
                world.renew(role)
            self.fetched = True
            return world.tokens[role]

        def set(self, case: schemathesis.Case, token: str, _ctx: schemathesis.AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    return RoleToken


def failure_report(event: events.ScenarioFinished) -> Iterator[str]:
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            case = event.recorder.cases[case_id].value
            response = event.recorder.find_response(case_id=case_id)
            status = response.status_code if response is not None else "no response"
            failure = check.failure_info.failure
            yield (
                f"{event.label}: {check.name}: {failure.title} -> {status}\n"
                f"    {failure.message.strip()[:400]}\n"
                f"    {case.as_curl_command()[:600]}"
            )


@pytest.mark.parametrize("role", ROLES)
def test_schema_fuzz_as_role(fuzz_app: Any, fuzz_world: World, role: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    schema.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
        max_examples=FUZZ_EXAMPLES,
        database="none",
    )
    schema.config.checks.positive_data_acceptance.expected_statuses = POSITIVE_DATA_STATUSES
    schema.config.seed = FUZZ_SEED
    if role != "anonymous":
        schema.auth(refresh_interval=24 * 3600)(token_provider(fuzz_world, role))

    problems: list[str] = []
    scenarios = 0
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            if event.status == Status.FAILURE:
                problems.extend(failure_report(event))
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: error: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    assert scenarios > 0
    assert not problems, (
        f"{len(problems)} failures as {role} (FUZZ_SEED={FUZZ_SEED}):\n" + "\n\n".join(problems)
    )
