"""The local API Gateway: payload 2.0 events, the Lambda authorizer and its cache, responses, errors.

Driven through the ASGI app with httpx (no sockets), with the fixture functions really invoked.
"""

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.authcache import AuthorizerCache, AuthorizerResult
from local.gateway import Gateway, lambda_response, query_parameters, request_headers
from local.runtime import FunctionRuntime
from local.stack import Stack

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack.load(FIXTURE)


@pytest.fixture(scope="module")
def runtime(stack: Stack) -> Iterator[FunctionRuntime]:
    runtime = FunctionRuntime(stack.functions, concurrency=8)
    yield runtime
    runtime.shutdown(wait_seconds=5)


def client_for(stack: Stack, runtime: FunctionRuntime, **kwargs: object) -> tuple[httpx.AsyncClient, Gateway]:
    gateway = Gateway(stack.routes, stack.apis, runtime, region="us-east-1", **kwargs)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=gateway, client=("10.1.2.3", 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://api.local:8000"), gateway


def authorizer_calls(runtime: FunctionRuntime) -> int:
    return runtime.invocations["Authorizer"]


async def test_event_shape_and_authorizer_context(stack, runtime):
    client, _ = client_for(stack, runtime)
    async with client:
        response = await client.post(
            "/items/a%20b/c?x=1&x=2&y=",
            headers=[
                ("Authorization", "Bearer good"),
                ("X-Multi", "one"),
                ("X-Multi", "two"),
                ("Cookie", "c1=v1; c2=v2"),
                ("Content-Type", "application/json"),
                ("User-Agent", "tests"),
            ],
            content=b'{"k": "v"}',
        )
    assert response.status_code == 200
    assert response.headers["apigw-requestid"]
    body = response.json()
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /items/{proxy+}"
    assert event["rawPath"] == "/items/a b/c"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["pathParameters"] == {"proxy": "a b/c"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["x-forwarded-for"] == "10.1.2.3"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/items/a b/c",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.1.2.3",
        "userAgent": "tests",
    }
    assert context["stage"] == "$default"
    assert context["requestId"] == response.headers["apigw-requestid"]
    assert context["apiId"] == stack.apis["Api"].api_id
    assert context["accountId"] == "123456789012"
    assert context["domainName"] == "api.local:8000"
    assert isinstance(context["timeEpoch"], int)
    assert context["authorizer"] == {"lambda": {"user": "alice", "token": "Bearer good"}}
    assert body["context"]["function_name"] == "mailroom-local-Echo"
    assert body["context"]["memory"] == 256
    assert 0 < body["context"]["remaining_ms"] <= 5000


async def test_binary_bodies_are_base64_encoded(stack, runtime):
    client, _ = client_for(stack, runtime)
    async with client:
        response = await client.put("/public", content=b"\x00\x01\xfe", headers={"Content-Type": "image/png"})
    event = response.json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01\xfe"
    assert "authorizer" not in event["requestContext"]  # Auth: NONE


async def test_missing_identity_is_401_without_calling_the_authorizer(stack, runtime):
    client, _ = client_for(stack, runtime)
    before = authorizer_calls(runtime)
    async with client:
        response = await client.get("/items/1")
        empty = await client.get("/items/1", headers={"Authorization": ""})
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert empty.status_code == 401
    assert authorizer_calls(runtime) == before


async def test_denied_is_403_and_authorizer_error_is_500(stack, runtime):
    client, _ = client_for(stack, runtime)
    async with client:
        denied = await client.get("/items/1", headers={"Authorization": "Bearer bad"})
        failed = await client.get("/items/1", headers={"Authorization": "Bearer boom"})
    assert (denied.status_code, denied.json()) == (403, {"message": "Forbidden"})
    assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"})


async def test_authorizer_receives_the_request_authorizer_event(stack, runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    client, _ = client_for(stack, runtime, auth_ttl_override=0)
    async with client:
        await client.get("/items/7?q=1", headers={"Authorization": "Bearer good"})
    (event,) = [json.loads(line) for line in (tmp_path / "Authorizer.jsonl").read_text().splitlines()]
    assert event["type"] == "REQUEST"
    assert event["version"] == "2.0"
    assert event["identitySource"] == ["Bearer good"]
    assert event["routeKey"] == "GET /items/{id}"
    assert event["routeArn"] == (
        f"arn:aws:execute-api:us-east-1:123456789012:{stack.apis['Api'].api_id}/$default/GET/items/7"
    )
    assert event["pathParameters"] == {"id": "7"}
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["headers"]["authorization"] == "Bearer good"
    assert "body" not in event


async def test_authorizer_results_are_cached_until_the_ttl(stack, runtime):
    clock = FakeClock()
    client, gateway = client_for(stack, runtime, clock=clock)
    assert gateway.cache_ttl("Api", "Token") == 60  # ReauthorizeEvery: !Ref CacheTtl
    start = authorizer_calls(runtime)
    async with client:
        for _ in range(3):
            assert (await client.get("/items/1", headers={"Authorization": "Bearer good"})).status_code == 200
        assert authorizer_calls(runtime) == start + 1
        assert (await client.get("/items/1", headers={"Authorization": "Bearer bad"})).status_code == 403
        assert (await client.get("/items/1", headers={"Authorization": "Bearer bad"})).status_code == 403
        assert authorizer_calls(runtime) == start + 2  # denials are cached too
        clock.now += 59.9
        await client.get("/items/1", headers={"Authorization": "Bearer good"})
        assert authorizer_calls(runtime) == start + 2
        clock.now += 0.2
        await client.get("/items/1", headers={"Authorization": "Bearer good"})
        assert authorizer_calls(runtime) == start + 3


async def test_ttl_zero_calls_the_authorizer_every_time(stack, runtime):
    client, gateway = client_for(stack, runtime, auth_ttl_override=0)
    assert gateway.cache_ttl("Api", "Token") == 0
    start = authorizer_calls(runtime)
    async with client:
        for _ in range(3):
            await client.get("/items/1", headers={"Authorization": "Bearer good"})
    assert authorizer_calls(runtime) == start + 3


async def test_gateway_errors(stack, runtime):
    client, _ = client_for(stack, runtime)
    async with client:
        missing = await client.get("/nowhere")
        too_big = await client.post("/public", content=b"x" * (10 * 1024 * 1024 + 1))
        failing = await client.get("/items/fail", headers={"Authorization": "Bearer good"})
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    assert missing.headers["apigw-requestid"]
    assert too_big.status_code == 413
    assert (failing.status_code, failing.json()) == (500, {"message": "Internal Server Error"})


async def test_events_over_lambdas_payload_limit_are_413_without_an_invocation(stack, runtime):
    """Lambda takes at most 6 MB per synchronous invocation, the whole event counted: a JSON body a
    little over it, or a binary body under it that base64 makes larger, never reaches the function."""
    client, _ = client_for(stack, runtime)
    before = runtime.invocations["Echo"]
    json_body = b'{"text": "' + b"x" * (6 * 1024 * 1024 + 512 * 1024) + b'"}'
    async with client:
        too_big_json = await client.post(
            "/public", content=json_body, headers={"content-type": "application/json"}
        )
        too_big_binary = await client.post(
            "/public", content=b"\x00" * (5 * 1024 * 1024), headers={"content-type": "application/pdf"}
        )
        fits = await client.post(
            "/public", content=b"y" * (5 * 1024 * 1024), headers={"content-type": "text/plain"}
        )
    for refused in (too_big_json, too_big_binary):
        assert (refused.status_code, refused.json()) == (413, {"message": "Request Entity Too Large"})
    assert fits.status_code == 200
    assert runtime.invocations["Echo"] == before + 1  # only the one that fits


async def test_function_response_conversion(stack, runtime):
    client, _ = client_for(stack, runtime)
    async with client:
        binary = await client.get("/items/binary/1", headers={"Authorization": "Bearer good"})
        raw = await client.get("/public/raw")
    assert binary.status_code == 201
    assert binary.content == b"\x00\xffbinary"
    assert binary.headers["x-one"] == "1"
    assert binary.headers.get_list("x-many") == ["a", "b"]
    assert binary.headers.get_list("set-cookie") == ["a=1", "b=2; Path=/"]
    assert raw.status_code == 404  # /public/raw is not a route: only /public is


def test_response_without_status_code_is_json_200():
    assert lambda_response({"hello": "world"}) == (
        200,
        [("content-type", "application/json")],
        b'{"hello": "world"}',
    )
    assert lambda_response("plain") == (200, [("content-type", "application/json")], b"plain")
    status, headers, body = lambda_response({"statusCode": 204, "headers": {"Content-Length": "99"}})
    assert (status, headers, body) == (204, [], b"")


def test_header_and_query_helpers():
    headers, cookies = request_headers(
        [(b"A", b"1"), (b"a", b"2"), (b"Cookie", b"x=1;y=2"), (b"cookie", b"z=3")]
    )
    assert headers == {"a": "1,2"}
    assert cookies == ["x=1", "y=2", "z=3"]
    assert query_parameters("a=1&b=%20x&a=3") == {"a": "1,3", "b": " x"}


def test_authorizer_cache_with_injected_clock():
    clock = FakeClock()
    cache = AuthorizerCache(10, clock=clock)
    allowed = AuthorizerResult(True, {"k": "v"})
    cache.put(("a",), allowed)
    assert cache.get(("a",)) is allowed
    assert cache.get(("b",)) is None
    clock.now += 10
    assert cache.get(("a",)) is None
    disabled = AuthorizerCache(0, clock=clock)
    disabled.put(("a",), allowed)
    assert disabled.get(("a",)) is None


async def test_a_500_is_logged_with_its_request_ids(stack, runtime, caplog):
    """The id the client got (apigw-requestid) and the failed invocation's id are on the gateway's
    line, and the invocation's id is on the runtime's report of the error: one leads to the other."""
    caplog.set_level(logging.INFO, logger="local")
    client, _ = client_for(stack, runtime)
    async with client:
        failing = await client.get("/items/fail", headers={"Authorization": "Bearer good"})
    assert failing.status_code == 500
    request_id = failing.headers["apigw-requestid"]
    (access,) = [r.getMessage() for r in caplog.records if f"requestId={request_id}" in r.getMessage()]
    assert access.startswith("GET /items/fail -> Echo 500")
    invocation = access.split("integrationRequestId=", 1)[1].split()[0]
    assert "integrationError=RuntimeError: echo was asked to fail" in access
    (failure,) = [
        r.getMessage() for r in caplog.records if r.name == "local.runtime" and r.levelno == logging.ERROR
    ]
    assert failure.startswith(f"Echo: invocation {invocation} failed")
