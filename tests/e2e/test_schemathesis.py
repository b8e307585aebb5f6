"""Schemathesis against the local stack: every operation of the OpenAPI document, fuzzed with
requests generated from the document itself (valid and invalid), must answer as the document says.

Checks: no 5xx, every status documented for its operation, the body valid against its schema, the
Content-Type and the required headers as documented. Each operation runs with the token its surface
takes: an ops token on ``/api/v1`` (a message token on the message endpoints), an ``inai_`` API key on
``/api/v0``. Every request carries its own Idempotency-Key, so POST/PUT are exercised rather than
refused for want of one; the stack's rate and migration write limits are raised for the run so the
generator reaches the operations instead of their 429. Bounded: a fixed number of examples per
operation, derandomized, so a run takes a few minutes and fails the same way twice.

The operations are dealt into ``SHARDS`` tests, each its own xdist group: under ``make test`` they
fuzz on separate workers, each against its own stack, side by side.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mailroom.api.openapi import document
from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.cloudflare_api import CloudflareApi

pytestmark = pytest.mark.e2e

SHARDS = 3
EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
# Paths a message token (one mailbox's agent) calls; every other /api/v1 path takes an ops token.
MESSAGE_PATHS = ("/api/v1/messages", "/api/v1/threads")

schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document())))
# Every operation by its place in the sorted labels, dealt round-robin: shards of equal size
# whatever the document's order.
_PLACE = {
    label: place
    for place, label in enumerate(sorted(result.ok().label for result in schema.get_all_operations()))
}


def _shard(index: int) -> Any:
    return schema.include(lambda ctx: _PLACE[ctx.operation.label] % SHARDS == index)


@dataclass(frozen=True)
class Tokens:
    ops: str
    message: str
    api_key: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    # Cloudflare's API played locally: fuzzed tokens must never reach api.cloudflare.com.
    with (
        CloudflareApi() as cloudflare,
        start_stack(
            tmp_path_factory.mktemp("schemathesis"),
            stop_timeout=120,  # its final snapshot holds everything the fuzzing wrote
            MAILROOM_RATE_LIMIT_PER_MINUTE="100000",
            MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE="100000",
            MAILROOM_CLOUDFLARE_API_URL=cloudflare.base_url,
            # Thousands of requests: the functions' JSON log line for each would be a fair share of
            # both processes' CPU (writing them, reading them back). Warnings and errors still show.
            MAILROOM_PARAMETER_OVERRIDES="LogLevel=WARNING",
        ) as running,
    ):
        yield running


def _post(client: httpx.Client, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        path,
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code in (200, 201), response.text
    payload: dict[str, Any] = response.json()
    return payload


@pytest.fixture(scope="module")
def tokens(stack: LocalStackProcess) -> Tokens:
    """An organization with a domain, a mailbox and its message token, and an API key: enough for
    every operation to have something real to act on besides the ids the generator makes up."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        admin = stack.admin_token
        _post(client, "/api/v1/domains", admin, {"domain": "fuzz.example.com"})
        mailbox = _post(
            client,
            "/api/v1/mailboxes",
            admin,
            {
                "local_part": "agent",
                "domain": "fuzz.example.com",
                "name": "Agent",
                "password": "Tr0ubadour-Staple-91",
            },
        )["data"]
        message = _post(
            client,
            f"/api/v1/mailboxes/{mailbox['id']}/message-tokens",
            admin,
            {"name": "fuzz", "scopes": ["messages:read", "messages:write", "messages:send"]},
        )["data"]["token"]
        api_key = _post(client, "/api/v0/api-keys", admin, {"name": "fuzz"})["key"]
    return Tokens(ops=admin, message=message, api_key=api_key)


def _token_for(path: str, tokens: Tokens) -> str:
    if path.startswith("/api/v0/"):
        return tokens.api_key
    if path.startswith(MESSAGE_PATHS):
        return tokens.message
    return tokens.ops


SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _shard_test(index: int) -> Any:
    @pytest.mark.xdist_group(f"schemathesis-{index}")
    @_shard(index).parametrize()
    @SETTINGS
    def answers_as_documented(case: schemathesis.Case, stack: LocalStackProcess, tokens: Tokens) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        if case.operation.definition.raw.get("security"):
            headers["Authorization"] = f"Bearer {_token_for(case.path, tokens)}"
        case.call_and_validate(base_url=stack.api_url, headers=headers, checks=CHECKS, timeout=30)

    return answers_as_documented


# One test per shard, as module attributes (what pytest collects): a shard never goes unfuzzed.
for _index in range(SHARDS):
    globals()[f"test_every_operation_answers_as_documented_{_index}"] = _shard_test(_index)


def test_the_shards_hold_every_operation_once() -> None:
    everything = sorted(result.ok().label for result in schema.get_all_operations())
    dealt = sorted(
        result.ok().label for index in range(SHARDS) for result in _shard(index).get_all_operations()
    )
    assert dealt == everything
    assert len(everything) > 200
