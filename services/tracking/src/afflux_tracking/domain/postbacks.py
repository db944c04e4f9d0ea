"""Conversion intake: what an advertiser's postback must carry to be put on the log.

Tracking checks only the shape of a report, never whether its click exists:
attribution decides that (a click may still be on its way), and rejected
conversions are kept and reported, not refused at the door.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from afflux_tracking.domain.links import parse_transaction_id

POSTBACK_FIELDS = ("transaction_id", "coupon_code", "event", "amount", "currency", "order_id",
                   "offer_id", "token")
"""The parameters a postback may carry; any others are ignored."""

MAX_AMOUNT_PLACES = 4
MAX_AMOUNT_DIGITS = 15
MAX_TEXT = 200
MAX_EVENT = 100

_AMOUNT = re.compile(rf"[0-9]{{1,{MAX_AMOUNT_DIGITS}}}(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


class InvalidPostback(ValueError):
    """A postback parameter the advertiser must fix; names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ConversionReport:
    """A validated postback: at least one of transaction_id and coupon_code is set."""

    transaction_id: str | None
    coupon_code: str | None
    event: str
    amount: Decimal | None
    currency: str | None
    order_id: str | None
    offer_id: str | None = None
    """The offer the report names: the one in its transaction_id, or its ``offer_id``."""
    token: str | None = None


def conversion_id_for(report: ConversionReport, offer_id: str, idempotency_key: str | None) -> str:
    """The conversion's id, a function of what identifies the report: the caller's
    ``Idempotency-Key`` (per offer), else (offer, transaction_id or coupon, event,
    order_id). A retried postback (after a timeout or a 503) gets the same id, so it is
    one conversion however often it reaches the log."""
    if idempotency_key is not None:
        basis: tuple[str, ...] = ("idempotency-key", offer_id, idempotency_key)
    else:
        basis = ("report", offer_id, report.transaction_id or "",
                 (report.coupon_code or "").upper(), report.event, report.order_id or "")
    return hashlib.sha256("\x1f".join(basis).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_postback(params: Mapping[str, str]) -> ConversionReport:
    """Validate a postback's parameters (empty values count as absent; unknown ones are
    ignored, advertisers often send extras) or raise ``InvalidPostback``."""
    given = {name: value.strip() for name, value in params.items() if value.strip()}
    transaction_id = given.get("transaction_id")
    coupon_code = given.get("coupon_code")
    if transaction_id is None and coupon_code is None:
        raise InvalidPostback("transaction_id", "a conversion needs a transaction_id or a coupon_code")
    offer_id = _bounded(given, "offer_id", MAX_TEXT)
    if transaction_id is not None:
        parsed = parse_transaction_id(transaction_id)
        if parsed is None:
            raise InvalidPostback("transaction_id", "transaction_id must be the one a click was given")
        transaction_id, named = parsed
        if named is not None and offer_id is not None and named != offer_id:
            raise InvalidPostback("offer_id", "offer_id is not the offer of this transaction_id")
        offer_id = named or offer_id
    return ConversionReport(
        transaction_id=transaction_id,
        coupon_code=_bounded(given, "coupon_code", MAX_TEXT),
        event=_event(given.get("event", "conversion")),
        amount=_amount(given.get("amount")),
        currency=_currency(given.get("currency")),
        order_id=_bounded(given, "order_id", MAX_TEXT),
        offer_id=offer_id,
        token=_bounded(given, "token", MAX_TEXT),
    )


def _bounded(given: Mapping[str, str], field: str, limit: int) -> str | None:
    value = given.get(field)
    if value is not None and len(value) > limit:
        raise InvalidPostback(field, f"{field} must be at most {limit} characters")
    return value


def _event(value: str) -> str:
    if len(value) > MAX_EVENT or not value.isprintable():
        raise InvalidPostback("event", f"event must be a printable name of at most {MAX_EVENT} characters")
    return value


def _amount(value: str | None) -> Decimal | None:
    """A sale amount as written (``12.50`` stays ``12.50``): plain digits, not negative,
    at most four decimal places once trailing zeros are dropped."""
    if value is None:
        return None
    if not _AMOUNT.fullmatch(value):
        raise InvalidPostback(
            "amount", f"amount must be a non-negative decimal number like 12.50 (got {value[:40]!r})"
        )
    amount = Decimal(value)
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the pattern above
    if -exponent > MAX_AMOUNT_PLACES:
        raise InvalidPostback("amount", f"amount may have at most {MAX_AMOUNT_PLACES} decimal places")
    return amount


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    if not _CURRENCY.fullmatch(value):
        raise InvalidPostback("currency", "currency must be a 3-letter ISO 4217 code")
    return value.upper()
