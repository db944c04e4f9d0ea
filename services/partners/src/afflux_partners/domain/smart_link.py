"""A smart link: one tracking link a partner promotes for a set of offers, where the
tracker sends each visitor to an offer that takes it (``/s/{smart_link_id}/{partner_id}``).

Every event carries the link's whole state, so a reader of any single one knows the link
as it now stands. The offers are checked here for their shape; that each exists is the
application's check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.routed_offers import check_routed_offers
from afflux_partners.domain.rules import RuleViolation, check_http_url, check_name
from afflux_partners.domain.values import RoutedOffer

SMART_LINK_CREATED = "afflux_partners:SmartLink.Created"
SMART_LINK_UPDATED = "afflux_partners:SmartLink.Updated"
"""Stored event topics, fixed forever."""

EDITABLE = ("name", "offers", "fallback_url")


def checked_smart_link(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields given, each validated (a rule names its field); ``offers`` lists one at least."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise RuleViolation(sorted(unknown)[0], "cannot be edited", "not_editable")
    checks: dict[str, Any] = {
        "name": check_name,
        "offers": lambda value: check_routed_offers(value, "offers", required=True),
        "fallback_url": lambda value: check_http_url(value, "fallback_url") if value is not None else None,
    }
    for name in ("name", "offers"):
        if name in fields and fields[name] is None:
            raise RuleViolation(name, "must not be null", "invalid_value")
    return {name: checks[name](value) for name, value in fields.items()}


class SmartLink(Aggregate):
    """Its id (as 32 hex characters) is the public ``smart_link_id``."""

    TOPIC = "afflux_partners:SmartLink"

    @classmethod
    def create(cls, name: str, offers: Iterable[RoutedOffer], fallback_url: str | None = None) -> SmartLink:
        fields = {"name": name, "offers": tuple(offers), "fallback_url": fallback_url}
        return cls(**checked_smart_link(fields))

    @event("Created", topic=SMART_LINK_CREATED)
    def __init__(self, name: str, offers: tuple[RoutedOffer, ...], fallback_url: str | None) -> None:
        self._set(name, offers, fallback_url)

    @property
    def smart_link_id(self) -> str:
        return self.id.hex

    def edit(self, changes: Mapping[str, Any]) -> tuple[str, ...]:
        """Apply an edit (fields not named keep their value); the names of the fields that
        changed, none (and no event) if nothing does."""
        checked = checked_smart_link(changes)
        changed = tuple(name for name in EDITABLE if name in checked and checked[name] != getattr(self, name))
        if changed:
            state = {name: getattr(self, name) for name in EDITABLE}
            self._updated(**{**state, **checked}, changed=changed)
        return changed

    @event("Updated", topic=SMART_LINK_UPDATED)
    def _updated(self, name: str, offers: tuple[RoutedOffer, ...], fallback_url: str | None,
                 changed: tuple[str, ...]) -> None:
        self._set(name, offers, fallback_url)

    def _set(self, name: str, offers: Iterable[RoutedOffer], fallback_url: str | None) -> None:
        self.name = name
        self.offers = tuple(offers)
        self.fallback_url = fallback_url
