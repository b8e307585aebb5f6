"""The IMAP server of a bulk request or of one row (``per_row_server``): a preset provider's, or the
host, port and security given, each checked. An IP literal must be public unless the deployment
allows private hosts; a name that resolves to a private address is for the connecting code."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mailroom.domain import ssrf
from mailroom.domain.bulk.request import (
    DEFAULT_PORT,
    DEFAULT_SECURITY,
    GENERIC_PROVIDER,
    PROVIDERS,
    SECURITIES,
    InvalidBulkRequest,
    ServerRequest,
)
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain

# A single-label or dotted name: what a private network may call its IMAP server ("dovecot").
_LOOSE_HOST_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class ServerLike(Protocol):
    """What a preset resolves to (mailroom/imap/presets.py's result, or ``ImapServer``)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def security(self) -> str: ...


# ``resolve(provider, host, port, security)`` of mailroom/imap/presets.py (pass ``presets.resolve``
# as is: its ServerSettings is a ServerLike), used for the preset providers only; it raises
# ValueError for what it refuses. A parameter, so this module does not duplicate the preset table
# and did not have to wait for presets.py, which was being written alongside it.
PresetResolver = Callable[[str, str | None, int | None, str | None], ServerLike]


@dataclass(frozen=True, slots=True)
class ImapServer:
    host: str
    port: int
    security: str

    def as_dict(self) -> dict[str, Any]:
        return {"source_host": self.host, "source_port": self.port, "source_security": self.security}


SERVER_KEYS = ("source_host", "source_port", "source_security")


def check_host(raw: str, *, allow_private: bool = False) -> str:
    """A host name or IP address to connect to, normalized; ValueError says why not.

    An IP literal must be public unless ``allow_private`` (local development talks to Dovecot on
    loopback), so a tenant cannot point Mailroom's network at the metadata service or the VPC. A
    name that *resolves* to a private address is for the connecting code to refuse (as webhooks
    do in mailroom.webhook_http), since DNS can change between this check and the connection."""
    host = raw.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError("source_host is empty")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return _check_host_name(host, allow_private=allow_private)
    reason = ssrf.block_reason(ip)
    if reason and not allow_private:
        raise ValueError(f"source_host is a {reason.replace('_', ' ')} address, which is not reachable")
    return ip.compressed


def _check_host_name(host: str, *, allow_private: bool) -> str:
    try:
        return normalize_domain(host)
    except InvalidDomainName:
        if allow_private and _LOOSE_HOST_RE.match(host.lower()):
            return host.lower()
        raise ValueError("source_host is not a valid host name or IP address") from None


def check_port(raw: int | str | None, *, default: int = DEFAULT_PORT) -> int:
    """1 to 65535; empty means ``default``. Digits only: ``+993`` or ``9.9e2`` are typos."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError("source_port must be a whole number from 1 to 65535")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError("source_port must be a whole number from 1 to 65535")
    return port


def check_security(raw: str | None, *, default: str = DEFAULT_SECURITY) -> str:
    if raw is None or not raw.strip():
        return default
    security = raw.strip().lower()
    if security not in SECURITIES:
        raise ValueError(f"source_security must be one of {', '.join(SECURITIES)}")
    return security


def resolve_request_server(
    request: ServerRequest, *, resolve_preset: PresetResolver, allow_private_hosts: bool = False
) -> ImapServer | None:
    """The one server every row uses, or None with ``per_row_server`` (rows bring their own, and
    the request's host/port/security, when given, fill a row's blank cells).

    No provider means generic_imap. generic_imap needs ``source_host``; port defaults to 993 and
    security to ssl. A preset provider resolves through ``resolve_preset``; its result is checked
    like any other server, since explicit overrides pass through it."""
    provider = (request.provider or GENERIC_PROVIDER).strip().lower()
    if provider not in PROVIDERS:
        raise InvalidBulkRequest(f"provider must be one of {', '.join(PROVIDERS)}", field="provider")
    if request.per_row_server:
        if provider != GENERIC_PROVIDER:
            raise InvalidBulkRequest(
                "per_row_server takes each row's own server; leave provider unset or generic_imap",
                field="provider",
            )
        return None
    if provider == GENERIC_PROVIDER:
        if not (request.source_host or "").strip():
            raise InvalidBulkRequest("source_host is required for generic_imap", field="source_host")
        host, port, security = request.source_host, request.source_port, request.source_security
    else:
        preset = _resolve_preset(provider, request, resolve_preset)
        host, port, security = preset.host, preset.port, preset.security
    return _checked_server(host or "", port, security, allow_private=allow_private_hosts)


def _resolve_preset(provider: str, request: ServerRequest, resolve_preset: PresetResolver) -> ServerLike:
    """Overrides the request gives are checked (and normalized: ``SSL`` → ``ssl``) first, so an
    error names the field at fault; what the resolver still refuses is the provider's."""
    host = (request.source_host or "").strip() or None
    try:
        port = None if request.source_port is None else check_port(request.source_port)
    except ValueError as exc:
        raise InvalidBulkRequest(str(exc), field="source_port") from exc
    try:
        security = None if not request.source_security else check_security(request.source_security)
    except ValueError as exc:
        raise InvalidBulkRequest(str(exc), field="source_security") from exc
    try:
        return resolve_preset(provider, host, port, security)
    except ValueError as exc:
        raise InvalidBulkRequest(str(exc), field="provider") from exc


def _checked_server(host: str, port: int | None, security: str | None, *, allow_private: bool) -> ImapServer:
    """The request's server, checked; InvalidBulkRequest names the request field that is wrong."""
    try:
        checked_host = check_host(host, allow_private=allow_private)
    except ValueError as exc:
        raise InvalidBulkRequest(str(exc), field="source_host") from exc
    try:
        checked_port = check_port(port)
    except ValueError as exc:
        raise InvalidBulkRequest(str(exc), field="source_port") from exc
    try:
        checked_security = check_security(security)
    except ValueError as exc:
        raise InvalidBulkRequest(str(exc), field="source_security") from exc
    return ImapServer(checked_host, checked_port, checked_security)


def provider_of(request: ServerRequest) -> str:
    """The provider every job of the batch records (per-row servers are generic_imap)."""
    return (request.provider or GENERIC_PROVIDER).strip().lower()
