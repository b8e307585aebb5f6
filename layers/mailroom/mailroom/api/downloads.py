"""Serving a message's bytes (raw MIME, attachments): inline with headers that keep mail content
from ever being rendered as a page of the API's origin, or a redirect to a pre-signed URL when too
large for a Lambda response; and how the OpenAPI document describes both."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Response
from fastapi.responses import RedirectResponse

from mailroom.services.message_downloads import Download


def response(download: Download) -> Response:
    """The bytes with headers that keep them a download, or a 302 to the pre-signed URL."""
    if download.redirect is not None:
        # Large: a short-lived pre-signed S3 URL (no Lambda response could carry these bytes).
        return RedirectResponse(download.redirect, status_code=302, headers={"Cache-Control": "no-store"})
    ascii_name = download.filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(download.filename, safe='')}"
    )
    return Response(
        content=download.content,
        media_type=download.content_type,
        headers={
            # Mail content is the sender's: never rendered as a page of the API's origin.
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )


def documented(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering bytes of ``media_type`` (200), or a redirect (302)."""
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "Content-Disposition": {
                    "description": "attachment; filename=\"...\"; filename*=UTF-8''... (RFC 6266/5987)",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        302: {
            "description": "Larger than 4 MiB: a pre-signed S3 URL valid 15 minutes; follow it without "
            "the token",
            "headers": {
                "Location": {
                    "description": "The pre-signed URL",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
    }
