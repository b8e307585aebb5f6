"""Drive the inbound function the way SES does: the raw message stored at ``inbound/<id>`` (with the
trace headers SES prepends, made by the local stack's own SES emulation), then the receipt event
built from ``events/ses_email_receiving.json`` — or the S3 ``ObjectCreated`` event of the object,
from ``events/s3_object_created.json``."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime
from typing import Any

from local import ses
from mailroom.store import aws
from tests.support.lambda_api import LambdaContext, function_module, load_event

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()
PASSING = {
    "spam": "PASS",
    "virus": "PASS",
    "spf": "PASS",
    "dkim": "PASS",
    "dmarc": "PASS",
    "dmarcPolicy": "none",
}


def new_ses_id() -> str:
    """Shaped like SES's (40 lower-case alphanumerics), unique in the test session."""
    return f"{next(_ids):08d}" + ses.new_message_id()[8:]


def message(
    subject: str = "Hello",
    *,
    sender: str = "Ann Example <ann@example.net>",
    to: str = "inbox@example.com",
    message_id: str = "<m1@example.net>",
    body: str = "hello there",
    extra_headers: list[str] | None = None,
) -> bytes:
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Sun, 01 Mar 2026 12:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        *(extra_headers or []),
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def store_inbound(
    bucket: str,
    raw: bytes,
    *,
    recipients: list[str],
    source: str = "ann@example.net",
    ses_id: str | None = None,
    verdicts: dict[str, str] | None = None,
    at: datetime = WHEN,
) -> tuple[str, bytes]:
    """What the receipt rule's S3 action does: (SES message id, the stored bytes)."""
    ses_id = ses_id or new_ses_id()
    stored = ses.with_ses_headers(
        raw,
        source=source,
        recipients=recipients,
        message_id=ses_id,
        helo="mx.example.net",
        peer="192.0.2.1",
        verdicts={**PASSING, **(verdicts or {})},
        region="us-east-1",
        received_at=at,
    )
    aws.client("s3").put_object(Bucket=bucket, Key=f"inbound/{ses_id}", Body=stored)
    return ses_id, stored


def ses_event(
    ses_id: str,
    recipients: list[str],
    *,
    source: str = "ann@example.net",
    verdicts: dict[str, str] | None = None,
    at: datetime = WHEN,
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("ses_email_receiving.json"))
    record = event["Records"][0]["ses"]
    merged = {**PASSING, **(verdicts or {})}
    record["mail"].update(
        {"messageId": ses_id, "source": source, "destination": recipients, "timestamp": ses.iso_ms(at)}
    )
    receipt = record["receipt"]
    receipt["recipients"] = recipients
    receipt["timestamp"] = ses.iso_ms(at)
    for name in ses.VERDICTS:
        receipt[f"{name}Verdict"] = {"status": merged[name]}
    if merged["dmarc"] == "FAIL":
        receipt["dmarcPolicy"] = merged["dmarcPolicy"]
    return event


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("s3_object_created.json"))
    record = event["Records"][0]["s3"]
    record["bucket"]["name"] = bucket
    record["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["object"]["key"] = key.replace(" ", "+")  # as S3 encodes keys in notifications
    return event


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = function_module("inbound").handler(event, LambdaContext(function_name="inbound"))
    return result


def receive(
    bucket: str,
    raw: bytes,
    recipients: list[str],
    *,
    source: str = "ann@example.net",
    verdicts: dict[str, str] | None = None,
    at: datetime = WHEN,
    ses_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Store and invoke, as a receipt rule does: (SES message id, the function's report)."""
    ses_id, _ = store_inbound(
        bucket, raw, recipients=recipients, source=source, ses_id=ses_id, verdicts=verdicts, at=at
    )
    result = invoke(ses_event(ses_id, recipients, source=source, verdicts=verdicts, at=at))
    (report,) = result["messages"]
    return ses_id, report
