"""The embedded mail catcher: an SMTP server that keeps what it is sent.

With ``AFFLUX_SMTP_URL`` unset, the notifications process serves SMTP itself on
127.0.0.1 (``AFFLUX_MAIL_CATCHER_PORT``, any free port by default) on its own event
loop, and sends its mail there: ``make run`` and the tests see every mail, at
``GET /v1/mail``, without a mail server. What it catches goes to the service's schema
(``caught_mail``) *before* it answers 250, so a mail caught survives a crash of the
process, as a real server's would: the at-most-once rule can be checked against it.

It listens on loopback only and accepts mail for any address; it keeps the subject,
the text part and the HTML part of each message, and drops messages over 1 MiB.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO

MAX_MESSAGE_BYTES = 1 << 20


class CaughtMail(Protocol):
    def catch(self, mail_from: str, recipients: Sequence[str], subject: str | None, message_id: str | None,
              text: str | None, html: str | None) -> None: ...


class _Keeper:
    """aiosmtpd's handler: each message kept, then 250."""

    def __init__(self, store: CaughtMail) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        text, html = _part(message, "plain"), _part(message, "html")
        try:
            await asyncio.to_thread(self.store.catch, envelope.mail_from or "", list(envelope.rcpt_tos),
                                    _header(message, "Subject"), _header(message, "Message-ID"), text, html)
        except Exception:
            log.exception("the mail catcher could not keep a message")
            return "451 4.3.0 could not keep the message; try again"
        return "250 OK caught"


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else None


class MailCatcher:
    """Serves SMTP on ``host:port`` (0: a free port, then ``port`` says which)."""

    def __init__(self, store: CaughtMail, host: str = "127.0.0.1", port: int = 0) -> None:
        self.keeper = _Keeper(store)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def protocol() -> Any:
            return SMTP(self.keeper, hostname="afflux-mail-catcher", data_size_limit=MAX_MESSAGE_BYTES,
                        loop=loop)

        self._server = await loop.create_server(protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mail catcher listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def _header(message: EmailMessage, name: str) -> str | None:
    value = message[name]
    return str(value) if value is not None else None
