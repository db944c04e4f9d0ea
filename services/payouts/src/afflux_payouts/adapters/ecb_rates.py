"""The European Central Bank's euro foreign exchange reference rates, read from the file
finance downloads and uploads (payouts never fetches it: no network on the money path).

Three shapes are read, as the ECB publishes them: the daily CSV (``eurofxref.csv``: a
``Date, USD, JPY, ...`` header and one row dated ``04 December 2026``), the historical CSV
(``eurofxref-hist.csv``: ISO dates, ``N/A`` where a currency had no rate) and the XML
(``eurofxref-daily.xml``, ``-hist.xml``, ``-hist-90d.xml``: ``Cube time=`` / ``Cube
currency= rate=``). Every rate is one EUR in the currency, on the day given. The stdlib
parsers suffice; the XML parser (expat) refuses entity expansion bombs by itself.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree

from afflux_payouts.domain.fx import Rate

BASE = "EUR"
MAX_RATES = 200_000
"""Rates one file may carry (the full history since 1999 is about 200,000)."""
CURRENCY = re.compile(r"^[A-Z]{3}$")


class UnreadableRates(ValueError):
    """The file is not one of the ECB's reference rate files; the message says where."""


def read_ecb_rates(content: bytes) -> list[Rate]:
    """Every rate in an ECB reference rates file (CSV or XML, by its first character)."""
    text = content.decode("utf-8-sig", errors="strict").strip()
    if not text:
        raise UnreadableRates("the file is empty")
    rates = _from_xml(text) if text.startswith("<") else _from_csv(text)
    if not rates:
        raise UnreadableRates("the file holds no rate")
    if len(rates) > MAX_RATES:
        raise UnreadableRates(f"the file holds more than {MAX_RATES:,} rates")
    return rates


def _from_csv(text: str) -> list[Rate]:
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))
            if any(cell.strip() for cell in row)]
    header = rows[0]
    if not header or header[0] != "Date":
        raise UnreadableRates("line 1: the header does not start with Date")
    currencies = [_currency(code, 1) for code in header[1:] if code]
    found = []
    for number, row in enumerate(rows[1:], start=2):
        day = _day(row[0], number)
        for code, value in zip(currencies, row[1:], strict=False):
            if value and value != "N/A":
                found.append(Rate(BASE, code, day, _rate(value, number)))
    return found


def _from_xml(text: str) -> list[Rate]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise UnreadableRates(f"the XML does not parse: {error}") from error
    found = []
    for cube in root.iter():
        when = cube.get("time")
        if when is None:
            continue
        day = _day(when, 0)
        for child in cube:
            code, value = child.get("currency"), child.get("rate")
            if code is not None and value is not None:
                found.append(Rate(BASE, _currency(code, 0), day, _rate(value, 0)))
    return found


def _day(value: str, line: int) -> date:
    for shape in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return datetime.strptime(value, shape).date()
        except ValueError:
            continue
    raise UnreadableRates(f"{_where(line)}{value!r} is not a date")


def _rate(value: str, line: int) -> Decimal:
    try:
        rate = Decimal(value)
    except InvalidOperation as error:
        raise UnreadableRates(f"{_where(line)}{value!r} is not a rate") from error
    if not rate.is_finite() or rate <= 0:
        raise UnreadableRates(f"{_where(line)}{value!r} is not a positive rate")
    return rate


def _currency(code: str, line: int) -> str:
    if not CURRENCY.match(code):
        raise UnreadableRates(f"{_where(line)}{code!r} is not an ISO 4217 currency code")
    return code


def _where(line: int) -> str:
    return f"line {line}: " if line else ""
