"""Routes of the audit trail: the admins' list and verification, the patient's access log."""

import re
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BeforeValidator

from app.audit import service
from app.audit.repository import EventFilters
from app.audit.schemas import AccessLogEntry, AuditEventPublic, ChainBroken, ChainIntact
from app.auth.dependencies import RequireAdmin, protected_router, reader_of
from app.core.dependencies import SessionDep
from app.core.pagination import PageDep, page_response
from app.core.responses import MAX_ID, errors
from app.core.schemas import Text

router = protected_router("audit")

_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}T")


def _iso_8601_only(value: object) -> object:
    """Pydantic would also read `0.5` or `1700000000` as Unix times: not the contract."""
    if isinstance(value, str) and not _ISO_8601.match(value):
        raise ValueError("must be an ISO 8601 date and time with a UTC offset")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only)]


async def event_filters(  # async: FastAPI runs a plain function in its thread pool
    actor_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Who acted")] = None,
    action: Annotated[
        Annotated[str, Text(64)] | None,
        Query(description="e.g. `record.read`, `auth.login`, `access.forbidden`"),
    ] = None,
    resource_type: Annotated[
        Annotated[str, Text(32)] | None,
        Query(description="e.g. `record`, `patient`, `user`, `endpoint`"),
    ] = None,
    resource_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Annotated[
        Instant | None,
        Query(description="Events at or after this instant (ISO 8601 with an offset)"),
    ] = None,
    until: Annotated[
        Instant | None,
        Query(description="Events strictly before this instant (ISO 8601 with an offset)"),
    ] = None,
) -> EventFilters:
    return EventFilters(
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
    )


@router.get(
    "/audit/",
    response_model=list[AuditEventPublic],
    summary="List audit events",
    description=(
        "Admins only. Events in id order (the chain's order), filtered by any combination of "
        "`actor_id`, `action`, `resource_type`, `resource_id`, and a time window "
        "`since` <= at < `until` (ISO 8601 with a UTC offset; a time without one is a 422). "
        'Keyset pages: `limit`, `cursor`, `Link: <...>; rel="next"`.'
    ),
    responses=errors(401, 403),
)
async def list_audit_events(
    filters: Annotated[EventFilters, Depends(event_filters)],
    page: PageDep,
    request: Request,
) -> Response:
    events, more = await service.list_events(reader_of(request), filters, page)
    return page_response(events, more, request)


@router.get(
    "/audit/verify",
    response_model=ChainIntact | ChainBroken,
    summary="Verify the audit hash chain",
    description=(
        "Admins only. Recomputes the SHA-256 chain over every event in order (streamed). "
        '→ `{"ok": true, "events": N}`, or `{"ok": false, "first_bad_event_id": id}` naming '
        "the first event that was altered, follows a removed one, or was inserted out of band "
        "(a removed tail is named by the id the chain head still records)."
    ),
    responses=errors(401, 403),
)
async def verify_audit_chain(admin: RequireAdmin, session: SessionDep) -> ChainIntact | ChainBroken:
    report = await service.verify(session, admin)
    if report.ok:
        return ChainIntact(ok=True, events=report.events)
    assert report.first_bad_event_id is not None
    return ChainBroken(ok=False, first_bad_event_id=report.first_bad_event_id)


@router.get(
    "/patients/{patient_id}/access-log",
    response_model=list[AccessLogEntry],
    summary="A patient's access log",
    description=(
        "Every access to the patient's data (profile, records, history, emergency grants, and "
        "each page of a list that showed him, among other patients or not), refused attempts "
        "included, newest first: who (name, role, their department then), what, the outcome, "
        "and whether it was under an emergency grant. "
        "Admins: any patient. Patients: themselves only (another id is a 404). Doctors: 403. "
        'Keyset pages by descending id: `limit`, `cursor`, `Link: <...>; rel="next"`.'
    ),
    responses=errors(401, 403, 404),
)
async def get_patient_access_log(
    patient_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    page: PageDep,
    request: Request,
) -> Response:
    entries, more = await service.access_log(reader_of(request), patient_id, page)
    last = entries[-1]["id"] if more else None
    for entry in entries:  # the id is the cursor, not part of the entry
        del entry["id"]
    return page_response(entries, more, request, last_id=last)
