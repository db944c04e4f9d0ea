"""Runs: the one shape every consumer's handler is written in.

A service states each rule once, as a handler that takes a *run*: consecutive
records of one partition, in log order (a lone record is a run of one). The
handler reads what the whole run needs (one query per kind, not per record),
folds the records in order through the domain rules, and returns the run's
changes in batch form. Everything else is the plumbing's job:

- the store claims the run's event_ids in its inbox and hands the handlers only
  the records not applied before (``TrackedApplication.apply_run``), except those of
  the types a handler declares ``idempotent`` (it keeps each by the record's own key,
  so a record given twice changes nothing: no inbox row is needed, nor kept forever);
- ``Handlers`` cuts the run into *segments*: consecutive records whose payload
  types map to the same handler. Each segment is handled in turn, inside the one
  transaction, and a segment's reads see what the segments before it wrote, so a
  conversion reads the click indexed just before it in the same run;
- the run commits with its last position; if anything raises, nothing commits and
  the consumer applies the same records again as runs of one, through the same
  handlers, each with its own retries, parking (``RetryLater``) and dead letters
  (``Unprocessable``).

Why one shape: a money rule written twice (one record at a time beside per run)
is two implementations that must agree forever. A run of one is only a short run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from afflux_contracts import Envelope, Event
from afflux_plumbing.positions import Position

E = TypeVar("E", bound=Event)


class RetryLater(Exception):
    """A fact this record depends on has not arrived yet (e.g. an offer from another
    topic); the record is parked and retried, never skipped: its partition waits (the
    consumer's others go on), for at most the consumer's ``retry_later_limit``, after
    which the record goes to the DLQ to be redriven."""


class Unprocessable(Exception):
    """The record is well-formed but can never be applied; it goes to the DLQ."""


@dataclass(frozen=True)
class Record(Generic[E]):
    """One consumed record: its envelope and where on the log it was read."""

    envelope: Envelope[E]
    position: Position

    @property
    def payload(self) -> E:
        return self.envelope.payload

    @property
    def event_id(self) -> UUID:
        return self.envelope.event_id

    @property
    def occurred_at(self) -> datetime:
        return self.envelope.occurred_at


Run = Sequence[Record[Any]]
"""Consecutive records of one partition, in log order; never empty."""

RunHandler = Callable[[Run], Any]
"""Turns a run into the ``Changes`` it causes (typed ``Any`` here: ``store`` imports this
module). Runs in a worker thread, inside the run's transaction; reads the store only
through it (``TrackedApplication.query``), so it sees what the run wrote before."""

_HANDLED = "__afflux_handles__"
_IDEMPOTENT = "__afflux_idempotent__"


def handles(*types: type[Event], idempotent: Sequence[type[Event]] = ()
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a store method as the run handler of these payload types.

    ``Handlers.of(store)`` collects the marked methods; each payload type has at most
    one handler per store. ``idempotent``: those of ``types`` that the handler keeps by
    the record's own key (a click by its transaction_id, written ``ON CONFLICT DO
    NOTHING`` and judged only when new), so that a record given to it again, or twice in
    a run, changes nothing. The store does not claim their event_ids in its inbox: the
    claim would cost a row per record kept forever (a row per click, in every consumer
    of the click topic) and a quarter of the click index's ingest (measured in
    docs/decisions/click-path.md). A type is declared so only with a test that applies
    its records twice."""
    if not types:
        raise TypeError("handles() needs at least one event type")
    if not set(idempotent) <= set(types):
        raise TypeError("handles(): every idempotent type must be one of the handled types")

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        setattr(method, _HANDLED, types)
        setattr(method, _IDEMPOTENT, frozenset(idempotent))
        return method

    return mark


class Handlers:
    """The run handlers of one consumer, by payload type: the one dispatch shape."""

    def __init__(self, by_type: dict[type[Event], RunHandler] | None = None,
                 idempotent: frozenset[type[Event]] = frozenset()) -> None:
        self._by_type: dict[type[Event], RunHandler] = dict(by_type or {})
        self._idempotent = idempotent

    @classmethod
    def of(cls, store: object) -> Handlers:
        """The ``@handles`` methods of ``store`` (bound to it)."""
        marked = _marked(type(store))
        return cls({event_type: getattr(store, name) for event_type, name in marked.items()},
                   frozenset(t for t, name in marked.items() if t in _idempotent(type(store), name)))

    @property
    def types(self) -> frozenset[type[Event]]:
        return frozenset(self._by_type)

    def claims(self, record: Record[Any]) -> bool:
        """Whether the store claims ``record``'s event_id in its inbox before handling it:
        yes, unless its handler declared its type ``idempotent``."""
        return type(record.payload) not in self._idempotent

    def segments(self, run: Run) -> Iterator[tuple[RunHandler, list[Record[Any]]]]:
        """``run`` cut into segments of consecutive records with the same handler, in log
        order; records of a type without a handler are left out (nothing to change)."""
        current: RunHandler | None = None
        segment: list[Record[Any]] = []
        for record in run:
            handler = self._by_type.get(type(record.payload))
            if handler is None:
                continue
            if handler is not current and segment:
                assert current is not None
                yield current, segment
                segment = []
            current = handler
            segment.append(record)
        if segment and current is not None:
            yield current, segment


def handled_types(kind: type) -> frozenset[type[Event]]:
    """The payload types the ``@handles`` methods of class ``kind`` take: what a consumer
    running ``Handlers.of`` an instance of it applies, known without making one (a
    service's declared subscriptions, ``wiring``)."""
    return frozenset(_marked(kind))


def _marked(kind: type) -> dict[type[Event], str]:
    """The name of the ``@handles`` method of ``kind`` for each payload type it marks."""
    found: dict[type[Event], str] = {}
    for name in dir(kind):
        for event_type in getattr(getattr(kind, name, None), _HANDLED, ()):
            if event_type in found:
                raise TypeError(f"{kind.__name__} handles {event_type.__name__} twice")
            found[event_type] = name
    return found


def _idempotent(kind: type, name: str) -> frozenset[type[Event]]:
    found: frozenset[type[Event]] = getattr(getattr(kind, name), _IDEMPOTENT, frozenset())
    return found


def record_of(envelope: Envelope[E], position: Position) -> Record[E]:
    """A record as the consumer would hand it over (tests and replays build runs with it)."""
    return Record(envelope, position)
