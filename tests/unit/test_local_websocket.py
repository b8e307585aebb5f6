"""The local WebSocket API reads template.yaml's API Gateway v2 resources, and its management API
answers as API Gateway's does for unknown connections and paths (driven through the ASGI app)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from local.stack import Stack
from local.websocket import WebSocketGateway, _Connection, websocket_apis

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


async def test_management_api_finds_connection_ids_with_slashes_and_pluses(stack: Stack) -> None:
    """A connection id is base64 (``a/b+c=``): boto3 sends it percent-encoded in one path segment."""
    (api,) = websocket_apis(stack.template)
    app = WebSocketGateway(api, NoFunctions(), domain="127.0.0.1:8001")
    sent: list[object] = []

    async def send(message: object) -> None:
        sent.append(message)

    connection_id = "Ab/Cd+Ef1234Gh=="
    app.connections[connection_id] = _Connection(
        id=connection_id,
        send=send,
        connected_at=0.0,
        source_ip="127.0.0.1",
        user_agent="t",
        last_active_at=0.0,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ws") as client:
        pushed = await client.post(
            f"/events/@connections/{quote(connection_id, safe='')}", content=b'{"n":1}'
        )
        assert pushed.status_code == 200
        assert sent == [{"type": "websocket.send", "text": '{"n":1}'}]
        assert (await client.get("/events/@connections/Ab/Cd+Ef1234Gh==")).status_code == 404
