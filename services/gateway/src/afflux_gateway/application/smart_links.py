"""Smart links as a partner sees them: one link over several offers, where tracking sends
each visitor to an offer that takes it (``/s/{smart_link_id}/{partner_id}``).

``SmartLinks`` is the projection (``@handles``, mixed in beside ``Projection``): each
``SmartLinkSet`` carries the link's whole state, so a run keeps the last per link.
``smart_links_for`` answers the partner: a smart link is shown only when it holds an
offer the partner may run (active, and tracking's may-run rule: public unless refused,
any other only once approved), and only those offers are listed: a partner never learns
of a private offer through a link that also holds it. An offer of weight 0 is never
drawn by tracking, so it is not listed either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from afflux_contracts import SmartLinkSet
from afflux_gateway.application.reads import Row
from afflux_gateway.domain.access import may_run, smart_link_url
from afflux_plumbing.runs import Run, handles
from afflux_plumbing.store import Changes, Write


class SmartLinkViews(Protocol):
    def save_smart_links(self, smart_links: Sequence[SmartLinkSet]) -> Write | None: ...


class SmartLinkReads(Protocol):
    def smart_link_offers(self, partner_id: str) -> Sequence[Row]:
        """Each active offer of positive weight of every smart link, in the link's order
        (priority, then as listed), links by name: ``smart_link_id``, ``name``, ``offer_id``,
        ``offer_name``, ``visibility``, ``currency``, ``payout``, and the partner's
        relationship to the offer (``approved``, ``custom_payout``; null without one)."""
        ...


class SmartLinks:
    """The smart links projection (mixed into the gateway's projections)."""

    smart_links: SmartLinkViews

    @handles(SmartLinkSet)
    def on_smart_link(self, run: Run) -> Changes:
        last = {record.payload.smart_link_id: record.payload for record in run}
        write = self.smart_links.save_smart_links(list(last.values()))
        return Changes(writes=[write] if write is not None else [])


def smart_links_for(reads: SmartLinkReads, partner_id: str, tracking_url: str,
                    subs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The smart links holding an offer the partner may run, each with the partner's own
    link (with ``subs``) and only those offers, with the partner's payout on each."""
    shown: dict[str, dict[str, Any]] = {}
    for row in reads.smart_link_offers(partner_id):
        if not may_run(row["visibility"], row["approved"]):
            continue
        link = shown.setdefault(row["smart_link_id"], {
            "smart_link_id": row["smart_link_id"], "name": row["name"],
            "url": smart_link_url(tracking_url, row["smart_link_id"], partner_id, subs or {}),
            "offers": []})
        link["offers"].append({"offer_id": row["offer_id"], "name": row["offer_name"],
                               "currency": row["currency"], "payout": row["custom_payout"] or row["payout"]})
    return list(shown.values())
