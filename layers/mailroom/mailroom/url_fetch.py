"""Attachments given by URL (``/api/v0`` sends): one GET each, through the webhooks' guarded client.

The guard is the webhooks' own (``mailroom.webhook_http``): https only, every address the host
resolves to must be public, the connection is pinned to the vetted address, no redirects, no proxy
from the environment. ``MAILROOM_WEBHOOK_ALLOW_PRIVATE=1`` (the local stack; never a deployed one)
allows http and private hosts, exactly as for webhooks. Without the guard any tenant could make
Mailroom fetch the instance metadata service or a VPC-internal host and mail the answer to itself.

A fetch is bounded in time (``time_limit`` for the whole exchange, a trickling server too) and in
bytes: the body is read undecoded (``Accept-Encoding: identity``; a compressed answer is refused,
so a small gzip bomb cannot expand past the limit) and refused as soon as it is known to be larger
than the budget (from Content-Length, or while streaming). Every failure is a ``FetchRefused`` whose
message says what went wrong, never a stack trace.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

from mailroom.domain.webhooks import InvalidWebhookUrl, parse_url

FETCH_SECONDS = 10.0
USER_AGENT = "Mailroom-Attachments/1.0"
MAX_FILENAME_CHARS = 255


class FetchRefused(ValueError):
    """The URL was not fetched, or its answer is not usable as an attachment (the message says why)."""


class Budget:
    """Bytes that fetches running together may still read (they share one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def check(self, size: int) -> None:
        if size > self.left:
            raise FetchRefused(f"the attachments are larger than the {self.limit}-byte message limit")

    def take(self, size: int) -> None:
        self.check(size)
        self.left -= size


@dataclass(frozen=True, slots=True)
class Fetched:
    content: bytes
    content_type: str | None  # the media type the server declared, if any
    filename: str | None  # the URL path's last segment, if any


def _filename(url: str) -> str | None:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    cleaned = "".join(c for c in name if c.isprintable() and c not in '\\/"')
    return cleaned[:MAX_FILENAME_CHARS] or None


def _media_type(value: str | None) -> str | None:
    media = (value or "").split(";", 1)[0].strip().lower()
    return media if "/" in media else None


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    budget: Budget,
    allow_private: bool,
    time_limit: float = FETCH_SECONDS,
) -> Fetched:
    """GET ``url`` with ``client`` (``webhook_http.shared_client``: the guard is in its transport)."""
    try:
        parsed = parse_url(url, allow_http=allow_private)
    except InvalidWebhookUrl as exc:
        raise FetchRefused(str(exc)) from exc
    headers = {"user-agent": USER_AGENT, "accept": "*/*", "accept-encoding": "identity"}
    try:
        async with asyncio.timeout(time_limit):
            async with client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if 300 <= status < 400:
                    raise FetchRefused(f"{parsed.host} answered HTTP {status}: redirects are not followed")
                if status != 200:
                    raise FetchRefused(f"{parsed.host} answered HTTP {status}")
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise FetchRefused(f"{parsed.host} sent it {encoding}-encoded; serve it uncompressed")
                declared = response.headers.get("content-length", "")
                if declared.isdigit():
                    budget.check(int(declared))  # refused before reading; taken as bytes arrive
                data = bytearray()
                async for chunk in response.aiter_raw():
                    budget.take(len(chunk))
                    data += chunk
                return Fetched(
                    content=bytes(data),
                    content_type=_media_type(response.headers.get("content-type")),
                    filename=_filename(url),
                )
    except TimeoutError as exc:
        raise FetchRefused(f"fetching from {parsed.host} took longer than {time_limit:g} s") from exc
    except httpx.HTTPError as exc:
        # The guard's refusal (a non-public address) arrives here too, with its reason.
        detail = str(exc) or type(exc).__name__
        raise FetchRefused(f"{parsed.host} could not be fetched: {detail}") from exc
