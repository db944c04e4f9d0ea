"""Names for ids, so that pages show "Winter boots" rather than a 32-hex offer id.

Partners and offers are named by the partners API (read with the viewer's own token:
every role may read them), staff by the console's own accounts. Names change rarely
and a stale one for a few minutes is harmless (the id is always beside it, on hover),
so they are kept in memory for ``ttl`` seconds, at most ``capacity`` of each kind;
a page that lists partners or offers hands the names it read to ``remember``, and the
ids still unknown are asked for concurrently, a few at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from afflux_console.adapters.service_apis import Refused, ServiceApis, Unavailable, segment

KINDS = {"partner": ("/v1/partners/", "partner_id"), "offer": ("/v1/offers/", "offer_id")}
"""What can be named through the partners API: the path of one and its id field."""
MAX_OFFERS = 2000
"""The most offers a page looks across (a network runs tens to hundreds)."""


class _Recent:
    """A bounded map of id → (name, when read)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, key: str, fresh_after: float) -> str | None:
        """The name read after ``fresh_after`` (``""``: known to name nothing), or None."""
        found = self.items.get(key)
        if found is None or found[1] < fresh_after:
            return None
        self.items.move_to_end(key)
        return found[0]

    def put(self, key: str, name: str, now: float) -> None:
        self.items[key] = (name, now)
        self.items.move_to_end(key)
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)


class Names:
    def __init__(
        self,
        apis: ServiceApis,
        staff_names: Callable[[], Mapping[str, str]],
        ttl: float = 300.0,
        capacity: int = 100_000,
        concurrency: int = 16,
    ) -> None:
        self.apis = apis
        self.staff_names = staff_names
        self.ttl = ttl
        self.known = {kind: _Recent(capacity) for kind in KINDS}
        self.concurrency = asyncio.Semaphore(concurrency)
        self._staff: tuple[float, Mapping[str, str]] = (0.0, {})
        self._offers: tuple[float, list[dict[str, object]]] = (0.0, [])

    def remember(self, kind: str, rows: Iterable[Mapping[str, object]]) -> None:
        """Names a page has just read (a list of partners or offers)."""
        _, id_field = KINDS[kind]
        now = time.monotonic()
        for row in rows:
            key, name = row.get(id_field), row.get("name")
            if isinstance(key, str) and isinstance(name, str):
                self.known[kind].put(key, name, now)

    async def of(self, token: str, kind: str, ids: Iterable[str | None]) -> dict[str, str]:
        """id → name for every id that names one (an unknown or unreadable id: absent)."""
        wanted = {i for i in ids if i}
        fresh_after = time.monotonic() - self.ttl
        known = {i: name for i in wanted if (name := self.known[kind].get(i, fresh_after)) is not None}
        missing = sorted(wanted - known.keys())
        if missing:
            read = await asyncio.gather(*(self._read(token, kind, i) for i in missing))
            known.update({i: name for i, name in zip(missing, read, strict=True) if name is not None})
        return {i: name for i, name in known.items() if name}

    async def _read(self, token: str, kind: str, key: str) -> str | None:
        path, _ = KINDS[kind]
        async with self.concurrency:
            try:
                body = await self.apis.get(token, "partners", path + segment(key))
            except Refused as refused:
                if refused.status == 404:  # not one of these: remembered as nameless
                    self.known[kind].put(key, "", time.monotonic())
                return None
            except Unavailable:
                return None
        name = body.get("name") if isinstance(body, dict) else None
        if isinstance(name, str):
            self.known[kind].put(key, name, time.monotonic())
            return name
        return None

    async def staff(self) -> Mapping[str, str]:
        """user id → name of every staff member (read again after 30 s)."""
        read_at, names = self._staff
        if time.monotonic() - read_at > 30:
            names = await asyncio.to_thread(self.staff_names)
            self._staff = (time.monotonic(), names)
        return names

    async def offers(self, token: str, fresh: float = 20.0) -> list[dict[str, object]]:
        """Every offer (up to ``MAX_OFFERS``), read again after ``fresh`` seconds: the
        pages that look across offers (a partner's relationships, the applications)."""
        read_at, offers = self._offers
        if time.monotonic() - read_at > fresh:
            offers, after = [], None
            while len(offers) < MAX_OFFERS:
                page = await self.apis.get(token, "partners", "/v1/offers", limit=500, after=after)
                offers += page.get("offers", [])
                after = page.get("next")
                if not after:
                    break
            self.remember("offer", offers)
            self._offers = (time.monotonic(), offers)
        return offers

    async def many(self, token: str, wanted: Mapping[str, Sequence[str | None]]) -> dict[str, dict[str, str]]:
        """Several kinds at once: ``{"partner": [...], "offer": [...]}`` → names by kind."""
        kinds = list(wanted)
        read = await asyncio.gather(*(self.of(token, kind, wanted[kind]) for kind in kinds))
        return dict(zip(kinds, read, strict=True))
