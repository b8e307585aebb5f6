"""Bulk migrations: the CSV data, each row's category, per-row servers, and what the output shows
of a row (masked, never a password)."""

from __future__ import annotations

import json

import pytest

from mailroom.domain.bulk.data import parse_data
from mailroom.domain.bulk.request import MAX_DATA_CHARS, InvalidBulkRequest, ServerRequest
from mailroom.domain.bulk.rows import RowCategory, categorize, mask_email
from mailroom.domain.bulk.servers import ImapServer
from tests.support.bulk import GMAIL, MAILBOXES, only, rows_of

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
    with pytest.raises(InvalidBulkRequest, match="no rows") as caught:
        parse_data(data)
    assert caught.value.field == "data"


def test_oversized_data_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidBulkRequest, match="longer than"):
        parse_data("a" * (MAX_DATA_CHARS + 1))


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
    categorize(parse_data(data), server=GMAIL, mailbox_id_for=lookup, destination_busy=is_busy)
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
    assert mask_email(address) == masked


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


@pytest.mark.parametrize("address", ["jane@gmail.com", "john.doe@gmail.com", "ab@x.com", "a@x.com"])
def test_masking_agrees_with_single_migrations(address: str) -> None:
    from mailroom.domain import migrations

    assert mask_email(address) == migrations.mask_email(address)
    # Deliberately stricter on a non-address: in a CSV it may be a password in the wrong column.
    assert (mask_email("plainword"), migrations.mask_email("plainword")) == ("p***", "p***d")


def test_a_field_too_long_for_the_csv_module_is_a_malformed_row_not_a_crash() -> None:
    rows = rows_of(f"a@gmail.com,{'x' * 200_000},alice@acme.com\nb@gmail.com,\x00pw,bob@acme.com")
    assert rows[0].category is RowCategory.MALFORMED_ROW
    assert rows[1].row == 2  # a NUL in a password is the IMAP server's business, not the parser's
