"""``/mcp``: the MCP server over streamable HTTP (stateless, JSON responses) as a Lambda function
behind the HTTP API. The server calls the same API with the caller's token."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from mailroom.entry.runtime import lambda_entry

Response = dict[str, Any]


@cache
def _adapter() -> Any:
    """Built on the first event, not at import: the gates are read from the environment."""
    from mangum import Mangum

    from mailroom.mcp_server.gates import Flags
    from mailroom.mcp_server.transports import StreamableHttpApp

    return Mangum(StreamableHttpApp(Flags.from_env(), dict(os.environ)), lifespan="off")


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> Response:
    return dict(_adapter()(event, context))
