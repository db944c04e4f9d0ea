"""SASL/TLS settings from the environment reach aiokafka's keyword arguments."""

from __future__ import annotations

import ssl

import pytest

from afflux_plumbing.kafka_security import client_security


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert client_security({}) == {}


def test_sasl_ssl_with_scram_gives_credentials_and_a_tls_context() -> None:
    settings = client_security({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                                "KAFKA_SASL_USERNAME": "afflux", "KAFKA_SASL_PASSWORD": "s3cret"})
    assert settings["security_protocol"] == "SASL_SSL"
    assert (settings["sasl_mechanism"], settings["sasl_plain_username"], settings["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "afflux", "s3cret")
    assert isinstance(settings["ssl_context"], ssl.SSLContext)


def test_sasl_plaintext_has_no_tls_context() -> None:
    settings = client_security({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"})
    assert "ssl_context" not in settings
    assert settings["sasl_mechanism"] == "PLAIN"


@pytest.mark.parametrize(("environ", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI",
      "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM must be one of"),
])
def test_a_wrong_setting_is_refused_with_its_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        client_security(environ)
