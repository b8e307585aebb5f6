"""Secrets at rest: encrypted with the stack's customer-managed KMS key (``MAILROOM_KMS_KEY_ID``).

Every ciphertext is bound to what it belongs to by an encryption context (for example the
organization and webhook ids): KMS refuses to decrypt it under any other context, so a ciphertext
copied onto another item is useless.
"""

from __future__ import annotations

from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws


class KmsNotConfigured(RuntimeError):
    pass


def _kms() -> Any:
    return aws.client("kms")


def encrypt(plaintext: bytes, context: dict[str, str]) -> bytes:
    key_id = get_settings().kms_key_id
    if not key_id:
        raise KmsNotConfigured("MAILROOM_KMS_KEY_ID is not set")
    response = _kms().encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    return bytes(response["CiphertextBlob"])


def decrypt(ciphertext: bytes, context: dict[str, str]) -> bytes:
    kwargs: dict[str, Any] = {"CiphertextBlob": ciphertext, "EncryptionContext": context}
    key_id = get_settings().kms_key_id
    if key_id:
        kwargs["KeyId"] = key_id  # refuses ciphertexts of any other key
    return bytes(_kms().decrypt(**kwargs)["Plaintext"])
