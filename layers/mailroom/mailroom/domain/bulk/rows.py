"""Each data row's category (first failing check wins) and what the output may show of it.

Emails are trimmed; passwords are kept byte for byte (spaces, commas, quotes), since they are
someone else's password and a trimmed one simply fails to log in, hours later. Passwords never
leave a ``BulkRow`` except as ``row.password`` for the code that starts the jobs: not in
``as_dict``, not in ``repr``, not in messages. Messages never echo a field either (a swapped column
puts a password where an email was expected), and a source email is shown masked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mailroom.domain import addresses, migrations
from mailroom.domain.bulk.data import ParsedLine
from mailroom.domain.bulk.request import BASIC_COLUMNS, PER_ROW_COLUMNS, ServerRequest
from mailroom.domain.bulk.servers import SERVER_KEYS, ImapServer, check_host, check_port, check_security


class RowCategory(StrEnum):
    VALID = "valid"
    MALFORMED_ROW = "malformed_row"  # quoting the csv module cannot read
    WRONG_COLUMN_COUNT = "wrong_column_count"
    INVALID_SOURCE_EMAIL = "invalid_source_email"
    MISSING_PASSWORD = "missing_password"  # noqa: S105 - a category name, not a password
    INVALID_DESTINATION = "invalid_destination"  # syntax, or not a mailbox of this organization
    INVALID_SERVER = "invalid_server"
    DUPLICATE_ROW = "duplicate_row"
    DESTINATION_BUSY = "destination_busy"  # the mailbox already has an active migration


# --- masking ---------------------------------------------------------------------------------------


def mask_opaque(value: str) -> str:
    """``secret`` → ``s***``: for a value that may not be an address at all (a password typed into
    the email column must not be shown, so only its first character is)."""
    value = value.strip()
    return f"{value[:1]}***" if value else ""


def mask_email(address: str) -> str:
    """``jane@gmail.com`` → ``j***e@gmail.com``, the spec's masked source email. The domain stays
    (it says which provider); the local part keeps its first and last character, or only the first
    when it has one or two (``ab@x.com`` → ``a***@x.com``: showing both would show all of it). A
    value that is not ``local@domain`` is masked whole (``mask_opaque``)."""
    try:
        local, domain = addresses.split_address(address)
    except addresses.InvalidAddress:
        return mask_opaque(address)
    return migrations.mask_email(f"{local}@{domain}")


# --- categorizing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class BulkRow:
    """One data row and what the preview found. ``source_email`` is as written (trimmed) since it
    is the IMAP login; ``destination_email`` is normalized once valid. ``password`` is for starting
    the job and appears in neither ``as_dict`` nor ``repr``."""

    row: int
    category: RowCategory
    source_email: str | None
    destination_email: str | None
    message: str | None = None
    server: ImapServer | None = None
    destination_mailbox_id: str | None = None
    password: str | None = field(default=None, repr=False)
    source_valid: bool = False  # decides how much of source_email the output may show
    destination_valid: bool = False

    @property
    def is_valid(self) -> bool:
        return self.category is RowCategory.VALID

    def __repr__(self) -> str:
        # A swapped column puts a password in an email field: logs get the masked view only.
        shown = self.as_dict()
        return (
            f"BulkRow(row={self.row}, category={self.category.value}, "
            f"source_email={shown['source_email']!r}, destination_email={shown['destination_email']!r}, "
            f"message={self.message!r})"
        )

    def as_dict(self) -> dict[str, Any]:
        source = self.source_email or ""
        destination = self.destination_email or ""
        server = self.server.as_dict() if self.server else dict.fromkeys(SERVER_KEYS)
        return {
            "row": self.row,
            "category": self.category.value,
            "source_email": (mask_email(source) if self.source_valid else mask_opaque(source)) or None,
            "destination_email": (destination if self.destination_valid else mask_opaque(destination))
            or None,
            "destination_mailbox_id": self.destination_mailbox_id,
            **server,
            "message": self.message,
        }


def categorize(
    lines: Iterable[ParsedLine],
    *,
    server: ImapServer | None,
    mailbox_id_for: Callable[[str], str | None],
    destination_busy: Callable[[str], bool],
    server_defaults: ServerRequest | None = None,
    allow_private_hosts: bool = False,
) -> list[BulkRow]:
    """Each line's category, first failing check wins, in this order: malformed_row,
    wrong_column_count, invalid_source_email, missing_password, invalid_destination (syntax),
    invalid_server, invalid_destination (``mailbox_id_for`` finds no mailbox),
    destination_busy (``destination_busy(mailbox_id)``), duplicate_row.

    ``server`` is the request's server; None means per-row servers (6 columns), whose blank
    port/security cells fall back to ``server_defaults`` and then 993/ssl.

    A duplicate is a row whose source and destination (case-insensitive) equal those of an
    earlier *valid* row: a corrected copy of a rejected row is the one to keep.

    Not a category: source equal to destination. Moving a domain from Google to Mailroom keeps
    every address, so that is the normal case, not a mistake. Two rows into one destination (two
    old accounts merged into one mailbox) are valid too; the scheduler never runs two jobs into
    one mailbox at once. Lookups run once per distinct destination.
    """
    mailbox_ids: dict[str, str | None] = {}
    busy: dict[str, bool] = {}
    valid_pairs: dict[tuple[str, str], int] = {}
    rows: list[BulkRow] = []
    for line in lines:
        row = _check_line(line, server=server, defaults=server_defaults, allow_private=allow_private_hosts)
        if row.is_valid:
            row = _check_destination(row, mailbox_ids, busy, mailbox_id_for, destination_busy)
        if row.is_valid:
            pair = (_source_key(row.source_email or ""), row.destination_email or "")
            if pair in valid_pairs:
                row = _invalid(
                    row,
                    RowCategory.DUPLICATE_ROW,
                    f"same source and destination as row {valid_pairs[pair]}; this row is skipped",
                )
            else:
                valid_pairs[pair] = row.row
        rows.append(row)
    return rows


def _source_key(source_email: str) -> str:
    return addresses.normalize_any(source_email)


def _invalid(row: BulkRow, category: RowCategory, message: str) -> BulkRow:
    # An invalid row keeps no password: nothing will ever log in with it.
    return replace(row, category=category, message=message, password=None)


def _check_line(
    line: ParsedLine, *, server: ImapServer | None, defaults: ServerRequest | None, allow_private: bool
) -> BulkRow:
    """The checks that need nothing but the line itself."""
    fields = line.fields
    source = fields[0].strip() if fields else None
    if line.error is not None:
        return BulkRow(line.row, RowCategory.MALFORMED_ROW, source, None, line.error)
    if any(cell != cell.lstrip() and cell.lstrip().startswith('"') for cell in fields):
        # `a@x.com, "pa,ss"` reads as the password ` "pa` plus a stray column: quotes only count
        # at the very start of a field, so say so instead of migrating with a wrong password.
        message = "a quote follows a space; remove the space after the comma so the quotes are read"
        return BulkRow(line.row, RowCategory.MALFORMED_ROW, source, None, message)
    expected = PER_ROW_COLUMNS if server is None else BASIC_COLUMNS
    if len(fields) != len(expected):
        message = _column_count_message(len(fields), expected)
        return BulkRow(line.row, RowCategory.WRONG_COLUMN_COUNT, source, None, message)
    source, password, destination = fields[0].strip(), fields[1], fields[2].strip()
    source_valid = _is_source_email(source)
    destination_email = _hosted_or_none(destination)
    base = BulkRow(
        line.row,
        RowCategory.VALID,
        source,
        destination_email or destination,
        source_valid=source_valid,
        destination_valid=destination_email is not None,
    )
    if not source_valid:
        return _invalid(base, RowCategory.INVALID_SOURCE_EMAIL, "source_email is not a valid email address")
    if not password.strip():
        return _invalid(base, RowCategory.MISSING_PASSWORD, "source_password is empty")
    if destination_email is None:
        message = (
            "destination_email is not a valid email address" if destination else "destination_email is empty"
        )
        return _invalid(base, RowCategory.INVALID_DESTINATION, message)
    if server is None:
        try:
            server = _row_server(fields[3:], defaults or ServerRequest(), allow_private=allow_private)
        except ValueError as exc:
            return _invalid(base, RowCategory.INVALID_SERVER, str(exc))
    return replace(base, server=server, password=password)


def _column_count_message(found: int, expected: Sequence[str]) -> str:
    message = f"expected {len(expected)} columns ({','.join(expected)}), found {found}"
    if found == len(PER_ROW_COLUMNS) and len(expected) == len(BASIC_COLUMNS):
        return f"{message}; set per_row_server to true for rows with their own server"
    if found == len(BASIC_COLUMNS) and len(expected) == len(PER_ROW_COLUMNS):
        return f"{message}; set per_row_server to false for rows without a server"
    if found > len(expected):
        return f'{message}; wrap a password that contains a comma in double quotes: "pa,ss"'
    return message


def _is_source_email(source: str) -> bool:
    try:
        addresses.normalize_any(source)
    except addresses.InvalidAddress:
        return False
    return True


def _hosted_or_none(destination: str) -> str | None:
    try:
        return addresses.normalize_hosted(destination)
    except addresses.InvalidAddress:
        return None


def _row_server(cells: Sequence[str], defaults: ServerRequest, *, allow_private: bool) -> ImapServer:
    host = cells[0].strip() or (defaults.source_host or "")
    port = check_port(cells[1], default=check_port(defaults.source_port))
    security = check_security(cells[2], default=check_security(defaults.source_security))
    if not host:
        raise ValueError("source_host is empty")
    return ImapServer(check_host(host, allow_private=allow_private), port, security)


def _check_destination(
    row: BulkRow,
    mailbox_ids: dict[str, str | None],
    busy: dict[str, bool],
    mailbox_id_for: Callable[[str], str | None],
    destination_busy: Callable[[str], bool],
) -> BulkRow:
    """The checks that ask the organization's state, memoized per destination."""
    destination = row.destination_email or ""
    if destination not in mailbox_ids:
        mailbox_ids[destination] = mailbox_id_for(destination)
    mailbox_id = mailbox_ids[destination]
    if mailbox_id is None:
        return _invalid(
            row, RowCategory.INVALID_DESTINATION, "destination_email is not a mailbox of this organization"
        )
    if mailbox_id not in busy:
        busy[mailbox_id] = destination_busy(mailbox_id)
    row = replace(row, destination_mailbox_id=mailbox_id)
    if busy[mailbox_id]:
        message = (
            "the destination mailbox already has an active migration; cancel it or wait for it to finish"
        )
        return _invalid(row, RowCategory.DESTINATION_BUSY, message)
    return row


def category_counts(rows: Iterable[BulkRow]) -> dict[str, int]:
    """Every category with its count (zeros included, so clients read fixed keys), and total."""
    counted = Counter(row.category for row in rows)
    counts = {category.value: counted.get(category, 0) for category in RowCategory}
    counts["total"] = sum(counted.values())
    return counts
