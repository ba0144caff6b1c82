"""The audit trail: append-only events linked by a SHA-256 hash chain."""

from datetime import datetime

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigId


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_patient_id_id", "patient_id", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_resource_type_resource_id", "resource_type", "resource_id"),
        Index("ix_audit_events_at", "at"),
        # The events after the link mark that the access logs and the linking runs read.
        Index(
            "ix_audit_events_several_patients",
            "id",
            postgresql_where=text("patient_ids IS NOT NULL"),
            sqlite_where=text("patient_ids IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[int | None] = mapped_column(BigId)
    outcome: Mapped[str] = mapped_column(String(8))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    emergency_grant_id: Mapped[int | None] = mapped_column(BigId)
    # Whose data was touched, and the actor's department then: the patient's access log.
    # One patient in patient_id; several (a list page) in patient_ids, the sorted distinct
    # ids as compact JSON (`[3,17,42]`), chained with the rest and indexed by the links
    # (AuditPatientLink).
    patient_id: Mapped[int | None] = mapped_column(BigId)
    department_id: Mapped[int | None] = mapped_column(BigId)
    patient_ids: Mapped[str | None] = mapped_column(Text)
    # sha256(previous event's hash + sha256(canonical content)), hex.
    hash: Mapped[str] = mapped_column(String(64))


class AuditPatientLink(Base):
    """Up to `links.EVENTS_PER_LINK` events of one patient among several (a list page): the
    patient's access log finds them through the (patient_id, first_event_id) key, newest
    first. Written by `audit.links` shortly after the events, from their chained
    `patient_ids`; append-only, like the events.

    `event_ids` is the events' ids as a compact JSON array, the smallest of them
    `first_event_id`. One linking run writes one row per patient (more when it has many
    events): a patient's rows cover disjoint, ascending stretches of the chain.
    """

    __tablename__ = "audit_patient_links"

    patient_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    first_event_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_ids: Mapped[str] = mapped_column(Text)


class AuditLinkState(Base):
    """The single row naming the last event `audit.links` has linked: every event after it
    is read straight from the chain by the access logs until it is linked."""

    __tablename__ = "audit_link_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    linked_event_id: Mapped[int] = mapped_column(BigId)


class AuditChainHead(Base):
    """The single row naming the chain's last event; appends lock it, so the chain stays one."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int | None] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))
