"""Recording audit events (appended as the last write of the request's transaction), and
reading the trail: the admins' list and verification, the patient's access log."""

from collections.abc import Collection
from enum import StrEnum
from typing import TypedDict, Unpack

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.audit import repository
from app.audit.chain import canonical_patient_ids
from app.audit.models import AuditEvent
from app.audit.repository import AccessLogRow, EventFilters, NewEvent
from app.audit.verify import ChainReport, verify_chain
from app.core.context import Principal, RequestMeta
from app.core.db import before_commit, utcnow
from app.core.errors import Forbidden, NotFound
from app.core.pagination import Page
from app.users import repository as users_repository

_PENDING = "audit_pending"


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


def record(
    session: AsyncSession,
    *,
    meta: RequestMeta,
    actor: Principal | None = None,
    actor_id: int | None = None,
    action: str,
    resource_type: str,
    **subject: Unpack[Subject],
) -> None:
    """Queue one event in this transaction: committed with it, or rolled back with it.

    Refusals are raised as errors that keep the transaction's writes (`keeps_writes`),
    so their events are committed although the request failed.
    """
    event = new_event(
        meta=meta,
        actor_id=actor.id if actor else actor_id,
        department_id=actor.department_id if actor else None,
        action=action,
        resource_type=resource_type,
        **subject,
    )
    session.info.setdefault(_PENDING, []).append(event)
    before_commit(session, _flush)


def record_by(
    session: AsyncSession,
    actor: Principal,
    *,
    action: str,
    resource_type: str,
    **subject: Unpack[Subject],
) -> None:
    """`record` for an authenticated caller: the actor, his department and the request's
    origin come from the principal."""
    record(
        session,
        meta=actor.meta,
        actor=actor,
        action=action,
        resource_type=resource_type,
        **subject,
    )


@event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back transaction keeps no event (a session may be used again after it)."""
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


async def _flush(session: AsyncSession) -> None:
    events = session.info.pop(_PENDING, [])
    if events:
        await repository.append(session, events)


async def list_events(
    session: AsyncSession, admin: Principal, filters: EventFilters, page: Page
) -> list[AuditEvent]:
    """A page of the trail in id order; looking at the trail is itself recorded."""
    if not admin.is_admin:
        raise Forbidden()
    events = await repository.list_events(
        session, filters, limit=page.limit, after_id=page.after_id
    )
    record_by(session, admin, action="audit.list", resource_type="audit")
    return events


async def verify(session: AsyncSession, admin: Principal) -> ChainReport:
    if not admin.is_admin:
        raise Forbidden()
    report = await verify_chain(session)
    record_by(session, admin, action="audit.verify", resource_type="audit")
    return report


async def access_log(
    session: AsyncSession, viewer: Principal, patient_id: int, page: Page
) -> list[AccessLogRow]:
    """Who touched the patient's data, newest first: admins, and the patient himself.

    Another patient gets the same 404 as for an id that is no patient (and the attempt is
    recorded in the patient's own log).
    """
    if not (viewer.is_admin or viewer.is_patient):
        raise Forbidden()
    visible = viewer.is_admin or viewer.id == patient_id
    exists = await users_repository.is_patient(session, patient_id)
    if not (visible and exists):
        record_by(
            session,
            viewer,
            action="patient.access_log",
            resource_type="patient",
            resource_id=patient_id,
            outcome=Outcome.DENIED,
            patient_id=patient_id if exists else None,
        )
        raise NotFound("Patient not found")
    rows = await repository.access_log(
        session, patient_id, limit=page.limit, before_id=page.after_id
    )
    record_by(
        session,
        viewer,
        action="patient.access_log",
        resource_type="patient",
        resource_id=patient_id,
        patient_id=patient_id,
    )
    return rows
