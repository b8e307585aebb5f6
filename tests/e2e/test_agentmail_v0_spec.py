"""Acceptance test of ``/api/v0``: a client written only from ``agentmail-v0-api.txt``
(``tests.support.agentmail_client``) replays every example request of the page against the local
stack, in one scenario, and checks every response field by field against the page's examples
(``tests.support.agentmail_examples``, ``tests.support.agentmail_checks``).

The tests run in file order and share one ``Scenario``: a step whose prerequisite failed earlier
is skipped naming it, so the failures listed are the root ones. The only Mailroom-specific things
here are how the stack is started, the admin token used once to make the first ``inai_`` key
(everything after uses only that key), and SMTP to the stack's listener to receive mail from
outside.

Ambiguities of the page, and what is accepted (each noted where it is checked):
- create endpoints don't say 200 or 201: both are accepted (send, reply, ...: 200, 201 or 202);
- ``page_size`` above the documented max 100: the page doesn't say error or clamp; this test
  demands an error answer (the API's contract, decided for this acceptance test);
- error bodies are not on the page: ``name`` and ``message`` strings, further keys allowed;
- message ``attachments``: the page never shows where attachment ids come from (see the examples);
- labels are compared as sets; a received body may end in a line break (its MIME has one), a
  body the API was given (send, reply) must come back exactly as given, as in the send example;
- reply-all: the page doesn't say which recipients go in To and which in Cc, only the union;
- forward with a ``text`` override: the original may or may not be quoted below it.
"""

from __future__ import annotations

import base64
import os
import smtplib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess
from tests.support import agentmail_examples as ex
from tests.support.agentmail_checks import (
    addresses,
    assert_descending,
    assert_error,
    assert_matches_example,
    assert_no_content,
    assert_none,
    assert_page,
    bare_message_id,
    body,
    differences,
    example_mismatches,
    parse_timestamp,
    wait_for,
)
from tests.support.agentmail_client import AgentMailClient, Attachment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
T = TypeVar("T")
CREATED = (200, 201)  # the page doesn't say which a create answers
ACCEPTED = (200, 201, 202)  # sends: nor here
MSG = ex.MESSAGE_OPTIONAL_KEYS


@dataclass
class Scenario:
    stack: LocalStackProcess
    tag: str
    clients: list[AgentMailClient] = field(default_factory=list)
    api_: AgentMailClient | None = None
    key: dict[str, Any] | None = None
    a: dict[str, Any] | None = None  # inbox "Agent One", the page's create example
    b: dict[str, Any] | None = None  # inbox "Agent Two", receives
    c: dict[str, Any] | None = None  # inbox made with the full documented request body
    sent: dict[str, Any] | None = None  # the page's send example, from A
    inbound: dict[str, Any] | None = None  # B's message from sender@example.com (SMTP)
    replied: dict[str, Any] | None = None
    replied_all: dict[str, Any] | None = None
    forwarded: dict[str, Any] | None = None

    @property
    def v0_url(self) -> str:
        return f"{self.stack.api_url}/api/v0"

    @property
    def api(self) -> AgentMailClient:
        return need(self.api_, "the inai_ API key (step_create_api_key_then_use_only_it)")

    def client(self, key: str) -> AgentMailClient:
        made = AgentMailClient(self.v0_url, key)
        self.clients.append(made)
        return made


def need(value: T | None, what: str) -> T:
    assert value is not None, f"needs {what}, which an earlier step did not make"
    return value


@pytest.fixture(scope="module")
def scenario(stack: LocalStackProcess) -> Iterator[Scenario]:
    state = Scenario(stack, uuid.uuid4().hex[:8])
    yield state
    for made in state.clients:
        made.close()


def find_all(
    list_page: Callable[[int], httpx.Response], example: dict[str, Any], path: str, **kw: Any
) -> list[dict[str, Any]]:
    """Every item of a list endpoint, 100 per page (other tests share the organization)."""
    items: list[dict[str, Any]] = []
    for number in range(1, 50):
        page = body(list_page(number), 200)
        data = assert_page(
            page, example, path=f"{path}?page={number}", page_number=number, page_size=100, **kw
        )
        items += data
        if len(data) < 100 or len(items) >= page["total"]:
            return items
    pytest.fail(f"{path}: more than 49 pages")


def only(items: list[dict[str, Any]], key: str, value: Any, path: str) -> dict[str, Any]:
    found = [item for item in items if item.get(key) == value]
    assert len(found) == 1, f"{path}: {len(found)} items with {key}={value!r} (expected 1)"
    return found[0]


def text_of(value: Any) -> Any:
    """A *received* body: the MIME it was parsed from ends it with a line break. Bodies the API was
    given (sends, replies) must come back exactly as given, as on the page's send example."""
    return value.rstrip("\r\n") if isinstance(value, str) else value


def organization(s: Scenario) -> dict[str, Any]:
    org = body(s.api.get_organization(), 200)
    assert_matches_example(org, ex.ORGANIZATION, path="GET /organizations")
    return dict(org)


def count(s: Scenario, name: str) -> int | None:
    """An organization counter for a cross-check, or None when GET /organizations itself fails (its
    own test reports that): the check is then left out rather than failing the step it guards."""
    response = s.api.get_organization()
    try:
        org = response.json() if response.status_code == 200 else None
    except ValueError:
        return None
    value = org.get(name) if isinstance(org, dict) else None
    return value if isinstance(value, int) else None


def message_in(
    s: Scenario, inbox_id: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    page = body(s.api.list_messages(inbox_id, page_size=100), 200)
    return next((m for m in page.get("data", []) if predicate(m)), None)


# --- API keys (bootstrap) and organization ------------------------------------------------------


def step_create_api_key_then_use_only_it(scenario: Scenario) -> None:
    """POST /api-keys (the page's example) with the stack's bootstrap token; then only the inai_ key."""
    bootstrap = scenario.client(scenario.stack.admin_token)
    created = body(bootstrap.create_api_key(**ex.CREATE_API_KEY.example_request), *CREATED)
    assert_matches_example(
        created,
        ex.API_KEY_CREATED,
        path="POST /api-keys",
        expect={"name": "my-agent-key", "used_at": None},
    )
    key, prefix = created["key"], created["prefix"]
    assert key.startswith("inai_"), f"the key is not an inai_ key: {key[:12]}..."
    # The example's prefix is "inai_xxxx_..." and its key "inai_xxxx_full_key_here": whether the
    # prefix field carries the "..." literally is open, so either is accepted.
    shown = prefix.removesuffix("...").removesuffix("…")
    assert shown.startswith("inai_") and key.startswith(shown) and shown != key, (prefix, key[:12])
    scenario.key = created
    scenario.api_ = scenario.client(key)
    body(scenario.api.list_inboxes(), 200)


def step_organization(scenario: Scenario) -> None:
    org = organization(scenario)
    assert 0 <= org["inbox_count"] <= org["inbox_limit"], org
    assert 0 <= org["domain_count"] <= org["domain_limit"], org
    assert parse_timestamp(org["created_at"]) <= parse_timestamp(org["updated_at"]), org


def step_unknown_ids_are_404_with_name_and_message(scenario: Scenario) -> None:
    assert_error(scenario.api.get_inbox(f"nope-{scenario.tag}"), 404)
    assert_error(scenario.api.get_webhook(f"nope-{scenario.tag}"), 404)
    assert_error(scenario.api.get_domain(f"nope-{scenario.tag}.example.com"), 404)


def step_a_wrong_key_is_401(scenario: Scenario) -> None:
    wrong = scenario.client("inai_" + "x" * 40)
    assert_error(wrong.list_inboxes(), 401)


# --- Inboxes -----------------------------------------------------------------------------------


def step_create_inboxes_with_the_page_example(scenario: Scenario) -> None:
    """{"username": "agent-1", "display_name": "Agent One"}: the domain defaults to the platform's."""
    before = count(scenario, "inbox_count")
    made = []
    for suffix, display_name in (("", "Agent One"), ("-b", "Agent Two")):
        username = f"agent-{scenario.tag}{suffix}"
        inbox = body(scenario.api.create_inbox(username, display_name=display_name), *CREATED)
        assert_matches_example(
            inbox,
            ex.INBOX_CREATED,
            path="POST /inboxes",
            expect={"username": username, "display_name": display_name, "client_id": None},
        )
        assert inbox["domain"], "the platform domain is empty"
        assert inbox["email_address"] == f"{username}@{inbox['domain']}", inbox
        made.append(inbox)
    scenario.a, scenario.b = made
    assert made[0]["domain"] == made[1]["domain"], "two default inboxes got different platform domains"
    if before is not None:
        assert count(scenario, "inbox_count") == before + 2, "inbox_count did not grow by the two inboxes"


def step_create_inbox_with_every_documented_field(scenario: Scenario) -> None:
    a = need(scenario.a, "inbox A")
    username = f"agent-{scenario.tag}-c.x%y+z"  # the page's character set a-zA-Z0-9._%+-
    request = {"domain": a["domain"], "display_name": "Agent Three", "client_id": "my-agent"}
    inbox = body(scenario.api.create_inbox(username, **request), *CREATED)
    assert_matches_example(
        inbox,
        ex.INBOX_CREATED,
        path="POST /inboxes (documented body)",
        expect={"username": username, "email_address": f"{username}@{a['domain']}", **request},
    )
    scenario.c = inbox


def step_list_inboxes_and_pages(scenario: Scenario) -> None:
    a, b = need(scenario.a, "inbox A"), need(scenario.b, "inbox B")
    first = body(scenario.api.list_inboxes(), 200)
    assert_page(first, ex.LIST_INBOXES.example_response, path="GET /inboxes")  # page 1, page_size 20
    inbox_count = count(scenario, "inbox_count")
    assert inbox_count in (None, first["total"]), f"list total {first['total']} != inbox_count {inbox_count}"

    listed = find_all(
        lambda n: scenario.api.list_inboxes(page=n, page_size=100),
        ex.LIST_INBOXES.example_response,
        "GET /inboxes",
    )
    for made in (a, b, scenario.c):
        if made is not None:
            got = only(listed, "inbox_id", made["inbox_id"], "GET /inboxes")
            assert got == made, f"GET /inboxes item differs from what POST /inboxes answered:\n{got}\n{made}"

    one = assert_page(
        body(scenario.api.list_inboxes(page=1, page_size=1), 200),
        ex.LIST_INBOXES.example_response,
        path="GET /inboxes?page_size=1",
        page_size=1,
    )
    two = body(scenario.api.list_inboxes(page=2, page_size=1), 200)
    second = assert_page(
        two,
        ex.LIST_INBOXES.example_response,
        path="GET /inboxes?page=2&page_size=1",
        page_number=2,
        page_size=1,
    )
    assert len(one) == len(second) == 1 and one[0]["inbox_id"] != second[0]["inbox_id"], (one, second)
    assert two["total"] == first["total"]
    # "page_size (default 20, max 100)": above the max is refused (see the module docstring).
    assert_error(scenario.api.list_inboxes(page_size=101), 400, 422)


def step_get_inbox(scenario: Scenario) -> None:
    a = need(scenario.a, "inbox A")
    got = body(scenario.api.get_inbox(a["inbox_id"]), 200)
    assert_matches_example(got, ex.INBOX, path="GET /inboxes/:inboxId", expect=a)


# --- Webhooks (before any mail, so nothing is delivered to the page's example URL) --------------


def step_webhooks(scenario: Scenario) -> None:
    api, a = scenario.api, need(scenario.a, "inbox A")
    example = ex.CREATE_WEBHOOK.example_request
    created = body(api.create_webhook(**example), *CREATED)
    assert_matches_example(
        created,
        ex.WEBHOOK_CREATED,
        path="POST /webhooks",
        expect={**example, "inbox_ids": [], "enabled": True, "client_id": None},
    )
    documented = {**ex.CREATE_WEBHOOK.documented_request, "inbox_ids": [a["inbox_id"]]}
    filtered = body(api.create_webhook(**documented), *CREATED)
    assert_matches_example(
        filtered,
        ex.WEBHOOK_CREATED,
        path="POST /webhooks (documented body)",
        expect={**documented, "enabled": True},
    )
    assert created["secret"] != filtered["secret"]

    # The page's PATCH example first, so the example URL is never delivered to.
    patched = body(api.update_webhook(created["webhook_id"], **ex.UPDATE_WEBHOOK.example_request), 200)
    unchanged = {
        k: created[k] for k in ("webhook_id", "url", "event_types", "inbox_ids", "client_id", "created_at")
    }
    assert_matches_example(
        patched, ex.WEBHOOK_PATCHED, path="PATCH /webhooks/:webhookId", expect={**unchanged, "enabled": False}
    )
    assert parse_timestamp(patched["updated_at"]) >= parse_timestamp(created["updated_at"])
    everything = ex.UPDATE_WEBHOOK.documented_request
    repatched = body(api.update_webhook(filtered["webhook_id"], **everything), 200)
    assert_matches_example(
        repatched,
        ex.WEBHOOK_PATCHED,
        path="PATCH /webhooks/:webhookId (documented body)",
        expect={**everything, "webhook_id": filtered["webhook_id"], "client_id": "my-integration"},
    )

    listed = find_all(
        lambda n: api.list_webhooks(page=n, page_size=100), ex.LIST_WEBHOOKS.example_response, "GET /webhooks"
    )
    assert only(listed, "webhook_id", created["webhook_id"], "GET /webhooks") == patched
    assert only(listed, "webhook_id", filtered["webhook_id"], "GET /webhooks") == repatched
    got = body(api.get_webhook(created["webhook_id"]), 200)
    assert_matches_example(got, ex.WEBHOOK, path="GET /webhooks/:webhookId", expect=patched)

    for made in (created, filtered):
        assert_no_content(api.delete_webhook(made["webhook_id"]))
        assert_error(api.get_webhook(made["webhook_id"]), 404)


# --- Domains -----------------------------------------------------------------------------------


def check_records(records: list[dict[str, Any]], domain: str, path: str) -> None:
    """The page's four records (MX, SPF, DKIM, DMARC) are there, for this domain, in its statuses."""
    problems = []
    for index, record in enumerate(records):
        where = f"{path}.records[{index}]"
        if record["status"] not in ex.RECORD_STATUSES:
            problems.append(f"{where}.status {record['status']!r} not in {sorted(ex.RECORD_STATUSES)}")
        if not (record["name"] == domain or record["name"].endswith(f".{domain}")):
            problems.append(f"{where}.name {record['name']!r} is not {domain} or under it")
        if record["type"] == "MX" and not isinstance(record["priority"], int):
            problems.append(f"{where}: an MX record without an integer priority")
        if record["type"] == "TXT" and record["priority"] is not None:
            problems.append(f"{where}: a TXT record with a priority (the page shows null)")
    kinds = {
        "MX for the domain": lambda r: r["type"] == "MX" and r["name"] == domain,
        "TXT v=spf1": lambda r: r["type"] == "TXT" and r["value"].startswith("v=spf1"),
        "TXT v=DKIM1 at *._domainkey.": lambda r: (
            r["type"] == "TXT" and "._domainkey." in r["name"] and r["value"].startswith("v=DKIM1")
        ),
        f"TXT v=DMARC1 at _dmarc.{domain}": lambda r: (
            r["type"] == "TXT" and r["name"] == f"_dmarc.{domain}" and r["value"].startswith("v=DMARC1")
        ),
    }
    problems += [
        f"{path}.records: no {kind} record" for kind, test in kinds.items() if not any(map(test, records))
    ]
    assert not problems, "\n".join(problems)


def step_domains(scenario: Scenario) -> None:
    api = scenario.api
    name = f"v0spec-{scenario.tag}.example.com"
    before = count(scenario, "domain_count")
    created = body(api.create_domain(**{**ex.CREATE_DOMAIN.example_request, "domain": name}), *CREATED)
    # domain_id: the page's example id *is* the domain name, and its GET example uses the name.
    assert_matches_example(
        created, ex.DOMAIN_CREATED, path="POST /domains", expect={"domain_id": name, "feedback_enabled": True}
    )
    assert created["status"] == "PENDING", f"a new domain is {created['status']!r}, the page shows PENDING"
    check_records(created["records"], name, "POST /domains")
    if before is not None:
        assert count(scenario, "domain_count") == before + 1, "domain_count did not grow"

    quiet = f"v0spec-{scenario.tag}-nofb.example.com"
    no_feedback = body(api.create_domain(quiet, feedback_enabled=False), *CREATED)
    assert_matches_example(
        no_feedback,
        ex.DOMAIN_CREATED,
        path="POST /domains (feedback_enabled false)",
        expect={"domain_id": quiet, "feedback_enabled": False},
    )

    listed = find_all(
        lambda n: api.list_domains(page=n, page_size=100), ex.LIST_DOMAINS.example_response, "GET /domains"
    )
    item = only(listed, "domain_id", name, "GET /domains")
    assert item["status"] in ex.DOMAIN_STATUSES, item
    check_records(item["records"], name, "GET /domains")

    got = body(api.get_domain(name), 200)
    assert_matches_example(
        got,
        ex.DOMAIN,
        path="GET /domains/:domainId",
        expect={k: created[k] for k in ("domain_id", "feedback_enabled", "created_at")},
    )
    assert got["status"] in ex.DOMAIN_STATUSES
    check_records(got["records"], name, "GET /domains/:domainId")

    verified = body(api.verify_domain(name), 200)
    assert_matches_example(
        verified, ex.DOMAIN_VERIFIED, path="POST /domains/:domainId/verify", expect={"domain_id": name}
    )
    assert verified["status"] in ex.DOMAIN_STATUSES, verified["status"]
    check_records(verified["records"], name, "POST /domains/:domainId/verify")
    # Nothing is published in the stack's DNS for this name: it cannot be verified.
    assert verified["status"] == "PENDING" and any(r["status"] == "MISSING" for r in verified["records"])
    assert parse_timestamp(verified["updated_at"]) >= parse_timestamp(created["updated_at"])

    for domain in (name, quiet):
        assert_no_content(api.delete_domain(domain))
        assert_error(api.get_domain(domain), 404)
    if before is not None:
        assert count(scenario, "domain_count") == before, "domain_count did not come back down"


# --- Messages ------------------------------------------------------------------------------------


def step_send_the_page_example_and_read_it(scenario: Scenario) -> None:
    api, a = scenario.api, need(scenario.a, "inbox A")
    example = ex.SEND_MESSAGE.example_request
    sent = body(api.send_message(a["inbox_id"], **example), *ACCEPTED)
    assert_matches_example(sent, ex.SENT, path="POST /inboxes/:inboxId/messages/send")
    scenario.sent = sent

    wait_for(
        "the sent message in the sender's list",
        lambda: message_in(scenario, a["inbox_id"], lambda m: m.get("message_id") == sent["message_id"]),
    )
    page = body(api.list_messages(a["inbox_id"]), 200)
    items = assert_page(
        page, ex.LIST_MESSAGES.example_response, path="GET /inboxes/:inboxId/messages", optional_keys=MSG
    )
    assert_descending(items, "timestamp", "GET /inboxes/:inboxId/messages")
    determined = {
        "inbox_id": a["inbox_id"],
        "message_id": sent["message_id"],
        "thread_id": sent["thread_id"],
        "direction": "outbound",
        "labels": [],
        "from": f"Agent One <{a['email_address']}>",
        "to": [example["to"]],
        "subject": example["subject"],
    }
    item = only(items, "message_id", sent["message_id"], "GET /inboxes/:inboxId/messages")
    assert_matches_example(
        item,
        ex.MESSAGE_ITEM,
        path="GET /inboxes/:inboxId/messages data[]",
        expect=determined,
        optional_keys=MSG,
    )
    assert item["cc"] in (None, []), item["cc"]
    assert item["preview"] == example["text"], item["preview"]
    assert item["size"] > 0

    got = body(api.get_message(a["inbox_id"], sent["message_id"]), 200)
    problems = example_mismatches(
        got,
        ex.MESSAGE,
        path="GET /inboxes/:inboxId/messages/:messageId",
        expect={**determined, "text": example["text"], "html": None, "in_reply_to": None},
        optional_keys=MSG,
    )
    problems += [
        f"GET .../messages/:messageId.{absent}: {got.get(absent)!r} on a message sent without it"
        for absent in ("cc", "bcc", "reply_to", "references")
        if got.get(absent) not in (None, [])
    ]
    problems += differences(
        "the message, as its list item shows it", got, {k: item[k] for k in item if k in got}
    )
    if not problems and parse_timestamp(got["created_at"]) > parse_timestamp(got["updated_at"]):
        problems.append("GET .../messages/:messageId: created_at after updated_at")
    assert_none(problems, "the sent example message")


def step_update_labels(scenario: Scenario) -> None:
    api, a, sent = scenario.api, need(scenario.a, "inbox A"), need(scenario.sent, "the sent message")
    request = ex.UPDATE_MESSAGE.example_request
    patched = body(api.update_message(a["inbox_id"], sent["message_id"], **request), 200)
    assert_matches_example(
        patched,
        ex.MESSAGE_PATCHED,
        path="PATCH /inboxes/:inboxId/messages/:messageId",
        expect={"message_id": sent["message_id"]},
        open_from=ex.MESSAGE,
        optional_keys=MSG,
    )
    assert sorted(patched["labels"]) == sorted(request["labels"]), patched["labels"]
    got = body(api.get_message(a["inbox_id"], sent["message_id"]), 200)
    assert sorted(got["labels"]) == sorted(request["labels"]), got["labels"]
    cleared = body(api.update_message(a["inbox_id"], sent["message_id"], labels=[]), 200)
    assert cleared["labels"] == [], cleared["labels"]


def step_attachment_metadata_and_download(scenario: Scenario) -> None:
    api, a = scenario.api, need(scenario.a, "inbox A")
    content = b"%PDF-1.4\n" + os.urandom(2048) + b"\n%%EOF\n"
    attachment: Attachment = {
        "filename": "doc.pdf",
        "content_type": "application/pdf",
        "content": base64.b64encode(content).decode(),
    }
    sent = body(
        api.send_message(
            a["inbox_id"],
            to="recipient@example.com",
            subject=f"Attached {scenario.tag}",
            text="See attached.",
            attachments=[attachment],
        ),
        *ACCEPTED,
    )
    assert_matches_example(sent, ex.SENT, path="POST .../messages/send (attachment)")
    got = body(api.get_message(a["inbox_id"], sent["message_id"]), 200)
    assert_matches_example(
        got, ex.MESSAGE, path="GET .../messages/:messageId (attachment)", optional_keys=MSG
    )
    refs = got.get("attachments")
    assert isinstance(refs, list) and len(refs) == 1, (
        "a message with an attachment lists no attachment ids, so GET .../attachments/:attachmentId "
        f"cannot be reached: attachments={refs!r}"
    )
    attachment_id = refs[0]["attachment_id"]

    meta = body(api.get_attachment(a["inbox_id"], sent["message_id"], attachment_id), 200)
    assert_matches_example(
        meta,
        ex.ATTACHMENT,
        path="GET .../attachments/:attachmentId",
        expect={
            "attachment_id": attachment_id,
            "filename": "doc.pdf",
            "size": len(content),
            "content_type": "application/pdf",
            "content_disposition": "attachment",
        },
    )
    assert meta["download_url"].startswith(("http://", "https://")), meta["download_url"]
    assert parse_timestamp(meta["expires_at"]) > datetime.now(UTC), (
        f"expires_at in the past: {meta['expires_at']}"
    )
    download = httpx.get(meta["download_url"], timeout=30)  # pre-signed: no API key
    assert download.status_code == 200, (download.status_code, download.text[:300])
    assert download.content == content, "download_url does not serve the attachment's bytes"
    assert_error(api.get_attachment(a["inbox_id"], sent["message_id"], f"att_nope{scenario.tag}"), 404)


def step_mail_between_two_inboxes_threads_on_both_sides(scenario: Scenario) -> None:
    """A sends to B (the stack delivers mail for its own domains back to itself); B replies."""
    api, a, b = scenario.api, need(scenario.a, "inbox A"), need(scenario.b, "inbox B")
    subject = f"Ping {scenario.tag}"
    sent = body(
        api.send_message(a["inbox_id"], to=b["email_address"], subject=subject, text="Hello B"), *ACCEPTED
    )
    received = wait_for(
        "A's message in B's inbox",
        lambda: message_in(
            scenario, b["inbox_id"], lambda m: m.get("subject") == subject and m.get("direction") == "inbound"
        ),
    )
    assert_matches_example(
        received,
        ex.MESSAGE_ITEM,
        path="GET /inboxes/:B/messages data[] (from A)",
        expect={
            "inbox_id": b["inbox_id"],
            "from": f"Agent One <{a['email_address']}>",
            "to": [b["email_address"]],
            "subject": subject,
        },
        optional_keys=MSG,
    )
    assert received["message_id"] != sent["message_id"], "B's copy has the id of A's Sent copy"

    answer = body(api.reply(b["inbox_id"], received["message_id"], text="Pong"), *ACCEPTED)
    assert answer["thread_id"] == received["thread_id"], "B's reply left B's thread"
    back = wait_for(
        "B's reply in A's inbox",
        lambda: message_in(scenario, a["inbox_id"], lambda m: m.get("subject") == f"Re: {subject}"),
    )
    assert back["direction"] == "inbound" and back["from"] == f"Agent Two <{b['email_address']}>", back
    assert back["thread_id"] == sent["thread_id"], "B's reply did not join A's thread"
    full = body(api.get_message(a["inbox_id"], back["message_id"]), 200)
    assert full["in_reply_to"], "the reply A received has no in_reply_to"
    thread = body(api.get_thread(a["inbox_id"], sent["thread_id"]), 200)
    assert_matches_example(thread, ex.THREAD, path="GET /inboxes/:A/threads/:threadId", optional_keys=MSG)
    assert [m["message_id"] for m in thread["messages"]] == [sent["message_id"], back["message_id"]]


def header_values(headers: dict[str, Any], name: str) -> list[str]:
    """A header's values from a message's ``headers`` object (any case; one string or a list)."""
    found: list[str] = []
    for key, value in headers.items():
        if key.lower() == name.lower():
            found += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return found


def step_every_documented_field_of_send_reply_reply_all_and_forward(scenario: Scenario) -> None:
    """The "Request Body" blocks (not only the curl examples), A to B; url attachments excepted.
    Every mismatch is collected, so one wrong field doesn't hide the others."""
    api, a, b = scenario.api, need(scenario.a, "inbox A"), need(scenario.b, "inbox B")
    problems: list[str] = []
    pdf = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    doc: Attachment = {"filename": "doc.pdf", "content_type": "application/pdf", "content": pdf}
    documented = ex.SEND_MESSAGE.documented_request
    subject = f"Everything {scenario.tag}"
    sent = body(
        api.send_message(
            a["inbox_id"],
            to=b["email_address"],
            cc=documented["cc"],
            bcc=documented["bcc"],
            reply_to=documented["reply_to"],
            subject=subject,
            text=documented["text"],
            html=documented["html"],
            labels=documented["labels"],
            attachments=[doc],
            headers=documented["headers"],
        ),
        *ACCEPTED,
    )
    copy = body(api.get_message(a["inbox_id"], sent["message_id"]), 200)
    problems += example_mismatches(copy, ex.MESSAGE, path="GET .../messages/:sent", optional_keys=MSG)
    problems += differences(
        "send: the Sent copy",
        summary(copy),
        {
            "to": [b["email_address"]],
            "cc": ["cc@example.com"],
            "bcc": ["bcc@example.com"],
            "reply_to": ["reply@example.com"],
            "labels": ["important"],
            "text": documented["text"],
            "html": documented["html"],
            "attachments": 1,
        },
    )

    received = wait_for(
        "the documented send in B's inbox",
        lambda: message_in(scenario, b["inbox_id"], lambda m: m.get("subject") == subject),
    )
    theirs = body(api.get_message(b["inbox_id"], received["message_id"]), 200)
    problems += differences(
        "send: B's copy",
        {
            **summary(theirs),
            "html": text_of(theirs["html"]),
            "X-Custom": header_values(theirs["headers"], "X-Custom"),
        },
        {
            "reply_to": ["reply@example.com"],
            "bcc": [],
            "html": documented["html"],
            "X-Custom": ["value"],
            "attachments": 1,
        },
    )

    # Reply: "to the original sender only (or the Reply-To address if set)", with every field.
    reply_body = ex.REPLY.documented_request
    reply = body(
        api.reply(
            b["inbox_id"],
            received["message_id"],
            text=reply_body["text"],
            html=reply_body["html"],
            cc=reply_body["cc"],
            labels=reply_body["labels"],
            attachments=[doc],
        ),
        *ACCEPTED,
    )
    problems += differences("reply", reply, {"thread_id": received["thread_id"]})
    mine = body(api.get_message(b["inbox_id"], reply["message_id"]), 200)
    problems += differences(
        "reply: B's Sent copy",
        summary(mine),
        {
            "to": ["reply@example.com"],
            "cc": ["cc@example.com"],
            "labels": ["replied"],
            "text": reply_body["text"],
            "html": reply_body["html"],
            "attachments": 1,
        },
    )

    # Reply-all with an extra Cc. Whether "the original sender" means the From or the Reply-To
    # address when both are set, the page doesn't say: either is accepted.
    all_body = ex.REPLY_ALL.documented_request
    everyone = body(
        api.reply_all(
            b["inbox_id"],
            received["message_id"],
            text=all_body["text"],
            html=all_body["html"],
            cc=all_body["cc"],
            labels=all_body["labels"],
        ),
        *ACCEPTED,
    )
    problems += differences("reply-all", everyone, {"thread_id": received["thread_id"]})
    mine = body(api.get_message(b["inbox_id"], everyone["message_id"]), 200)
    reached = set(addresses(mine["to"]) + addresses(mine["cc"]))
    problems += differences(
        "reply-all: B's Sent copy",
        {
            **summary(mine),
            "reaches cc and extra cc": {"cc@example.com", "extra-cc@example.com"} <= reached,
            "reaches the original sender": bool(reached & {a["email_address"], "reply@example.com"}),
            "reaches the inbox itself": b["email_address"] in reached,
        },
        {
            "labels": ["replied"],
            "text": all_body["text"],
            "html": all_body["html"],
            "reaches cc and extra cc": True,
            "reaches the original sender": True,
            "reaches the inbox itself": False,
        },
    )

    forward_body = ex.FORWARD.documented_request
    forward = body(api.forward(b["inbox_id"], received["message_id"], **forward_body), *ACCEPTED)
    if forward.get("thread_id") == received["thread_id"]:
        problems.append("forward: stayed in the original thread (a forward creates a new thread)")
    mine = body(api.get_message(b["inbox_id"], forward["message_id"]), 200)
    problems += differences(
        "forward: B's Sent copy",
        {
            **summary(mine),
            "text starts with the override": (mine["text"] or "").startswith(forward_body["text"]),
            "html starts with the override": (mine["html"] or "").startswith(forward_body["html"]),
        },
        {
            "to": ["forward@example.com"],
            "cc": ["cc@example.com"],
            "labels": ["forwarded"],
            "text starts with the override": True,
            "html starts with the override": True,
        },
    )
    assert_none(problems, "the documented request bodies")


def summary(message: dict[str, Any]) -> dict[str, Any]:
    """A message's recipients as bare addresses, labels sorted, bodies and the attachment count."""
    return {
        **{name: addresses(message.get(name)) for name in ("to", "cc", "bcc", "reply_to")},
        "labels": sorted(message.get("labels") or []),
        "text": message.get("text"),
        "html": message.get("html"),
        "attachments": len(message.get("attachments") or []),
    }


def step_receive_mail_from_outside(scenario: Scenario) -> None:
    """The thread example's inbound message: from sender@example.com to the inbox, over SMTP."""
    b = need(scenario.b, "inbox B")
    subject = f"Hello {scenario.tag}"
    mail = EmailMessage(policy=SMTP)
    mail["From"] = "sender@example.com"
    mail["To"] = f"{b['email_address']}, other@example.com"
    mail["Cc"] = "cc@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<hello-{scenario.tag}@example.com>"
    mail.set_content("Hi there!\n")
    try:
        with smtplib.SMTP("127.0.0.1", scenario.stack.smtp_port, timeout=30) as smtp:
            smtp.sendmail("sender@example.com", [b["email_address"]], mail.as_bytes())
    except smtplib.SMTPRecipientsRefused as refused:
        pytest.fail(
            f"the stack does not receive mail for a default inbox: {refused.recipients}", pytrace=False
        )

    item = wait_for(
        "the SMTP message in B's inbox",
        lambda: message_in(scenario, b["inbox_id"], lambda m: m.get("subject") == subject),
    )
    got = body(scenario.api.get_message(b["inbox_id"], item["message_id"]), 200)
    scenario.inbound = got
    determined = {
        "inbox_id": b["inbox_id"],
        "direction": "inbound",
        "from": "sender@example.com",
        "to": [b["email_address"], "other@example.com"],
        "cc": ["cc@example.com"],
        "subject": subject,
    }
    problems = example_mismatches(
        item, ex.MESSAGE_ITEM, path="GET /inboxes/:B/messages data[]", expect=determined, optional_keys=MSG
    )
    problems += example_mismatches(
        got,
        ex.MESSAGE,
        path="GET /inboxes/:B/messages/:messageId",
        expect={**determined, "message_id": item["message_id"], "thread_id": item["thread_id"]},
        optional_keys=MSG,
    )
    problems += differences(
        "received",
        {"preview": text_of(item["preview"]), "text": text_of(got["text"])},
        {"preview": "Hi there!", "text": "Hi there!"},
    )
    assert_none(problems, "mail received over SMTP")


def step_reply_the_page_example(scenario: Scenario) -> None:
    api, b, inbound = scenario.api, need(scenario.b, "inbox B"), need(scenario.inbound, "B's inbound message")
    request = ex.REPLY.example_request
    reply = body(api.reply(b["inbox_id"], inbound["message_id"], **request), *ACCEPTED)
    got = body(api.get_message(b["inbox_id"], reply["message_id"]), 200)
    scenario.replied = got
    problems = example_mismatches(
        reply, ex.REPLY.example_response, path="POST .../reply", expect={"thread_id": inbound["thread_id"]}
    )
    problems += example_mismatches(
        got,
        ex.MESSAGE,
        path="GET .../messages/:reply",
        expect={
            "inbox_id": b["inbox_id"],
            "thread_id": inbound["thread_id"],
            "direction": "outbound",
            "from": f"Agent Two <{b['email_address']}>",
            "subject": f"Re: {inbound['subject']}",
            "text": request["text"],
        },
        optional_keys=MSG,
    )
    parent = f"hello-{scenario.tag}@example.com"
    references = got["references"] if isinstance(got["references"], list) else [got["references"] or ""]
    problems += differences(
        "reply (to the sender only; In-Reply-To and References set)",
        {
            "to": addresses(got["to"]),
            "cc": addresses(got["cc"]),
            "in_reply_to": bare_message_id(got["in_reply_to"]),
            "references has the parent": parent in " ".join(map(str, references)),
        },
        {"to": ["sender@example.com"], "cc": [], "in_reply_to": parent, "references has the parent": True},
    )
    assert_none(problems, "the reply")


def step_reply_all_the_page_example(scenario: Scenario) -> None:
    api, b, inbound = scenario.api, need(scenario.b, "inbox B"), need(scenario.inbound, "B's inbound message")
    request = ex.REPLY_ALL.example_request
    reply = body(api.reply_all(b["inbox_id"], inbound["message_id"], **request), *ACCEPTED)
    got = body(api.get_message(b["inbox_id"], reply["message_id"]), 200)
    scenario.replied_all = got
    problems = example_mismatches(
        reply,
        ex.REPLY_ALL.example_response,
        path="POST .../reply-all",
        expect={"thread_id": inbound["thread_id"]},
    )
    problems += example_mismatches(
        got,
        ex.MESSAGE,
        path="GET .../messages/:reply-all",
        expect={
            "thread_id": inbound["thread_id"],
            "direction": "outbound",
            "subject": f"Re: {inbound['subject']}",
            "text": request["text"],
        },
        optional_keys=MSG,
    )
    # The sender + every To and Cc, without the inbox itself; the page doesn't split To from Cc.
    problems += differences(
        "reply-all",
        {
            "sender in to": "sender@example.com" in addresses(got["to"]),
            "everyone": sorted(addresses(got["to"]) + addresses(got["cc"])),
            "in_reply_to": bare_message_id(got["in_reply_to"]),
        },
        {
            "sender in to": True,
            "everyone": ["cc@example.com", "other@example.com", "sender@example.com"],
            "in_reply_to": f"hello-{scenario.tag}@example.com",
        },
    )
    assert_none(problems, "the reply-all")


def step_forward_the_page_example(scenario: Scenario) -> None:
    api, b, inbound = scenario.api, need(scenario.b, "inbox B"), need(scenario.inbound, "B's inbound message")
    request = ex.FORWARD.example_request
    forward = body(api.forward(b["inbox_id"], inbound["message_id"], **request), *ACCEPTED)
    got = body(api.get_message(b["inbox_id"], forward["message_id"]), 200)
    scenario.forwarded = got
    problems = example_mismatches(forward, ex.FORWARD.example_response, path="POST .../forward")
    if forward.get("thread_id") == inbound["thread_id"]:
        problems.append("forward: stayed in the original thread (a forward creates a new thread)")
    problems += example_mismatches(
        got,
        ex.MESSAGE,
        path="GET .../messages/:forward",
        expect={"thread_id": forward.get("thread_id"), "direction": "outbound", "to": [request["to"]]},
        optional_keys=MSG,
    )
    problems += differences(
        "forward",
        {
            "subject has the original": inbound["subject"] in (got["subject"] or ""),
            "text starts with the override": (got["text"] or "").startswith(request["text"]),
        },
        {"subject has the original": True, "text starts with the override": True},
    )
    assert_none(problems, "the forward")


# --- Threads -----------------------------------------------------------------------------------


def step_threads(scenario: Scenario) -> None:
    api, b = scenario.api, need(scenario.b, "inbox B")
    inbound = need(scenario.inbound, "B's inbound message")
    replied = need(scenario.replied, "the reply")
    replied_all = need(scenario.replied_all, "the reply-all")
    page = body(api.list_threads(b["inbox_id"]), 200)
    items = assert_page(page, ex.LIST_THREADS.example_response, path="GET /inboxes/:inboxId/threads")
    assert_descending(items, "timestamp", "GET /inboxes/:inboxId/threads")
    item = only(items, "thread_id", inbound["thread_id"], "GET /inboxes/:inboxId/threads")
    assert_matches_example(
        item,
        ex.THREAD_ITEM,
        path="GET /inboxes/:inboxId/threads data[]",
        expect={
            "inbox_id": b["inbox_id"],
            "subject": inbound["subject"],
            "message_count": 3,
            "last_message_id": replied_all["message_id"],
        },
    )
    assert "sender@example.com" in addresses(item["senders"]), item["senders"]
    assert b["email_address"] in addresses(item["recipients"]), item["recipients"]
    assert item["received_timestamp"] and item["sent_timestamp"], item

    thread = body(api.get_thread(b["inbox_id"], inbound["thread_id"]), 200)
    assert_matches_example(
        thread,
        ex.THREAD,
        path="GET /inboxes/:inboxId/threads/:threadId",
        expect={"inbox_id": b["inbox_id"], "thread_id": inbound["thread_id"], "message_count": 3},
        optional_keys=MSG,
    )
    messages = thread["messages"]
    assert [m["message_id"] for m in messages] == [
        inbound["message_id"],
        replied["message_id"],
        replied_all["message_id"],
    ], "the thread's messages, chronologically"
    stamps = [parse_timestamp(m["timestamp"]) for m in messages]
    assert stamps == sorted(stamps), stamps
    first = messages[0]
    assert (first["direction"], first["from"], text_of(first["text"])) == (
        "inbound",
        "sender@example.com",
        "Hi there!",
    ), first
    assert (messages[1]["direction"], messages[1]["text"]) == ("outbound", "Thanks for your email!"), (
        messages[1]
    )


def step_delete_thread(scenario: Scenario) -> None:
    api, b = scenario.api, need(scenario.b, "inbox B")
    forwarded = need(scenario.forwarded, "the forward")
    assert_no_content(api.delete_thread(b["inbox_id"], forwarded["thread_id"]))
    assert_error(api.get_thread(b["inbox_id"], forwarded["thread_id"]), 404)
    assert_error(api.get_message(b["inbox_id"], forwarded["message_id"]), 404)
    listed = body(api.list_threads(b["inbox_id"], page_size=100), 200)["data"]
    assert forwarded["thread_id"] not in [t["thread_id"] for t in listed]


def step_message_and_thread_pages(scenario: Scenario) -> None:
    api, b = scenario.api, need(scenario.b, "inbox B")
    assert_error(api.list_messages(b["inbox_id"], page_size=101), 400, 422)
    assert_error(api.list_threads(b["inbox_id"], page_size=101), 400, 422)
    assert_error(api.get_message(b["inbox_id"], f"msg_nope{scenario.tag}"), 404)
    assert_error(api.get_thread(b["inbox_id"], f"thr_nope{scenario.tag}"), 404)
    need(scenario.replied, "B's inbound message and its reply (two messages to page through)")
    path = "GET /inboxes/:inboxId/messages"
    first = assert_page(
        body(api.list_messages(b["inbox_id"], page=1, page_size=1), 200),
        ex.LIST_MESSAGES.example_response,
        path=f"{path}?page_size=1",
        page_size=1,
        optional_keys=MSG,
    )
    second = assert_page(
        body(api.list_messages(b["inbox_id"], page=2, page_size=1), 200),
        ex.LIST_MESSAGES.example_response,
        path=f"{path}?page=2&page_size=1",
        page_number=2,
        page_size=1,
        optional_keys=MSG,
    )
    assert len(first) == len(second) == 1 and first[0]["message_id"] != second[0]["message_id"]
    assert parse_timestamp(first[0]["timestamp"]) >= parse_timestamp(second[0]["timestamp"])


# --- Inbox update, API keys, deletes -------------------------------------------------------------


def step_update_inbox_the_page_example(scenario: Scenario) -> None:
    a = need(scenario.a, "inbox A")
    request = ex.UPDATE_INBOX.example_request
    patched = body(scenario.api.update_inbox(a["inbox_id"], **request), 200)
    kept = {k: a[k] for k in ("inbox_id", "email_address", "username", "domain", "client_id", "created_at")}
    assert_matches_example(
        patched, ex.INBOX_PATCHED, path="PATCH /inboxes/:inboxId", expect={**kept, **request}
    )
    assert parse_timestamp(patched["updated_at"]) >= parse_timestamp(a["updated_at"])
    got = body(scenario.api.get_inbox(a["inbox_id"]), 200)
    assert got == patched, f"GET after PATCH differs:\n{got}\n{patched}"


def step_api_keys_list_and_delete(scenario: Scenario) -> None:
    api, key = scenario.api, need(scenario.key, "the API key")
    spare = body(api.create_api_key(f"spare-{scenario.tag}"), *CREATED)
    assert_matches_example(spare, ex.API_KEY_CREATED, path="POST /api-keys (spare)")

    listed = find_all(
        lambda n: api.list_api_keys(page=n, page_size=100), ex.LIST_API_KEYS.example_response, "GET /api-keys"
    )
    mine = only(listed, "key_id", key["key_id"], "GET /api-keys")
    assert_matches_example(
        mine,
        ex.API_KEY,
        path="GET /api-keys data[]",
        expect={k: key[k] for k in ("key_id", "name", "prefix", "created_at")},
    )
    assert mine["used_at"] is not None, "the key every request of this module used has used_at null"
    assert key["key"] not in str(listed), "GET /api-keys shows a full key"
    assert only(listed, "key_id", spare["key_id"], "GET /api-keys")["used_at"] is None

    # The spare key is never used before it is deleted, so no authorizer cache can keep it alive.
    assert_no_content(api.delete_api_key(spare["key_id"]))
    assert_error(scenario.client(spare["key"]).list_inboxes(), 401)
    after = body(api.list_api_keys(page_size=100), 200)["data"]
    assert spare["key_id"] not in [k["key_id"] for k in after]
    assert_error(api.delete_api_key(spare["key_id"]), 404)


def step_delete_inboxes(scenario: Scenario) -> None:
    made = [inbox for inbox in (scenario.c, scenario.b, scenario.a) if inbox is not None]
    need(made or None, "inboxes")
    before = count(scenario, "inbox_count")
    for inbox in made:
        assert_no_content(scenario.api.delete_inbox(inbox["inbox_id"]))
        assert_error(scenario.api.get_inbox(inbox["inbox_id"]), 404)
    if before is not None:
        assert count(scenario, "inbox_count") == before - len(made), "inbox_count did not come back down"


# The steps build on each other (a key, then inboxes, then mail between them), so they run as one
# test, in the page's order: separate tests could be spread over xdist workers or reordered.
STEPS = [
    step_create_api_key_then_use_only_it,
    step_organization,
    step_unknown_ids_are_404_with_name_and_message,
    step_a_wrong_key_is_401,
    step_create_inboxes_with_the_page_example,
    step_create_inbox_with_every_documented_field,
    step_list_inboxes_and_pages,
    step_get_inbox,
    step_webhooks,
    step_domains,
    step_send_the_page_example_and_read_it,
    step_update_labels,
    step_attachment_metadata_and_download,
    step_mail_between_two_inboxes_threads_on_both_sides,
    step_every_documented_field_of_send_reply_reply_all_and_forward,
    step_receive_mail_from_outside,
    step_reply_the_page_example,
    step_reply_all_the_page_example,
    step_forward_the_page_example,
    step_threads,
    step_delete_thread,
    step_message_and_thread_pages,
    step_update_inbox_the_page_example,
    step_api_keys_list_and_delete,
    step_delete_inboxes,
]


def test_every_example_on_the_page_in_order(scenario: Scenario) -> None:
    for step in STEPS:
        step(scenario)
