"""Bulk migrations, the pure part: CSV data, row categories, servers, limits, the preview's
estimates, batch names, and the batch's state rules and scheduling."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailroom.domain import bulk_migrations as bulk
from mailroom.domain.bulk_migrations import (
    BatchAction,
    BatchJob,
    BatchLimits,
    BatchStatus,
    BulkRow,
    ImapServer,
    RowCategory,
    ServerRequest,
)
from mailroom.store.organizations import DEFAULT_LIMITS

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
    return bulk.categorize(
        bulk.parse_data(data),
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


# --- parsing ---------------------------------------------------------------------------------------


def test_a_plain_row_is_valid_and_keeps_what_the_job_needs() -> None:
    row = only("john.doe@gmail.com,S3cret-pass,Alice@Acme.com")
    assert row.category is RowCategory.VALID
    assert (row.row, row.source_email, row.destination_email) == (1, "john.doe@gmail.com", "alice@acme.com")
    assert row.password == "S3cret-pass"
    assert row.server == GMAIL
    assert row.destination_mailbox_id == "mbx_alice"
    assert row.message is None


@pytest.mark.parametrize(
    ("cell", "password"),
    [
        ('"pa,ss"', "pa,ss"),  # a comma inside quotes
        ('"p""q"', 'p"q'),  # a doubled quote inside quotes
        ('pa"ss', 'pa"ss'),  # a quote inside an unquoted field is literal
        (" spaced out ", " spaced out "),  # passwords are never trimmed
        ('"  both , "" and spaces  "', '  both , " and spaces  '),
        ("'single'", "'single'"),
        ("ünï©ødé✓", "ünï©ødé✓"),
        ('","', ","),
    ],
)
def test_passwords_are_kept_exactly(cell: str, password: str) -> None:
    row = only(f"src@gmail.com,{cell},bob@acme.com")
    assert row.category is RowCategory.VALID
    assert row.password == password


@pytest.mark.parametrize(
    "line",
    [
        "  src@gmail.com\t, pw , bob@acme.com  ",
        '"src@gmail.com", pw ,"  bob@acme.com  "',
        '  "src@gmail.com", pw ,"bob@acme.com"  \t',  # the line's outer whitespace is not a field's
    ],
)
def test_emails_are_trimmed_and_quoted_emails_are_read(line: str) -> None:
    row = only(line)
    assert row.category is RowCategory.VALID
    assert (row.source_email, row.destination_email, row.password) == (
        "src@gmail.com",
        "bob@acme.com",
        " pw ",
    )


def test_row_numbers_are_line_numbers_with_crlf_blank_lines_and_a_bom() -> None:
    data = "\ufeffsource_email,source_password,destination_email\r\n\r\na@gmail.com,pw1,alice@acme.com\r\n"
    data += "   \r\n,,\r\nb@gmail.com,pw2,bob@acme.com\r\n\r\n"
    rows = rows_of(data)
    assert [(row.row, row.category) for row in rows] == [(3, RowCategory.VALID), (6, RowCategory.VALID)]
    assert rows[0].source_email == "a@gmail.com"  # the BOM did not stick to the first cell


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_splits_rows(newline: str) -> None:
    data = newline.join(["a@gmail.com,pw,alice@acme.com", "b@gmail.com,pw,bob@acme.com"])
    assert [row.row for row in rows_of(data)] == [1, 2]


@pytest.mark.parametrize(
    "header",
    [
        "source_email,source_password,destination_email",
        "Source_Email , SOURCE_PASSWORD,Destination_Email",
        '"source_email","source_password","destination_email"',
    ],
)
def test_a_header_row_is_skipped_in_any_case(header: str) -> None:
    rows = rows_of(f"{header}\na@gmail.com,pw,alice@acme.com")
    assert [(row.row, row.category) for row in rows] == [(2, RowCategory.VALID)]


def test_a_header_after_blank_lines_is_still_the_header_but_not_later() -> None:
    rows = rows_of("\n\nsource_email,source_password,destination_email\na@gmail.com,pw,alice@acme.com")
    assert [row.row for row in rows] == [4]
    later = rows_of("a@gmail.com,pw,alice@acme.com\nsource_email,source_password,destination_email")
    assert later[1].category is RowCategory.INVALID_SOURCE_EMAIL


def test_a_header_that_only_resembles_the_columns_is_data() -> None:
    rows = rows_of("email,password,destination\na@gmail.com,pw,alice@acme.com")
    assert rows[0].category is RowCategory.INVALID_SOURCE_EMAIL
    assert rows[0].row == 1


def test_the_six_column_header_is_recognized_too() -> None:
    rows = rows_of(
        "source_email,source_password,destination_email,source_host,source_port,source_security\n"
        "a@gmail.com,pw,alice@acme.com,imap.example.net,993,ssl",
        server=None,
    )
    assert [(row.row, row.category) for row in rows] == [(2, RowCategory.VALID)]


@pytest.mark.parametrize(
    "data", ["", "\ufeff", "\n\r\n  \n", ",,\n , , ", "source_email,source_password,destination_email\n"]
)
def test_data_without_rows_is_refused(data: str) -> None:
    with pytest.raises(bulk.InvalidBulkRequest, match="no rows") as caught:
        bulk.parse_data(data)
    assert caught.value.field == "data"


def test_oversized_data_is_refused_before_parsing() -> None:
    with pytest.raises(bulk.InvalidBulkRequest, match="longer than"):
        bulk.parse_data("a" * (bulk.MAX_DATA_CHARS + 1))


# --- categories ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'a@gmail.com,"unclosed,alice@acme.com',
        'a@gmail.com,"pass"word,alice@acme.com',
        'a@gmail.com,"pw"  ,alice@acme.com',
    ],
)
def test_quoting_the_csv_module_cannot_read_is_a_malformed_row(line: str) -> None:
    row = only(line)
    assert row.category is RowCategory.MALFORMED_ROW
    assert row.message and '""' in row.message
    assert row.password is None


def test_an_unclosed_quote_spoils_only_its_own_line() -> None:
    rows = rows_of('a@gmail.com,"oops,alice@acme.com\nb@gmail.com,pw,bob@acme.com')
    assert [row.category for row in rows] == [RowCategory.MALFORMED_ROW, RowCategory.VALID]


def test_a_space_before_a_quote_is_reported_instead_of_migrating_a_wrong_password() -> None:
    row = only('a@gmail.com, "pa,ss",alice@acme.com')
    assert row.category is RowCategory.MALFORMED_ROW
    assert row.message and "space" in row.message


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("a@gmail.com,alice@acme.com", None),
        ("a@gmail.com,pa,ss,alice@acme.com", "double quotes"),
        ("a@gmail.com,pw,alice@acme.com,imap.x.net,993,ssl", "per_row_server to true"),
        ("a@gmail.com", None),
    ],
)
def test_wrong_column_count(line: str, hint: str | None) -> None:
    row = only(line)
    assert row.category is RowCategory.WRONG_COLUMN_COUNT
    assert row.message and row.message.startswith("expected 3 columns")
    if hint:
        assert hint in row.message
    assert row.destination_email is None  # which cell is which is unknown: show none


def test_three_columns_with_per_row_servers_hint_at_the_flag() -> None:
    row = only("a@gmail.com,pw,alice@acme.com", server=None)
    assert row.category is RowCategory.WRONG_COLUMN_COUNT
    assert row.message and "expected 6 columns" in row.message and "per_row_server to false" in row.message


@pytest.mark.parametrize(
    "source", ["not-an-email", "a@", "@gmail.com", "a b@gmail.com", "a..b@gmail.com", "a@gmail"]
)
def test_invalid_source_email(source: str) -> None:
    row = only(f"{source},pw,alice@acme.com")
    assert row.category is RowCategory.INVALID_SOURCE_EMAIL
    assert row.message == "source_email is not a valid email address"


@pytest.mark.parametrize("password", ["", "   ", "\t"])
def test_missing_password(password: str) -> None:
    row = only(f"a@gmail.com,{password},alice@acme.com")
    assert row.category is RowCategory.MISSING_PASSWORD


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("", "destination_email is empty"),
        ("alice", "destination_email is not a valid email address"),
        ("al!ce@acme.com", "destination_email is not a valid email address"),  # not a hosted local part
        ("dave@acme.com", "destination_email is not a mailbox of this organization"),
        ("alice@other.com", "destination_email is not a mailbox of this organization"),
    ],
)
def test_invalid_destination(destination: str, message: str) -> None:
    row = only(f"a@gmail.com,pw,{destination}")
    assert row.category is RowCategory.INVALID_DESTINATION
    assert row.message == message
    assert row.password is None


def test_destination_busy_asks_by_mailbox_id() -> None:
    row = only("a@gmail.com,pw,bob@acme.com", busy=frozenset({"mbx_bob"}))
    assert row.category is RowCategory.DESTINATION_BUSY
    assert row.destination_mailbox_id == "mbx_bob"
    assert row.message and "active migration" in row.message


def test_duplicate_rows_compare_emails_case_insensitively_and_name_the_first_row() -> None:
    rows = rows_of(
        "a@gmail.com,pw,alice@acme.com\nA@GMAIL.com,other,ALICE@acme.com\na@gmail.com,pw,bob@acme.com"
    )
    assert [row.category for row in rows] == [RowCategory.VALID, RowCategory.DUPLICATE_ROW, RowCategory.VALID]
    assert rows[1].message == "same source and destination as row 1; this row is skipped"
    assert rows[1].password is None


def test_a_corrected_copy_of_a_rejected_row_is_not_a_duplicate() -> None:
    rows = rows_of("a@gmail.com,,alice@acme.com\na@gmail.com,pw,alice@acme.com")
    assert [row.category for row in rows] == [RowCategory.MISSING_PASSWORD, RowCategory.VALID]


def test_same_address_at_source_and_destination_is_a_normal_domain_move() -> None:
    assert only("alice@acme.com,pw,alice@acme.com").category is RowCategory.VALID


def test_two_sources_into_one_mailbox_are_both_valid() -> None:
    rows = rows_of("old1@gmail.com,pw,alice@acme.com\nold2@yahoo.com,pw,alice@acme.com")
    assert [row.category for row in rows] == [RowCategory.VALID, RowCategory.VALID]


def test_lookups_run_once_per_destination() -> None:
    asked: list[str] = []
    busy_asked: list[str] = []

    def lookup(email: str) -> str | None:
        asked.append(email)
        return MAILBOXES.get(email)

    def is_busy(mailbox_id: str) -> bool:
        busy_asked.append(mailbox_id)
        return False

    data = "\n".join(f"user{i}@gmail.com,pw,{'alice' if i % 2 else 'bob'}@acme.com" for i in range(10))
    data += "\nx@gmail.com,pw,nobody@acme.com\ny@gmail.com,pw,nobody@acme.com\nbad,pw,alice@acme.com"
    bulk.categorize(bulk.parse_data(data), server=GMAIL, mailbox_id_for=lookup, destination_busy=is_busy)
    assert sorted(asked) == ["alice@acme.com", "bob@acme.com", "nobody@acme.com"]
    assert sorted(busy_asked) == ["mbx_alice", "mbx_bob"]


def test_the_first_failing_check_wins() -> None:
    # invalid source and missing password and bad destination: the source is reported
    assert only("nope,,nowhere").category is RowCategory.INVALID_SOURCE_EMAIL
    assert only("a@gmail.com,,nowhere").category is RowCategory.MISSING_PASSWORD
    assert (
        only("a@gmail.com,pw,x@acme.com,bad host,0,tls", server=None).category is RowCategory.INVALID_SERVER
    )
    assert (
        only("a@gmail.com,pw,nowhere,bad host,0,tls", server=None).category is RowCategory.INVALID_DESTINATION
    )


# --- per-row servers -------------------------------------------------------------------------------


def test_per_row_servers_are_read_and_normalized() -> None:
    rows = rows_of(
        "a@gmail.com,pw,alice@acme.com, IMAP.Example.NET. , 143 , TLS\n"
        "b@gmail.com,pw,bob@acme.com,[2606:4700:4700::1111],993,ssl\n"
        "c@gmail.com,pw,carol@acme.com,8.8.8.8,1,none",
        server=None,
    )
    assert [row.server for row in rows] == [
        ImapServer("imap.example.net", 143, "tls"),
        ImapServer("2606:4700:4700::1111", 993, "ssl"),
        ImapServer("8.8.8.8", 1, "none"),
    ]


def test_blank_server_cells_fall_back_to_the_request_then_993_ssl() -> None:
    data = "a@gmail.com,pw,alice@acme.com,imap.example.net,,\nb@gmail.com,pw,bob@acme.com,,,"
    rows = rows_of(data, server=None)
    assert rows[0].server == ImapServer("imap.example.net", 993, "ssl")
    assert rows[1].category is RowCategory.INVALID_SERVER
    assert rows[1].message == "source_host is empty"
    defaults = ServerRequest(source_host="mail.example.org", source_port=143, source_security="tls")
    rows = rows_of(data, server=None, defaults=defaults)
    assert rows[0].server == ImapServer("imap.example.net", 143, "tls")
    assert rows[1].server == ImapServer("mail.example.org", 143, "tls")


@pytest.mark.parametrize(
    ("host", "port", "security", "message"),
    [
        ("imap.example.net", "0", "ssl", "source_port must be a whole number from 1 to 65535"),
        ("imap.example.net", "65536", "ssl", "source_port must be a whole number from 1 to 65535"),
        ("imap.example.net", "99x", "ssl", "source_port must be a whole number from 1 to 65535"),
        ("imap.example.net", "-1", "ssl", "source_port must be a whole number from 1 to 65535"),
        ("imap.example.net", "+993", "ssl", "source_port must be a whole number from 1 to 65535"),
        ("imap.example.net", "993", "starttls", "source_security must be one of ssl, tls, none"),
        ("imap example.net", "993", "ssl", "source_host is not a valid host name or IP address"),
        ("-bad-.example.net", "993", "ssl", "source_host is not a valid host name or IP address"),
        ("localhost", "993", "ssl", "source_host is not a valid host name or IP address"),
        ("127.0.0.1", "993", "ssl", "source_host is a loopback address, which is not reachable"),
        ("169.254.169.254", "993", "ssl", "source_host is a link local address, which is not reachable"),
        ("10.0.0.5", "993", "ssl", "source_host is a private address, which is not reachable"),
        ("::1", "993", "ssl", "source_host is a loopback address, which is not reachable"),
    ],
)
def test_invalid_per_row_server(host: str, port: str, security: str, message: str) -> None:
    row = only(f"a@gmail.com,pw,alice@acme.com,{host},{port},{security}", server=None)
    assert row.category is RowCategory.INVALID_SERVER
    assert row.message == message


def test_private_hosts_are_allowed_when_the_deployment_says_so() -> None:
    data = "a@gmail.com,pw,alice@acme.com,127.0.0.1,10993,ssl\nb@gmail.com,pw,bob@acme.com,localhost,143,none"
    rows = rows_of(data, server=None, allow_private=True)
    assert [row.server for row in rows] == [
        ImapServer("127.0.0.1", 10993, "ssl"),
        ImapServer("localhost", 143, "none"),
    ]


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
    server = bulk.resolve_request_server(ServerRequest(provider=provider), resolve_preset=fake_resolve)
    assert server == ImapServer(host, 993, "ssl")


def test_generic_imap_needs_a_host_and_defaults_port_and_security() -> None:
    server = bulk.resolve_request_server(
        ServerRequest(provider="generic_imap", source_host="Mail.Example.net"), resolve_preset=fake_resolve
    )
    assert server == ImapServer("mail.example.net", 993, "ssl")
    server = bulk.resolve_request_server(
        ServerRequest(source_host="mail.example.net", source_port=143, source_security="TLS"),
        resolve_preset=fake_resolve,
    )
    assert server == ImapServer("mail.example.net", 143, "tls")
    with pytest.raises(bulk.InvalidBulkRequest, match="source_host is required") as caught:
        bulk.resolve_request_server(ServerRequest(provider="generic_imap"), resolve_preset=fake_resolve)
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
    with pytest.raises(bulk.InvalidBulkRequest) as caught:
        bulk.resolve_request_server(request_, resolve_preset=fake_resolve)
    assert caught.value.field == field


def test_a_preset_the_resolver_refuses_is_a_provider_error() -> None:
    def refuse(provider: str, host: str | None, port: int | None, security: str | None) -> ImapServer:
        raise ValueError("gmail does not allow overriding the host")

    with pytest.raises(bulk.InvalidBulkRequest, match="overriding") as caught:
        bulk.resolve_request_server(
            ServerRequest(provider="gmail", source_host="x.example"), resolve_preset=refuse
        )
    assert caught.value.field == "provider"


def test_the_real_presets_plug_in() -> None:
    from mailroom.imap import presets

    server = bulk.resolve_request_server(
        ServerRequest(provider="outlook", source_security=" SSL "), resolve_preset=presets.resolve
    )
    assert server == ImapServer("outlook.office365.com", 993, "ssl")
    with pytest.raises(bulk.InvalidBulkRequest) as caught:
        bulk.resolve_request_server(
            ServerRequest(provider="gmail", source_port=0), resolve_preset=presets.resolve
        )
    assert caught.value.field == "source_port"


def test_preset_overrides_are_checked_before_the_resolver() -> None:
    calls: list[tuple[object, ...]] = []

    def record(provider: str, host: str | None, port: int | None, security: str | None) -> FakePreset:
        calls.append((provider, host, port, security))
        return fake_resolve(provider, host, port, security)

    request = ServerRequest(provider="yahoo", source_host="  ", source_port=143, source_security="TLS")
    assert bulk.resolve_request_server(request, resolve_preset=record) == ImapServer(
        "imap.mail.yahoo.com", 143, "tls"
    )
    assert calls == [("yahoo", None, 143, "tls")]
    with pytest.raises(bulk.InvalidBulkRequest) as caught:
        bulk.resolve_request_server(
            ServerRequest(provider="yahoo", source_security="starttls"), resolve_preset=record
        )
    assert caught.value.field == "source_security"


def test_per_row_server_uses_no_request_server() -> None:
    for provider in (None, "generic_imap"):
        request = ServerRequest(provider=provider, per_row_server=True)
        assert bulk.resolve_request_server(request, resolve_preset=fake_resolve) is None
        assert bulk.provider_of(request) == "generic_imap"


# --- masking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jane@gmail.com", "j***e@gmail.com"),
        ("john.doe@gmail.com", "j***e@gmail.com"),
        ("bob@x.com", "b***b@x.com"),
        ("ab@x.com", "a***@x.com"),  # both characters would be the whole local part
        ("a@x.com", "a***@x.com"),
        ("  a@x.com ", "a***@x.com"),
        ("not-an-address", "n***"),
        ("", ""),
    ],
)
def test_mask_email(address: str, masked: str) -> None:
    assert bulk.mask_email(address) == masked


def test_output_never_shows_a_password_even_in_the_wrong_column() -> None:
    secret = "Hunter2-Secret"
    data = "\n".join(
        [
            f"john.doe@gmail.com,{secret},alice@acme.com",
            f"{secret},john.doe@gmail.com,alice@acme.com",  # swapped columns
            f"john.doe@gmail.com,alice@acme.com,{secret}",  # swapped columns
            f"john.doe@gmail.com,{secret},alice@acme.com,extra",
            f'john.doe@gmail.com,"{secret},alice@acme.com',
            f"john.doe@gmail.com,{secret},dave@acme.com",
            f"john.doe@gmail.com,{secret},alice@acme.com",  # duplicate
        ]
    )
    rows = rows_of(data)
    assert len({row.category for row in rows}) == 6
    out = json.dumps([row.as_dict() for row in rows])
    assert "Hunter" not in out and "Secret" not in out
    assert all(secret not in repr(row) for row in rows)
    assert "john.doe" not in out
    assert rows[0].as_dict()["source_email"] == "j***e@gmail.com"
    assert rows[1].as_dict()["source_email"] == "H***"
    assert rows[2].as_dict()["destination_email"] == "H***"


def test_row_as_dict_shape() -> None:
    row = only("a@gmail.com,pw,bob@acme.com")
    assert row.as_dict() == {
        "row": 1,
        "category": "valid",
        "source_email": "a***@gmail.com",
        "destination_email": "bob@acme.com",
        "destination_mailbox_id": "mbx_bob",
        "source_host": "imap.gmail.com",
        "source_port": 993,
        "source_security": "ssl",
        "message": None,
    }
    bad = only("a@gmail.com,pw,b@acme.com,,x,y", server=None)
    assert bad.category is RowCategory.INVALID_SERVER
    assert bad.as_dict()["source_host"] is None and bad.as_dict()["destination_email"] == "b@acme.com"


# --- limits ----------------------------------------------------------------------------------------


def test_default_limits_hold_the_bulk_keys() -> None:
    assert DEFAULT_LIMITS[bulk.BATCH_ROWS_LIMIT] == 300
    assert DEFAULT_LIMITS[bulk.CONCURRENCY_LIMIT] == 5
    limits = BatchLimits.from_org_limits({**DEFAULT_LIMITS, "migration_concurrency": 2}, global_capacity=20)
    assert limits == BatchLimits(300, 2, 20)
    assert limits.as_dict() == {"max_rows_per_batch": 300, "concurrent_per_account": 2, "global_capacity": 20}


def test_effective_concurrency_is_bounded_by_global_capacity_and_never_zero() -> None:
    assert BatchLimits(100, 10, 4).effective_concurrency == 4
    assert BatchLimits(100, 0, 20).effective_concurrency == 1


def test_row_limit() -> None:
    bulk.check_row_limit(300, 300)
    with pytest.raises(bulk.RowLimitExceeded) as caught:
        bulk.check_row_limit(301, 300)
    error = caught.value
    assert (error.rows, error.limit, error.limit_name, error.field) == (
        301,
        300,
        "migration_batch_rows",
        "data",
    )
    assert "migration_batch_rows" in str(error) and "301" in str(error) and "300" in str(error)
    assert isinstance(error, bulk.InvalidBulkRequest)


# --- estimates -------------------------------------------------------------------------------------

FLAT = bulk.Assumptions(
    average_mailbox_messages=1000,
    average_message_bytes=50_000,
    messages_per_second=10,
    per_job_overhead_seconds=0,
)


def valid_rows(count: int) -> list[BulkRow]:
    return [BulkRow(i, RowCategory.VALID, f"u{i}@gmail.com", "alice@acme.com") for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("rows", "concurrency", "waves"), [(1, 5, 1), (5, 5, 1), (6, 5, 2), (12, 5, 3), (7, 1, 7)]
)
def test_equal_mailboxes_take_ceil_rows_over_concurrency_waves(
    rows: int, concurrency: int, waves: int
) -> None:
    estimate = bulk.estimate_time(valid_rows(rows), concurrency=concurrency, assumptions=FLAT)
    assert estimate.waves == waves
    assert estimate.estimated_seconds == waves * 100  # 1000 messages at 10/s
    assert estimate.messages == rows * 1000
    assert estimate.rows_assumed == rows


def test_overhead_is_per_job() -> None:
    assumptions = bulk.Assumptions(1000, 50_000, 10, per_job_overhead_seconds=30)
    estimate = bulk.estimate_time(valid_rows(4), concurrency=2, assumptions=assumptions)
    assert estimate.estimated_seconds == 2 * (30 + 100)


def test_known_counts_replace_the_assumption_and_jobs_start_as_slots_free() -> None:
    rows = valid_rows(3)
    # row 1: 3000 messages (300 s), rows 2 and 3: 500 each (50 s); two at once:
    # row 2 ends at 50, row 3 runs 50..100, row 1 ends at 300.
    estimate = bulk.estimate_time(
        rows, concurrency=2, assumptions=FLAT, message_counts={1: 3000, 2: 500, 3: 500}
    )
    assert estimate.estimated_seconds == 300
    assert estimate.messages == 4000
    assert estimate.rows_assumed == 0
    mixed = bulk.estimate_time(rows, concurrency=1, assumptions=FLAT, message_counts={2: 0})
    assert (mixed.estimated_seconds, mixed.rows_assumed, mixed.messages) == (200, 2, 2000)


def test_only_valid_rows_are_estimated() -> None:
    rows = [*valid_rows(2), BulkRow(3, RowCategory.MISSING_PASSWORD, "x@gmail.com", "alice@acme.com")]
    estimate = bulk.estimate_time(rows, concurrency=1, assumptions=FLAT)
    assert (estimate.estimated_seconds, estimate.messages) == (200, 2000)
    storage = bulk.estimate_storage(rows, available_bytes=10**9, assumptions=FLAT)
    assert storage.estimated_bytes == 2 * 1000 * 50_000


def test_nothing_to_estimate() -> None:
    estimate = bulk.estimate_time([], concurrency=5)
    assert (estimate.estimated_seconds, estimate.waves, estimate.human) == (0, 0, "nothing to migrate")


def test_a_fractional_duration_is_rounded_up() -> None:
    assumptions = bulk.Assumptions(1, 1, messages_per_second=3, per_job_overhead_seconds=0)
    assert bulk.estimate_time(valid_rows(1), concurrency=1, assumptions=assumptions).estimated_seconds == 1


@pytest.mark.parametrize(
    ("seconds", "human"),
    [
        (0, "less than a minute"),
        (59, "less than a minute"),
        (60, "about 1 minute"),
        (61, "about 2 minutes"),
        (3599, "about 1 hour"),
        (3600, "about 1 hour"),
        (3660, "about 1 hour 1 minute"),
        (7500, "about 2 hours 5 minutes"),
        (48 * 3600, "about 2 days"),
        (49 * 3600 + 1, "about 2 days 2 hours"),  # 2 days 1 hour 1 minute, hours shown without minutes
    ],
)
def test_human_duration(seconds: int, human: str) -> None:
    assert bulk.human_duration(seconds) == human


def test_storage_fits_or_not() -> None:
    rows = valid_rows(2)
    fits = bulk.estimate_storage(rows, available_bytes=100_000_000, assumptions=FLAT)
    assert fits == bulk.StorageEstimate(100_000_000, 100_000_000, True)
    tight = bulk.estimate_storage(rows, available_bytes=99_999_999, assumptions=FLAT)
    assert tight.fits is False
    known = bulk.estimate_storage(rows, available_bytes=0, assumptions=FLAT, message_counts={1: 0, 2: 0})
    assert (known.estimated_bytes, known.fits) == (0, True)
    overdrawn = bulk.estimate_storage([], available_bytes=-5, assumptions=FLAT)
    assert overdrawn.available_bytes == 0


# --- the preview -----------------------------------------------------------------------------------


def make_preview(data: str, **overrides: object) -> bulk.Preview:
    kwargs: dict[str, object] = {
        "request": ServerRequest(provider="gmail"),
        "limits": BatchLimits(300, 5, 20),
        "resolve_preset": fake_resolve,
        "mailbox_id_for": MAILBOXES.get,
        "destination_busy": frozenset({"mbx_carol"}).__contains__,
        "available_storage_bytes": 10**12,
        "assumptions": FLAT,
    }
    kwargs.update(overrides)
    return bulk.preview(data, **kwargs)  # type: ignore[arg-type]


def test_preview_end_to_end_serializes_to_json() -> None:
    data = "\ufeffsource_email,source_password,destination_email\r\n"
    data += "a@gmail.com,pw1,alice@acme.com\r\nb@gmail.com,pw2,bob@acme.com\r\n"
    data += "c@gmail.com,pw3,carol@acme.com\r\nbad,pw,alice@acme.com\r\n"
    result = make_preview(data)
    body = json.loads(json.dumps(result.as_dict()))
    assert body["provider"] == "gmail"
    assert body["counts"]["valid"] == 2
    assert body["counts"]["destination_busy"] == 1
    assert body["counts"]["invalid_source_email"] == 1
    assert body["counts"]["total"] == 4
    assert set(body["counts"]) == {category.value for category in RowCategory} | {"total"}
    assert body["can_start"] is True
    assert [row["row"] for row in body["rows"]] == [2, 3, 4, 5]
    assert body["limits"] == {"max_rows_per_batch": 300, "concurrent_per_account": 5, "global_capacity": 20}
    assert body["time_estimate"]["estimated_seconds"] == 100  # two mailboxes side by side
    assert body["time_estimate"]["human"] == "about 2 minutes"
    assert body["storage"] == {"estimated_bytes": 100_000_000, "available_bytes": 10**12, "fits": True}
    assert "pw1" not in json.dumps(body)
    assert [row.password for row in result.valid_rows] == ["pw1", "pw2"]


def test_preview_counts_rows_against_the_limit_before_looking_anything_up() -> None:
    asked: list[str] = []

    def lookup(email: str) -> str | None:
        asked.append(email)
        return None

    data = "\n".join(f"u{i}@gmail.com,pw,alice@acme.com" for i in range(4))
    with pytest.raises(bulk.RowLimitExceeded):
        make_preview(data, limits=BatchLimits(3, 2, 20), mailbox_id_for=lookup)
    assert asked == []
    assert make_preview(data, limits=BatchLimits(4, 2, 20)).counts["total"] == 4


def test_preview_checks_the_request_before_the_data() -> None:
    with pytest.raises(bulk.InvalidBulkRequest) as caught:
        make_preview("", request=ServerRequest(provider="generic_imap"))
    assert caught.value.field == "source_host"


def test_preview_with_nothing_valid_cannot_start() -> None:
    result = make_preview("a@gmail.com,,alice@acme.com")
    assert result.as_dict()["can_start"] is False
    assert result.time_estimate.human == "nothing to migrate"


def test_preview_with_per_row_servers() -> None:
    result = make_preview(
        "a@gmail.com,pw,alice@acme.com,imap.example.net,,\nb@gmail.com,pw,bob@acme.com,bad host,993,ssl",
        request=ServerRequest(per_row_server=True, source_security="tls"),
    )
    assert [row.category for row in result.rows] == [RowCategory.VALID, RowCategory.INVALID_SERVER]
    assert result.rows[0].server == ImapServer("imap.example.net", 993, "tls")
    assert result.provider == "generic_imap"


# --- batch names -----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 14, 5, 33, tzinfo=UTC)


def test_batch_name_is_generated_when_empty() -> None:
    assert bulk.batch_name(None, now=NOW, accounts=42) == "Bulk migration 2026-11-21 14:05 UTC (42 accounts)"
    assert bulk.batch_name("  ", now=NOW, accounts=1) == "Bulk migration 2026-11-21 14:05 UTC (1 account)"
    elsewhere = NOW.astimezone(timezone(timedelta(hours=-8)))
    assert bulk.batch_name("", now=elsewhere, accounts=2).startswith("Bulk migration 2026-11-21 14:05 UTC")


def test_batch_name_is_kept_trimmed_and_checked() -> None:
    assert bulk.batch_name("  Acme move ", now=NOW, accounts=3) == "Acme move"
    assert bulk.batch_name("x" * bulk.MAX_BATCH_NAME_LENGTH, now=NOW, accounts=3) == "x" * 100
    with pytest.raises(bulk.InvalidBulkRequest, match="at most 100") as caught:
        bulk.batch_name("x" * 101, now=NOW, accounts=3)
    assert caught.value.field == "name"
    with pytest.raises(bulk.InvalidBulkRequest, match="control"):
        bulk.batch_name("two\nlines", now=NOW, accounts=3)


# --- batch state -----------------------------------------------------------------------------------


def job(
    row: int,
    status: str = "pending",
    *,
    started: bool | None = None,
    mailbox: str | None = None,
    host: str = "imap.gmail.com",
    error: str | None = None,
    finished: int | None = None,
) -> BatchJob:
    return BatchJob(
        id=f"mig_{row}",
        row=row,
        status=status,
        destination_mailbox_id=mailbox or f"mbx_{row}",
        source_host=host,
        started=status != "pending" if started is None else started,
        error_code=error,
        finished_at=None if finished is None else f"2026-11-21T14:{finished:02d}:00.000Z",
    )


@pytest.mark.parametrize(
    ("jobs", "status"),
    [
        ([job(1), job(2)], BatchStatus.PENDING),
        ([job(1, started=True), job(2)], BatchStatus.PROCESSING),
        ([job(1, "processing"), job(2)], BatchStatus.PROCESSING),
        ([job(1, "completed"), job(2)], BatchStatus.PROCESSING),  # waiting for a slot
        ([job(1, "validating"), job(2, "planning")], BatchStatus.PROCESSING),
        ([job(1, "completed"), job(2, "completed")], BatchStatus.COMPLETED),
        ([job(1, "completed"), job(2, "failed")], BatchStatus.COMPLETED_WITH_ERRORS),
        ([job(1, "completed"), job(2, "cancelled")], BatchStatus.COMPLETED_WITH_ERRORS),
        ([job(1, "failed"), job(2, "failed")], BatchStatus.FAILED),
        ([job(1, "failed"), job(2, "cancelled")], BatchStatus.FAILED),
        ([job(1, "cancelled"), job(2, "cancelled")], BatchStatus.CANCELLED),
        ([], BatchStatus.COMPLETED),
    ],
)
def test_batch_status_follows_its_jobs(jobs: list[BatchJob], status: BatchStatus) -> None:
    assert bulk.derive_batch_status(jobs) is status


def test_batch_flags() -> None:
    live = [job(1, "processing"), job(2)]
    assert bulk.derive_batch_status(live, cancelled=True) is BatchStatus.CANCELLED
    assert bulk.derive_batch_status(live, paused=True) is BatchStatus.PAUSED
    # paused with nothing left waiting: nothing to resume, the batch just finishes
    assert bulk.derive_batch_status([job(1, "processing")], paused=True) is BatchStatus.PROCESSING
    assert bulk.derive_batch_status([job(1, "completed")], paused=True) is BatchStatus.COMPLETED
    assert (
        bulk.derive_batch_status([job(1, "completed")], paused=True, cancelled=True) is BatchStatus.CANCELLED
    )


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (BatchStatus.PENDING, ["cancel"]),
        (BatchStatus.PROCESSING, ["cancel"]),
        (BatchStatus.PAUSED, ["cancel", "resume"]),
        (BatchStatus.COMPLETED, ["delete"]),
        (BatchStatus.COMPLETED_WITH_ERRORS, ["delete", "retry"]),
        (BatchStatus.FAILED, ["delete", "retry"]),
        (BatchStatus.CANCELLED, ["delete", "retry"]),
    ],
)
def test_allowed_actions(status: BatchStatus, actions: list[str]) -> None:
    assert bulk.allowed_actions(status) == actions
    for action in BatchAction:
        if action.value in actions:
            bulk.check_action(action, status)
        else:
            with pytest.raises(bulk.ActionNotAllowed) as caught:
                bulk.check_action(action, status)
            assert caught.value.status is status and status.value in str(caught.value)


def test_cancel_touches_only_unfinished_jobs() -> None:
    jobs = [job(1, "completed"), job(2, "processing"), job(3), job(4, "failed")]
    assert [j.row for j in bulk.jobs_to_cancel(jobs)] == [2, 3]


def test_retry_reruns_failed_jobs_and_undoes_a_batch_cancel() -> None:
    jobs = [job(3, "failed"), job(1, "completed"), job(2, "cancelled"), job(4, "failed")]
    assert [j.row for j in bulk.jobs_to_retry(jobs)] == [3, 4]
    assert [j.row for j in bulk.jobs_to_retry(jobs, batch_cancelled=True)] == [2, 3, 4]
    assert bulk.jobs_to_retry([job(1, "completed")]) == []


def test_only_a_failed_jobs_password_can_be_updated() -> None:
    assert bulk.can_update_job_password(job(1, "failed"))
    assert not any(
        bulk.can_update_job_password(job(1, s)) for s in ("pending", "processing", "completed", "cancelled")
    )


# --- pausing ---------------------------------------------------------------------------------------


def failed(row: int, minute: int, *, host: str = "imap.gmail.com", error: str = "auth_failed") -> BatchJob:
    return job(row, "failed", host=host, error=error, finished=minute)


def test_three_host_failures_in_a_row_pause_while_that_host_has_waiting_jobs() -> None:
    jobs = [failed(1, 1), failed(2, 2, error="connection_failed"), failed(3, 3), job(4)]
    assert bulk.host_to_pause_for(jobs) == "imap.gmail.com"
    assert bulk.host_to_pause_for([*jobs[:2], job(4)]) is None  # two is not three
    assert bulk.host_to_pause_for(jobs[:3]) is None  # nothing left to protect


def test_a_success_or_another_kind_of_failure_ends_the_streak() -> None:
    base = [failed(1, 1), failed(2, 2), job(9)]
    assert bulk.host_to_pause_for([*base, job(3, "completed", finished=3)]) is None
    assert bulk.host_to_pause_for([*base, failed(3, 3, error="quota_exceeded")]) is None
    # the order is by finish time, not by row
    assert bulk.host_to_pause_for([*base, job(3, "completed", finished=0), failed(4, 4)]) == "imap.gmail.com"
    # a cancelled job neither counts nor breaks
    assert bulk.host_to_pause_for([*base, job(3, "cancelled", finished=3), failed(4, 4)]) == "imap.gmail.com"


def test_failures_count_per_host() -> None:
    jobs = [
        failed(1, 1, host="imap.a.net"),
        failed(2, 2, host="imap.b.net"),
        failed(3, 3, host="imap.a.net"),
        failed(4, 4, host="imap.b.net"),
        job(5, host="imap.a.net"),
        job(6, host="imap.b.net"),
    ]
    assert bulk.host_to_pause_for(jobs) is None
    assert bulk.host_to_pause_for([*jobs, failed(7, 5, host="imap.b.net")]) == "imap.b.net"


def test_a_resume_gives_the_host_a_fresh_start() -> None:
    jobs = [failed(1, 1), failed(2, 2), failed(3, 3), job(4)]
    resumed = "2026-11-21T14:03:30.000Z"
    assert bulk.host_to_pause_for(jobs, since=resumed) is None
    assert (
        bulk.host_to_pause_for([*jobs, failed(5, 4), failed(6, 5), failed(7, 6)], since=resumed) is not None
    )
    assert bulk.host_to_pause_for(jobs, threshold=4) is None


def test_host_failure_codes_are_codes_the_imap_source_reports() -> None:
    from mailroom.imap import errors

    assert set(errors.CODES) >= bulk.HOST_FAILURE_CODES
    assert "protocol_error" not in bulk.HOST_FAILURE_CODES  # the server answered


def test_job_statuses_are_the_single_migrations_statuses() -> None:
    from mailroom.domain import migrations

    assert tuple(bulk.JobStatus) == migrations.STATUSES
    assert bulk.TERMINAL_JOB_STATUSES == migrations.TERMINAL


@pytest.mark.parametrize("address", ["jane@gmail.com", "john.doe@gmail.com", "ab@x.com", "a@x.com"])
def test_masking_agrees_with_single_migrations(address: str) -> None:
    from mailroom.domain import migrations

    assert bulk.mask_email(address) == migrations.mask_email(address)
    # Deliberately stricter on a non-address: in a CSV it may be a password in the wrong column.
    assert (bulk.mask_email("plainword"), migrations.mask_email("plainword")) == ("p***", "p***d")


def test_pause_message_names_the_host_and_what_to_do() -> None:
    message = bulk.pause_message("imap.gmail.com")
    assert "imap.gmail.com" in message and "resume" in message and "3" in message


# --- scheduling ------------------------------------------------------------------------------------


def rows_started(chosen: list[BatchJob]) -> list[int]:
    return [j.row for j in chosen]


def test_start_in_row_order_up_to_the_concurrency() -> None:
    jobs = [job(row) for row in (5, 2, 9, 1, 7)]
    assert rows_started(bulk.next_jobs_to_start(jobs, 3, 20)) == [1, 2, 5]


def test_running_jobs_hold_their_slots() -> None:
    jobs = [
        job(1, "processing"),
        job(2, "pending", started=True),
        job(3, "completed"),
        job(4),
        job(5),
        job(6),
    ]
    assert rows_started(bulk.next_jobs_to_start(jobs, 3, 20)) == [4]
    assert bulk.next_jobs_to_start(jobs, 2, 20) == []


def test_global_capacity_caps_the_start() -> None:
    jobs = [job(row) for row in range(1, 6)]
    assert rows_started(bulk.next_jobs_to_start(jobs, 5, 2)) == [1, 2]
    assert bulk.next_jobs_to_start(jobs, 5, 0) == []
    assert bulk.next_jobs_to_start(jobs, 5, -3) == []


def test_one_job_per_destination_mailbox_at_a_time_and_later_rows_go_ahead() -> None:
    jobs = [
        job(1, "processing", mailbox="mbx_a"),
        job(2, mailbox="mbx_a"),
        job(3, mailbox="mbx_b"),
        job(4, mailbox="mbx_b"),
        job(5, mailbox="mbx_c"),
        job(6, mailbox="mbx_d"),
    ]
    assert rows_started(bulk.next_jobs_to_start(jobs, 10, 20)) == [3, 5, 6]
    assert rows_started(bulk.next_jobs_to_start(jobs, 10, 20, busy_mailboxes={"mbx_c"})) == [3, 6]


def test_nothing_waiting_nothing_started() -> None:
    assert bulk.next_jobs_to_start([job(1, "completed"), job(2, "failed")], 5, 20) == []


@pytest.mark.parametrize("finish", [lambda j: "completed", lambda j: "failed"])
def test_a_whole_batch_runs_to_the_end_under_the_limits(finish: Callable[[BatchJob], str]) -> None:
    jobs = {row: job(row, mailbox=f"mbx_{row % 4}") for row in range(1, 11)}
    most_at_once = 0
    for _ in range(50):
        tick = bulk.plan_tick(
            list(jobs.values()), paused=False, cancelled=False, concurrency=3, capacity_left=20
        )
        if tick.status in bulk.TERMINAL_BATCH_STATUSES:
            break
        for started in tick.start:
            jobs[started.row] = replace(started, started=True, status="processing")
        running = [j for j in jobs.values() if j.running]
        most_at_once = max(most_at_once, len(running))
        assert len({j.destination_mailbox_id for j in running}) == len(running)
        first = min(running, key=lambda j: j.row)  # finish the oldest running job
        jobs[first.row] = replace(first, status=finish(first))
    assert most_at_once == 3
    expected = BatchStatus.COMPLETED if finish(job(0)) == "completed" else BatchStatus.FAILED
    assert bulk.derive_batch_status(list(jobs.values())) is expected


def test_plan_tick_pauses_instead_of_starting_when_the_breaker_trips() -> None:
    jobs = [failed(1, 1), failed(2, 2), failed(3, 3), job(4), job(5)]
    tick = bulk.plan_tick(jobs, paused=False, cancelled=False, concurrency=5, capacity_left=20)
    assert tick == bulk.Tick(BatchStatus.PAUSED, [], "imap.gmail.com")
    resumed = bulk.plan_tick(
        jobs,
        paused=False,
        cancelled=False,
        concurrency=5,
        capacity_left=20,
        resumed_at="2026-11-21T14:10:00.000Z",
    )
    assert (resumed.status, rows_started(resumed.start), resumed.paused_for_host) == (
        BatchStatus.PROCESSING,
        [4, 5],
        None,
    )


def test_plan_tick_starts_nothing_for_a_paused_or_cancelled_batch() -> None:
    jobs = [job(1), job(2)]
    paused = bulk.plan_tick(jobs, paused=True, cancelled=False, concurrency=5, capacity_left=20)
    assert (paused.status, paused.start) == (BatchStatus.PAUSED, [])
    cancelled = bulk.plan_tick(jobs, paused=False, cancelled=True, concurrency=5, capacity_left=20)
    assert (cancelled.status, cancelled.start) == (BatchStatus.CANCELLED, [])


def test_plan_tick_on_a_new_batch_moves_it_to_processing_once_something_starts() -> None:
    jobs = [job(1), job(2)]
    assert bulk.plan_tick(jobs, paused=False, cancelled=False, concurrency=5, capacity_left=0).status is (
        BatchStatus.PENDING
    )
    tick = bulk.plan_tick(jobs, paused=False, cancelled=False, concurrency=1, capacity_left=20)
    assert (tick.status, rows_started(tick.start)) == (BatchStatus.PROCESSING, [1])


def test_a_field_too_long_for_the_csv_module_is_a_malformed_row_not_a_crash() -> None:
    rows = rows_of(f"a@gmail.com,{'x' * 200_000},alice@acme.com\nb@gmail.com,\x00pw,bob@acme.com")
    assert rows[0].category is RowCategory.MALFORMED_ROW
    assert rows[1].row == 2  # a NUL in a password is the IMAP server's business, not the parser's
