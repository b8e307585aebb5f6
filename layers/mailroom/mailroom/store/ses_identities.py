"""SES email identities for hosted domains: BYODKIM keys and the custom MAIL FROM domain."""

from __future__ import annotations

import contextlib
from typing import Any

from mailroom.domain.dkim import DkimKey
from mailroom.store import aws
from mailroom.store.errors import AlreadyExists, ObjectMissing


def _sesv2() -> Any:
    return aws.client("sesv2")


def create(domain: str, key: DkimKey, *, mail_from: str) -> None:
    """Register the domain with our DKIM key; SES is the only place the private key goes."""
    try:
        _sesv2().create_email_identity(
            EmailIdentity=domain,
            DkimSigningAttributes={
                "DomainSigningSelector": key.selector,
                "DomainSigningPrivateKey": key.private_key_b64,
            },
        )
    except AlreadyExists:
        rotate_dkim(domain, key)
    # SES v1 and v2 share identities; v1's call is the one the local emulator implements.
    aws.client("ses").set_identity_mail_from_domain(
        Identity=domain, MailFromDomain=mail_from, BehaviorOnMXFailure="UseDefaultValue"
    )


def rotate_dkim(domain: str, key: DkimKey) -> None:
    _sesv2().put_email_identity_dkim_signing_attributes(
        EmailIdentity=domain,
        SigningAttributesOrigin="EXTERNAL",
        SigningAttributes={
            "DomainSigningSelector": key.selector,
            "DomainSigningPrivateKey": key.private_key_b64,
        },
    )


def exists(domain: str) -> bool:
    try:
        _sesv2().get_email_identity(EmailIdentity=domain)
    except ObjectMissing:
        return False
    return True


def delete(domain: str) -> None:
    with contextlib.suppress(ObjectMissing):
        _sesv2().delete_email_identity(EmailIdentity=domain)
