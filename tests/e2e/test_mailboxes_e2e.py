"""Mailboxes, invites, aliases, forwarding, message tokens, sign-in and delete intents over HTTP,
through the local stack's gateway, authorizer, SQS poller (the purge) and emulated AWS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, create_org

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
PASSWORD = "Correct-Horse-42"
PURGE_TIMEOUT = 60.0


@dataclass
class World:
    stack: LocalStackProcess
    a: httpx.Client  # the stack's default organization (admin token)
    b: httpx.Client  # a second organization, made with the operator CLI
    anonymous: httpx.Client
    a_org_id: str
    domain: dict[str, Any]

    def address(self, local_part: str) -> str:
        return f"{local_part}@{self.domain['domain']}"


def post(client: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def put(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.put(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["data"]


def client_for(stack: LocalStackProcess, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=stack.api_url, headers=headers, timeout=30)


def aws_client(stack: LocalStackProcess, service: str) -> Any:
    session: Any = boto3.session.Session()  # Any: the stubs only type literal service names
    return session.client(
        service,
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def world(stack: LocalStackProcess) -> Iterator[World]:
    other = create_org(stack, f"Globex {uuid.uuid4().hex[:6]}")
    with (
        client_for(stack, stack.admin_token) as a,
        client_for(stack, other["admin_token"]) as b,
        client_for(stack, None) as anonymous,
    ):
        me = data(a.get("/api/v1/me"))
        name = f"mbx-{uuid.uuid4().hex[:10]}.example.com"
        domain = data(post(a, "/api/v1/domains", {"domain": name, "quota": 40000}), 201)
        yield World(stack, a, b, anonymous, me["organization"]["id"], domain)


def new_mailbox(world: World, local_part: str, **extra: Any) -> dict[str, Any]:
    body = {"local_part": local_part, "domain": world.domain["domain"], "password": PASSWORD, **extra}
    return data(post(world.a, "/api/v1/mailboxes", body), 201)  # type: ignore[no-any-return]


def ops_token(world: World, *scopes: str) -> str:
    created = data(post(world.a, "/api/v1/tokens", {"name": "e2e", "scopes": list(scopes)}), 201)
    return str(created["token"])


def test_mailbox_endpoints(world: World) -> None:
    mailbox = new_mailbox(world, "alice", name="Alice", note="first")
    mid = mailbox["id"]
    assert mailbox["address"] == world.address("alice") and mailbox["storage_mode"] == "shared"
    assert data(world.a.get(f"/api/v1/mailboxes/{mid}")) == mailbox
    listed = world.a.get("/api/v1/mailboxes", params={"domain_id": world.domain["id"]}).json()
    assert mid in [m["id"] for m in listed["data"]] and listed["meta"]["storage_pool"]["total_mb"] > 0

    updated = data(
        world.a.patch(f"/api/v1/mailboxes/{mid}", json={"name": "Alice B.", "quota": 2048, "active": True})
    )
    assert (updated["name"], updated["quota"]) == ("Alice B.", 2048)
    assert data(world.a.patch(f"/api/v1/mailboxes/{mid}/note", json={"note": "vip"}))["note"] == "vip"
    changed = data(post(world.a, f"/api/v1/mailboxes/{mid}/password", {"password": "Brand-New-Secret-3"}))
    assert changed["password_updated_at"] >= mailbox["password_updated_at"]
    assert data(post(world.a, f"/api/v1/mailboxes/{mid}:pause", {"reason": "e2e"}))["paused"] is True
    assert data(post(world.a, f"/api/v1/mailboxes/{mid}:resume"))["paused"] is False

    new_mailbox(world, "bob")
    forwarding = data(
        put(
            world.a,
            f"/api/v1/mailboxes/{mid}/forwarding",
            {"targets": [world.address("bob"), "x@gmail.com"], "keep_copy": False},
        )
    )
    assert forwarding["targets"] == [world.address("bob"), "x@gmail.com"] and forwarding["keep_copy"] is False
    assert data(world.a.get(f"/api/v1/mailboxes/{mid}/forwarding")) == forwarding
    unknown = put(world.a, f"/api/v1/mailboxes/{mid}/forwarding", {"targets": [world.address("ghost")]})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_target"

    rows = [
        {"local_part": n, "domain": world.domain["domain"], "password": PASSWORD, "quota": 10}
        for n in ("c1", "c2")
    ]
    bulk = post(world.a, "/api/v1/mailboxes:bulk", {"mailboxes": rows})
    assert bulk.status_code == 201, bulk.text
    assert [m["address"] for m in bulk.json()["data"]] == [world.address("c1"), world.address("c2")]
    again = post(world.a, "/api/v1/mailboxes:bulk", {"mailboxes": rows})
    assert again.status_code == 422 and again.json()["error"]["code"] == "bulk_validation_failed"
    taken = post(
        world.a,
        "/api/v1/mailboxes",
        {"local_part": "ALICE", "domain": world.domain["domain"], "password": PASSWORD},
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "address_taken"


def test_invites_and_redeem(world: World) -> None:
    before = world.a.get("/api/v1/mailboxes").json()["meta"]["storage_pool"]
    invite = data(
        post(
            world.a,
            "/api/v1/mailboxes/invites",
            {"local_part": "carol", "domain": world.domain["domain"], "storage_allocation_mb": 10},
        ),
        201,
    )
    reserved = world.a.get("/api/v1/mailboxes").json()["meta"]["storage_pool"]
    assert reserved["reserved_mb"] == before["reserved_mb"] + 10
    assert data(world.a.get(f"/api/v1/mailboxes/invites/{invite['id']}"))["status"] == "pending"

    redeemed = post(
        world.anonymous, "/api/v1/auth/invites:redeem", {"code": invite["code"], "password": PASSWORD}
    )
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    assert body["meta"]["storage_downgraded"] is False
    assert (body["data"]["address"], body["data"]["storage_allocation_mb"]) == (world.address("carol"), 10)
    after = world.a.get("/api/v1/mailboxes").json()["meta"]["storage_pool"]
    assert (after["reserved_mb"], after["dedicated_mb"]) == (
        before["reserved_mb"],
        before["dedicated_mb"] + 10,
    )
    reused = post(
        world.anonymous, "/api/v1/auth/invites:redeem", {"code": invite["code"], "password": PASSWORD}
    )
    assert reused.status_code == 409

    rows = [{"local_part": n, "domain": world.domain["domain"]} for n in ("dave", "erin")]
    bulk = post(world.a, "/api/v1/mailboxes/invites:bulk", {"invites": rows})
    assert bulk.status_code == 201, bulk.text
    assert len({i["code"] for i in bulk.json()["data"]}) == 2


def test_aliases(world: World) -> None:
    new_mailbox(world, "frank")
    alias = data(
        post(
            world.a,
            "/api/v1/aliases",
            {"address": world.address("team"), "goto": [world.address("frank"), "y@gmail.com"]},
        ),
        201,
    )
    assert alias["id"] in [a["id"] for a in world.a.get("/api/v1/aliases").json()["data"]]
    assert data(world.a.get(f"/api/v1/aliases/{alias['id']}"))["goto"] == [
        world.address("frank"),
        "y@gmail.com",
    ]
    assert data(world.a.patch(f"/api/v1/aliases/{alias['id']}", json={"active": False}))["active"] is False
    assert world.a.delete(f"/api/v1/aliases/{alias['id']}").status_code == 204
    assert world.a.get(f"/api/v1/aliases/{alias['id']}").status_code == 404


def test_message_tokens_are_bound_to_their_mailbox(world: World) -> None:
    gina, hank = new_mailbox(world, "gina"), new_mailbox(world, "hank")
    path = f"/api/v1/mailboxes/{gina['id']}/message-tokens"
    token = data(post(world.a, path, {"name": "agent", "scopes": ["messages:read"]}), 201)
    unused = data(post(world.a, path, {"name": "spare", "scopes": ["messages:read"]}), 201)
    listed = world.a.get(path).json()
    assert {t["id"] for t in listed["data"]} == {token["id"], unused["id"]} and listed["meta"]["total"] == 2
    with client_for(world.stack, token["token"]) as agent:
        pong = data(agent.get("/api/v1/messages/_ping"))
        assert pong["mailbox"]["id"] == gina["id"]
        for method, target in [
            ("GET", f"/api/v1/mailboxes/{hank['id']}"),
            ("GET", "/api/v1/mailboxes"),
            ("GET", "/api/v1/me"),
        ]:
            refused = agent.request(method, target)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "wrong_token_type"
    assert world.a.get("/api/v1/messages/_ping").json()["error"]["code"] == "wrong_token_type"
    # Revoked before any use, so no cached authorizer answer can keep it alive.
    assert world.a.delete(f"/api/v1/message-tokens/{unused['id']}").status_code == 204
    with client_for(world.stack, unused["token"]) as revoked:
        assert revoked.get("/api/v1/messages/_ping").status_code == 401


def test_mailbox_sign_in(world: World) -> None:
    new_mailbox(world, "ivy")
    signed_in = post(
        world.anonymous, "/api/v1/auth/mailbox-token", {"address": world.address("ivy"), "password": PASSWORD}
    )
    token = data(signed_in, 201)
    assert token["token"].startswith("mr_msg_") and token["expires_in"] <= 3600
    with client_for(world.stack, token["token"]) as session:
        assert data(session.get("/api/v1/messages/_ping"))["mailbox"]["address"] == world.address("ivy")
    wrong = post(
        world.anonymous,
        "/api/v1/auth/mailbox-token",
        {"address": world.address("ivy"), "password": "Wrong-Password-1"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"


def test_delete_intent_confirm_and_purge(world: World) -> None:
    jane = new_mailbox(world, "jane")
    session = data(
        post(
            world.anonymous,
            "/api/v1/auth/mailbox-token",
            {"address": world.address("jane"), "password": PASSWORD},
        ),
        201,
    )
    with client_for(world.stack, session["token"]) as agent:
        assert agent.get("/api/v1/messages/_ping").status_code == 200
    # Mail the mail-flow issue would have stored: partition items and S3 objects.
    dynamodb, s3 = aws_client(world.stack, "dynamodb"), aws_client(world.stack, "s3")
    table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-Table"))
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].endswith("-mailbucket"))
    pk = f"ORG#{world.a_org_id}#MBX#{jane['id']}"
    prefix = f"orgs/{world.a_org_id}/mailboxes/{jane['id']}/"
    for i in range(40):
        dynamodb.put_item(TableName=table, Item={"PK": {"S": pk}, "SK": {"S": f"MSG#{i:03d}"}})
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"{prefix}raw/{i}.eml", Body=b"mail")

    deleter = ops_token(world, "mailboxes:delete", "mailboxes:read")
    with client_for(world.stack, deleter) as ops:
        intent = data(post(ops, f"/api/v1/mailboxes/{jane['id']}:delete-intent"), 201)
        confirmed = data(post(ops, f"/api/v1/delete-intents/{intent['id']}:confirm"))
        assert confirmed["status"] == "confirmed" and confirmed["mailbox_deleted"] is True
        assert world.a.get(f"/api/v1/mailboxes/{jane['id']}").status_code == 404
        with client_for(world.stack, session["token"]) as agent:
            assert agent.get("/api/v1/messages/_ping").status_code == 401
        used = post(ops, f"/api/v1/delete-intents/{intent['id']}:confirm")
        assert used.status_code == 409
        deadline = time.monotonic() + PURGE_TIMEOUT
        purge = confirmed["purge"]
        while purge["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.25)
            purge = data(ops.get(f"/api/v1/delete-intents/{intent['id']}"))["purge"]
    assert purge["status"] == "completed", world.stack.logs()
    assert (purge["deleted_items"], purge["deleted_objects"]) == (40, 5)
    count = dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        Select="COUNT",
    )
    assert count["Count"] == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0
    assert new_mailbox(world, "jane")["id"] != jane["id"]  # the address is free again


def test_organization_b_gets_404_for_every_id_of_organization_a(world: World) -> None:
    kim = new_mailbox(world, "kim")
    alias = data(
        post(
            world.a,
            "/api/v1/aliases",
            {"address": world.address("kim-alias"), "goto": [world.address("kim")]},
        ),
        201,
    )
    token = data(
        post(
            world.a,
            f"/api/v1/mailboxes/{kim['id']}/message-tokens",
            {"name": "t", "scopes": ["messages:read"]},
        ),
        201,
    )
    invite = data(
        post(world.a, "/api/v1/mailboxes/invites", {"local_part": "liam", "domain": world.domain["domain"]}),
        201,
    )
    intent = data(post(world.a, f"/api/v1/mailboxes/{kim['id']}:delete-intent"), 201)
    mid = kim["id"]
    attempts = [
        ("GET", f"/api/v1/mailboxes/{mid}", None),
        ("PATCH", f"/api/v1/mailboxes/{mid}", {"name": "x"}),
        ("POST", f"/api/v1/mailboxes/{mid}/password", {"password": "Pwned-Password-1"}),
        ("PATCH", f"/api/v1/mailboxes/{mid}/note", {"note": "x"}),
        ("POST", f"/api/v1/mailboxes/{mid}:pause", None),
        ("POST", f"/api/v1/mailboxes/{mid}:resume", None),
        ("GET", f"/api/v1/mailboxes/{mid}/forwarding", None),
        ("PUT", f"/api/v1/mailboxes/{mid}/forwarding", {"targets": ["thief@gmail.com"]}),
        ("POST", f"/api/v1/mailboxes/{mid}/message-tokens", {"name": "x", "scopes": ["messages:read"]}),
        ("GET", f"/api/v1/mailboxes/{mid}/message-tokens", None),
        ("POST", f"/api/v1/mailboxes/{mid}:delete-intent", None),
        ("GET", f"/api/v1/mailboxes/invites/{invite['id']}", None),
        ("GET", f"/api/v1/aliases/{alias['id']}", None),
        ("PATCH", f"/api/v1/aliases/{alias['id']}", {"goto": ["thief@gmail.com"]}),
        ("DELETE", f"/api/v1/aliases/{alias['id']}", None),
        ("DELETE", f"/api/v1/message-tokens/{token['id']}", None),
        ("GET", f"/api/v1/delete-intents/{intent['id']}", None),
        ("POST", f"/api/v1/delete-intents/{intent['id']}:confirm", None),
    ]
    for method, path, body in attempts:
        response = world.b.request(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert data(world.a.get(f"/api/v1/mailboxes/{mid}"))["name"] is None
    assert data(world.a.get(f"/api/v1/delete-intents/{intent['id']}"))["status"] == "pending"
    with client_for(world.stack, token["token"]) as agent:
        assert data(agent.get("/api/v1/messages/_ping"))["mailbox"]["id"] == mid
