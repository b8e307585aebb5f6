"""The webhook action's secret and signatures: sealed with the stack's KMS key, signed per Standard
Webhooks (``domain.webhooks``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

Shared by everything that POSTs for an action: the automation worker (one message's webhook) and
the task runner (a digest of a query's messages). The secret is a ``whsec_`` string (the format
receivers' Standard Webhooks libraries take), shown once when the action is created and stored only
as ``secret_ciphertext`` on the action item, bound by its encryption context to the organization and
the action (the CONTRACT: ``{"org_id": org, "action_id": id}``), so a ciphertext copied onto another
action does not decrypt. Decrypted keys are cached per ciphertext for ten minutes: a warm worker
calls KMS once per action and period, not per message.
"""

from __future__ import annotations

import hashlib
import threading
import time

from mailroom.domain import webhooks as signing
from mailroom.store import kms
from mailroom.store.table import Item

SECRET_CACHE_SECONDS = 600
_MAX_CACHED = 1000

_cache: dict[bytes, tuple[bytes, float]] = {}
_lock = threading.Lock()


class NoSecret(ValueError):
    """The action has no sealed secret (not a webhook action, or written without one)."""


def secret_context(org_id: str, action_id: str) -> dict[str, str]:
    return {"org_id": org_id, "action_id": action_id}


def new_secret() -> str:
    """A fresh ``whsec_`` secret (to seal, and to show its owner once)."""
    return signing.new_secret()


def seal(secret: str, org_id: str, action_id: str) -> bytes:
    """The ``secret_ciphertext`` an action item stores for ``secret`` (one KMS Encrypt)."""
    signing.secret_key(secret)  # a malformed secret is refused before it is stored
    return kms.encrypt(secret.encode(), secret_context(org_id, action_id))


def signing_key(action: Item) -> bytes:
    """The HMAC key of the action's secret: one KMS Decrypt, then cached for ten minutes."""
    ciphertext = action.get("secret_ciphertext")
    if not ciphertext:
        raise NoSecret(f"action {action.get('id')} has no secret")
    sealed = bytes(ciphertext)
    digest = hashlib.sha256(sealed).digest()
    now = time.monotonic()
    with _lock:
        cached = _cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    plain = kms.decrypt(sealed, secret_context(str(action["org_id"]), str(action["id"])))
    key = signing.secret_key(plain.decode())
    with _lock:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[digest] = (key, now + SECRET_CACHE_SECONDS)
    return key


def signed_headers(action: Item, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """``content-type`` and the three Standard Webhooks headers for ``body`` sent as ``msg_id``.
    ``msg_id`` stays the same across retries of one delivery (receivers deduplicate on it)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return signing.headers([signing_key(action)], msg_id, stamp, body)
