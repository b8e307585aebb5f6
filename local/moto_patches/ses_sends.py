"""SES v2 ``SendEmail``: what moto drops, kept; listeners told of every send.

moto accepts ``ConfigurationSetName`` and ``EmailTags`` and forgets them; SES acts on both (the
set's event destinations publish the send's events, carrying its tags). They are kept on moto's
stored message (``configuration_set_name``, ``email_tags``) and passed to the listeners
(``add_send_listener``: the local stack delivers what SES accepts, see local/outbound.py).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One accepted SES v2 ``SendEmail``, as the request gave it."""

    message_id: str
    from_address: str | None
    recipients: list[str]  # the envelope: Destination's To, Cc and Bcc addresses
    raw: bytes | None  # raw MIME (``Content.Raw``); None for simple or templated content
    configuration_set: str | None
    tags: dict[str, str] = field(default_factory=dict)
    account_id: str = ""
    region: str = ""


SendListener = Callable[[SentEmail], object]
_listeners: list[SendListener] = []
_listeners_lock = threading.Lock()


def add_send_listener(listener: SendListener) -> None:
    """Call ``listener`` after every accepted send, on moto's request thread: it must only hand the
    work to a thread of its own and return."""
    with _listeners_lock:
        _listeners.append(listener)


def remove_send_listener(listener: SendListener) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def install() -> None:
    from moto.sesv2.responses import SESV2Response

    if getattr(SESV2Response, "_mailroom_recorded", False):
        return
    send_email = SESV2Response.send_email

    def recorded_send_email(self: Any) -> str:
        answer: str = send_email(self)
        params = json.loads(self.body or "{}")
        destination = params.get("Destination") or {}
        raw = ((params.get("Content") or {}).get("Raw") or {}).get("Data")
        sent = SentEmail(
            message_id=str(json.loads(answer)["MessageId"]),
            from_address=params.get("FromEmailAddress"),
            recipients=[
                str(a)
                for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
                for a in destination.get(kind) or []
            ],
            raw=base64.b64decode(raw) if raw else None,
            configuration_set=params.get("ConfigurationSetName"),
            tags={str(t["Name"]): str(t["Value"]) for t in params.get("EmailTags") or []},
            account_id=self.current_account,
            region=self.region,
        )
        for message in reversed(self.sesv2_backend.core_backend.sent_messages):
            if message.id == sent.message_id:
                message.configuration_set_name = sent.configuration_set
                message.email_tags = dict(sent.tags)
                break
        with _listeners_lock:
            listeners = list(_listeners)
        for listener in listeners:
            try:
                listener(sent)
            except Exception:
                # SES has accepted the message whatever happens after: a listener never fails a send.
                log.exception("SES send listener failed for %s", sent.message_id)
        return answer

    SESV2Response.send_email = recorded_send_email  # type: ignore[method-assign]
    SESV2Response._mailroom_recorded = True  # type: ignore[attr-defined]
