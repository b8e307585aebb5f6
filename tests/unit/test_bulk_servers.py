"""Bulk migrations: the request's IMAP server (presets, generic_imap, overrides), checked."""

from __future__ import annotations

import pytest

from mailroom.domain.bulk.request import InvalidBulkRequest, ServerRequest
from mailroom.domain.bulk.servers import ImapServer, provider_of, resolve_request_server
from tests.support.bulk import FakePreset, fake_resolve

# --- the request's server --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "host"),
    [
        ("gmail", "imap.gmail.com"),
        ("outlook", "outlook.office365.com"),
        ("yahoo", "imap.mail.yahoo.com"),
        ("icloud", "imap.mail.me.com"),
        ("GMail", "imap.gmail.com"),
    ],
)
def test_preset_providers_resolve_through_the_presets(provider: str, host: str) -> None:
    server = resolve_request_server(ServerRequest(provider=provider), resolve_preset=fake_resolve)
    assert server == ImapServer(host, 993, "ssl")


def test_generic_imap_needs_a_host_and_defaults_port_and_security() -> None:
    server = resolve_request_server(
        ServerRequest(provider="generic_imap", source_host="Mail.Example.net"), resolve_preset=fake_resolve
    )
    assert server == ImapServer("mail.example.net", 993, "ssl")
    server = resolve_request_server(
        ServerRequest(source_host="mail.example.net", source_port=143, source_security="TLS"),
        resolve_preset=fake_resolve,
    )
    assert server == ImapServer("mail.example.net", 143, "tls")
    with pytest.raises(InvalidBulkRequest, match="source_host is required") as caught:
        resolve_request_server(ServerRequest(provider="generic_imap"), resolve_preset=fake_resolve)
    assert caught.value.field == "source_host"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ServerRequest(provider="hotmail"), "provider"),
        (ServerRequest(source_host="mail.example.net", source_port=70000), "source_port"),
        (ServerRequest(source_host="mail.example.net", source_security="starttls"), "source_security"),
        (ServerRequest(source_host="10.1.2.3"), "source_host"),
        (ServerRequest(provider="gmail", per_row_server=True), "provider"),
    ],
)
def test_request_server_errors_name_the_field(request_: ServerRequest, field: str) -> None:
    with pytest.raises(InvalidBulkRequest) as caught:
        resolve_request_server(request_, resolve_preset=fake_resolve)
    assert caught.value.field == field


def test_a_preset_the_resolver_refuses_is_a_provider_error() -> None:
    def refuse(provider: str, host: str | None, port: int | None, security: str | None) -> ImapServer:
        raise ValueError("gmail does not allow overriding the host")

    with pytest.raises(InvalidBulkRequest, match="overriding") as caught:
        resolve_request_server(
            ServerRequest(provider="gmail", source_host="x.example"), resolve_preset=refuse
        )
    assert caught.value.field == "provider"


def test_the_real_presets_plug_in() -> None:
    from mailroom.imap import presets

    server = resolve_request_server(
        ServerRequest(provider="outlook", source_security=" SSL "), resolve_preset=presets.resolve
    )
    assert server == ImapServer("outlook.office365.com", 993, "ssl")
    with pytest.raises(InvalidBulkRequest) as caught:
        resolve_request_server(ServerRequest(provider="gmail", source_port=0), resolve_preset=presets.resolve)
    assert caught.value.field == "source_port"


def test_preset_overrides_are_checked_before_the_resolver() -> None:
    calls: list[tuple[object, ...]] = []

    def record(provider: str, host: str | None, port: int | None, security: str | None) -> FakePreset:
        calls.append((provider, host, port, security))
        return fake_resolve(provider, host, port, security)

    request = ServerRequest(provider="yahoo", source_host="  ", source_port=143, source_security="TLS")
    assert resolve_request_server(request, resolve_preset=record) == ImapServer(
        "imap.mail.yahoo.com", 143, "tls"
    )
    assert calls == [("yahoo", None, 143, "tls")]
    with pytest.raises(InvalidBulkRequest) as caught:
        resolve_request_server(
            ServerRequest(provider="yahoo", source_security="starttls"), resolve_preset=record
        )
    assert caught.value.field == "source_security"


def test_per_row_server_uses_no_request_server() -> None:
    for provider in (None, "generic_imap"):
        request = ServerRequest(provider=provider, per_row_server=True)
        assert resolve_request_server(request, resolve_preset=fake_resolve) is None
        assert provider_of(request) == "generic_imap"
