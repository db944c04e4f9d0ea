"""The topic registry: every topic's name, partitioning rule and dead-letter topic.

Names are part of the public contract (ARCHITECTURE.md, "The log"); ``v1``
changes only with a breaking schema change, which we avoid.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A Kafka topic of the Afflux log, keyed as ``key_rule`` says."""

    name: str
    key_rule: str
    partitions: int = 4

    @property
    def dlq(self) -> str:
        """Where a consumer parks messages of this topic it cannot decode or process."""
        return f"{self.name}.dlq"


PARTNERS = Topic("afflux.partners.v1", key_rule="aggregate id (partner, offer or relationship)")
TRACKING = Topic("afflux.tracking.v1", key_rule="transaction_id (coupon conversions: coupon code)")
ATTRIBUTION = Topic("afflux.attribution.v1", key_rule="partner_id")
PAYOUTS = Topic("afflux.payouts.v1", key_rule="partner_id")
POSTBACKS = Topic("afflux.postbacks.v1", key_rule="partner_id")
NOTIFICATIONS = Topic("afflux.notifications.v1", key_rule="recipient (SHA-256 of the address)")
STAFF = Topic("afflux.staff.v1", key_rule="user_id (the staff user; the bootstrap admin's tokens: admin)")

ALL_TOPICS: tuple[Topic, ...] = (PARTNERS, TRACKING, ATTRIBUTION, PAYOUTS, POSTBACKS, NOTIFICATIONS, STAFF)

