"""The ceiling: the least work that can answer like the API, on the same stack.

    uvicorn bench.ceiling:app --workers 2 --loop uvloop --http httptools --no-access-log

(b) `GET /b/{id}`: verify an HS256 bearer token, select one patient_records row by primary
    key with raw asyncpg, answer it as JSON.
(d) `GET /d?department_id=`: 50 rows of patient_records (of one department when given,
    the API's list shape) as JSON with raw asyncpg.
(w) `POST /w`: verify the token, one `INSERT … RETURNING` of a record-sized row (the body
    the API's record POST gets) into a table of the ceiling's own, committed on its own.

No ORM, no Pydantic, no audit write: the practical limit of one database round trip per
request on this machine, measured beside the API so that their ratio means something.
Environment: DATABASE_URL, SECRET_KEY, CEILING_POOL_SIZE (default 10 per worker).
"""

import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from fastapi import FastAPI, Header, HTTPException, Request, Response
from jose import JWTError, jwt

COLUMNS = (
    "id, patient_id, department_id, author_id, diagnosis, observations, treatments, notes, "
    "version, created_at, updated_at"
)
ONE = f"SELECT {COLUMNS} FROM patient_records WHERE id = $1"
PAGE = f"SELECT {COLUMNS} FROM patient_records ORDER BY id LIMIT 50"
WRITES_TABLE = """
    CREATE TABLE IF NOT EXISTS bench_ceiling_writes (
        id bigserial PRIMARY KEY, patient_id bigint NOT NULL, department_id bigint NOT NULL,
        author_id bigint NOT NULL, diagnosis text NOT NULL, observations text, treatments text,
        notes text, version integer NOT NULL, created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL)
"""
WRITE = (
    "INSERT INTO bench_ceiling_writes (patient_id, department_id, author_id, diagnosis, "
    "observations, treatments, notes, version, created_at, updated_at) "
    "VALUES ($1, 1, $2, $3, $4, $5, $6, 1, now(), now()) RETURNING " + COLUMNS
)
PAGE_OF_DEPARTMENT = (
    f"SELECT {COLUMNS} FROM patient_records WHERE department_id = $1 ORDER BY id LIMIT 50"
)


def _dsn() -> str:
    url = os.environ["DATABASE_URL"]
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        url = url.replace(prefix, "postgresql://", 1)
    return url


async def _keep_session(_connection: Any) -> None:
    """No reset statement when a connection returns to the pool. asyncpg's default sends
    one (`RESET ALL`, `CLOSE ALL`, `UNLISTEN *`, advisory unlocks) after every request:
    a second round trip, which the ceiling, changing no session state, does not need (nor
    does the API's pool, which sends nothing on check-in)."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("CEILING_POOL_SIZE", "10"))
    app.state.key = os.environ["SECRET_KEY"]
    app.state.pool = await asyncpg.create_pool(
        _dsn(), min_size=size, max_size=size, reset=_keep_session
    )
    async with app.state.pool.acquire() as connection:
        # Both workers start at once: one creates the table, the other may fail to.
        with contextlib.suppress(asyncpg.UniqueViolationError):
            await connection.execute(WRITES_TABLE)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})


def _claims(request: Request, authorization: str) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401)
    try:
        claims: dict[str, Any] = jwt.decode(token, request.app.state.key, algorithms=["HS256"])
    except JWTError:
        raise HTTPException(401) from None
    if claims.get("type") != "access":
        raise HTTPException(401)
    return claims


@app.get("/b/{record_id}")
async def one(record_id: int, request: Request, authorization: str = Header("")) -> Response:
    _claims(request, authorization)
    row = await request.app.state.pool.fetchrow(ONE, record_id)
    if row is None:
        raise HTTPException(404)
    return _json(dict(row))


@app.post("/w")
async def write(request: Request, authorization: str = Header("")) -> Response:
    claims = _claims(request, authorization)
    body = orjson.loads(await request.body())
    row = await request.app.state.pool.fetchrow(
        WRITE,
        body["patient_id"],
        int(claims["sub"]),
        body["diagnosis"],
        body.get("observations"),
        body.get("treatments"),
        body.get("notes"),
    )
    return Response(orjson.dumps(dict(row)), status_code=201, media_type="application/json")


@app.get("/d")
async def page(request: Request, department_id: int | None = None) -> Response:
    pool = request.app.state.pool
    if department_id is None:
        rows = await pool.fetch(PAGE)
    else:
        rows = await pool.fetch(PAGE_OF_DEPARTMENT, department_id)
    return _json([dict(row) for row in rows])
