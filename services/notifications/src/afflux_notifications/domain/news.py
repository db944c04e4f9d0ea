"""What a change on the partners log means to someone: the verdicts worth a mail.

Each rule takes the state the service knew before and the new one, so a redelivered
or repeated state (the same as before) never tells anything twice.
"""

from __future__ import annotations


def relationship_verdict(applied_before: bool, approved: bool, application: bool) -> str | None:
    """The partner's application for an offer was decided: its relationship was an
    application, and the new state is not (approved, or not: declined)."""
    if not applied_before or application:
        return None
    return "relationship_approved" if approved else "relationship_declined"


def application_verdict(previous: str | None, status: str) -> str | None:
    """A partner who applied (``pending``) is approved (``active``) or declined
    (``rejected``)."""
    if previous != "pending":
        return None
    return {"active": "application_approved", "rejected": "application_declined"}.get(status)


def paused_now(previous: str | None, status: str) -> bool:
    """An offer the service knew running (or pending) is paused."""
    return status == "paused" and previous is not None and previous != "paused"
