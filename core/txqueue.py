"""Items gathered during a transaction and handed over just before it commits.

One mechanism for whatever must land in the same transaction as a change but is collected while
it runs (history rows to link into the audit chain, typed case events): an item queued inside a
savepoint goes with that savepoint when it rolls back, everything goes with a rolled-back
transaction, and at the real commit each queue's `flush` gets its items, queues in the order
they were created, those made with `first` before the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

T = TypeVar("T")


def open_savepoints(session: Session) -> tuple[SessionTransaction, ...]:
    """The savepoints open now, innermost first: what a queued item is dropped with."""
    savepoints: list[SessionTransaction] = []
    tx = session.get_nested_transaction()
    while tx is not None:
        if tx.nested:
            savepoints.append(tx)
        tx = tx.parent
    return tuple(savepoints)


class TransactionQueue(Generic[T]):
    def __init__(
        self, name: str, flush: Callable[[Session, list[T]], None], *, first: bool = False
    ) -> None:
        self._key = f"gridgov_queue_{name}"
        self._flush = flush
        self._first = first
        if first:  # after the other `first` queues, before the rest
            _QUEUES.insert(sum(1 for q in _QUEUES if q._first), self)
        else:
            _QUEUES.append(self)

    def put(self, session: Session, item: T) -> None:
        session.info.setdefault(self._key, []).append((open_savepoints(session), item))

    def items(self, session: Session) -> list[T]:
        """What this transaction has queued so far (not yet flushed), in order."""
        return [item for _, item in session.info.get(self._key, [])]

    def _rolled_back(self, session: Session, transaction: SessionTransaction) -> None:
        pending = session.info.get(self._key)
        if not pending:
            return
        if transaction.nested:
            pending[:] = [p for p in pending if transaction not in p[0]]
        else:
            pending.clear()

    def _commit(self, session: Session) -> None:
        pending = session.info.get(self._key)
        if pending:
            items = [item for _, item in pending]
            self._flush(session, items)
            pending.clear()


_QUEUES: list[TransactionQueue[Any]] = []


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    for queue in _QUEUES:
        queue._rolled_back(session, previous_transaction)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        for queue in _QUEUES:
            session.info.pop(queue._key, None)


@event.listens_for(Session, "before_commit")
def _flush_all(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: its items wait for the real commit
    for queue in _QUEUES:
        queue._commit(session)
