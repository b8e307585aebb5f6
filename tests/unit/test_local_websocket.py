"""The local WebSocket API reads template.yaml's API Gateway v2 resources, and its management API
answers as API Gateway's does for unknown connections and paths (driven through the ASGI app)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from local.stack import Stack
from local.websocket import WebSocketGateway, websocket_apis

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack.load(TEMPLATE)


def test_the_templates_websocket_api(stack: Stack) -> None:
    (api,) = websocket_apis(stack.template)
    assert api.stage == "events" and api.selection_field == "type"
    assert set(api.routes) == {"$connect", "$disconnect", "subscribe", "unsubscribe", "$default"}
    function = stack.functions["WebSocketFunction"].arn
    assert {r.function for r in api.routes.values()} == {function}
    assert {k for k, r in api.routes.items() if r.two_way} == {"subscribe", "unsubscribe", "$default"}


class NoFunctions:
    async def invoke_async(self, ref: str, event: object, **_: object) -> object:
        raise AssertionError("the management API invokes nothing")


async def test_management_api_of_unknown_connections_and_paths(stack: Stack) -> None:
    (api,) = websocket_apis(stack.template)
    app = WebSocketGateway(api, NoFunctions(), domain="127.0.0.1:8001")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ws") as client:
        gone = await client.post("/events/@connections/AbCdEfGh=", content=b"{}")
        assert gone.status_code == 410 and gone.headers["x-amzn-errortype"] == "GoneException"
        assert (await client.get("/events/@connections/AbCdEfGh=")).status_code == 410
        assert (await client.post("/elsewhere/@connections/x", content=b"")).status_code == 404
