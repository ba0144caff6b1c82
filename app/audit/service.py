"""Recording audit events (appended as the last write of the request's transaction), and
reading the trail: the admins' list and verification, the patient's access log."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import policy, repository
from app.audit.chain import canonical_patient_ids
from app.audit.repository import EventFilters, NewEvent
from app.audit.verify import ChainReport, verify_chain
from app.core.context import Principal, RequestMeta
from app.core.db import utcnow
from app.core.errors import NotFound
from app.core.pagination import Page
from app.transaction import Unit, pending_events

if TYPE_CHECKING:  # the reader records its refusals through this module
    from app.auth.reader import Reader


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


class Subject(TypedDict, total=False):
    """What an event says was accessed, and how: the keyword fields every way of
    recording an event takes, and passes on."""

    resource_id: int | None
    outcome: Outcome  # allowed unless given
    patient_id: int | None  # the one patient whose data it touched
    patients: Collection[int]  # a list page's patients (one of them: as patient_id)
    emergency_grant_id: int | None


def new_event(
    *,
    meta: RequestMeta,
    actor_id: int | None,
    department_id: int | None,
    action: str,
    resource_type: str,
    **subject: Unpack[Subject],
) -> NewEvent:
    """One event, stamped now, of an access from `meta`'s origin to the data of
    `patient_id`, or of each of `patients` (a list page: one event however many)."""
    patient_id, patient_ids = _named(subject.get("patient_id"), subject.get("patients", ()))
    return NewEvent(
        at=utcnow(),
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=subject.get("resource_id"),
        outcome=subject.get("outcome", Outcome.ALLOWED).value,
        ip=meta.ip,
        request_id=meta.request_id,
        emergency_grant_id=subject.get("emergency_grant_id"),
        patient_id=patient_id,
        department_id=department_id,
        patient_ids=patient_ids,
    )


def _named(patient_id: int | None, patients: Collection[int]) -> tuple[int | None, str | None]:
    """(patient_id, patient_ids) of an event: one patient in the first, as every single
    read has it; several in the second, linked to the event for their access logs."""
    if not patients:
        return patient_id, None
    named = {*patients} if patient_id is None else {*patients, patient_id}
    if len(named) == 1:
        return named.pop(), None
    return None, canonical_patient_ids(named)


def event_by(
    actor: Principal, *, action: str, resource_type: str, **subject: Unpack[Subject]
) -> NewEvent:
    """One event of an authenticated caller's access: the actor, his department and the
    request's origin come from the principal."""
    return new_event(
        meta=actor.meta,
        actor_id=actor.id,
        department_id=actor.department_id,
        action=action,
        resource_type=resource_type,
        **subject,
    )


def forbidden_event(actor: Principal) -> NewEvent:
    """A caller whose role may never use the endpoint."""
    return event_by(
        actor, action="access.forbidden", resource_type="endpoint", outcome=Outcome.DENIED
    )


def record(
    unit: Unit,
    *,
    meta: RequestMeta,
    actor: Principal | None = None,
    actor_id: int | None = None,
    action: str,
    resource_type: str,
    **subject: Unpack[Subject],
) -> None:
    """Queue one event in this write's transaction: committed with it, or rolled back
    with it (a refusal's events are committed: see app/transaction.py)."""
    pending_events(unit).append(
        new_event(
            meta=meta,
            actor_id=actor.id if actor else actor_id,
            department_id=actor.department_id if actor else None,
            action=action,
            resource_type=resource_type,
            **subject,
        )
    )


def record_by(
    unit: Unit,
    actor: Principal,
    *,
    action: str,
    resource_type: str,
    **subject: Unpack[Subject],
) -> None:
    """`record` for an authenticated caller."""
    pending_events(unit).append(
        event_by(actor, action=action, resource_type=resource_type, **subject)
    )


async def list_events(
    reader: Reader, filters: EventFilters, page: Page
) -> tuple[list[dict[str, Any]], bool]:
    """A page of the trail in id order; looking at the trail is itself recorded."""
    given = filters.given()
    statement = repository.events_page(page.limit, frozenset(given))
    scoped = await reader.read(statement, after=page.after, **given)
    await reader.require(scoped.caller, policy.TRAIL_READERS)
    events = [
        dict(zip(repository.EVENT_FIELDS, scoped.data(row), strict=True)) for row in scoped.rows
    ]
    events.sort(key=itemgetter("id"))
    await reader.publish([event_by(scoped.caller, action="audit.list", resource_type="audit")])
    return events[: page.limit], len(events) > page.limit


async def verify(session: AsyncSession, admin: Principal) -> ChainReport:
    """The whole chain in one transaction (one snapshot of it), its event recorded there."""
    report = await verify_chain(session)
    record_by(session, admin, action="audit.verify", resource_type="audit")
    return report


async def access_log(
    reader: Reader, patient_id: int, page: Page
) -> tuple[list[dict[str, Any]], bool]:
    """Who touched the patient's data, newest first: admins, and the patient himself.

    Another patient gets the same 404 as for an id that is no patient (and the attempt is
    recorded in the patient's own log).
    """
    before = page.after_id or repository.NEWEST
    statement = repository.access_log_page(reader.dialect.name, page.limit)
    scoped = await reader.read(statement, patient_id=patient_id, before=before)
    await reader.require(scoped.caller, policy.ACCESS_LOG_READERS)
    found, visible = scoped.data(scoped.rows[0])[:2] if scoped.rows else (None, False)
    shown = bool(found and visible)
    event = event_by(
        scoped.caller,
        action="patient.access_log",
        resource_type="patient",
        resource_id=patient_id,
        outcome=Outcome.ALLOWED if shown else Outcome.DENIED,
        patient_id=patient_id if found else None,
    )
    await reader.publish([event])
    if not shown:
        raise NotFound("Patient not found")
    rows = [scoped.data(row)[2:] for row in scoped.rows]
    entries = sorted(
        (dict(zip(repository.ACCESS_LOG_FIELDS, row, strict=True)) for row in rows if row[0]),
        key=itemgetter("id"),
        reverse=True,
    )
    return entries[: page.limit], len(entries) > page.limit
