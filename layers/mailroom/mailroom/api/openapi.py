"""The OpenAPI 3.1 document of every endpoint, built from all routers on first request."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from mailroom.api.pipeline import PUBLIC_MARK


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi

    from mailroom.api.app import DESCRIPTION, create_app
    from mailroom.api.routers import all_routers

    app = create_app(*all_routers())
    spec = get_openapi(title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes)
    spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "Ops token (mr_live_...), message token (mr_msg_...) or API key (inai_...).",
    }
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if operation.pop(PUBLIC_MARK, False):
                operation["security"] = []
            else:
                operation["security"] = [{"bearer": []}]
    return spec
