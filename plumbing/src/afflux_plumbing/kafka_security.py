"""How every Kafka client of Afflux authenticates: SASL and TLS from the environment.

A managed Kafka (Confluent Cloud, MSK, Aiven, Redpanda Cloud ...) wants TLS and
usually SASL. Every aiokafka client Afflux creates (publisher, consumers, admin,
the ``afflux`` CLI) takes ``**client_security()``, so one set of variables reaches
all of them:

- ``KAFKA_SECURITY_PROTOCOL``: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL;
- ``KAFKA_SASL_MECHANISM``: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with
  ``KAFKA_SASL_USERNAME`` / ``KAFKA_SASL_PASSWORD``);
- ``KAFKA_SSL_CAFILE`` (a CA bundle; the system's when unset), ``KAFKA_SSL_CERTFILE`` /
  ``KAFKA_SSL_KEYFILE`` (mutual TLS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aiokafka.helpers import create_ssl_context

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def client_security(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments for the security the environment asks for ({} when none)."""
    env = os.environ if environ is None else environ
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    if protocol == "PLAINTEXT":
        return {}
    settings: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        settings["ssl_context"] = create_ssl_context(
            cafile=env.get("KAFKA_SSL_CAFILE") or None,
            certfile=env.get("KAFKA_SSL_CERTFILE") or None,
            keyfile=env.get("KAFKA_SSL_KEYFILE") or None,
        )
    if protocol.startswith("SASL"):
        mechanism = env.get("KAFKA_SASL_MECHANISM", "PLAIN").strip().upper()
        if mechanism not in MECHANISMS:
            raise ValueError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
                             f"not {mechanism!r}")
        username, password = env.get("KAFKA_SASL_USERNAME"), env.get("KAFKA_SASL_PASSWORD")
        if not username or not password:
            raise ValueError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        settings |= {"sasl_mechanism": mechanism, "sasl_plain_username": username,
                     "sasl_plain_password": password}
    return settings
