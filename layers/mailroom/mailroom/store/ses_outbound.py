"""Sending through SES v2: raw MIME, the stack's configuration set, and tags that route delivery
events back to the message (SES puts a send's tags on every event it publishes about it)."""

from __future__ import annotations

import re
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws

_TAG_VALUE_RE = re.compile(r"[^A-Za-z0-9_\-.@]")


def _tag(name: str, value: str) -> dict[str, str]:
    # SES tag values allow only A-Z a-z 0-9 _ - . @ (256 chars).
    return {"Name": name, "Value": _TAG_VALUE_RE.sub("_", value)[:256]}


def amazon_message_id(ses_message_id: str, region: str | None = None) -> str:
    """The Message-ID header SES gives what it sends (it replaces ours): replies reference this."""
    region = region or get_settings().region
    domain = "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"
    return f"<{ses_message_id}@{domain}>"


def tls_required_available() -> bool:
    """Whether the stack has a configuration set that requires TLS (``require_tls`` can be honoured)."""
    return get_settings().ses_tls_configuration_set is not None


def send_raw(
    raw: bytes, *, envelope_from: str, recipients: list[str], tags: dict[str, str], require_tls: bool = False
) -> str:
    """Send; returns SES's message id. ``require_tls``: through the configuration set whose
    DeliveryOptions say ``TlsPolicy: REQUIRE`` (SES then delivers only over TLS, else the message
    bounces); the caller checks ``tls_required_available`` first."""
    kwargs: dict[str, Any] = {
        "FromEmailAddress": envelope_from,
        "Destination": {"ToAddresses": recipients},
        "Content": {"Raw": {"Data": raw}},
        "EmailTags": [_tag(name, value) for name, value in tags.items()],
    }
    settings = get_settings()
    configuration_set = settings.ses_tls_configuration_set if require_tls else settings.ses_configuration_set
    if require_tls and configuration_set is None:
        raise ValueError("require_tls without a TLS configuration set: check tls_required_available first")
    if configuration_set:
        kwargs["ConfigurationSetName"] = configuration_set
    response = aws.client("sesv2").send_email(**kwargs)
    message_id: str = response["MessageId"]
    return message_id
