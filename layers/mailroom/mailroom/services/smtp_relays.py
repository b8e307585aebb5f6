"""Outbound SMTP relays: an organization's own mail server, used instead of SES for the sender
domains it claims (``/api/v1/smtp``; docs/smtp-relays.md).

A relay has a host, port, security (``ssl`` implicit TLS, ``starttls``, ``none``), optional
credentials and its sender domains (domains of the organization; each belongs to at most one relay).
The password is sealed with the stack's KMS key under an encryption context naming the organization
and the relay, and never returned. ``:test`` runs asynchronously (a queue and a worker): resolve,
connect, TLS with certificate verification, AUTH, optionally a test message; each step's outcome
and the server's replies are stored on the job.

Sending: ``relayed_send`` is the send path's one call into this module. For a sender domain with a
relay it sends the composed bytes through the relay (keeping Mailroom's Message-ID, so replies
thread), and the send path stores the Sent copy, emits ``message.sent`` and checks suppressions
exactly as for SES. A transient failure (cannot connect, 4xx) is reported like an SES throttle
(503 ``relay_unavailable``, retryable, nothing sent); a permanent 5xx fails the send with the
relay's reply (422 ``relay_rejected``); recipients refused while others were accepted are marked
``rejected`` in the Sent copy with the reply.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import re
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, TypeVar

from mailroom import clock, errors, ids
from mailroom.domain import ssrf
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.loops import run_on_thread_loop
from mailroom.observability import logger
from mailroom.services import mailboxes as mailbox_service
from mailroom.settings import get_settings
from mailroom.smtp_relay import SECURITIES, RelayConfig, RelayFailed, Step
from mailroom.smtp_relay import send as relay_send
from mailroom.smtp_relay import test as relay_test
from mailroom.store import kms, txn
from mailroom.store import smtp_relays as store
from mailroom.store.table import Item, Page, Table

T = TypeVar("T")
MAX_SENDER_DOMAINS = 50
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
TEST_RETENTION_SECONDS = 7 * 86400


# --- views and validation ---------------------------------------------------------------------------


def relay_view(relay: Item) -> dict[str, Any]:
    return {
        "id": relay["id"],
        "host": relay["host"],
        "port": int(relay["port"]),
        "security": relay["security"],
        "username": relay.get("username"),
        "password_set": bool(relay.get("password_ciphertext")),
        "sender_domains": list(relay.get("sender_domains") or []),
        "created_at": relay["created_at"],
        "updated_at": relay["updated_at"],
    }


def test_view(job: Item) -> dict[str, Any]:
    return {
        "id": job["id"],
        "relay_id": job["relay_id"],
        "status": job["status"],
        "send_to": job.get("send_to"),
        "steps": [
            {"step": s["step"], "ok": bool(s["ok"]), "reply": s.get("reply"), "detail": s.get("detail")}
            for s in job.get("steps") or []
        ],
        "created_at": job["created_at"],
        "finished_at": job.get("finished_at"),
    }


def _host(raw: str) -> str:
    host = raw.strip().lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if "." not in host and get_settings().smtp_relay_allow_private and _LABEL.fullmatch(host):
            return host  # a single-label name (localhost): only where private relays are allowed
        try:
            return normalize_domain(host)
        except InvalidDomainName as exc:
            raise errors.validation(f"host: {exc}", field="host", code="invalid_host") from exc
    if not get_settings().smtp_relay_allow_private and not ssrf.is_public(address):
        raise errors.validation(
            f"host: {address} is not a public address ({ssrf.block_reason(address)})",
            field="host",
            code="invalid_host",
        )
    return str(address)


@dataclass(frozen=True, slots=True)
class RelayInput:
    relay_id: str | None
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    sender_domains: list[str]


def _sender_domains(table: Table, org_id: str, names: list[str]) -> list[str]:
    found: list[str] = []
    cache: dict[str, Item | None] = {}
    for index, name in enumerate(names):
        try:
            domain = mailbox_service.resolve_domain(table, org_id, name, cache)
        except errors.Invalid as exc:
            raise errors.validation(
                exc.message, field=f"sender_domains.{index}", code="unknown_domain"
            ) from exc
        if domain["domain"] not in found:
            found.append(str(domain["domain"]))
    if not 1 <= len(found) <= MAX_SENDER_DOMAINS:
        raise errors.validation(
            f"a relay sends for 1 to {MAX_SENDER_DOMAINS} domains", field="sender_domains"
        )
    return found


def _seal(password: str, org_id: str, relay_id: str) -> bytes:
    return kms.encrypt(password.encode(), {"org_id": org_id, "relay_id": relay_id, "purpose": "smtp-relay"})


def _unseal(relay: Item) -> str | None:
    ciphertext = relay.get("password_ciphertext")
    if not ciphertext:
        return None
    context = {"org_id": relay["org_id"], "relay_id": relay["id"], "purpose": "smtp-relay"}
    return kms.decrypt(bytes(ciphertext), context).decode()


# --- create, update, delete -------------------------------------------------------------------------


def put_relay(table: Table, org_id: str, body: RelayInput) -> tuple[Item, bool]:
    """Create a relay (no ``relay_id``) or replace one's settings; (relay, created)."""
    if body.security not in SECURITIES:
        raise errors.validation(f"security must be one of {', '.join(SECURITIES)}", field="security")
    if body.username and body.security == "none":
        raise errors.validation(
            "a password is only sent over TLS: use security ssl or starttls with a username",
            field="security",
            code="insecure_auth",
        )
    host = _host(body.host)
    domains = _sender_domains(table, org_id, body.sender_domains)
    existing = None
    if body.relay_id is not None:
        existing = store.get(table, org_id, body.relay_id)
        if existing is None:
            raise errors.not_found("SMTP relay")
    relay_id = existing["id"] if existing else ids.new_id("rly")
    now = clock.now_iso()
    relay: Item = {
        "id": relay_id,
        "org_id": org_id,
        "host": host,
        "port": body.port,
        "security": body.security,
        "username": body.username or None,
        "sender_domains": domains,
        "created_at": existing["created_at"] if existing else now,
        "updated_at": now,
        "version": int(existing.get("version", 0)) + 1 if existing else 1,
    }
    if body.username and body.password:
        relay["password_ciphertext"] = _seal(body.password, org_id, relay_id)
    elif (
        body.username
        and existing
        and existing.get("password_ciphertext")
        and existing.get("username") == body.username
    ):
        relay["password_ciphertext"] = existing["password_ciphertext"]  # the same login keeps its password
    elif body.username:
        raise errors.validation("a username needs its password", field="password", code="password_required")
    relay = {k: v for k, v in relay.items() if v is not None}

    before = set(existing.get("sender_domains") or []) if existing else set()
    operations = [store.claim_domain_op(org_id, d, relay_id) for d in domains if d not in before]
    operations += [store.release_domain_op(org_id, d, relay_id) for d in sorted(before - set(domains))]
    if existing is None:
        operations += [
            store.create_op(relay),
            store.count_op(org_id, 1, limit=get_settings().smtp_relay_limit),
        ]
    else:
        operations.append(store.replace_op(relay, int(existing.get("version", 0))))
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        raise _explain(table, org_id, rejected, relay_id) from rejected
    return relay, existing is None


def _explain(table: Table, org_id: str, rejected: txn.Rejected, relay_id: str) -> errors.MailroomError:
    for role in rejected.by("domain:"):
        domain = role.removeprefix("domain:")
        owner = store.domain_owner(table, org_id, domain)
        if owner and owner != relay_id:
            return errors.conflict(
                f"{domain} already sends through the relay {owner}",
                code="domain_has_relay",
                hint="Remove the domain from that relay first (PUT it without the domain).",
            )
    if rejected.by("relays"):
        return errors.LimitReached(
            "relay_limit_reached", f"At most {get_settings().smtp_relay_limit} SMTP relays per organization."
        )
    return errors.concurrent_update()


def list_relays(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return store.list_page(table, org_id, per_page=per_page, cursor=cursor)


def load(table: Table, org_id: str, relay_id: str) -> Item:
    relay = store.get(table, org_id, relay_id)
    if relay is None:
        raise errors.not_found("SMTP relay")
    return relay


def delete_relay(table: Table, relay: Item) -> None:
    org_id = relay["org_id"]
    operations = [store.delete_op(relay), store.count_op(org_id, -1)]
    operations += [store.release_domain_op(org_id, d, relay["id"]) for d in relay.get("sender_domains") or []]
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        raise errors.not_found("SMTP relay") from rejected


# --- running SMTP from sync code --------------------------------------------------------------------


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code: on this thread's loop, or (inside a running loop: the API's
    request) on a short-lived thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_on_thread_loop(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-relay") as pool:
        return pool.submit(asyncio.run, coro).result()


def config_of(relay: Item) -> RelayConfig:
    settings = get_settings()
    return RelayConfig(
        host=relay["host"],
        port=int(relay["port"]),
        security=relay["security"],
        username=relay.get("username"),
        password=_unseal(relay),
        timeout=float(settings.smtp_relay_timeout_seconds),
        allow_private=settings.smtp_relay_allow_private,
        ca_file=settings.smtp_relay_ca_file,
        helo=settings.platform_domain,
    )


# --- test jobs --------------------------------------------------------------------------------------


def start_test(table: Table, relay: Item, *, send_to: str | None, sender: str | None) -> Item:
    now = clock.now_iso()
    job: Item = {
        "id": ids.new_id("smt"),
        "org_id": relay["org_id"],
        "relay_id": relay["id"],
        "status": "queued",
        "steps": [],
        "created_at": now,
        "ttl": int(clock.utcnow().timestamp()) + TEST_RETENTION_SECONDS,
    }
    if send_to:
        job["send_to"] = send_to
        job["sender"] = sender or _default_sender(relay)
    store.put_test(table, job)
    store.enqueue_test(relay["org_id"], job["id"])
    return job


def _default_sender(relay: Item) -> str:
    username = str(relay.get("username") or "")
    return username if "@" in username else f"postmaster@{relay['sender_domains'][0]}"


def load_test(table: Table, org_id: str, job_id: str) -> Item:
    job = store.get_test(table, org_id, job_id)
    if job is None:
        raise errors.not_found("SMTP test")
    return job


def test_message(sender: str, recipient: str, relay: Item) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = "Mailroom SMTP relay test"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(
        f"This message was sent through the SMTP relay {relay['host']}:{relay['port']} to test it.\n"
    )
    return message.as_bytes()


def run_test(table: Table, org_id: str, job_id: str) -> Item:
    """The worker's part: run the steps, store them with the outcome (succeeded when all passed)."""
    job = store.get_test(table, org_id, job_id)
    if job is None or job["status"] != "queued":
        return job or {}
    store.finish_test(table, org_id, job_id, {"status": "running"})
    relay = store.get(table, org_id, job["relay_id"])
    if relay is None:
        steps = [Step("resolve", False, detail="the relay was deleted before its test ran")]
    else:
        message = None
        if job.get("send_to"):
            message = (test_message(job["sender"], job["send_to"], relay), job["sender"], job["send_to"])
        try:
            steps = _run(relay_test(config_of(relay), message))
        except Exception:
            # Ended, not left "running" for ever (a redelivered record finds it no longer queued).
            logger().exception("SMTP relay test crashed", extra={"job_id": job_id})
            steps = [Step("connect", False, detail="the test could not run (an internal error); try again")]
    ok = bool(steps) and all(s.ok for s in steps)
    return store.finish_test(
        table,
        org_id,
        job_id,
        {
            "status": "succeeded" if ok else "failed",
            "steps": [{k: v for k, v in asdict(s).items() if v is not None} for s in steps],
            "finished_at": clock.now_iso(),
        },
    )


# --- the send path's seam ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Relayed:
    relay_id: str
    reply: str  # the relay's answer to DATA (usually with its queue id)
    refused: dict[str, str]  # recipients it refused while accepting others → its reply

    @property
    def source_id(self) -> str:
        """Stands where SES's message id would (the send's response, the Sent copy's source)."""
        return f"relay:{self.relay_id}"

    def delivery(self, initial: dict[str, Any], now_iso: str) -> dict[str, Any]:
        """The Sent copy's delivery: refused recipients ``rejected`` with the reply, the rest
        ``sending`` (the relay reports nothing further)."""
        recipients = dict(initial["recipients"])
        for address, reply in self.refused.items():
            recipients[address.lower()] = {"status": "rejected", "at": now_iso, "smtp_response": reply}
        counts: dict[str, int] = {}
        for state in recipients.values():
            counts[state["status"]] = counts.get(state["status"], 0) + 1
        return {**initial, "recipients": recipients, "counts": counts}


def relay_domain(envelope_from: str) -> str:
    """The domain whose relay claim decides how a message from ``envelope_from`` goes out."""
    return envelope_from.rpartition("@")[2].lower()


def relayed_send(
    table: Table,
    org_id: str,
    relay_id: str | None,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: list[str],
    require_tls: bool = False,
) -> Relayed | None:
    """Send through the relay ``relay_id`` (the sender domain's claim, read with the send's other
    checks: store/send_checks.py); None when the domain has none (then SES). ``require_tls`` (a
    mailbox's tls_enforce_out): a relay reached without TLS refuses the send."""
    domain = relay_domain(envelope_from)
    relay = store.get(table, org_id, relay_id) if relay_id else None
    if relay is None:
        return None
    if require_tls and relay["security"] == "none":
        raise errors.Invalid(
            "tls_required",
            f"The mailbox enforces TLS for outgoing mail (tls_enforce_out) but the SMTP relay of {domain} "
            f"({relay['host']}) is reached without TLS; nothing was sent.",
            hint="Set the relay's security to ssl or starttls, or turn tls_enforce_out off.",
        )
    try:
        sent = _run(relay_send(config_of(relay), raw, envelope_from=envelope_from, recipients=recipients))
    except RelayFailed as failure:
        logger().warning(
            "the SMTP relay refused a send",
            extra={
                "relay_id": relay["id"],
                "step": failure.step,
                "reply": failure.reply,
                "detail": failure.detail,
            },
        )
        if failure.permanent:
            raise errors.Invalid(
                "relay_rejected",
                f"The SMTP relay {relay['host']} refused the message: {failure.reply}",
                hint="Nothing was sent. Check what the relay accepts (POST /api/v1/smtp:test).",
            ) from failure
        raise errors.Unavailable(
            "relay_unavailable",
            f"The SMTP relay {relay['host']} could not take the message ({failure.step}: "
            f"{failure.reply or failure.detail}); nothing was sent.",
            retryable=True,
            retry_after=5,
        ) from failure
    return Relayed(relay_id=relay["id"], reply=sent.reply, refused=sent.refused)
