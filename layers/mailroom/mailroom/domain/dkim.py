"""DKIM keys Mailroom generates for Bring-Your-Own-DKIM: the private half goes to SES only."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class DkimKey:
    selector: str
    private_key_b64: str  # PKCS#1 DER, base64: the form SES takes; never stored by Mailroom
    public_key_b64: str  # SubjectPublicKeyInfo DER, base64: the p= tag of the TXT record

    @property
    def txt_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key_b64}"


def new_selector() -> str:
    # Unique per rotation so the old and new records can coexist in DNS during a switch.
    return f"mr{secrets.token_hex(4)}"


def generate_dkim_key(selector: str | None = None) -> DkimKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(
        selector=selector or new_selector(),
        private_key_b64=base64.b64encode(private_der).decode(),
        public_key_b64=base64.b64encode(public_der).decode(),
    )
