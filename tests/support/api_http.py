"""What e2e modules need to call the local stack's API over HTTP: a client with a token, a POST
with a fresh Idempotency-Key, the ``data`` of an expected status, and polling for what happens
asynchronously (SES invoking inbound, queues, schedules)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.stack_process import LocalStackProcess

T = TypeVar("T")


def client(stack: LocalStackProcess, token: str, *, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


def post(client: httpx.Client, path: str, body: Any = None, method: str = "POST") -> httpx.Response:
    return client.request(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["data"]


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    stack: LocalStackProcess | None = None,
    *,
    timeout: float = 30.0,
) -> T:
    """Poll until ``probe`` returns something; on a timeout, fail with the stack's log if given."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f":\n{stack.logs()}" if stack else ""))
        time.sleep(0.2)
