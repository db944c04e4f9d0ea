"""What the service can send: each kind of mail, who it is for, whether it may be
opted out of, and the data its template needs.

A *transactional* mail answers something the recipient did or is owed (a verification
link, an application's verdict, a statement and its payment): it cannot be opted out
of. The others are news a partner may decline (an offer it runs paused, its postback
host paused). Kinds ``via_api`` carry a secret (a link that signs someone in) and are
only ever asked for over HTTP (``POST /v1/messages``): the log never carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Audience(StrEnum):
    PARTNER = "partner"
    """A partner's people: its email and its contacts."""
    STAFF = "staff"
    """The network's staff (``AFFLUX_STAFF_EMAILS`` until staff users exist)."""
    CALLER = "caller"
    """Whoever the caller of ``POST /v1/messages`` names."""


@dataclass(frozen=True)
class Kind:
    """One kind of mail (its template has the same name)."""

    name: str
    audience: Audience
    transactional: bool
    fields: tuple[str, ...]
    """The data its template needs."""
    optional_fields: tuple[str, ...] = ()
    via_api: bool = False

    @property
    def may_opt_out(self) -> bool:
        return self.audience is Audience.PARTNER and not self.transactional


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {kind.name: kind for kind in kinds}


PARTNER, STAFF, CALLER = Audience.PARTNER, Audience.STAFF, Audience.CALLER
STATEMENT = ("partner_name", "statement_id", "currency")

KINDS: dict[str, Kind] = _kinds(
    # Asked for over HTTP by the service that minted the secret (sign-up, partner users).
    Kind("verify_email", CALLER, True, ("link",), ("name", "expires_at"), via_api=True),
    Kind("invitation", CALLER, True, ("link", "partner_name"), ("name", "expires_at", "invited_by"),
         via_api=True),
    Kind("password_reset", CALLER, True, ("link",), ("name", "expires_at"), via_api=True),
    # To a partner, from the log.
    Kind("application_approved", PARTNER, True, ("partner_name",)),
    Kind("application_declined", PARTNER, True, ("partner_name",)),
    Kind("relationship_approved", PARTNER, True, ("partner_name", "offer_id", "offer_name")),
    Kind("relationship_declined", PARTNER, True, ("partner_name", "offer_id", "offer_name")),
    Kind("statement_issued", PARTNER, True, (*STATEMENT, "total", "status", "period_end")),
    Kind("statement_paid", PARTNER, True, (*STATEMENT, "amount", "paid_at"), ("reference",)),
    Kind("offer_paused", PARTNER, False, ("partner_name", "offer_id", "offer_name")),
    Kind("postback_host_paused", PARTNER, False, ("partner_name", "host"), ("reason",)),
    # To staff, from the log.
    Kind("staff_offer_application", STAFF, True, ("partner_id", "partner_name", "offer_id", "offer_name")),
    Kind("staff_partner_application", STAFF, True, ("partner_id", "partner_name"), ("email", "company")),
    Kind("staff_cap_reached", STAFF, True, ("offer_id", "metric", "period", "limit", "percent"),
         ("partner_id", "offer_name", "value")),
    Kind("staff_postback_host_paused", STAFF, True, ("host",), ("partner_ids", "reason")),
    Kind("staff_payout_drift", STAFF, True, ("summary",), ("partner_ids",)),
    Kind("staff_dead_letters", STAFF, True, ("topic", "count", "reasons", "first_at", "last_at")),
)

OPTIONAL_KINDS = tuple(sorted(name for name, kind in KINDS.items() if kind.may_opt_out))
"""What a partner may opt out of."""
API_KINDS = tuple(sorted(name for name, kind in KINDS.items() if kind.via_api))
"""What ``POST /v1/messages`` sends."""


class UnknownKind(ValueError):
    """Not a kind this service sends (or not one it may send this way)."""


class MissingData(ValueError):
    """The template needs data the caller did not give."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} needs {name!r} in its data")
        self.name = name


def api_kind(name: str) -> Kind:
    """The kind ``POST /v1/messages`` may send under ``name``."""
    kind = KINDS.get(name)
    if kind is None or not kind.via_api:
        raise UnknownKind(f"{name!r} is not a message this service sends on request; "
                          f"one of {', '.join(API_KINDS)}")
    return kind


def check_data(kind: Kind, data: dict[str, object]) -> None:
    """Every field the kind's template needs is there (a template's data is otherwise free)."""
    for name in kind.fields:
        if data.get(name) in (None, ""):
            raise MissingData(kind.name, name)
