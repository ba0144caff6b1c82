"""Hostile input: NUL characters, oversized and endless bodies, wrong content types, numbers
past 64 bits, deeply nested and invalid JSON, strings past every field's maximum. Each is
refused with the right 4xx, quickly, and never with a 500.

The operations, their parameters and their string fields are read from the app's own
OpenAPI schema, so a new route or field is covered without editing this file.
"""

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)

ROLES = ("anonymous", "patient", "doctor", "admin")
TOO_BIG = 2**64  # past every 64-bit column
MIB = 1024 * 1024

SCHEMA: dict[str, Any] = create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(self.spec.get("parameters", []))

    def json_body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            return None
        return resolve(content["application/json"]["schema"])


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        resolved: dict[str, Any] = SCHEMA["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a (possibly nullable) property."""
    schema = resolve(schema)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return [resolve(option) for option in options if option.get("type") != "null"]


def first_of_type(schema: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((option for option in variants(schema) if option.get("type") == kind), None)


# The REST API's operations. FHIR's answer with FHIR's codes (400 for a value it cannot
# search with, 404 for an id that names nothing, OperationOutcome bodies): tests/fhir holds
# them to those, the same hostile values included.
OPERATIONS = [
    Operation(method, path, spec)
    for path, methods in SCHEMA["paths"].items()
    for method, spec in methods.items()
    if not path.startswith("/fhir/")
]
BODY_OPERATIONS = [op for op in OPERATIONS if op.json_body_schema() is not None]


def string_fields() -> Iterator[tuple[Operation, str, int]]:
    for op in BODY_OPERATIONS:
        body = op.json_body_schema() or {}
        for name, prop in body.get("properties", {}).items():
            string = first_of_type(prop, "string")
            free_text = string is not None and string.get("format") not in ("date", "date-time")
            if string is not None and free_text and "enum" not in string:
                yield op, name, int(string.get("maxLength", 0))


def integer_fields() -> Iterator[tuple[Operation, str, str]]:
    for op in OPERATIONS:
        for parameter in op.parameters:
            if first_of_type(parameter["schema"], "integer") is not None:
                yield op, parameter["in"], parameter["name"]
        body = op.json_body_schema() or {}
        for name, prop in body.get("properties", {}).items():
            if first_of_type(prop, "integer") is not None:
                yield op, "body", name


def string_query_parameters() -> Iterator[tuple[Operation, str]]:
    for op in OPERATIONS:
        for parameter in op.parameters:
            string = first_of_type(parameter["schema"], "string")
            if parameter["in"] == "query" and string is not None and "format" not in string:
                yield op, parameter["name"]


STRING_FIELDS = list(string_fields())
INTEGER_FIELDS = list(integer_fields())
STRING_QUERIES = list(string_query_parameters())


def test_the_schema_has_what_this_suite_attacks() -> None:
    assert len(BODY_OPERATIONS) >= 8
    assert len(STRING_FIELDS) >= 15
    assert all(max_length > 0 for _, _, max_length in STRING_FIELDS), "unbounded string field"
    assert len(INTEGER_FIELDS) >= 10
    assert STRING_QUERIES


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_the_operation_declares_the_errors_it_can_answer(op: Operation) -> None:
    """Clients (and the schema fuzz) rely on the declared answers: a route that takes a body
    can answer 413, one with input 422, one behind a token 401."""
    declared = set(op.spec["responses"])
    expected = set()
    if op.method in ("post", "put", "patch"):
        expected.add("413")
    if op.parameters or op.spec.get("requestBody"):
        expected.add("422")
    if op.spec.get("security"):
        expected.add("401")
    assert expected <= declared, f"{op} does not declare {sorted(expected - declared)}"


@dataclass
class Hospital:
    ids: dict[str, int]
    headers: dict[str, dict[str, str]]

    def path(self, op: Operation, overrides: dict[str, Any] | None = None) -> str:
        """The operation's path with real ids (or the given raw values) filled in."""
        values = {**self.ids, **(overrides or {})}
        path = op.path
        for parameter in op.parameters:
            if parameter["in"] == "path":
                path = path.replace("{" + parameter["name"] + "}", str(values[parameter["name"]]))
        return path


@pytest.fixture
async def hospital(db: AsyncSession, settings: Settings) -> Hospital:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patient = await create_patient(db)
    admin = await create_admin(db)
    record = await create_record(db, patient=patient, doctor=doctor, department=department)
    users = {"patient": patient, "doctor": doctor, "admin": admin}
    headers = {"anonymous": {}}
    for role, user in users.items():
        headers[role] = (await tokens_for(db, settings, user)).headers
    ids = {
        "department_id": department.id,
        "doctor_id": doctor.id,
        "patient_id": patient.id,
        "user_id": patient.id,
        "record_id": record.id,
    }
    return Hospital(ids, headers)


async def send(
    client: httpx.AsyncClient,
    hospital: Hospital,
    op: Operation,
    *,
    role: str,
    path: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    headers = {**hospital.headers[role], **kwargs.pop("headers", {})}
    started = time.monotonic()
    response = await client.request(op.method, path or hospital.path(op), headers=headers, **kwargs)
    elapsed = time.monotonic() - started
    assert response.status_code < 500, f"{op} as {role}: {response.status_code} {response.text}"
    assert elapsed < 5, f"{op} as {role} took {elapsed:.1f} s"
    return response


async def first_admitted(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, **kwargs: Any
) -> tuple[str, httpx.Response]:
    """Send as each role until one gets past authentication and role checks (the answer
    then is about the input); every answer on the way must be a 401 or 403. An operation
    open to anyone (login, refresh) is answered as the anonymous caller."""
    if not op.spec.get("security"):
        return "anonymous", await send(client, hospital, op, role="anonymous", **kwargs)
    for role in ROLES:
        response = await send(client, hospital, op, role=role, **kwargs)
        if response.status_code not in (401, 403):
            return role, response
    raise AssertionError(f"{op}: no role gets past authentication")


def names_field(response: httpx.Response, field: str) -> bool:
    detail = response.json()["detail"]
    return isinstance(detail, list) and any(field in error["loc"] for error in detail)


def sample_body(op: Operation) -> dict[str, Any]:
    """A body that passes the schema's own rules (the business rules may still refuse it)."""
    schema = op.json_body_schema() or {}
    body: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        option = variants(prop)[0]
        kind = option.get("type")
        if "enum" in option:
            body[name] = option["enum"][0]
        elif kind == "string":
            body[name] = sample_string(name, option)
        elif kind == "integer":
            body[name] = 1
        elif kind == "boolean":
            body[name] = True
    return body


def sample_string(name: str, option: dict[str, Any]) -> str:
    if option.get("format") == "email":
        return "someone@example.org"
    if option.get("format") == "date":
        return "1990-01-01"
    return "a" * max(int(option.get("minLength", 0)), 12)


@pytest.mark.parametrize(
    ("op", "field", "max_length"),
    STRING_FIELDS,
    ids=[f"{op} {field}" for op, field, _ in STRING_FIELDS],
)
async def test_string_past_its_maximum_is_422(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, field: str, max_length: int
) -> None:
    for length in (max_length + 1, 200_000):
        body = {**sample_body(op), field: "a" * length}
        _, response = await first_admitted(client, hospital, op, json=body)
        assert response.status_code == 422, f"{op} {field}={length} chars: {response.text}"
        assert names_field(response, field), response.text


@pytest.mark.parametrize(
    ("op", "field"),
    [(op, field) for op, field, _ in STRING_FIELDS],
    ids=[f"{op} {field}" for op, field, _ in STRING_FIELDS],
)
async def test_nul_character_in_a_json_string_is_422(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, field: str
) -> None:
    body = {**sample_body(op), field: "before\x00after"}
    _, response = await first_admitted(client, hospital, op, json=body)
    assert response.status_code == 422, response.text
    assert names_field(response, field), response.text


@pytest.mark.parametrize(
    ("op", "name"), STRING_QUERIES, ids=[f"{op} {name}" for op, name in STRING_QUERIES]
)
async def test_nul_character_in_a_query_parameter_is_422(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, name: str
) -> None:
    _, response = await first_admitted(client, hospital, op, params={name: "a\x00b"})
    assert response.status_code == 422, response.text
    assert names_field(response, name), response.text


@pytest.mark.parametrize(
    ("op", "where", "name"),
    INTEGER_FIELDS,
    ids=[f"{op} {where} {name}" for op, where, name in INTEGER_FIELDS],
)
@pytest.mark.parametrize("value", [TOO_BIG, -TOO_BIG, 2**63, 10**40])
async def test_integer_past_64_bits_is_422(
    client: httpx.AsyncClient,
    hospital: Hospital,
    op: Operation,
    where: str,
    name: str,
    value: int,
) -> None:
    kwargs: dict[str, Any] = {}
    if where == "path":
        kwargs["path"] = hospital.path(op, {name: value})
    elif where == "query":
        kwargs["params"] = {name: str(value)}
    elif where == "body":
        kwargs["json"] = {**sample_body(op), name: value}
    _, response = await first_admitted(client, hospital, op, **kwargs)
    assert response.status_code == 422, response.text
    assert names_field(response, name), response.text


PATH_OPERATIONS = [
    (op, parameter["name"])
    for op in OPERATIONS
    for parameter in op.parameters
    if parameter["in"] == "path"
]


PATH_IDS = [f"{op} {name}" for op, name in PATH_OPERATIONS]


@pytest.mark.parametrize(("op", "name"), PATH_OPERATIONS, ids=PATH_IDS)
@pytest.mark.parametrize("value", ["0x1", "1e3", "%EF%BC%91", "%D9%A3", "%00", "1;2", "%FF", "-"])
async def test_odd_ids_in_paths_are_422_naming_the_parameter(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, name: str, value: str
) -> None:
    """Hex, exponents, full-width and Arabic-Indic digits, NUL, separators, broken UTF-8,
    a sign alone: no integer, so invalid input, never some object."""
    role, response = await first_admitted(
        client, hospital, op, path=hospital.path(op, {name: value})
    )
    assert response.status_code == 422, (role, response.text)
    assert names_field(response, name), (role, response.text)


@pytest.mark.parametrize(("op", "name"), PATH_OPERATIONS, ids=PATH_IDS)
async def test_a_slash_for_an_id_is_a_path_that_does_not_exist(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, name: str
) -> None:
    for role in ROLES:
        response = await send(
            client, hospital, op, role=role, path=hospital.path(op, {name: "%2F"})
        )
        assert response.status_code == 404, (role, response.text)
        assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(("op", "name"), PATH_OPERATIONS, ids=PATH_IDS)
@pytest.mark.parametrize(("value", "integer"), [("1.0", 1), ("+1", 1), ("%201", 1), ("1_0", 10)])
async def test_integer_spellings_in_paths_are_read_as_that_integer(
    client: httpx.AsyncClient,
    hospital: Hospital,
    op: Operation,
    name: str,
    value: str,
    integer: int,
) -> None:
    """Pydantic reads these as integers ("1_0" as Python does, 10): the answer is the one
    the plain integer gets, for the same caller."""
    role, response = await first_admitted(
        client, hospital, op, path=hospital.path(op, {name: value})
    )
    plain = await send(client, hospital, op, role=role, path=hospital.path(op, {name: integer}))
    assert response.status_code == plain.status_code, (role, response.text, plain.text)
    if response.status_code == 422:
        assert response.json() == plain.json()


@pytest.mark.parametrize(("op", "name"), PATH_OPERATIONS, ids=PATH_IDS)
@pytest.mark.parametrize("value", ["-0", "0", "-1"])
async def test_ids_below_one_are_422_naming_the_parameter(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, name: str, value: str
) -> None:
    role, response = await first_admitted(
        client, hospital, op, path=hospital.path(op, {name: value})
    )
    assert response.status_code == 422, (role, response.text)
    assert names_field(response, name), (role, response.text)


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=str)
async def test_declared_body_over_the_limit_is_413(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation
) -> None:
    body = b'{"x": "' + b"a" * (2 * MIB) + b'"}'
    for role in ROLES:
        response = await send(
            client, hospital, op, role=role, content=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert response.status_code == 413, response.text


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=str)
async def test_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": "'
        for _ in range(32):
            yield b"a" * (64 * 1024)
        yield b'"}'

    _, response = await first_admitted(
        client, hospital, op, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "content-length" not in {key.lower() for key in response.request.headers}


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=str)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "multipart/form-data; boundary=x", None],
)
async def test_wrong_or_missing_content_type_is_422(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, content_type: str | None
) -> None:
    """A JSON body is read only when the request says it is JSON (or, for the login, the
    OAuth2 form): anything else is invalid input, the body named."""
    headers = {"Content-Type": content_type} if content_type else {}
    body = orjson.dumps(sample_body(op))
    _, response = await first_admitted(client, hospital, op, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body"], response.text


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=str)
@pytest.mark.parametrize("depth", [10_000, 100_000])
async def test_deeply_nested_json_is_refused_quickly(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, depth: int
) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        _, response = await first_admitted(
            client, hospital, op, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, response.text


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=str)
@pytest.mark.parametrize(
    "body",
    [b'{"username": "\xff\xfe\xfd"}', b"\xc3\x28", b'{"a": "\xed\xa0\x80"}', b"\x00\x00\x00"],
    ids=["bad-bytes", "bad-sequence", "surrogate", "nul-bytes"],
)
async def test_invalid_utf8_or_json_body_is_422(
    client: httpx.AsyncClient, hospital: Hospital, op: Operation, body: bytes
) -> None:
    _, response = await first_admitted(
        client, hospital, op, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"username": "a" * 200_000, "password": "x"},
        {"username": "alice", "password": "p" * 200_000},
        {"username": "ali\x00ce", "password": "x"},
        {"username": "alice", "password": "pass\x00word"},
    ],
    ids=["long-username", "long-password", "nul-username", "nul-password"],
)
@pytest.mark.parametrize("as_form", [False, True], ids=["json", "form"])
async def test_login_refuses_hostile_credentials(
    client: httpx.AsyncClient, body: dict[str, str], as_form: bool
) -> None:
    kwargs: dict[str, Any] = {"data": body} if as_form else {"json": body}
    started = time.monotonic()
    response = await client.post("/auth/login/", **kwargs)
    assert response.status_code == 422, response.text
    assert time.monotonic() - started < 2  # refused before any password hashing
    assert "p" * 1000 not in response.text


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + "a" * 100_000,
        "Bearer \x7f\x01",
        "Bearer " + "é" * 10,  # sent as UTF-8 bytes
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
    ],
)
async def test_garbage_tokens_are_401(client: httpx.AsyncClient, authorization: str) -> None:
    response = await client.get(
        "/auth/me", headers={"Authorization": authorization.encode("utf-8")}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "limit=-1", f"limit={TOO_BIG}", "limit=1e3", "limit=%00",
     "cursor=%00", "cursor=" + "z" * 100, "cursor=not-a-cursor", "cursor=%FF%FE",
     "cursor=MA", "cursor=-1"],
)  # fmt: skip
async def test_bad_page_parameters_are_422(
    client: httpx.AsyncClient, hospital: Hospital, query: str
) -> None:
    response = await client.get(f"/api/department/?{query}", headers=hospital.headers["patient"])
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ('"' + "9" * 40 + '"', 412),  # no version has 40 digits
        ('"1\x00"', 412),
        ('W/"1"', 412),  # the strong comparison: a weak tag never matches
        ("*", 200),
        ('"-1"', 412),
        ("x" * 300, 422),  # past the header's 200 characters
        ('""', 412),
    ],
)
async def test_odd_if_match_values_get_the_contracts_answer(
    client: httpx.AsyncClient, hospital: Hospital, if_match: str, status: int
) -> None:
    op = next(op for op in OPERATIONS if op.method == "patch" and "record_id" in op.path)
    response = await send(
        client, hospital, op, role="doctor", json={"diagnosis": "Flu"},
        headers={"If-Match": if_match},
    )  # fmt: skip
    assert response.status_code == status, response.text
    if status == 422:
        assert names_field(response, "if-match"), response.text
