"""Sending over SMTP (aiosmtplib), and ``AFFLUX_SMTP_URL``.

``smtp://user:password@host:port`` (plain, port 25 by default), with ``?starttls=true``
(the upgrade is required: a server without STARTTLS is an error, never a fallback to
plain text; port 587 by default), or ``smtps://...`` (TLS from the first byte, port
465). User and password are percent-decoded. Credentials are refused over a plain
connection to anything but loopback: a password is never sent in clear.
Certificates are verified (``AFFLUX_SMTP_CA_FILE`` adds a private CA).

One conversation per mail: connect, (STARTTLS, AUTH), ``MAIL FROM``, ``RCPT TO``, then
the hand-over callback, then ``DATA``. The callback records ``handing_over`` before the
message can be the server's (``domain/delivery.py``). Mail volumes are small; a kept
connection would save a handshake per mail and complicate what "handed over" means
after an error, so none is kept.
"""

from __future__ import annotations

import ipaddress
import ssl
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from afflux_notifications.application.sending import HandOver, Outgoing
from afflux_notifications.domain.delivery import Attempt, Stage

TRUE = {"1", "true", "yes", "on"}


class InvalidSmtpUrl(ValueError):
    """``AFFLUX_SMTP_URL`` cannot be used (said without its password)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps"):
            raise InvalidSmtpUrl("AFFLUX_SMTP_URL must be smtp://... or smtps://...")
        try:
            port = parts.port
        except ValueError as error:
            raise InvalidSmtpUrl("AFFLUX_SMTP_URL: the port is not a number") from error
        if not parts.hostname:
            raise InvalidSmtpUrl("AFFLUX_SMTP_URL names no host")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"starttls"})
        if unknown:
            raise InvalidSmtpUrl(f"AFFLUX_SMTP_URL: unknown parameters {unknown} (only starttls)")
        implicit = parts.scheme == "smtps"
        starttls = query.get("starttls", "").lower() in TRUE
        if implicit and starttls:
            raise InvalidSmtpUrl("AFFLUX_SMTP_URL: smtps:// is TLS already; starttls=true is for smtp://")
        default_port = 465 if implicit else 587 if starttls else 25
        server = cls(parts.hostname, port or default_port, implicit, starttls,
                     unquote(parts.username) if parts.username else None,
                     unquote(parts.password) if parts.password is not None else None)
        if server.username and not (implicit or starttls or _loopback(server.host)):
            raise InvalidSmtpUrl(f"AFFLUX_SMTP_URL: credentials for {server.host} need smtps:// or "
                                 "?starttls=true (a password is never sent in clear)")
        return server


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpMailer:
    """Sends each message in a conversation of its own, ``timeout`` seconds at most per step."""

    def __init__(self, server: SmtpServer, sender: str, *, timeout: float = 30.0,
                 ca_file: str | None = None) -> None:
        self.server = server
        self.sender = sender
        self.timeout = timeout
        self.tls_context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.local_hostname = _address(sender).rsplit("@", 1)[-1] or "localhost"
        """What EHLO names (the sender's domain): else aiosmtplib asks ``socket.getfqdn()``, a
        reverse DNS lookup per conversation."""

    async def send(self, message: Outgoing, hand_over: HandOver) -> Attempt | None:
        smtp = aiosmtplib.SMTP(
            hostname=self.server.host, port=self.server.port, use_tls=self.server.implicit_tls,
            start_tls=self.server.starttls, username=self.server.username, password=self.server.password,
            timeout=self.timeout, tls_context=self.tls_context, local_hostname=self.local_hostname)
        stage = Stage.CONNECT
        try:
            await smtp.connect()
            stage = Stage.SENDER
            await smtp.mail(_address(self.sender))
            stage = Stage.RECIPIENT
            await smtp.rcpt(message.recipient)
            if not await hand_over():
                return None
            stage = Stage.DATA
            reply = await smtp.data(self.compose(message).as_bytes())
            with suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await smtp.quit()
            return Attempt(Stage.DATA, reply.code)
        except aiosmtplib.SMTPResponseException as error:
            return Attempt(stage, error.code, f"{error.code} {error.message}"[:500])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return Attempt(stage, None, f"{type(error).__name__}: {error}"[:500])
        finally:
            smtp.close()

    def compose(self, message: Outgoing) -> EmailMessage:
        """The message with its text and HTML parts (multipart/alternative)."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Message-ID"] = message.message_id
        mail["Date"] = formatdate(usegmt=True)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail


def _address(sender: str) -> str:
    """The bare address of ``Name <address>``."""
    if "<" in sender and sender.rstrip().endswith(">"):
        return sender[sender.rindex("<") + 1:].rstrip().removesuffix(">")
    return sender.strip()
