"""Write ``contracts/asyncapi.json`` from what the services run: ``make schemas``.

Each service declares, in its wiring (``afflux_<service>.entrypoints.main.WIRING``, an
``afflux_plumbing.wiring.Wiring``), the consumers and publishers its runtime runs, and
the runtime refuses to run anything else. This module reads those declarations (the
services are found by name, as the launcher starts them: ``processes.DEFAULT_PORTS``),
turns each into the document's operations, and lets ``afflux_contracts.asyncapi`` build
and shape the document. So the document is the services' own declaration, and a test
fails when the committed file differs from it (``infra/tests/test_asyncapi.py``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

from afflux_contracts.asyncapi import ASYNCAPI_PATH, Operation
from afflux_contracts.asyncapi import rendered as render
from afflux_infra.processes import DEFAULT_PORTS
from afflux_plumbing.settings import ServiceSettings
from afflux_plumbing.wiring import Publication, Subscription, Wiring

GROUP_PREFIX: str = ServiceSettings.model_fields["group_prefix"].default
"""``AFFLUX_CONSUMER_GROUP_PREFIX``'s default: the group ids the document shows."""


def wirings() -> list[Wiring]:
    """Every service's declared wiring (importing it opens nothing)."""
    return [importlib.import_module(f"afflux_{name}.entrypoints.main").WIRING for name in DEFAULT_PORTS]


def _received(service: str, subscription: Subscription) -> list[Operation]:
    """A consumer's operations: one per topic it reads, with the events its handlers take."""
    name = f"{GROUP_PREFIX}-{service}-{subscription.group}"
    return [Operation(service, subscription.group, "receive", topic,
                      tuple(e for e in subscription.events if e.topic == topic),
                      group_id=None if subscription.every_partition else name,
                      client_id=name if subscription.every_partition else None)
            for topic in subscription.topics]


def _sent(service: str, publication: Publication) -> list[Operation]:
    """A publisher's operations: one per topic of the events it publishes."""
    return [Operation(service, publication.name, "send", topic,
                      tuple(e for e in publication.events if e.topic == topic))
            for topic in publication.topics]


def operations(declared: Iterable[Wiring]) -> list[Operation]:
    return [op for wiring in declared
            for op in [*(o for s in wiring.subscriptions for o in _received(wiring.service, s)),
                       *(o for p in wiring.publications for o in _sent(wiring.service, p))]]


def rendered() -> str:
    """The file's text, exactly as ``make schemas`` writes it."""
    return render(operations(wirings()))


def main() -> int:
    ASYNCAPI_PATH.write_text(rendered())
    print(f"wrote {ASYNCAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
