"""Bulk migration test helpers: a preset resolver standing in for mailroom/imap/presets.py, the
organization's mailboxes, and the rows a piece of data categorizes into."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.domain.bulk.data import parse_data
from mailroom.domain.bulk.request import ServerRequest
from mailroom.domain.bulk.rows import BulkRow, categorize
from mailroom.domain.bulk.servers import ImapServer

GMAIL = ImapServer("imap.gmail.com", 993, "ssl")
MAILBOXES = {"alice@acme.com": "mbx_alice", "bob@acme.com": "mbx_bob", "carol@acme.com": "mbx_carol"}


@dataclass(frozen=True)
class FakePreset:
    """Stands in for mailroom/imap/presets.py's resolve() result: anything with host/port/security."""

    host: str
    port: int
    security: str


def fake_resolve(provider: str, host: str | None, port: int | None, security: str | None) -> FakePreset:
    table = {
        "gmail": ("imap.gmail.com", 993, "ssl"),
        "outlook": ("outlook.office365.com", 993, "ssl"),
        "yahoo": ("imap.mail.yahoo.com", 993, "ssl"),
        "icloud": ("imap.mail.me.com", 993, "ssl"),
    }
    if provider not in table:
        raise ValueError(f"no preset for {provider}")
    preset_host, preset_port, preset_security = table[provider]
    return FakePreset(host or preset_host, port or preset_port, security or preset_security)


def rows_of(
    data: str,
    *,
    server: ImapServer | None = GMAIL,
    mailboxes: dict[str, str] | None = None,
    busy: frozenset[str] = frozenset(),
    defaults: ServerRequest | None = None,
    allow_private: bool = False,
) -> list[BulkRow]:
    known = MAILBOXES if mailboxes is None else mailboxes
    return categorize(
        parse_data(data),
        server=server,
        mailbox_id_for=known.get,
        destination_busy=busy.__contains__,
        server_defaults=defaults,
        allow_private_hosts=allow_private,
    )


def only(data: str, **kwargs: object) -> BulkRow:
    rows = rows_of(data, **kwargs)  # type: ignore[arg-type]
    assert len(rows) == 1
    return rows[0]
