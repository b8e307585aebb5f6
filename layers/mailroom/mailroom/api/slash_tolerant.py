"""Paths written with a trailing slash, as mailtrigger-api.txt writes them, answered without it too.

A Django-style client sends ``/api/v1/mailbox/``; a hand-written one ``/api/v1/mailbox``. Starlette
would answer the second with a 307 redirect (``redirect_slashes``), which API Gateway passes on and
many clients do not follow for a POST. So each operation is declared twice: documented at its
slashed path, and, hidden from the document, at the same path without the slash, with the same
endpoint and options (one route name: the audit record names the operation either way).

API Gateway needs nothing more: a route key may not end in ``/``, and ``/x/{proxy+}`` takes both
``/x/y`` and ``/x/y/`` (the local gateway strips the slash before it matches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def operation(router: APIRouter, method: str, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """``@operation(router, "GET", "/x/{id}/", ...)``: the operation at ``path`` (which must end in
    a slash) and at ``path`` without it."""
    if not path.endswith("/"):
        raise ValueError(f"{path}: declare the slashed path; the bare one is added")

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=[method], **options)
        router.add_api_route(path.rstrip("/"), endpoint, methods=[method], include_in_schema=False, **options)
        return endpoint

    return register
