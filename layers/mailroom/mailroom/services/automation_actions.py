"""What each asynchronous action does to one message (docs/automation-execution.md).

* ``webhook``: one HTTPS POST through ``mailroom.webhook_http`` (the SSRF-guarded client: public
  addresses only, no redirects, 15 s), signed per Standard Webhooks with the action's own secret
  (``services.automation_webhooks``); the body is the action's ``body_template`` rendered in the
  JSON sandbox over the template context, else the default payload. 2xx is done; 410 fails for good;
  anything else is retried (``Retry-After`` honoured).
* ``eventbridge``: one ``PutEvents`` entry on the named bus (an account the operator allows:
  ``EventBridgeDestinationAccounts``), detail = the default payload. A bus that does not exist or
  is not allowed fails for good; anything else is retried.
* ``forward``: the stored raw message, rewritten as the mailbox's own forwarding rewrites it
  (``mail.forwarding``: From the mailbox, Reply-To the sender, a ``Delivered-To`` line), sent
  through SES from the mailbox's address. Not for spam, not when the message already went through
  this mailbox (a loop), not to suppressed addresses, not from a paused or inactive mailbox.
* ``reply``: the auto-reply restraint of ``domain.auto_reply`` (never to automatic, bulk or list
  mail, system senders, the mailbox's own mail, spam), then once per sender per ``interval_days``
  (the mailbox's ``AUTOREPLIED#`` marker, shared with its vacation reply), sent through the normal
  send path (``services.sending``) as a reply carrying ``Auto-Submitted: auto-replied``. A test
  message (``testmail``) is answered on paper only: the reply is rendered into the log, not sent.

Every executor returns an ``Outcome``; none raises for what the destination answered. An AWS error
that outlasted the client's retries raises, and the worker retries the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from mailroom import clock
from mailroom.domain import auto_reply, event_buses
from mailroom.domain import automation_runs as runs
from mailroom.domain import webhooks as webhook_rules
from mailroom.errors import MailroomError
from mailroom.mail import forwarding
from mailroom.mail import templates as engine
from mailroom.services import automation_webhooks
from mailroom.services.mailbox_policy import send_blocked
from mailroom.settings import Settings
from mailroom.store import action_runs, mail_objects, suppressions, usage
from mailroom.store import event_buses as buses
from mailroom.store.errors import ObjectMissing, SendRefused, StoreError
from mailroom.store.table import Item, Table

DEFAULT_REPLY_SUBJECT = "Re: {{ message.subject }}"
DEFAULT_REPLY_INTERVAL_DAYS = 1
REPLY_LABEL = auto_reply.REPLY_LABEL
SES_BATCH = 50  # recipients per SendEmail


@dataclass(frozen=True, slots=True)
class Outcome:
    """``status``: done, failed or skipped (final), or retry (try again later)."""

    status: str
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None

    @property
    def final(self) -> bool:
        return self.status in runs.TERMINAL


def done(**detail: Any) -> Outcome:
    return Outcome(runs.DONE, detail=detail)


def failed(error: str, **detail: Any) -> Outcome:
    return Outcome(runs.FAILED, runs.clipped(error), detail=detail)


def skipped(reason: str, **detail: Any) -> Outcome:
    return Outcome(runs.SKIPPED, reason, detail=detail)


def retry(error: str | None, *, retry_after: float | None = None) -> Outcome:
    return Outcome(runs.RETRY, runs.clipped(error), retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Job:
    """One action of one message, with everything read for it."""

    pending: runs.PendingAction
    action: Item
    mailbox: Item
    message: Item
    entry: Item  # the processing-log entry
    context: dict[str, Any]  # the template context

    @property
    def parameters(self) -> Mapping[str, Any]:
        found = self.action.get("parameters")
        return found if isinstance(found, Mapping) else {}

    @property
    def test(self) -> bool:
        return bool(self.entry.get("test"))

    def payload(self) -> dict[str, Any]:
        return runs.default_payload(self.pending.run_id, clock.now_iso(), self.context, test=self.test)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _is_spam(message: Item) -> bool:
    verdicts = message.get("verdicts") or {}
    return message.get("folder_key") == "spam" or verdicts.get("spam") == "FAIL"


# ----------------------------------------------------------------------------- webhook


def webhook_body(job: Job) -> bytes | Outcome:
    """The POST's body (the rendered template, else the default payload), or a failed Outcome when
    the template cannot make one (retrying would not help)."""
    template = job.parameters.get("body_template")
    if not template:
        return _json_bytes(job.payload())
    try:
        return _json_bytes(engine.render_json(str(template), job.context))
    except engine.TemplateError as exc:
        return failed(exc.message, code=exc.code)


async def webhook(job: Job, body: bytes, headers: Mapping[str, str], *, client: httpx.AsyncClient) -> Outcome:
    """One signed POST (the body and headers made by the caller, off the event loop)."""
    from mailroom import webhook_http

    result = await webhook_http.post(client, str(job.parameters.get("url")), body, headers)
    detail: dict[str, Any] = {"status_code": result.status_code}
    if result.response_excerpt:
        detail["response"] = result.response_excerpt[:200]
    if result.succeeded:
        return Outcome(runs.DONE, detail=detail)
    if result.gone:
        return Outcome(runs.FAILED, "endpoint_gone: HTTP 410", detail=detail)
    return Outcome(runs.RETRY, runs.clipped(result.error), detail=detail, retry_after=result.retry_after)


def webhook_request(job: Job, settings: Settings) -> tuple[bytes, dict[str, str]] | Outcome:
    """The checked URL, the body and its signed headers (blocking: KMS on a cold cache, rendering)."""
    try:
        webhook_rules.parse_url(
            str(job.parameters.get("url") or ""), allow_http=settings.webhook_allow_private
        )
    except webhook_rules.InvalidWebhookUrl as exc:
        return failed(f"invalid_url: {exc}")
    body = webhook_body(job)
    if isinstance(body, Outcome):
        return body
    try:
        headers = automation_webhooks.signed_headers(job.action, job.pending.run_id, body)
    except automation_webhooks.NoSecret as exc:
        return failed(f"no_secret: {exc}")
    return body, headers


# ----------------------------------------------------------------------------- eventbridge


def eventbridge(job: Job, settings: Settings) -> Outcome:
    params = job.parameters
    try:
        bus = event_buses.check_allowed(
            event_buses.parse_arn(str(params.get("event_bus_arn") or "")), settings.eventbridge_accounts
        )
    except ValueError as exc:
        return failed(f"event_bus_not_allowed: {exc}")
    detail_type = str(params.get("detail_type") or runs.DEFAULT_DETAIL_TYPE)
    try:
        event_id = buses.put_event(
            bus, detail_type, _json_bytes(job.payload()).decode(), created_at=clock.utcnow()
        )
    except ObjectMissing as exc:
        return failed(f"event_bus_not_found: {exc.message}")
    except StoreError as exc:
        return retry(f"{exc.code}: {exc.message}" if exc.code else exc.message)
    return done(event_id=event_id, event_bus_arn=bus.arn, detail_type=detail_type)


# ----------------------------------------------------------------------------- forward


def forward(table: Table, job: Job) -> Outcome:
    mailbox, message = job.mailbox, job.message
    targets = [str(t).strip() for t in job.parameters.get("to") or [] if str(t).strip()]
    if not targets:
        return failed("no_targets: the action names no address to forward to")
    blocked = send_blocked(mailbox)
    if blocked is not None:
        return skipped(blocked.code)
    if _is_spam(message):
        return skipped("spam")
    if not message.get("raw_key"):
        return skipped("message_gone")
    try:
        raw = mail_objects.get_bytes(str(message["raw_key"]))
    except ObjectMissing:
        return skipped("message_gone")
    forwarder = str(mailbox["address"]).lower()
    if forwarding.is_looping(raw, forwarder):
        return skipped("loop", delivered_to=forwarding.delivered_to(raw)[:10])
    suppressed = suppressions.find(table, job.pending.org_id, targets)
    allowed = [t for t in targets if t.lower() not in suppressed]
    if not allowed:
        return skipped("suppressed", to=targets)
    data = forwarding.forwarded(
        raw,
        forwarder=forwarder,
        original_from=message.get("from"),
        original_reply_to=list(message.get("reply_to") or []),
        original_message_id=message.get("rfc_message_id"),
        references=list(message.get("references") or []),
    )
    from mailroom.store import ses_outbound

    sent: list[str] = []
    try:
        for start in range(0, len(allowed), SES_BATCH):
            sent.append(
                ses_outbound.send_raw(
                    data,
                    envelope_from=forwarder,
                    recipients=allowed[start : start + SES_BATCH],
                    tags={
                        "org_id": job.pending.org_id,
                        "mailbox_id": job.pending.mailbox_id,
                        "kind": "automation_forward",
                        "action_id": job.pending.action_id,
                    },
                )
            )
    except SendRefused as exc:
        return failed(f"forward_rejected: {exc.message}")
    except StoreError as exc:
        if sent:  # some recipients have it: a retry would send them a second copy
            return failed(f"partly_sent: {exc.message}", to=allowed, ses_message_ids=sent)
        return retry(f"{exc.code}: {exc.message}" if exc.code else exc.message)
    usage.add(
        table,
        job.pending.org_id,
        clock.utcnow().strftime("%Y-%m"),
        messages_forwarded=1,
        sent_recipients=len(allowed),
    )
    return done(to=allowed, ses_message_ids=sent, suppressed=sorted(suppressed))


# ----------------------------------------------------------------------------- reply


def _headers(message: Item, body: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    headers: dict[str, tuple[str, ...]] = {}
    for pair in body.get("headers") or []:
        name, value = str(pair[0]).lower(), str(pair[1])
        headers[name] = (*headers.get(name, ()), value)
    return headers


def _one_line(text: str) -> str:
    return " ".join(text.split())


def reply(table: Table, job: Job, body: Mapping[str, Any], *, now: datetime) -> Outcome:
    """``body``: the message's stored ``{text, html, headers}``."""
    from mailroom.services.sending import SendRequest, send

    params, message, mailbox = job.parameters, job.message, job.mailbox
    try:
        parts = engine.render(
            engine.Parts(
                subject=str(params.get("subject") or DEFAULT_REPLY_SUBJECT),
                text=str(params["text"]) if params.get("text") is not None else None,
                html=str(params["html"]) if params.get("html") is not None else None,
            ),
            job.context,
        )
    except engine.TemplateError as exc:
        return failed(exc.message, code=exc.code)
    subject = _one_line(parts.subject)[: auto_reply.MAX_SUBJECT_CHARS]
    recipient = str(message.get("envelope_from") or "").strip().strip("<>")
    if job.test:
        # The test sender is whatever the user typed: a real reply could bounce off a made-up address.
        return skipped("test_message", to=recipient or None, subject=subject)
    refusal = auto_reply.refusal(
        _headers(message, body),
        return_path=recipient,
        own_addresses=[str(mailbox["address"]), str(message.get("delivered_to") or mailbox["address"])],
        spam=_is_spam(message),
        virus=False,
    )
    if refusal is not None:
        return skipped(refusal)
    blocked = send_blocked(mailbox)
    if blocked is not None:
        return skipped(blocked.code)
    interval = min(
        max(int(params.get("interval_days") or DEFAULT_REPLY_INTERVAL_DAYS), 1), auto_reply.MAX_INTERVAL_DAYS
    )
    if not action_runs.claim_reply(
        table,
        job.pending.org_id,
        job.pending.mailbox_id,
        recipient.lower(),
        run_id=job.pending.run_id,
        interval_days=interval,
        now=now,
    ):
        return skipped("already_replied", to=recipient)
    references = [
        *list(message.get("references") or []),
        *([message["rfc_message_id"]] if message.get("rfc_message_id") else []),
    ]
    request = SendRequest(
        to=[recipient],
        subject=subject,
        text=parts.text,
        html=parts.html,
        headers={"Auto-Submitted": "auto-replied"},
        labels=[REPLY_LABEL],
        in_reply_to=message.get("rfc_message_id"),
        references=list(dict.fromkeys(references))[-20:],
    )
    try:
        sent = send(table, mailbox, request, now=now)
    except MailroomError as refused:
        if refused.retryable:
            return retry(f"{refused.code}: {refused.message}")
        return failed(f"{refused.code}: {refused.message}")
    return done(to=recipient, message_id=sent.message_id, subject=subject)
