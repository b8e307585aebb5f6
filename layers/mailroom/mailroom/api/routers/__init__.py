"""One router per API resource. ``all_routers`` is what the OpenAPI document is built from."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from mailroom.api.routers import account, audit, domains, tokens

    return [account.router, tokens.router, audit.router, domains.router]
