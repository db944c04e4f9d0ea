"""The payouts service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class PayoutsSettings(ServiceSettings):
    service_name: ClassVar[str] = "payouts"

    port: int = Field(default=8004, validation_alias="AFFLUX_PAYOUTS_PORT")
    db_schema: str = Field(default="payouts", validation_alias="AFFLUX_PAYOUTS_SCHEMA")
    close_interval: float = Field(default=60.0, validation_alias="AFFLUX_PAYOUTS_CLOSE_INTERVAL")
    """Seconds between rounds of closing the periods partners' billing frequencies ended
    (0: only admins close)."""
    tax_gate: bool = Field(default=False, validation_alias="AFFLUX_PAYOUTS_TAX_GATE")
    """Hold each payable statement of a partner whose tax and payment profile (recorded on
    the partners service) is incomplete, until it is complete. Off by default so that a
    program that does not collect profiles pays as before; a network that must collect
    tax forms turns it on."""
    hold_interval: float = Field(default=2.0, gt=0, validation_alias="AFFLUX_PAYOUTS_HOLD_INTERVAL")
    """Seconds between two looks for held statements whose partner's profile is now complete."""
    profile_keys: str = Field(default="", validation_alias="AFFLUX_PROFILE_KEYS", repr=False)
    """The keys that open partners' sealed payment details (the partners service's): a payment
    run's file is written with them."""
    sepa_name: str = Field(default="", validation_alias="AFFLUX_PAYOUTS_SEPA_NAME")
    sepa_iban: str = Field(default="", validation_alias="AFFLUX_PAYOUTS_SEPA_IBAN")
    sepa_bic: str = Field(default="", validation_alias="AFFLUX_PAYOUTS_SEPA_BIC")
    """The network's own account a SEPA credit transfer debits (all three, or no SEPA files)."""
    invoice_entity: str = Field(default="AFX", pattern=r"^[A-Z0-9]{1,10}$",
                                validation_alias="AFFLUX_INVOICE_ENTITY")
    """The issuing entity's code: its invoices are numbered ``<entity>-<year>-<sequence>``."""
    invoice_issuer_name: str = Field(default="", validation_alias="AFFLUX_INVOICE_ISSUER_NAME")
    invoice_issuer_address: str = Field(default="", validation_alias="AFFLUX_INVOICE_ISSUER_ADDRESS")
    invoice_issuer_country: str = Field(default="", validation_alias="AFFLUX_INVOICE_ISSUER_COUNTRY")
    invoice_issuer_vat_id: str = Field(default="", validation_alias="AFFLUX_INVOICE_ISSUER_VAT_ID")
    """The network as it appears on self-billed invoices (name, country and VAT id: else no
    invoices are issued)."""
    invoice_vat_rate: Decimal = Field(default=Decimal(0), ge=0, le=100,
                                      validation_alias="AFFLUX_INVOICE_VAT_RATE")
    """The issuer's VAT rate in percent, for domestic partners (included in what they are paid)."""

