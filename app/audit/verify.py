"""Recompute the hash chain and name the first event that does not fit.

Each event is checked against its stored predecessor: its hash must be
sha256(previous hash + sha256(canonical content)). This finds

- an altered event (its content no longer gives its hash): that event;
- a removed event: the event after the gap (it no longer links to its predecessor);
- an event inserted by hand: that event (it cannot link to its predecessor with the right
  hash without also rewriting every later one and the head);
- a removed tail (or everything): the chain head still names the last event appended, so
  that id is reported;
- events appended by hand after the head with correct links: the first one past the head.

The patients of an event that names several are in its chained `patient_ids`; their rows
in `audit_event_patients` only index them for the access logs, and are not part of the chain.

The walk streams rows (bounded memory) and reads the head twice, before and after, so
that events appended by other transactions while it runs are neither mistaken for a
tampered tail nor required to be seen: ids grow in chain order (they are taken while the
head is locked) and each transaction commits its events with the head that names them.
"""

from contextlib import aclosing
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.chain import GENESIS_HASH, digest_of, link


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    events: int
    first_bad_event_id: int | None = None


async def verify_chain(session: AsyncSession) -> ChainReport:
    before = await repository.chain_head(session)
    if before is None:  # the migration creates the head: without it nothing can be trusted
        return ChainReport(ok=False, events=0, first_bad_event_id=0)

    previous = GENESIS_HASH
    count = 0
    last_id: int | None = None
    head_seen = before.last_event_id is None
    # Closed on the way out, also when the walk stops at a bad event (see stream_chain).
    async with aclosing(repository.stream_chain(session)) as rows:
        async for row in rows:
            event_id, *content, stored = row
            if link(previous, digest_of(*content)) != stored:
                return ChainReport(ok=False, events=count, first_bad_event_id=event_id)
            if event_id == before.last_event_id:
                if stored != before.last_hash:
                    return ChainReport(ok=False, events=count, first_bad_event_id=event_id)
                head_seen = True
            previous = stored
            last_id = event_id
            count += 1

    if not head_seen:  # the events up to the head's last one are gone
        return ChainReport(ok=False, events=count, first_bad_event_id=before.last_event_id)

    after = await repository.chain_head(session)
    end = after.last_event_id if after else None
    if last_id is not None and (end is None or end < last_id):
        # Events the head never named: appended out of band, after the chain's real end.
        first_extra = await repository.first_event_after(session, end)
        return ChainReport(ok=False, events=count, first_bad_event_id=first_extra or last_id)
    return ChainReport(ok=True, events=count)
