"""The two-tenant sweep, generated from the running stack's OpenAPI document: every operation whose
path names a resource, called by one organization (A) with another organization's (B) ids, answers
404 in its surface's envelope, saying exactly what it says for an id that never existed, and B's
data is what it was. A new endpoint joins the sweep by being in the document; a new path
parameter fails it until this module knows B's value for it.

B has a real resource of every kind a path names (tests/support/tenant_resources.py makes them the
way a client does: the API, mail through the stack's SMTP listener, a bounce from SES's mailbox
simulator, a migration and a bulk batch from a real Dovecot, a DNS check against a real nsd). A
has its tokens, and the parents a path pairs with a child, so that each parameter is also tried
alone as B's with the others A's own: ``/webhooks/{A's}/deliveries/{B's}``. A calls with the token
its surface takes: its ops token on /api/v1, a message token of a mailbox of its own on
/api/v1/messages* and /api/v1/threads*, an ``inai_`` API key on /api/v0.

A second sweep keeps a message token inside its mailbox: A's message token with the ids of other
mailboxes of A's own organization, on every path a message token can call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import create_org, start_stack
from tests.support.cloudflare_api import CloudflareApi
from tests.support.dns_server import authoritative_dns
from tests.support.dovecot import DovecotServer
from tests.support.openapi_sweep import Operation, example, ghost, operations, unknown_parameters, variants
from tests.support.tenant_resources import (
    MESSAGE_SCOPES,
    PASSWORD,
    Site,
    Tenant,
    call,
    create,
    ok,
    populate,
)
from tests.support.webhooks import receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tenant-sweep")]
ZONE = "example.org"
CONCURRENCY = 4  # requests in flight during a sweep or a snapshot

# Paths a message token (one mailbox's agent) calls; every other /api/v1 path takes an ops token.
MESSAGE_PATHS = ("/api/v1/messages", "/api/v1/threads")
# ... and on /api/v0, the paths inside an inbox. (/api/v0/inboxes/{inboxId} itself is an ops
# action: a message token gets 403 wrong_token_type there whatever the id.)
V0_INBOX_PATHS = ("/api/v0/inboxes/{inboxId}/",)

# Bodies the schema alone cannot make valid (a real address, a known scope, a strong password) or
# that would change nothing (a leak must show in the owner's data), by operation. Every other
# operation that requires a body gets the schema's minimal example (openapi_sweep.example).
BODIES: dict[str, Any] = {
    "PATCH /api/v1/domains/{domain_id}": {"description": "swept"},
    "PATCH /api/v1/domains/{domain_id}/catch-all": {"catch_all": "sweep@example.net"},
    "PATCH /api/v1/mailboxes/{mailbox_id}": {"name": "Swept"},
    "POST /api/v1/mailboxes/{mailbox_id}/password": {"password": "Tr0ubadour-Staple-91"},
    "PUT /api/v1/mailboxes/{mailbox_id}/forwarding": {"targets": ["sweep@example.net"], "keep_copy": True},
    "POST /api/v1/mailboxes/{mailbox_id}/message-tokens": {"name": "sweep", "scopes": ["messages:read"]},
    "PATCH /api/v1/aliases/{alias_id}": {"goto": ["sweep@example.net"]},
    "PATCH /api/v1/webhooks/{webhook_id}": {"enabled": False},
    "PATCH /api/v1/messages/{message_id}": {"seen": True},
    "POST /api/v1/messages/{message_id}:move": {"folder": "Archive"},
    "PATCH /api/v1/messages/folders/{path}": {"path": "Swept"},
    "PATCH /api/v1/migrations/bulk/{batch_id}/jobs/{job_id}/password": {"source_password": "Sweep-Secret-7"},
    "PATCH /api/v0/inboxes/{inboxId}": {"display_name": "Swept"},
    "PATCH /api/v0/webhooks/{webhookId}": {"enabled": False},
    "POST /api/v0/inboxes/{inboxId}/messages/send": {"to": "sweep@example.net", "text": "swept"},
    "PATCH /api/v0/inboxes/{inboxId}/messages/{messageId}": {"labels": ["swept"]},
    "POST /api/v0/inboxes/{inboxId}/messages/{messageId}/reply": {"text": "swept"},
    "POST /api/v0/inboxes/{inboxId}/messages/{messageId}/reply-all": {"text": "swept"},
    "POST /api/v0/inboxes/{inboxId}/messages/{messageId}/forward": {"to": "sweep@example.net"},
    "PUT /api/v1/mailboxes/{mailbox_id}/rules/{rule_id}": {"name": "Swept", "actions": [{"type": "flag"}]},
    # mailcow's full updates. The domain's name is checked once the domain is found: a leak would
    # answer 422 here, not 404.
    "PUT /api/v1/domains/{domain_id}": {
        "domain": "sweep.example.org",
        "active": False,
        "aliases": 400,
        "defquota": 256,
        "mailboxes": 50,
        "maxquota": 1024,
        "quota": 1024,
    },
    "PUT /api/v1/mailboxes/{mailbox_id}": {"active": False, "name": "Swept", "quota": 256},
    "PATCH /api/v1/mailbox/{mailbox_id}": {"name": "Swept"},
    "PUT /api/v1/mailbox/{mailbox_id}": {"active": False, "name": "Swept", "quota": 256},
    "POST /api/v1/mailbox/{mailbox_id}/testmail": {"subject": "swept"},
    "POST /api/v1/mailbox/{mailbox_id}/mail/send": {"to": "sweep@example.net", "text": "swept"},
    "PUT /api/v1/aliases/{alias_id}": {"goto": ["sweep@example.net"], "active": False},
    # The automation model: a leak would answer 200 (or 422 for a target the caller does not own).
    "PUT /api/v1/rules/{automation_rule_id}": {"name": "Swept"},
    "PATCH /api/v1/rules/{automation_rule_id}": {"name": "Swept"},
    "PUT /api/v1/actions/{action_id}": {
        "name": "Swept",
        "action_type": "label",
        "parameters": {"labels": ["x"]},
    },
    "PATCH /api/v1/actions/{action_id}": {"name": "Swept"},
    "PUT /api/v1/routes/{route_id}": {
        "name": "Swept",
        "target": {"mailbox_id": "mbx_swept"},
        "action_ids": ["act_x"],
    },
    "PATCH /api/v1/routes/{route_id}": {"enabled": False},
}

# Operations that legitimately answer something else than 404 for another tenant's id, and why.
# Otherwise every path parameter of the API names a resource of the caller's organization.
_OPERATOR_SIGNED = "the operator's support API: HMAC-signed with the stack's secret, 401 for any token"
NOT_TENANT_RESOURCES: dict[str, str] = {
    "PUT /api/v1/support/messages/{ticket_message_id}": _OPERATOR_SIGNED,
    "DELETE /api/v1/support/messages/{ticket_message_id}": _OPERATOR_SIGNED,
}

# What changes between two reads of an owner's resources with nothing done to them, and why, by
# field of one operation's answer.
_USED_AT = {"used_at": "a token's last use: the snapshot's own reads use the owner's tokens"}
VOLATILE: dict[str, dict[str, str]] = {
    "GET /api/v1/tokens": _USED_AT,
    "GET /api/v1/mailboxes/{mailbox_id}/message-tokens": _USED_AT,
    "GET /api/v0/api-keys": _USED_AT,
    "GET /api/v0/inboxes/{inboxId}/messages/{messageId}/attachments/{attachmentId}": {
        "download_url": "a pre-signed S3 URL, signed anew on every read",
        "expires_at": "that URL's expiry, an hour after the read",
    },
    "GET /api/v1/verify/bulk/{verify_job_id}/download": {
        "url": "a pre-signed S3 URL, signed anew on every read",
        "expires_at": "that URL's expiry, an hour after the read",
    },
    "GET /api/v1/messages/calendar/events": {
        "since": "the default range starts at the time of the read",
        "before": "and ends 30 days after it",
    },
    "GET /api/v1/billing/status": {
        "as_of": "the time of the read",
        "api_requests": "the snapshot's own reads are API requests of the owner",
        "aws_cost": "the estimate includes those requests",
    },
}
# What the app answers for a path no operation has: a sweep that gets it reached nothing.
NO_SUCH_ENDPOINT = "No such endpoint"


@dataclass(frozen=True)
class Tokens:
    ops: str
    message: str
    api_key: str

    def for_path(self, path: str) -> str:
        return {"v0": self.api_key, "messages": self.message, "ops": self.ops}[surface(path)]


@dataclass
class World:
    http: httpx.Client
    document: dict[str, Any]
    a: Tenant
    b: Tenant
    a_caller_message: str  # A's message token of a mailbox of its own with nothing in it

    def owner(self, tenant: Tenant) -> Tokens:
        return Tokens(tenant.ops, tenant.message, tenant.api_key)


def surface(path: str) -> str:
    if path.startswith("/api/v0/"):
        return "v0"
    return "messages" if path.startswith(MESSAGE_PATHS) else "ops"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {
        "MAILROOM_IMAP_TIMEOUT_SECONDS": "10",
        # A sweep makes a few hundred requests per token within a minute.
        "MAILROOM_RATE_LIMIT_PER_MINUTE": "100000",
        "MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE": "100000",
        # Bounded on a busy machine: no periodic state snapshots (one on exit), warnings and up.
        "MAILROOM_SNAPSHOT_INTERVAL": "0",
        "MAILROOM_PARAMETER_OVERRIDES": "LogLevel=WARNING",
    }
    with (
        authoritative_dns(tmp_path_factory.mktemp("nsd"), ZONE) as dns,
        DovecotServer() as dovecot,
        receiver() as hook,
        CloudflareApi() as cloudflare,
    ):
        dns.serve([])  # no records: a DNS check of a domain here fails, and fast
        env |= {"MAILROOM_DNS_RESOLVER": dns.address, "MAILROOM_IMAP_CA_FILE": str(dovecot.ca_file)}
        env["MAILROOM_CLOUDFLARE_API_URL"] = cloudflare.base_url
        with (
            start_stack(tmp_path_factory.mktemp("tenant-sweep"), stop_timeout=60, **env) as stack,
            httpx.Client(base_url=stack.api_url, timeout=60) as http,
        ):
            yield build_world(Site(stack, http, dovecot, hook, ZONE, cloudflare))


def build_world(site: Site) -> World:
    """A is the organization the stack starts with; B is made by the operator CLI meanwhile. Both
    are populated side by side: most of the time goes to waiting on the stack."""
    a = Tenant("a", site.stack.admin_token)
    with ThreadPoolExecutor(2) as pool:
        victim = pool.submit(create_org, site.stack, "Sweep B")
        settle_a = pool.submit(populate, site, a, victim=False)
        b = Tenant("b", victim.result()["admin_token"])
        settling = [pool.submit(populate(site, b, victim=True)), pool.submit(settle_a.result())]
        for settled in settling:
            settled.result()
    body = {"local_part": "caller", "domain": a.domain, "password": PASSWORD, "quota": 256}
    caller = create(site.http, "/api/v1/mailboxes", a.ops, body)
    token = {"name": "caller", "scopes": MESSAGE_SCOPES}
    caller_message = create(site.http, f"/api/v1/mailboxes/{caller['id']}/message-tokens", a.ops, token)[
        "token"
    ]
    document = ok(site.http.get("/api/openapi.json"))
    return World(site.http, document, a, b, caller_message)


# -- snapshots ---------------------------------------------------------------------------------

Snapshot = dict[str, tuple[int, Any]]


def _without(value: Any, volatile: Collection[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_without(v, volatile) for v in value]
    return value


def read(http: httpx.Client, operation: Operation, url: str, token: str) -> tuple[int, Any]:
    response = call(http, "GET", url, token)
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.status_code, _without(response.json(), VOLATILE.get(operation.key, {}))
    return response.status_code, hashlib.sha256(response.content).hexdigest()


def snapshot(
    http: httpx.Client, reads: Sequence[Operation], values: Mapping[str, Sequence[str]], tokens: Tokens
) -> Snapshot:
    """Every read of the document with the owner's tokens and every combination of its values."""
    urls = [(o, o.url(filled)) for o in reads for filled in variants(o, values, {})]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        taken = pool.map(lambda task: read(http, task[0], task[1], tokens.for_path(task[0].path)), urls)
        return {url: result for (_, url), result in zip(urls, taken, strict=True)}


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """Each status or field that differs, as ``url field.path: before -> after``."""
    found: list[str] = []

    def compare(url: str, path: str, old: Any, new: Any) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(old.keys() | new.keys()):
                compare(url, f"{path}.{key}" if path else key, old.get(key), new.get(key))
        elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for index, (o, n) in enumerate(zip(old, new, strict=True)):
                compare(url, f"{path}[{index}]", o, n)
        elif old != new:
            found.append(f"{url} {path or '(body)'}: {old!r:.300} -> {new!r:.300}")

    for url, (status, body) in before.items():
        later = after.get(url)
        if later is None or later[0] != status:
            found.append(f"{url}: {status} -> {later[0] if later else None}")
        else:
            compare(url, "", body, later[1])
    return found


def readable(snapshot_taken: Snapshot) -> list[str]:
    """The URLs the owner itself could not read: values that name nothing prove nothing."""
    return [
        f"{url} -> {status} {body}"[:300] for url, (status, body) in snapshot_taken.items() if status >= 300
    ]


# -- the sweep ---------------------------------------------------------------------------------


def not_found(response: httpx.Response, path: str) -> tuple[str, str] | None:
    """(code, message) of a 404 in the surface's envelope from an operation (not a path the app
    does not serve); None for anything else."""
    if response.status_code != 404 or not response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        return None
    payload = response.json()
    if surface(path) == "v0":
        refused = (
            (payload.get("name"), payload.get("message")) if payload.get("name") == "NotFoundError" else None
        )
    else:
        error = payload.get("error") or {}
        refused = (error.get("code"), error.get("message")) if error.get("code") == "not_found" else None
    return refused if refused and refused[1] != NO_SUCH_ENDPOINT else None


def body_for(operation: Operation, document: Mapping[str, Any]) -> Any:
    if operation.key in BODIES:
        return BODIES[operation.key]
    if operation.body_required and operation.body_schema is not None:
        return example(operation.body_schema, document)
    return None


def sweep(
    world: World,
    selected: Sequence[Operation],
    caller: Tokens,
    theirs: Mapping[str, Sequence[str]],
    ours: Mapping[str, Sequence[str]],
) -> tuple[int, list[str]]:
    """Every selected operation with every variant of the victim's values, a few at a time (none
    may change anything): (calls, failures)."""

    def attempt(operation: Operation, filled: dict[str, str]) -> str | None:
        token, body = caller.for_path(operation.path), body_for(operation, world.document)
        url = operation.url(filled)
        response = call(world.http, operation.method, url, token, body, send_body=body is not None)
        refused = not_found(response, operation.path)
        if refused is None:
            return f"{operation.method} {url} -> {response.status_code} {response.text[:300]}"
        # The same call with ids that never existed: the answer must not tell the two apart.
        never = operation.url({n: v if v in ours.get(n, ()) else ghost(v) for n, v in filled.items()})
        baseline = call(world.http, operation.method, never, token, body, send_body=body is not None)
        if not_found(baseline, operation.path) != refused:
            answer = f"{baseline.status_code} {baseline.text:.300}"
            return f"{operation.method} {url} -> {refused}, but {never} (never existed) -> {answer}"
        return None

    tasks = [
        (operation, filled)
        for operation in selected
        if operation.key not in NOT_TENANT_RESOURCES
        for filled in variants(operation, theirs, ours)
    ]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        failures = [failure for failure in pool.map(lambda task: attempt(*task), tasks) if failure]
    return len(tasks), failures


def report(calls: int, failures: Sequence[str], changed: Sequence[str], *, whose: str) -> str:
    lines = [f"{len(failures)} of {calls} calls were no plain 404:", *failures, f"{whose} changed:", *changed]
    return "\n".join(lines)


def with_parameters(
    document: Mapping[str, Any], keep: Callable[[str], bool] = lambda _: True
) -> list[Operation]:
    return [o for o in operations(document) if o.parameters and keep(o.path)]


def message_token_path(path: str) -> bool:
    return surface(path) == "messages" or path.startswith(V0_INBOX_PATHS)


def test_every_path_parameter_has_a_value_of_the_other_tenant(world: World) -> None:
    """A new endpoint cannot escape the sweep: a parameter this module does not know fails it."""
    unknown = {o.key: unknown_parameters(o, world.b.values) for o in with_parameters(world.document)}
    assert {key: names for key, names in unknown.items() if names} == {}
    stale = set(NOT_TENANT_RESOURCES) - {o.key for o in with_parameters(world.document)}
    assert not stale, f"exemptions for operations the document no longer has: {stale}"


def test_another_tenants_ids_are_not_found_and_its_data_is_unchanged(world: World) -> None:
    a, b = world.a, world.b
    selected = with_parameters(world.document)
    reads = [o for o in operations(world.document) if o.method == "GET"]
    before = snapshot(world.http, reads, b.values, world.owner(b))
    assert readable(before) == [], "B cannot read its own resources: the sweep would prove nothing"

    calls, failures = sweep(
        world, selected, Tokens(a.ops, world.a_caller_message, a.api_key), b.values, a.values
    )

    changed = differences(before, snapshot(world.http, reads, b.values, world.owner(b)))
    assert (failures, changed) == ([], []), report(calls, failures, changed, whose="B's data")
    assert calls > len(selected)  # A's parents paired with B's children too


def test_a_message_token_reaches_no_other_mailbox_of_its_organization(world: World) -> None:
    """A's message token (of its caller mailbox, which holds nothing) with the ids of A's main
    mailbox and A's v0 inbox, on every path a message token calls."""
    a = world.a
    selected = with_parameters(world.document, message_token_path)
    reads = [o for o in operations(world.document) if o.method == "GET" and message_token_path(o.path)]
    before = snapshot(world.http, reads, a.values, world.owner(a))
    assert readable(before) == []

    caller = Tokens(a.ops, world.a_caller_message, world.a_caller_message)
    # The caller's mailbox has nothing a path names, but an attachment's position is anyone's.
    calls, failures = sweep(world, selected, caller, a.values, {"index": a.values["index"]})

    changed = differences(before, snapshot(world.http, reads, a.values, world.owner(a)))
    assert (failures, changed) == ([], []), report(calls, failures, changed, whose="the other mailboxes")
    assert calls >= len(selected) > 0
