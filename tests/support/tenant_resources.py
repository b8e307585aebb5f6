"""An organization in the local stack with a real resource of every kind an API path names, made
the way a client makes it: through the API; received mail through the stack's SMTP listener (SES
receiving); a suppression from a bounce of SES's mailbox simulator; a migration and a bulk batch
from a real Dovecot; a DNS check against the stack's resolver.

``Tenant.values`` maps each path parameter name to the tenant's ids (names, addresses) for it::

    tenant = Tenant("b", org["admin_token"])
    settle = populate(site, tenant, victim=True)   # starts what runs asynchronously
    settle()                                       # waits for it (mail, bounce, delivery, migrations)
    tenant.values["webhook_id"]                    # ["wh_01..."]
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess
from tests.support.cloudflare_api import CloudflareApi
from tests.support.dovecot import DovecotServer
from tests.support.webhooks import Receiver

PASSWORD = "Correct-Horse-42"
MESSAGE_SCOPES = ["messages:read", "messages:write", "messages:send"]
SETTLE_TIMEOUT = 90.0  # seconds for mail, a bounce, a webhook delivery and migrations to settle
T = TypeVar("T")


@dataclass
class Site:
    """The running stack and the servers on loopback that a tenant's resources talk to."""

    stack: LocalStackProcess
    http: httpx.Client
    dovecot: DovecotServer
    hook: Receiver
    zone: str  # the DNS zone the stack's resolver serves: domains are made under it
    cloudflare: CloudflareApi | None = None  # the Cloudflare API the stack calls (a local one)


@dataclass
class Tenant:
    name: str
    ops: str  # an admin ops token of the organization
    api_key: str = ""  # an inai_ key
    message: str = ""  # a message token of the main mailbox (the one with mail)
    domain: str = ""
    values: dict[str, list[str]] = field(default_factory=dict)


def until(what: str, probe: Callable[[], T | None], *, timeout: float = SETTLE_TIMEOUT) -> T:
    """Poll until ``probe`` returns something: mail, events and migrations run asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def call(
    http: httpx.Client, method: str, path: str, token: str, body: Any = None, *, send_body: bool = False
) -> httpx.Response:
    """One request with the token and a fresh Idempotency-Key (every POST and PUT needs one)."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    if body is None and not send_body:
        return http.request(method, path, headers=headers)
    return http.request(method, path, headers=headers, json=body)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, response.request.url.path, response.text)
    return response.json()


def get(http: httpx.Client, path: str, token: str) -> Any:
    payload = ok(call(http, "GET", path, token))
    return payload["data"] if path.startswith("/api/v1/") else payload


def create(http: httpx.Client, path: str, token: str, body: Any = None, status: int | None = None) -> Any:
    """POST; the created resource (v1 answers 201 with it in ``data``, v0 200 with it alone)."""
    v1 = path.startswith("/api/v1/")
    payload = ok(call(http, "POST", path, token, body, send_body=True), status or (201 if v1 else 200))
    return payload["data"] if v1 else payload


def populate(site: Site, tenant: Tenant, *, victim: bool) -> Callable[[], None]:
    """Gives ``tenant`` its resources and returns what waits for those that arrive asynchronously.

    A victim gets one of every kind. A caller gets what the caller side of a sweep needs: its
    tokens, a domain, and the parents a path can pair with a child of another tenant (a webhook
    with a delivery, an inbox with a message and its attachment, a batch with its job), plus a
    main mailbox with mail, a folder and a blocked sender (another mailbox of its organization).
    """
    http, ops, tag = site.http, tenant.ops, f"{tenant.name}{uuid.uuid4().hex[:8]}"
    values = tenant.values
    waits: list[Callable[[], None]] = []

    domain = create(http, "/api/v1/domains", ops, {"domain": f"{tag}.{site.zone}"})
    tenant.domain = domain["domain"]
    values["domain_id"] = [domain["id"]]

    def mailbox(local_part: str) -> dict[str, Any]:
        body = {"local_part": local_part, "domain": tenant.domain, "password": PASSWORD, "quota": 256}
        return dict(create(http, "/api/v1/mailboxes", ops, body))

    main, moved = mailbox("main"), mailbox("moved")
    values["mailbox_id"] = [main["id"]]
    # mailcow-style paths name domains and mailboxes too (docs/mailcow-api.md): each is swept by name
    # as well as by id.
    values["domain_id"].append(tenant.domain)
    values["mailbox_id"].append(main["address"])
    message_token = create(
        http,
        f"/api/v1/mailboxes/{main['id']}/message-tokens",
        ops,
        {"name": "agent", "scopes": MESSAGE_SCOPES},
    )
    tenant.message = message_token["token"]
    api_key = create(http, "/api/v0/api-keys", ops, {"name": "sweep"})
    tenant.api_key = api_key["key"]
    values["keyId"] = [api_key["key_id"]]
    values["token_id"] = [message_token["id"], api_key["key_id"]]

    webhook = create(
        http, "/api/v1/webhooks", ops, {"url": site.hook.url, "event_types": ["domain.verified"]}
    )
    values["webhook_id"] = [webhook["id"]]
    tested = create(http, f"/api/v1/webhooks/{webhook['id']}:test", ops, status=202)
    values["delivery_id"] = [tested["delivery_id"]]
    values["event_id"] = [tested["event_id"]]  # the event log's (GET /api/v1/events/{event_id})
    delivery = f"/api/v1/webhooks/{webhook['id']}/deliveries/{tested['delivery_id']}"
    waits.append(
        lambda: _settled(
            "the webhook test delivery", lambda: get(http, delivery, ops)["state"] == "succeeded"
        )
    )

    inbox = create(http, "/api/v0/inboxes", tenant.api_key, {"username": "inbox", "domain": tenant.domain})
    values["inboxId"] = [inbox["inbox_id"]]
    folder = create(http, "/api/v1/messages/folders", tenant.message, {"path": f"Sweep {tag}"})
    values["path"] = [folder["path"], folder["key"]]
    blocked = create(
        http, "/api/v1/messages/blocked-senders", tenant.message, {"pattern": f"@blocked-{tag}.example.net"}
    )
    values["pattern"] = [blocked["pattern"]]
    values["index"] = ["0"]  # an attachment's position in its message
    subject = f"Report-{tag}"
    send_mail(site.stack, subject, to=[main["address"], inbox["email_address"]])
    waits.append(lambda: _received(site, tenant, subject))

    batch = start_batch(site, tenant, moved)
    job = batch["jobs"][0]["id"]
    values["batch_id"], values["job_id"], values["migration_id"] = [batch["id"]], [job], [job]
    waits.append(lambda: _migrated(site, tenant, job, batch=batch["id"]))

    # Compose (docs/compose.md), on both sides: the message-token sweep reaches for the main
    # mailbox's from another mailbox of the organization. An identity, a template, a draft (a
    # message in Drafts, with an attachment at the same position as the received mail's: a ``uid``
    # once the received mail has set the list; the waits run in order) and a scheduled send.
    message = tenant.message
    identity = create(
        http, "/api/v1/messages/identities", message, {"address": main["address"], "name": "Main"}
    )
    values["identity_id"] = [identity["id"]]
    template = create(http, "/api/v1/messages/templates", message, {"name": "Sweep", "text": "Hi {{ who }}"})
    values["template_id"] = [template["id"]]
    attachment = {"filename": "notes.txt", "content_type": "text/plain", "content": "dW5zZW50"}
    draft_body = {"subject": "Draft", "text": "unsent", "attachments": [attachment]}
    draft = create(http, "/api/v1/messages/drafts", message, draft_body)
    waits.append(lambda: values["uid"].append(draft["id"]))
    inbox_drafts = f"/api/v0/inboxes/{values['inboxId'][0]}/drafts"
    values["draftId"] = [create(http, inbox_drafts, tenant.api_key, {"subject": "Draft"})["draft_id"]]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # never fires during the sweep
    scheduled = {"to": main["address"], "subject": "Later", "text": "later", "send_at": later}
    values["scheduled_id"] = [create(http, "/api/v1/messages/scheduled", message, scheduled)["id"]]

    # The address book and calendar of the main mailbox (docs/contacts-calendar.md), on both sides
    # for the same reason.
    contact = create(
        http,
        "/api/v1/messages/contacts",
        message,
        {"name": "Swept", "emails": [{"address": f"c-{tag}@example.net"}]},
    )
    values["contact_id"] = [contact["id"]]
    values["group_id"] = [create(http, "/api/v1/messages/contact-groups", message, {"name": "Sweep"})["id"]]
    event = {"summary": "Sweep", "start": "2026-03-16T09:00:00Z"}
    values["calendar_event_id"] = [create(http, "/api/v1/messages/calendar/events", message, event)["id"]]

    # Mailbox data (docs/automation-inbound.md), on both sides under the same key: a key is a name
    # the client chooses, not an id, so it is swept only with the other tenant's mailbox id.
    values["mailboxId"] = [main["id"]]
    ok(call(http, "PUT", f"/api/v1/mailbox/{main['id']}/data/sweep/", ops, {"value": {"swept": False}}))
    values["key"] = ["sweep"]

    if victim:
        _everything_else(site, tenant, tag, main, waits)

    def settle() -> None:
        for wait in waits:
            wait()

    return settle


def _everything_else(
    site: Site, tenant: Tenant, tag: str, main: Mapping[str, Any], waits: list[Callable[[], None]]
) -> None:
    """The victim's other resources: each a kind a path names that no caller-side parent needs."""
    http, ops, values = site.http, tenant.ops, tenant.values
    domain_id = values["domain_id"][0]
    values["check_id"] = [create(http, f"/api/v1/domains/{domain_id}/dns-recheck", ops)["id"]]
    mailbox = {"domain": tenant.domain, "password": PASSWORD, "quota": 256}
    doomed = create(http, "/api/v1/mailboxes", ops, {"local_part": "doomed", **mailbox})
    migrated = create(http, "/api/v1/mailboxes", ops, {"local_part": "migrated", **mailbox})
    values["intent_id"] = [create(http, f"/api/v1/mailboxes/{doomed['id']}:delete-intent", ops)["id"]]
    alias = create(
        http, "/api/v1/aliases", ops, {"address": f"team@{tenant.domain}", "goto": [main["address"]]}
    )
    values["alias_id"] = [alias["id"]]
    invite = create(
        http, "/api/v1/mailboxes/invites", ops, {"local_part": "invitee", "domain": tenant.domain}
    )
    values["invite_id"] = [invite["id"]]
    create(http, "/api/v1/tokens", ops, {"name": "second", "scopes": ["domains:read"]})
    # Every ops token of the organization (its admin token too), then its message token and key.
    values["token_id"][:0] = [t["id"] for t in get(http, "/api/v1/tokens", ops)]

    key = tenant.api_key
    values["domainId"] = [
        create(http, "/api/v0/domains", key, {"domain": f"v0-{tag}.{site.zone}"})["domain_id"]
    ]
    v0_hook = create(
        http, "/api/v0/webhooks", key, {"url": site.hook.url, "event_types": ["domain.verified"]}
    )
    values["webhookId"] = [v0_hook["webhook_id"]]

    bounced = f"bounce+{tag}@simulator.amazonses.com"
    create(http, "/api/v1/messages/send", tenant.message, {"to": bounced, "subject": "Hi", "text": "Hi"})
    values["address"] = [bounced]
    suppression = f"/api/v1/suppressions/{bounced}"
    waits.append(
        lambda: _settled("the bounce's suppression", lambda: call(http, "GET", suppression, ops).is_success)
    )

    rule = {"name": "sweep", "actions": [{"type": "add_label", "label": "swept"}]}
    values["rule_id"] = [create(http, f"/api/v1/mailboxes/{main['id']}/rules", ops, rule)["id"]]
    # The MailTrigger view's processing log (docs/automation-mailbox.md): a test message's entry.
    tested = create(http, f"/api/v1/mailbox/{main['id']}/testmail/", ops, {"subject": "Sweep test"})
    values["log_id"] = [tested["log_id"]]

    # The automation model (docs/automation.md): an action, a rule and a route joining them on the
    # main mailbox (its route set is rebuilt with it).
    label = {"name": "Sweep", "action_type": "label", "parameters": {"labels": ["swept"]}}
    values["action_id"] = [create(http, "/api/v1/actions", ops, label)["id"]]
    condition = {"field": "subject", "op": "contains", "value": f"automation-{tag}"}
    automation_rule = create(http, "/api/v1/rules", ops, {"name": "Sweep", "conditions": [condition]})
    values["automation_rule_id"] = [automation_rule["id"]]
    route = {
        "name": "Sweep",
        "target": {"mailbox_id": main["id"]},
        "rule_id": automation_rule["id"],
        "action_ids": values["action_id"],
    }
    values["route_id"] = [create(http, "/api/v1/routes", ops, route)["id"]]

    migration = start_migration(site, tenant, migrated)
    values["migration_id"].insert(0, migration["id"])  # a batch's job is a migration too
    waits.append(lambda: _migrated(site, tenant, migration["id"]))

    # An SMTP relay (on a domain of its own, so the tenant's other mail still goes through SES) and
    # a finished test of it (nothing listens on port 9 of loopback: it fails at connect).
    relay_domain = create(http, "/api/v1/domains", ops, {"domain": f"relay-{tag}.{site.zone}"})["domain"]
    relay = {"host": "localhost", "port": 9, "security": "starttls", "sender_domains": [relay_domain]}
    relay_id = ok(call(http, "PUT", "/api/v1/smtp", ops, relay))["data"]["id"]
    values["relay_id"] = [relay_id]
    test_job = create(http, "/api/v1/smtp:test", ops, {"relay_id": relay_id}, status=202)["id"]
    values["test_job_id"] = [test_job]
    waits.append(
        lambda: _settled(
            "the SMTP relay test",
            lambda: (
                get(http, f"/api/v1/smtp:test-status/{test_job}", ops)["status"] in ("succeeded", "failed")
            ),
        )
    )

    # A bulk verification job, finished (its worker is the stack's SQS poller): an address of the
    # tenant's domain (the stack's resolver answers) and one that is not an address at all.
    verify_body = {"emails": [f"someone@{tenant.domain}", "not-an-address"], "name": "sweep"}
    verify_job = create(http, "/api/v1/verify/bulk", ops, verify_body, status=202)["id"]
    values["verify_job_id"] = [verify_job]
    waits.append(
        lambda: _settled(
            "the bulk verification job",
            lambda: get(http, f"/api/v1/verify/bulk/{verify_job}", ops)["status"] == "completed",
        )
    )

    if site.cloudflare is not None:  # a stored Cloudflare token: connecting the domain keeps it
        zone_id = site.cloudflare.add_zone(tenant.domain)
        body = {
            "domain_id": domain_id,
            "zone_id": zone_id,
            "token": site.cloudflare.add_token(zones=[zone_id]),
        }
        values["cloudflare_token_id"] = [create(http, "/api/v1/cloudflare/connect", ops, body)["token_id"]]

    # A support ticket; its first message is the organization's (the support API's message paths
    # take no token: the sweep exempts them, but the value must be the victim's all the same).
    ticket = create(http, "/api/v1/tickets", ops, {"subject": "Sweep", "body": "Is my data safe?"})
    values["ticket_id"] = [ticket["id"]]
    values["ticket_message_id"] = [get(http, f"/api/v1/tickets/{ticket['id']}/messages", ops)[0]["id"]]

    # An invoice: the operator's final statement of the running month (invoices are otherwise
    # closed on the first of the month, by the schedule).
    org_id = get(http, "/api/v1/account", ops)["id"]
    close_month(site.stack, "--org", org_id, "--final")
    values["invoice_id"] = [invoice["id"] for invoice in get(http, "/api/v1/billing/invoices", ops)]

    _task_config(site, tenant, org_id, main, waits)


def _task_config(
    site: Site, tenant: Tenant, org_id: str, main: Mapping[str, Any], waits: list[Callable[[], None]]
) -> None:
    """A task config (docs/automation-tasks.md) whose schedule never fires during the sweep, and a
    finished run of it, running a label action made through the automation API."""
    http, ops, values = site.http, tenant.ops, tenant.values
    action = create(
        http,
        "/api/v1/actions",
        ops,
        {"name": "Swept", "action_type": "label", "parameters": {"labels": ["swept"]}},
    )
    body = {
        "name": "Sweep",
        "mailbox_id": main["id"],
        "schedule": "cron(0 0 1 1 ? 2199)",
        "action_id": action["id"],
        "query": {"subject_contains": "matches-nothing-in-the-sweep"},
    }
    task = create(http, "/api/v1/task-configs", ops, body)
    values["task_id"] = [task["id"]]
    run = create(http, f"/api/v1/task-configs/{task['id']}/action/execute", ops, status=202)
    values["run_id"] = [run["id"]]
    run_path = f"/api/v1/task-configs/{task['id']}/runs/{run['id']}"
    waits.append(lambda: _settled("the task run", lambda: get(http, run_path, ops)["status"] == "succeeded"))


def close_month(stack: LocalStackProcess, *argv: str) -> dict[str, Any]:
    """``mailroom admin close-month`` against the stack's table, as an operator runs it."""
    import json
    import subprocess
    import sys

    from tests.e2e.stack_process import REPO

    command = [sys.executable, "-m", "mailroom.cli", "admin", "close-month", *argv, "--json"]
    command += ["--env-file", str(stack.state_dir / "local.env")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _settled(what: str, done: Callable[[], bool]) -> None:
    until(what, lambda: True if done() else None)


def _received(site: Site, tenant: Tenant, subject: str) -> None:
    """The mail sent to the main mailbox and the v0 inbox, once both have it: its ids."""
    http, values = site.http, tenant.values
    listed = until(
        "the message in the main mailbox",
        lambda: next(iter(get(http, f"/api/v1/messages?subject={subject}", tenant.message)), None),
    )
    values["message_id"] = values["uid"] = [listed["id"]]
    values["thread_id"] = [listed["thread_id"]]
    messages = f"/api/v0/inboxes/{values['inboxId'][0]}/messages"
    v0 = until(
        "the message in the v0 inbox",
        lambda: next(
            (m for m in get(http, messages, tenant.api_key)["data"] if m["subject"] == subject), None
        ),
    )
    values["messageId"], values["threadId"] = [v0["message_id"]], [v0["thread_id"]]
    full = get(http, f"{messages}/{v0['message_id']}", tenant.api_key)
    values["attachmentId"] = [full["attachments"][0]["attachment_id"]]


def _migrated(site: Site, tenant: Tenant, job: str, *, batch: str | None = None) -> None:
    def ended() -> dict[str, Any] | None:
        view: dict[str, Any] = get(site.http, f"/api/v1/migrations/{job}", tenant.ops)
        return view if view["poll_hint_seconds"] is None else None

    done = until(f"migration {job} to end", ended)
    assert done["status"] == "completed", done
    if batch is not None:
        path = f"/api/v1/migrations/bulk/{batch}"
        _settled("the batch to end", lambda: get(site.http, path, tenant.ops)["poll_hint_seconds"] is None)


def send_mail(stack: LocalStackProcess, subject: str, *, to: Sequence[str]) -> None:
    """A message with an attachment, received the way SES receives it (the stack's SMTP listener)."""
    message = EmailMessage()
    message["From"] = "Sender <sender@example.net>"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    message.set_content("The report is attached.\n")
    message.add_attachment(
        b"%PDF-1.4\n" + b"report" * 100, maintype="application", subtype="pdf", filename="r.pdf"
    )
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        smtp.send_message(message)


def _source(dovecot: DovecotServer, prefix: str) -> dict[str, Any]:
    """A Dovecot account with one message: how a migration reaches it."""
    user, password = dovecot.new_user(prefix)
    raw = b"From: a@example.net\r\nSubject: old mail\r\nMessage-ID: <%s@example.net>\r\n\r\nold mail\r\n"
    dovecot.seed(user, "INBOX", [raw % uuid.uuid4().hex.encode()])
    return {
        "source_host": "127.0.0.1",
        "source_port": dovecot.ssl_port,
        "source_security": "ssl",
        "source_email": user,
        "source_password": password,
    }


def start_migration(site: Site, tenant: Tenant, target: Mapping[str, Any]) -> dict[str, Any]:
    body = {
        "mailbox_id": target["id"],
        "provider": "generic_imap",
        "target_password": PASSWORD,
        **_source(site.dovecot, f"mig{tenant.name}"),
    }
    return dict(create(site.http, "/api/v1/migrations", tenant.ops, body))


def start_batch(site: Site, tenant: Tenant, target: Mapping[str, Any]) -> dict[str, Any]:
    source = _source(site.dovecot, f"bulk{tenant.name}")
    row = f"{source.pop('source_email')},{source.pop('source_password')},{target['address']}"
    body = {"data": row, "name": f"Batch {tenant.name}", **source}
    return dict(create(site.http, "/api/v1/migrations/bulk", tenant.ops, body))
