"""Group commit of the audit events of read requests (see app/transaction.py).

Every audited read must append its events to the one hash chain before its answer
leaves, and the chain head's row lock makes appends take turns. Appended one request at a
time, the turns (and their commits) are what limits how many reads the server answers.
Here the requests of a process that arrive while an append is under way wait together,
and the next append writes all their events in one statement: one lock turn, one commit,
any number of events. Each request still answers only once its own events are committed.
"""

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.repository import NewEvent, append, append_on_driver
from app.core.db import driver_connection

if TYPE_CHECKING:
    from app.transaction import ReadBinds

logger = logging.getLogger("app.audit")


class AuditUnavailable(ConnectionError):
    """The events could not be committed: the request must not answer with the data."""


class AuditBatcher:
    def __init__(self) -> None:
        self._waiting: list[tuple[Sequence[NewEvent], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, binds: "ReadBinds", events: Sequence[NewEvent]) -> None:
        """Return once `events` are committed to the chain (with those of other requests)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((events, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(binds))
        # A request cancelled meanwhile (its client left) stops waiting; its events, already
        # handed over, are appended all the same.
        await future

    async def _write(self, binds: "ReadBinds") -> None:
        batch: list[tuple[Sequence[NewEvent], asyncio.Future[None]]] = []
        try:
            while self._waiting:
                # One turn of the event loop first: requests whose reads came back in the
                # same poll join this append instead of waiting for the next.
                await asyncio.sleep(0)
                batch, self._waiting = self._waiting, []
                events = [event for events, _ in batch for event in events]
                _settle(batch, await self._append(events, binds))
        finally:
            self._writer = None
            _settle(batch, "audit append interrupted")  # only if cancelled mid-append

    @staticmethod
    async def _append(events: list[NewEvent], binds: "ReadBinds") -> str | None:
        """None once committed, else what went wrong (without values: no data in logs)."""
        bind = binds.append
        try:
            if binds.driver:  # one statement, committed on its own
                async with driver_connection(bind) as connection:
                    await append_on_driver(connection, events)
            elif isinstance(bind, AsyncEngine):
                async with bind.begin() as connection:
                    await append(connection, events)
            else:  # a connection lent by a test, inside its own transaction
                async with bind.begin_nested():
                    await append(bind, events)
        except Exception as error:  # every waiter gets its own 503; the cause is logged once
            logger.warning("audit append failed: %s", type(error).__name__)
            return f"audit trail unavailable: {type(error).__name__}"
        return None


def _settle(
    batch: list[tuple[Sequence[NewEvent], asyncio.Future[None]]], failure: str | None
) -> None:
    for _events, future in batch:
        if future.done():
            continue
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(AuditUnavailable(failure))
