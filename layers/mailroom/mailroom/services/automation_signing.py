"""Signing what an automation action POSTs (a task's webhook digest): the action's own secret,
KMS-sealed on the action item (``secret_ciphertext``, encryption context ``{"org_id", "action_id"}``
as the automation API seals it), unsealed here and used per Standard Webhooks (domain/webhooks.py:
``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), so a receiver verifies with any
Standard Webhooks library and the secret it was shown once.

Unsealed keys are kept in memory for a few minutes per ciphertext (one KMS Decrypt per action per
warm container, not per delivery). The route webhooks' executor does the same (autoworker); the two
are meant to be one module.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from mailroom import errors
from mailroom.domain import webhooks as rules
from mailroom.store import kms

SECRET_CACHE_SECONDS = 300
_cache: dict[bytes, tuple[bytes, float]] = {}
_lock = threading.Lock()


def secret_context(org_id: str, action_id: str) -> dict[str, str]:
    return {"org_id": org_id, "action_id": action_id}


def signing_key(action: Mapping[str, Any]) -> bytes:
    """The HMAC key of the action's secret; 422 ``action_secret_missing`` if the item has none."""
    sealed = action.get("secret_ciphertext")
    if not sealed:
        raise errors.validation(
            "the webhook action has no secret", field="action_id", code="action_secret_missing"
        )
    ciphertext = bytes(sealed)
    digest = hashlib.sha256(ciphertext).digest()
    now = time.monotonic()
    with _lock:
        cached = _cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    key = rules.secret_key(kms.decrypt(ciphertext, secret_context(action["org_id"], action["id"])).decode())
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[digest] = (key, now + SECRET_CACHE_SECONDS)
    return key


def signed_headers(action: Mapping[str, Any], msg_id: str, body: bytes, *, timestamp: int) -> dict[str, str]:
    """``content-type`` and the three Standard Webhooks headers for ``body``."""
    return rules.headers([signing_key(action)], msg_id, timestamp, body)
