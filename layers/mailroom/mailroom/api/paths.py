"""One trailing slash is optional on every API path: ``/api/v1/rules/`` is ``/api/v1/rules``.

mailtrigger-api.txt writes its paths with a trailing slash (``/api/v1/rules/``), the rest of the API
without; a client written against either must reach the same operation, with the same
idempotency key and audit record, and without a redirect (a 307 would make clients send a POST
twice, and API Gateway's host is not the one a Location would name). The path is normalized before
anything reads it, so routing, the pipeline and the OpenAPI document (which names each path once,
without the slash) all see one form. The gateway routes both forms to the function through the collection's
``/x/{proxy+}`` route (which also covers ``/x/{id}/``): a route key cannot end in ``/`` (SAM drops
such an event's route, and API Gateway refuses it), so template.yaml declares none. That an HTTP API
sends ``/x/`` to ``/x/{proxy+}`` is reported by users (storacha/w3infra#166), not confirmed here
against AWS; the local gateway routes ``/x/`` to ``/x``, the same function.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def without_trailing_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


class TrailingSlash:
    """ASGI middleware: strips one trailing slash from ``path`` (and ``raw_path``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = without_trailing_slash(scope["path"])
            if path != scope["path"]:
                scope = {**scope, "path": path}
                raw = scope.get("raw_path")
                if isinstance(raw, bytes) and len(raw) > 1 and raw.endswith(b"/"):
                    scope["raw_path"] = raw[:-1]
        await self.app(scope, receive, send)
