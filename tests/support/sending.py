"""Sending test support: message tokens, SES v2's sent messages as moto keeps them, and SES delivery
events (EventBridge) built from ``events/ses_delivery_*.json`` for a given Sent copy."""

from __future__ import annotations

import copy
from typing import Any

from mailroom.services.organizations import NewOrganization
from tests.support.lambda_api import Result, load_event
from tests.support.mailboxes import ok, post

ACCOUNT = "123456789012"
REGION = "us-east-1"
ALL_MESSAGE_SCOPES = ["messages:read", "messages:write", "messages:send"]
SAMPLES = {
    "delivered": "ses_delivery_delivered.json",
    "bounced": "ses_delivery_bounced.json",
    "complained": "ses_delivery_complaint.json",
    "rejected": "ses_delivery_rejected.json",
    "delayed": "ses_delivery_delayed.json",
}


def message_token(org: NewOrganization, mailbox_id: str, scopes: list[str] | None = None) -> str:
    body = {"name": "sender", "scopes": scopes or ALL_MESSAGE_SCOPES}
    created = ok(
        post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox_id}/message-tokens", body), 201
    )
    return str(created["token"])


def send(token: str, body: dict[str, Any]) -> Result:
    return post("send", token, "/api/v1/messages/send", body)


def sent_messages() -> list[Any]:
    """What moto's SES accepted (``RawMessage``: id, source, destinations, raw_data, and the
    configuration set and tags local.moto_patches.ses_sends keeps)."""
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def ses_event(
    kind: str,
    message: dict[str, Any],
    recipients: list[str],
    *,
    bounce_type: str = "Permanent",
    timestamp: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event SES publishes about ``message`` (a Sent copy), for ``recipients``."""
    event = copy.deepcopy(load_event(SAMPLES[kind]))
    detail = event["detail"]
    mail = detail["mail"]
    mail["messageId"] = message["ses_message_id"]
    mail["destination"] = list(recipients)
    mail["tags"].update(
        {
            "org_id": [message["org_id"]],
            "mailbox_id": [message["mailbox_id"]],
            "message_id": [message["id"]],
        }
    )
    if kind == "delivered":
        detail["delivery"]["recipients"] = list(recipients)
        if timestamp:
            detail["delivery"]["timestamp"] = timestamp
    elif kind == "bounced":
        template = detail["bounce"]["bouncedRecipients"][0]
        detail["bounce"]["bouncedRecipients"] = [{**template, "emailAddress": r} for r in recipients]
        detail["bounce"]["bounceType"] = bounce_type
        detail["bounce"]["bounceSubType"] = "General"
    elif kind == "complained":
        detail["complaint"]["complainedRecipients"] = [{"emailAddress": r} for r in recipients]
    elif kind == "delayed":
        template = detail["deliveryDelay"]["delayedRecipients"][0]
        detail["deliveryDelay"]["delayedRecipients"] = [{**template, "emailAddress": r} for r in recipients]
    return event
