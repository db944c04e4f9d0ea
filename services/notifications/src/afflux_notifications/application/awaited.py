"""Events this service is ready for before their producers publish them.

Some news it should tell (a partner's sign-up, a cap reached, a postback host paused,
payout drift) has no event on the log yet: their producers add them. A handler for
such an event names it with ``awaited("Name")``: the contract event of that name when
the contracts define it (then it is consumed like any other, and its topic joins the
subscriptions), else a stand-in type that never comes off the log. So the day the
event is defined, its mails go out without a change here. The fields each one is
read with are in the service's README ("Events it waits for").
"""

from __future__ import annotations

from typing import Any

from afflux_contracts import EVENT_TYPES, Event


class NotYetOnTheLog(Event):
    """The base of stand-ins: no topic, so never registered, decoded or consumed."""

    def partition_key(self) -> str:
        return ""


def awaited(name: str) -> tuple[type[Event], ...]:
    """The contract event called ``name``, or a stand-in for it (see the module docstring)."""
    found = EVENT_TYPES.get(name)
    if found is not None:
        return (found,)
    stand_in: type[Event] = type(f"Awaited{name}", (NotYetOnTheLog,), {"__module__": __name__})
    return (stand_in,)


def field(payload: Any, name: str, default: Any = None) -> Any:
    """A field of an awaited event (its producer may name fewer than the README asks for)."""
    return getattr(payload, name, default)
