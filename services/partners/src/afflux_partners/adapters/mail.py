"""The notifications service, asked for mail that carries a token (``POST /v1/messages``
with the partners service's own token, scope ``notifications.send``).

The mail's id is its idempotency key, so asking again (after a timeout, a crash, from
another instance) is the same mail: notifications sends it at most once. An answer that
is not a 202 (or no answer) leaves the mail owed; a 4xx other than a timeout is logged,
since asking again will not help (a template or address notifications refuses).
"""

from __future__ import annotations

import logging

import httpx

from afflux_partners.application.onboarding import OwedMail

log = logging.getLogger(__name__)


class NotificationsMailer:
    def __init__(self, base_url: str, token: str, timeout: float = 5.0) -> None:
        self.token = token
        self.client = httpx.Client(base_url=base_url, timeout=timeout,
                                   headers={"Authorization": f"Bearer {token}"})

    def send(self, mail: OwedMail) -> bool:
        if not self.token:
            log.warning("mail %s not sent: AFFLUX_PARTNERS_SERVICE_TOKEN is not set", mail.mail_id)
            return False
        body = {"template": mail.template, "to": mail.recipient,
                "data": {name: value for name, value in mail.data.items() if value is not None}}
        try:
            answer = self.client.post("/v1/messages", json=body, headers={"Idempotency-Key": mail.mail_id})
        except httpx.HTTPError as error:
            log.warning("mail %s not sent yet: %s", mail.mail_id, error)
            return False
        if answer.status_code != 202:
            log.warning("mail %s not taken: %s %s", mail.mail_id, answer.status_code, answer.text[:300])
        return answer.status_code == 202

    def close(self) -> None:
        self.client.close()
