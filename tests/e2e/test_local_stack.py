"""The local stack over real protocols: HTTP through the gateway to the functions, SMTP, restarts, signals."""

from __future__ import annotations

import json
import signal
import smtplib
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, process_group_members, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_token(api_url: str, admin_token: str, name: str) -> dict:
    response = httpx.post(
        f"{api_url}/api/v1/tokens",
        headers={**bearer(admin_token), "Idempotency-Key": str(uuid.uuid4())},
        json={"name": name, "scopes": ["account:read"]},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_openapi_needs_no_token(stack: LocalStackProcess) -> None:
    response = httpx.get(f"{stack.api_url}/api/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Mailroom API"
    assert response.headers["apigw-requestid"]


def test_me_with_the_admin_token(stack: LocalStackProcess) -> None:
    response = httpx.get(
        f"{stack.api_url}/api/v1/me",
        headers={**bearer(stack.admin_token), "X-Request-Id": "e2e-req-1"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "e2e-req-1"
    assert response.json()["data"]["organization"]["name"] == "Default"


def test_missing_authorization_gets_the_v1_error_envelope(stack: LocalStackProcess) -> None:
    response = httpx.get(f"{stack.api_url}/api/v1/me", headers={"X-Request-Id": "e2e-no-token"}, timeout=30)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "No API token: the request has no Authorization header.",
            "hint": "Send 'Authorization: Bearer <token>' with a token that is not revoked or expired.",
            "request_id": "e2e-no-token",
            "retryable": False,
        }
    }
    assert response.headers["x-request-id"] == "e2e-no-token"


def test_missing_authorization_on_v0_gets_its_error_shape(stack: LocalStackProcess) -> None:
    response = httpx.get(f"{stack.api_url}/api/v0/inboxes", timeout=30)
    assert response.status_code == 401
    assert response.json()["name"] == "UnauthorizedError"


def test_an_unknown_path_of_a_function_needs_a_token_first(stack: LocalStackProcess) -> None:
    path = f"{stack.api_url}/api/v1/tokens/tok_x/nothing-here"
    assert httpx.get(path, timeout=30).json()["error"]["code"] == "unauthenticated"
    found = httpx.get(path, headers=bearer(stack.admin_token), timeout=30)
    assert (found.status_code, found.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "token"),
    [
        ("GET", "/api/v1/auth/mailbox-token", False),
        ("DELETE", "/api/v1/auth/invites:redeem", False),
        ("POST", "/api/v1/me", True),
        ("PUT", "/api/v1/audit-log", True),
        ("DELETE", "/api/v1/messages/send", True),
        ("POST", "/api/openapi.json", False),
    ],
)
def test_a_wrong_method_is_405_in_the_envelope(
    stack: LocalStackProcess, method: str, path: str, token: bool
) -> None:
    headers = {**(bearer(stack.admin_token) if token else {}), "Idempotency-Key": str(uuid.uuid4())}
    response = httpx.request(method, f"{stack.api_url}{path}", headers=headers, timeout=30)
    assert response.status_code == 405, response.text
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["request_id"] == response.headers["x-request-id"]
    assert response.headers["allow"]


def test_a_body_over_lambdas_payload_limit_is_the_gateways_413(stack: LocalStackProcess) -> None:
    body = b'{"to": ["a@example.com"], "text": "' + b"x" * (6 * 1024 * 1024 + 512 * 1024) + b'"}'
    response = httpx.post(
        f"{stack.api_url}/api/v1/messages/send",
        content=body,
        headers={**bearer(stack.admin_token), "content-type": "application/json"},
        timeout=60,
    )
    assert (response.status_code, response.json()) == (413, {"message": "Request Entity Too Large"})
    assert "x-request-id" not in response.headers  # API Gateway's answer: no function ran


def test_garbage_token_gets_the_v1_error_envelope(stack: LocalStackProcess) -> None:
    response = httpx.get(f"{stack.api_url}/api/v1/me", headers=bearer("not-a-token"), timeout=30)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["request_id"] == response.headers["x-request-id"]


def test_an_unknown_route_is_404_in_the_envelope_of_its_surface(stack: LocalStackProcess) -> None:
    """The API's $default route answers what no route matches, as the README promises: not API
    Gateway's bare {"message": "Not Found"}."""
    response = httpx.get(
        f"{stack.api_url}/api/v1/no-such-thing", headers=bearer(stack.admin_token), timeout=30
    )
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["retryable"]) == (404, "not_found", False)
    assert error["request_id"] == response.headers["x-request-id"]
    v0 = httpx.post(f"{stack.api_url}/api/v0/no-such-thing", json={}, timeout=30)
    assert (v0.status_code, v0.json()) == (404, {"name": "NotFoundError", "message": "No such endpoint"})
    outside = httpx.get(f"{stack.api_url}/elsewhere", timeout=30)
    assert (outside.status_code, outside.json()["error"]["code"]) == (404, "not_found")


def recorded(stack: LocalStackProcess, enough: Any) -> list[str]:
    """The stack's output lines once ``enough(lines)`` holds (or 30 s have passed): a function, and
    the gateway's access line, may still be written after the response went out."""
    deadline = time.monotonic() + 30
    while True:
        lines = list(stack.output)
        if enough(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_concurrent_requests_log_under_their_own_ids(stack: LocalStackProcess) -> None:
    """Requests to two functions side by side: each function's lines carry its own name, its own
    invocation's id and the request's own correlation id (the X-Request-Id); the gateway's line for
    each request names the invocation that served it."""
    run = uuid.uuid4().hex[:8]
    paths = {"/api/v1/me": "AccountFunction", "/api/v1/tokens": "TokensFunction"}
    requests = [(path, f"e2e-log-{run}-{function}-{i}") for i in range(6) for path, function in paths.items()]

    def send(path: str, request_id: str) -> httpx.Response:
        headers = {**bearer(stack.admin_token), "X-Request-Id": request_id}
        return httpx.get(f"{stack.api_url}{path}", headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda r: send(*r), requests))
    assert all(r.status_code == 200 for r in responses)
    ours = {request_id: paths[path] for path, request_id in requests}
    apigw_ids = [r.headers["apigw-requestid"] for r in responses]

    def ours_in(lines: list[str]) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}\n")]
        return [line for line in parsed if line.get("correlation_id") in ours]

    def complete(lines: list[str]) -> bool:
        logged = {line["correlation_id"] for line in ours_in(lines)}
        accessed = sum(1 for line in lines for a in apigw_ids if f"requestId={a} " in line)
        return logged == set(ours) and accessed == len(apigw_ids)

    lines = recorded(stack, complete)
    invocations: dict[str, str] = {}
    for line in ours_in(lines):
        function = ours[line["correlation_id"]]
        assert line["function_name"].endswith(f"-{function}"), line
        # One invocation per request, and no invocation's lines under two requests.
        invocation = invocations.setdefault(line["correlation_id"], line["function_request_id"])
        assert invocation == line["function_request_id"], line
        assert "migration_id" not in line and "step" not in line
    assert set(invocations) == set(ours)
    assert len(set(invocations.values())) == len(ours)

    for apigw, (_, request_id) in zip(apigw_ids, requests, strict=True):
        (access,) = [line for line in lines if f"requestId={apigw} " in line]
        assert f"integrationRequestId={invocations[request_id]}" in access


def test_smtp_answers_and_refuses_unrouted_recipients(stack: LocalStackProcess) -> None:
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        code, _ = smtp.ehlo("e2e.test")
        assert code == 250
        assert smtp.mail("sender@e2e.test")[0] == 250
        code, reply = smtp.rcpt("nobody@unrouted.invalid")
    assert code == 550
    assert b"5.1.1" in reply


def test_local_env_describes_the_running_stack(stack: LocalStackProcess) -> None:
    values = dict(line.split("=", 1) for line in (stack.state_dir / "local.env").read_text().splitlines())
    assert values["AWS_ENDPOINT_URL"] == stack.moto_url
    assert values["MAILROOM_API_URL"] == stack.api_url
    assert values["MAILROOM_TABLE_NAME"] == "mailroom-local-Table"
    assert {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(values)
    assert (stack.state_dir / "admin-token").stat().st_mode & 0o777 == 0o600


def test_state_survives_a_restart(stack: LocalStackProcess) -> None:
    created = create_token(stack.api_url, stack.admin_token, "survivor")
    admin_token = stack.admin_token

    stack.restart()

    assert stack.admin_token == admin_token  # not bootstrapped again
    response = httpx.get(f"{stack.api_url}/api/v1/me", headers=bearer(created["token"]), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == created["id"]


@pytest.fixture(scope="module")
def uncached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with start_stack(tmp_path_factory.mktemp("uncached-state"), MAILROOM_AUTH_CACHE_TTL="0") as running:
        yield running


def test_revoked_token_is_refused_at_once_without_the_token_cache(uncached: LocalStackProcess) -> None:
    created = create_token(uncached.api_url, uncached.admin_token, "short-lived")
    me = f"{uncached.api_url}/api/v1/me"
    assert httpx.get(me, headers=bearer(created["token"]), timeout=30).status_code == 200

    revoked = httpx.delete(
        f"{uncached.api_url}/api/v1/tokens/{created['id']}", headers=bearer(uncached.admin_token), timeout=30
    )
    assert revoked.status_code == 204, revoked.text

    response = httpx.get(me, headers=bearer(created["token"]), timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_sigterm_stops_everything(uncached: LocalStackProcess) -> None:
    pgid = uncached.pid
    assert process_group_members(pgid) == [uncached.pid]  # the stack runs no child processes

    assert uncached.stop(signal.SIGTERM) == 0, uncached.logs()

    assert process_group_members(pgid) == []
    for port in (uncached.api_port, uncached.smtp_port, uncached.moto_port):
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))
    assert (Path(uncached.state_dir) / "state.json").exists()  # the final snapshot was written
