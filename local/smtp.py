"""SES inbound over real SMTP: an aiosmtpd listener that does what the active receipt rule set does.

RCPT is refused (550 5.1.1) unless an enabled rule of the active rule set matches the address and,
like SES (which receives only for identities verified in its region; a rule without recipients means
"all of them"), the address or its domain is an SES identity of the account. Locally an identity
counts as verified once it exists: domains made through the API are, whatever their DNS says.
After DATA, each matching rule's actions run in order: ``S3Action`` stores the raw message (with
the headers SES prepends) at ``<ObjectKeyPrefix><messageId>``, ``LambdaAction`` invokes the
function with SES's receipt event (``Event``: without waiting; ``RequestResponse``: waiting, and
honouring a returned ``disposition``), ``AddHeaderAction`` and ``StopAction`` do what they say.
Other actions (SNS, bounce, WorkMail) are logged and skipped. Like SES, the SMTP answer does not
depend on the actions' outcome: failures are logged.

The rules are read from moto's active rule set on each message, so rules created through the API
while the stack runs apply too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from local import ses
from local.ses import ReceiptRule

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # SES's limit for received mail
RulesSource = Callable[[], list[ReceiptRule]]
IdentitiesSource = Callable[[], set[str]]


@dataclass(slots=True)
class _Message:
    raw: bytes  # as stored: with the headers SES adds (and any AddHeaderAction's)
    source: str
    recipients: list[str]
    message_id: str
    received_at: datetime
    started: float
    verdicts: dict[str, str]


@dataclass(frozen=True, slots=True)
class Received:
    message_id: str
    rules: list[str]  # the rules that applied, in order


class Invoker(Protocol):
    def invoke(self, ref: str, event: Any) -> Any: ...

    def submit(self, ref: str, event: Any) -> concurrent.futures.Future[Any]: ...


def moto_rules(ses_client: Any) -> RulesSource:
    """The active rule set's rules, read through the SES API."""

    def rules() -> list[ReceiptRule]:
        active = ses_client.describe_active_receipt_rule_set()
        return [ReceiptRule.from_api(r) for r in active.get("Rules") or []]

    return rules


def moto_identities(ses_client: Any) -> IdentitiesSource:
    """The account's SES identities (addresses and domains, lower case), read through the SES API."""

    def identities() -> set[str]:
        pages = ses_client.get_paginator("list_identities").paginate()
        return {identity.lower() for page in pages for identity in page.get("Identities", [])}

    return identities


def is_identity(identities: set[str], address: str) -> bool:
    """An address SES receives for: itself, its domain or a parent domain is an identity."""
    address = address.strip().lower()
    labels = address.rpartition("@")[2].split(".")
    return address in identities or any(".".join(labels[i:]) in identities for i in range(len(labels) - 1))


class InboundProcessor:
    """Runs the receipt rules for one received message (blocking; called off the SMTP loop)."""

    def __init__(
        self,
        rules: RulesSource,
        runtime: Invoker,
        s3_client: Any,
        *,
        region: str,
        identities: IdentitiesSource | None = None,
    ) -> None:
        self._rules = rules
        self._runtime = runtime
        self._s3 = s3_client
        self._region = region
        self._identities = identities

    def rules(self) -> list[ReceiptRule]:
        return self._rules()

    def receives_for(self, address: str) -> bool:
        """SES's own check before any rule: is the recipient a (verified) identity? Without an
        identity source (unit tests of the rules alone) every address is."""
        return self._identities is None or is_identity(self._identities(), address)

    def receive(
        self,
        raw: bytes,
        *,
        source: str,
        recipients: list[str],
        helo: str = "localhost",
        peer: str = "127.0.0.1",
    ) -> Received:
        """Process a message: its SES message id and the rules that applied."""
        message_id = ses.new_message_id()
        received_at = datetime.now(UTC)
        verdicts = ses.verdicts_of(raw)
        message = _Message(
            raw=ses.with_ses_headers(
                raw,
                source=source,
                recipients=recipients,
                message_id=message_id,
                helo=helo,
                peer=peer,
                verdicts=verdicts,
                region=self._region,
                received_at=received_at,
            ),
            source=source,
            recipients=recipients,
            message_id=message_id,
            received_at=received_at,
            started=time.monotonic(),
            verdicts=verdicts,
        )
        applied = []
        for rule in self._rules():
            matched = [r for r in recipients if rule.matches(r)]
            if not matched:
                continue
            log.info("message %s from %s: rule %s for %s", message_id, source, rule.name, ", ".join(matched))
            applied.append(rule.name)
            if self._apply(rule, matched, message) == "STOP_RULE_SET":
                break
        return Received(message_id, applied)

    def _apply(self, rule: ReceiptRule, matched: list[str], message: _Message) -> str:
        """Run a rule's actions; returns ``STOP_RULE_SET`` when no further rule may run."""
        for action in rule.actions:
            ((kind, params),) = action.items()
            if kind == "StopAction":
                return "STOP_RULE_SET"
            if kind == "AddHeaderAction":
                message.raw = f"{params['HeaderName']}: {params['HeaderValue']}\r\n".encode() + message.raw
            elif kind == "S3Action":
                self._store(message.raw, params, message.message_id)
            elif kind == "LambdaAction":
                disposition = self._invoke(params, self._event(params, matched, message))
                if disposition in ("STOP_RULE", "STOP_RULE_SET"):
                    return disposition
            else:
                log.warning("receipt rule %s: %s is not emulated locally; skipped", rule.name, kind)
        return "CONTINUE"

    @staticmethod
    def _event(params: dict[str, Any], matched: list[str], message: _Message) -> dict[str, Any]:
        mail = ses.mail_object(
            message.raw,
            source=message.source,
            destination=message.recipients,
            message_id=message.message_id,
            timestamp=message.received_at,
        )
        receipt = ses.receipt_object(
            recipients=matched,
            verdicts=message.verdicts,
            timestamp=message.received_at,
            processing_ms=int((time.monotonic() - message.started) * 1000),
            action={
                "type": "Lambda",
                "functionArn": params["FunctionArn"],
                "invocationType": params.get("InvocationType", "Event"),
            },
        )
        return ses.lambda_event(mail, receipt)

    def _store(self, raw: bytes, params: dict[str, Any], message_id: str) -> None:
        key = f"{params.get('ObjectKeyPrefix') or ''}{message_id}"
        try:
            self._s3.put_object(Bucket=params["BucketName"], Key=key, Body=raw)
        except Exception:
            log.exception("S3Action: could not store s3://%s/%s", params["BucketName"], key)

    def _invoke(self, params: dict[str, Any], event: dict[str, Any]) -> str | None:
        function = params["FunctionArn"]
        if params.get("InvocationType", "Event") == "RequestResponse":
            try:
                result = self._runtime.invoke(function, event)
            except Exception:
                log.exception("LambdaAction: %s failed", function)
                return None
            return str(result.get("disposition", "CONTINUE")).upper() if isinstance(result, dict) else None
        try:
            self._runtime.submit(function, event)
        except Exception:
            log.exception("LambdaAction: could not invoke %s", function)
        return None


class _Handler:
    """aiosmtpd hooks; the blocking work runs on a small pool, not on the SMTP event loop."""

    def __init__(self, processor: InboundProcessor, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self._processor = processor
        self._pool = pool

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd looks for
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        loop = asyncio.get_running_loop()
        try:
            rules = await loop.run_in_executor(self._pool, self._processor.rules)
        except Exception:
            log.exception("could not read the receipt rules")
            return "451 4.3.0 Local SES: receipt rules unavailable, try again"
        if not any(rule.enabled for rule in rules):
            return (
                f"550 5.1.1 <{address}>: recipient rejected: no active SES receipt rule set with an enabled "
                "rule (the template declares no receipt rules)"
            )
        if not ses.matching_rules(rules, address):
            return f"550 5.1.1 <{address}>: recipient rejected: no SES receipt rule matches this address"
        try:
            receives = await loop.run_in_executor(self._pool, self._processor.receives_for, address)
        except Exception:
            log.exception("could not read the SES identities")
            return "451 4.3.0 Local SES: identities unavailable, try again"
        if not receives:
            return (
                f"550 5.1.1 <{address}>: recipient rejected: neither the address nor its domain is an SES "
                "identity of this account"
            )
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - the name aiosmtpd looks for
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else str(raw).encode()
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)

        def receive() -> Received:
            return self._processor.receive(
                raw,
                source=envelope.mail_from or "",
                recipients=list(envelope.rcpt_tos),
                helo=session.host_name or "unknown",
                peer=peer,
            )

        try:
            received = await asyncio.get_running_loop().run_in_executor(self._pool, receive)
        except Exception:
            log.exception("inbound message could not be processed")
            return "451 4.3.0 Local SES: processing failed, try again"
        return f"250 Ok {received.message_id}"


class SmtpServer:
    def __init__(
        self, processor: InboundProcessor, *, port: int, region: str, host: str = "127.0.0.1"
    ) -> None:
        from aiosmtpd.controller import Controller

        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ses-inbound")
        self._controller = Controller(
            _Handler(processor, self._pool),
            hostname=host,
            port=port,
            server_hostname=f"inbound-smtp.{region}.amazonaws.com",
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
        )

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
