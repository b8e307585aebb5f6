"""Bulk IMAP migrations, the pure part: the CSV ``data`` of trekmail-migrations-api.txt's "Bulk
Migration API", each row's category, the server settings, the organization's limits, the preview
(counts, time and storage estimates), batch names, and the batch's state rules and scheduling.
No I/O here: what needs the store (is this a mailbox of the organization? is it busy?) or the
IMAP presets comes in as a function.

Data: one row per line, ``source_email,source_password,destination_email`` (3 columns) or, with
``per_row_server``, ``...,source_host,source_port,source_security`` (6 columns). Each line is
parsed on its own with the standard ``csv`` module, strictly: the spec says one row per line, and
a stray quote then spoils one row (``malformed_row``) instead of swallowing the rest of the file.
Emails are trimmed; passwords are kept byte for byte (spaces, commas, quotes), since they are
someone else's password and a trimmed one simply fails to log in, hours later.

Passwords never leave a ``BulkRow`` except as ``row.password`` for the code that starts the jobs:
not in ``as_dict``, not in ``repr``, not in messages. Messages never echo a field either (a
swapped column puts a password where an email was expected), and a source email is shown masked.
"""

from __future__ import annotations

import csv
import heapq
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from mailroom.domain import addresses, migrations, ssrf
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain

# --- the request's vocabulary ----------------------------------------------------------------------

PROVIDERS: tuple[str, ...] = ("gmail", "outlook", "yahoo", "icloud", "generic_imap")
GENERIC_PROVIDER = "generic_imap"
SECURITIES: tuple[str, ...] = ("ssl", "tls", "none")  # ssl: implicit TLS; tls: STARTTLS; none: plain
DEFAULT_PORT = 993
DEFAULT_SECURITY = "ssl"

BASIC_COLUMNS: tuple[str, ...] = ("source_email", "source_password", "destination_email")
SERVER_COLUMNS: tuple[str, ...] = ("source_host", "source_port", "source_security")
PER_ROW_COLUMNS: tuple[str, ...] = BASIC_COLUMNS + SERVER_COLUMNS

# 1,000 rows (the largest plan's batch) of long addresses and passwords fit in well under this; the
# cap stops a multi-megabyte body from being split and validated before the row limit refuses it.
MAX_DATA_CHARS = 1_000_000
MAX_BATCH_NAME_LENGTH = 100

# Organization limit keys (store/organizations.py DEFAULT_LIMITS holds their defaults).
BATCH_ROWS_LIMIT = "migration_batch_rows"
CONCURRENCY_LIMIT = "migration_concurrency"

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"
# A single-label or dotted name: what a private network may call its IMAP server ("dovecot").
_LOOSE_HOST_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class InvalidBulkRequest(ValueError):
    """The request as a whole cannot be previewed or started; ``field`` names the request field
    to point at (a 422 ``validation_error``). The message never quotes the data."""

    def __init__(self, message: str, *, field: str = "data") -> None:
        super().__init__(message)
        self.field = field


class RowLimitExceeded(InvalidBulkRequest):
    """More rows than the organization's ``migration_batch_rows`` limit allows."""

    def __init__(self, rows: int, limit: int) -> None:
        super().__init__(
            f"The data has {rows} rows; this organization's limit '{BATCH_ROWS_LIMIT}' allows at most "
            f"{limit} rows per batch. Split the data into batches of {limit} rows or fewer.",
            field="data",
        )
        self.rows = rows
        self.limit = limit
        self.limit_name = BATCH_ROWS_LIMIT


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


# --- server settings -------------------------------------------------------------------------------


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


_SERVER_KEYS = ("source_host", "source_port", "source_security")


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """The request's server fields, as the preview and start endpoints receive them."""

    provider: str | None = None
    source_host: str | None = None
    source_port: int | None = None
    source_security: str | None = None
    per_row_server: bool = False


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


# --- parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One non-blank data line: its 1-based line number in ``data`` and its fields as written
    (``fields`` is empty and ``error`` set when the csv module could not read the line)."""

    row: int
    fields: tuple[str, ...] = field(repr=False)
    error: str | None = None


def parse_data(data: str) -> list[ParsedLine]:
    """The data lines of ``data``: a leading BOM dropped, CRLF/CR/LF all line breaks, blank lines
    (also ``,,`` lines, which spreadsheets export for empty rows) and a header row skipped.

    A header is the first non-blank line when its cells are the column names of either format
    (any case, any spacing), so a header in the other format does not turn into a bad data row.
    """
    if len(data) > MAX_DATA_CHARS:
        raise InvalidBulkRequest(f"data is longer than {MAX_DATA_CHARS} characters; split it into batches")
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    lines: list[ParsedLine] = []
    seen_first = False
    for number, text in enumerate(_LINE_BREAK_RE.split(data), start=1):
        line = _parse_line(number, text)
        if line is None:
            continue
        if not seen_first:
            seen_first = True
            if _is_header(line.fields):
                continue
        lines.append(line)
    if not lines:
        raise InvalidBulkRequest("data has no rows")
    return lines


def _parse_line(number: int, text: str) -> ParsedLine | None:
    # The first and last columns are never a password, so the line's outer whitespace can go: a
    # trailing space after a closing quote would otherwise make the line unreadable to strict csv.
    text = text.strip()
    if not text:
        return None
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error:
        return ParsedLine(
            number,
            (),
            'a quoted field is not closed, or has text after its closing quote; write a " inside a '
            'quoted field as ""',
        )
    if all(not cell.strip() for cell in fields):
        return None
    return ParsedLine(number, tuple(fields))


def _is_header(fields: Sequence[str]) -> bool:
    names = tuple(cell.strip().lower() for cell in fields)
    return names in (BASIC_COLUMNS, PER_ROW_COLUMNS)


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
        server = self.server.as_dict() if self.server else dict.fromkeys(_SERVER_KEYS)
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


# --- limits ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_rows_per_batch: int
    concurrent_per_account: int  # jobs of the organization's batches running at once
    global_capacity: int  # migrations running at once on the whole deployment, single and bulk

    @classmethod
    def from_org_limits(cls, limits: Mapping[str, int], *, global_capacity: int) -> BatchLimits:
        """From the organization's limits merged over DEFAULT_LIMITS (services.mailboxes.org_limits)."""
        return cls(int(limits[BATCH_ROWS_LIMIT]), int(limits[CONCURRENCY_LIMIT]), global_capacity)

    @property
    def effective_concurrency(self) -> int:
        """How many jobs of one batch can run at once at best (at least 1, for estimates)."""
        return max(1, min(self.concurrent_per_account, self.global_capacity))

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_rows_per_batch": self.max_rows_per_batch,
            "concurrent_per_account": self.concurrent_per_account,
            "global_capacity": self.global_capacity,
        }


def check_row_limit(rows: int, limit: int) -> None:
    """Every data row counts (invalid ones too): the limit is on what a user sends, and a batch
    that passes must not start failing once someone fixes its invalid rows."""
    if rows > limit:
        raise RowLimitExceeded(rows, limit)


# --- estimates -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What an estimate assumes where nothing is known. The defaults are placeholders, NOT
    measurements: a mid-sized mailbox (5,000 messages of 75 KB) and a per-job rate of 10
    messages/second with 30 s to connect and plan. Replace ``messages_per_second`` with the rate
    bench/ measures for the IMAP fetch once it exists."""

    average_mailbox_messages: int = 5_000
    average_message_bytes: int = 75_000
    messages_per_second: float = 10.0
    per_job_overhead_seconds: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "average_mailbox_messages": self.average_mailbox_messages,
            "average_message_bytes": self.average_message_bytes,
            "messages_per_second": self.messages_per_second,
            "per_job_overhead_seconds": self.per_job_overhead_seconds,
        }


DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass(frozen=True, slots=True)
class TimeEstimate:
    estimated_seconds: int
    human: str
    concurrency: int
    waves: int  # ceil(jobs / concurrency): how many rounds of jobs, were all the same size
    messages: int
    rows_assumed: int  # rows whose message count is the assumed average
    assumptions: Assumptions

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated_seconds": self.estimated_seconds,
            "human": self.human,
            "concurrency": self.concurrency,
            "waves": self.waves,
            "messages": self.messages,
            "rows_assumed": self.rows_assumed,
            "assumptions": self.assumptions.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class StorageEstimate:
    estimated_bytes: int
    available_bytes: int
    fits: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated_bytes": self.estimated_bytes,
            "available_bytes": self.available_bytes,
            "fits": self.fits,
        }


def _row_messages(rows: Sequence[BulkRow], counts: Mapping[int, int], assumptions: Assumptions) -> list[int]:
    return [counts.get(row.row, assumptions.average_mailbox_messages) for row in rows]


def estimate_time(
    rows: Sequence[BulkRow],
    *,
    concurrency: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
) -> TimeEstimate:
    """How long the valid rows take: each job ``overhead + messages / rate``, started in row order
    as slots free up (what ``next_jobs_to_start`` does), ``concurrency`` at a time. With every
    mailbox the same size this is exactly ``ceil(rows / concurrency)`` waves of one job's time.
    ``message_counts`` maps a row number to its known message count."""
    valid = [row for row in rows if row.is_valid]
    counts = message_counts or {}
    messages = _row_messages(valid, counts, assumptions)
    concurrency = max(1, concurrency)
    rate = max(assumptions.messages_per_second, 1e-9)
    durations = [assumptions.per_job_overhead_seconds + count / rate for count in messages]
    seconds = math.ceil(_makespan(durations, concurrency))
    return TimeEstimate(
        estimated_seconds=seconds,
        human=human_duration(seconds) if valid else "nothing to migrate",
        concurrency=concurrency,
        waves=math.ceil(len(valid) / concurrency),
        messages=sum(messages),
        rows_assumed=sum(1 for row in valid if row.row not in counts),
        assumptions=assumptions,
    )


def _makespan(durations: Sequence[float], workers: int) -> float:
    """When the last job ends if each starts, in order, on the first worker to be free."""
    free_at = [0.0] * min(workers, len(durations))
    for duration in durations:
        heapq.heapreplace(free_at, free_at[0] + duration)
    return max(free_at, default=0.0)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def human_duration(seconds: int) -> str:
    """``about 2 hours 5 minutes``: minutes rounded up (an estimate that runs over disappoints)."""
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"about {_plural(minutes, 'minute')}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {_plural(hours, 'hour')}" + (f" {_plural(minutes, 'minute')}" if minutes else "")
    days, hours = divmod(math.ceil(seconds / 3600), 24)
    return f"about {_plural(days, 'day')}" + (f" {_plural(hours, 'hour')}" if hours else "")


def estimate_storage(
    rows: Sequence[BulkRow],
    *,
    available_bytes: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
) -> StorageEstimate:
    """Messages of the valid rows times the average message size, against what the caller says
    the organization's storage pool has free."""
    valid = [row for row in rows if row.is_valid]
    messages = sum(_row_messages(valid, message_counts or {}, assumptions))
    estimated = messages * assumptions.average_message_bytes
    return StorageEstimate(estimated, max(available_bytes, 0), estimated <= available_bytes)


# --- the preview -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    rows: tuple[BulkRow, ...]
    provider: str
    limits: BatchLimits
    time_estimate: TimeEstimate
    storage: StorageEstimate

    @property
    def valid_rows(self) -> list[BulkRow]:
        return [row for row in self.rows if row.is_valid]

    @property
    def counts(self) -> dict[str, int]:
        return category_counts(self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "counts": self.counts,
            "can_start": bool(self.valid_rows),
            "rows": [row.as_dict() for row in self.rows],
            "limits": self.limits.as_dict(),
            "time_estimate": self.time_estimate.as_dict(),
            "storage": self.storage.as_dict(),
        }


def preview(
    data: str,
    *,
    request: ServerRequest,
    limits: BatchLimits,
    resolve_preset: PresetResolver,
    mailbox_id_for: Callable[[str], str | None],
    destination_busy: Callable[[str], bool],
    available_storage_bytes: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
    allow_private_hosts: bool = False,
) -> Preview:
    """Everything ``POST /migrations/bulk/preview`` answers, and what ``POST /migrations/bulk``
    starts (``valid_rows``). Raises InvalidBulkRequest (RowLimitExceeded for too many rows)."""
    server = resolve_request_server(
        request, resolve_preset=resolve_preset, allow_private_hosts=allow_private_hosts
    )
    lines = parse_data(data)
    check_row_limit(len(lines), limits.max_rows_per_batch)
    rows = categorize(
        lines,
        server=server,
        mailbox_id_for=mailbox_id_for,
        destination_busy=destination_busy,
        server_defaults=request,
        allow_private_hosts=allow_private_hosts,
    )
    return Preview(
        rows=tuple(rows),
        provider=provider_of(request),
        limits=limits,
        time_estimate=estimate_time(
            rows,
            concurrency=limits.effective_concurrency,
            assumptions=assumptions,
            message_counts=message_counts,
        ),
        storage=estimate_storage(
            rows,
            available_bytes=available_storage_bytes,
            assumptions=assumptions,
            message_counts=message_counts,
        ),
    )


# --- batch names -----------------------------------------------------------------------------------


def batch_name(raw: str | None, *, now: datetime, accounts: int) -> str:
    """The name as given (trimmed), or ``Bulk migration 2026-11-21 14:05 UTC (42 accounts)``."""
    name = (raw or "").strip()
    if not name:
        moment = now.astimezone(UTC)
        return f"Bulk migration {moment:%Y-%m-%d %H:%M} UTC ({_plural(accounts, 'account')})"
    if len(name) > MAX_BATCH_NAME_LENGTH:
        raise InvalidBulkRequest(f"name must be at most {MAX_BATCH_NAME_LENGTH} characters", field="name")
    if _CONTROL_RE.search(name):
        raise InvalidBulkRequest("name must not contain control characters or line breaks", field="name")
    return name


# --- batch state -----------------------------------------------------------------------------------
#
# A batch's jobs are single migrations (their statuses are the single-migration API's). A job
# created by a batch waits, ``pending`` and not ``started``, until the batch hands it to the state
# machine; from then on it holds a slot until it is completed, failed or cancelled.
#
# The batch stores two flags of its own, because they are decisions, not job outcomes: ``cancelled``
# (the user cancelled it) and ``paused`` (the circuit breaker below tripped; only a user's resume
# clears it). Everything else about its status follows from its jobs.
#
# When a batch pauses: after PAUSE_AFTER_HOST_FAILURES jobs in a row on one source host ended in a
# connection or sign-in failure, while more jobs for that host are waiting. Providers lock accounts
# and throttle addresses that keep failing logins (a whole Gmail batch without app passwords fails
# the same way), so carrying on would hurt the user's accounts; pausing shows the problem and
# waits. Full global capacity is *not* a pause: the batch simply waits and continues by itself.


JobStatus = migrations.JobStatus  # a batch's jobs are ordinary migration jobs
TERMINAL_JOB_STATUSES = migrations.TERMINAL


class BatchStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_BATCH_STATUSES = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED, BatchStatus.CANCELLED}
)


class BatchAction(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"
    RESUME = "resume"
    DELETE = "delete"


_ALLOWED_FROM: dict[BatchAction, frozenset[BatchStatus]] = {
    BatchAction.CANCEL: frozenset({BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.PAUSED}),
    # Retry waits for the batch to settle, so a job is never both running and re-queued.
    BatchAction.RETRY: frozenset(
        {BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED, BatchStatus.CANCELLED}
    ),
    BatchAction.RESUME: frozenset({BatchStatus.PAUSED}),
    BatchAction.DELETE: TERMINAL_BATCH_STATUSES,  # like a single migration: cancel it first
}

PAUSE_AFTER_HOST_FAILURES = 3
# The error codes of a failed job (mailroom/imap/errors.py CODES) that say the source host refused
# or failed us, rather than one mailbox's content; protocol_error means the server did answer.
HOST_FAILURE_CODES = frozenset({"connection_failed", "auth_failed", "tls_failed", "timeout"})


class ActionNotAllowed(ValueError):
    """The action does not apply to a batch in this status (a 409 ``conflict``)."""

    def __init__(self, action: BatchAction, status: BatchStatus) -> None:
        allowed = ", ".join(sorted(_ALLOWED_FROM[action]))
        super().__init__(
            f"A {status.value} batch cannot be {_PAST[action]}; only a batch that is {allowed} can."
        )
        self.action = action
        self.status = status


_PAST = {
    BatchAction.CANCEL: "cancelled",
    BatchAction.RETRY: "retried",
    BatchAction.RESUME: "resumed",
    BatchAction.DELETE: "deleted",
}


@dataclass(frozen=True, slots=True)
class BatchJob:
    """What the batch rules need to know of one job. ``finished_at`` is an ISO 8601 UTC string
    (clock.isoformat), so comparing strings compares times."""

    id: str
    row: int
    status: str
    destination_mailbox_id: str
    source_host: str
    started: bool = False
    error_code: str | None = None
    finished_at: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def waiting(self) -> bool:
        return self.status == JobStatus.PENDING and not self.started

    @property
    def running(self) -> bool:
        return not self.terminal and not self.waiting


def derive_batch_status(
    jobs: Sequence[BatchJob], *, paused: bool = False, cancelled: bool = False
) -> BatchStatus:
    """The batch's status. ``cancelled`` wins at once (the user's decision; jobs still stopping
    show their own status). ``paused`` shows while jobs are waiting; with none left there is
    nothing to resume and the batch finishes normally. No job started yet → pending; some
    running or waiting → processing. Settled: all completed → completed; none completed →
    failed (or cancelled, when every job was cancelled one by one); a mix → completed_with_errors.
    A batch without jobs is vacuously completed (starting one needs a valid row)."""
    if cancelled:
        return BatchStatus.CANCELLED
    if paused and any(job.waiting for job in jobs):
        return BatchStatus.PAUSED
    if jobs and all(job.waiting for job in jobs):
        return BatchStatus.PENDING
    if any(not job.terminal for job in jobs):
        return BatchStatus.PROCESSING
    statuses = {job.status for job in jobs}
    if statuses <= {JobStatus.COMPLETED}:
        return BatchStatus.COMPLETED
    if JobStatus.COMPLETED in statuses:
        return BatchStatus.COMPLETED_WITH_ERRORS
    if statuses == {JobStatus.CANCELLED}:
        return BatchStatus.CANCELLED
    return BatchStatus.FAILED


def allowed_actions(status: BatchStatus) -> list[str]:
    """The actions a client may offer for a batch in ``status`` (for the batch resource)."""
    return sorted(action.value for action, sources in _ALLOWED_FROM.items() if status in sources)


def check_action(action: BatchAction, status: BatchStatus) -> None:
    if status not in _ALLOWED_FROM[action]:
        raise ActionNotAllowed(action, status)


def jobs_to_cancel(jobs: Iterable[BatchJob]) -> list[BatchJob]:
    """Cancel stops the running jobs and cancels the waiting ones; finished ones stay as they are."""
    return [job for job in jobs if not job.terminal]


def jobs_to_retry(jobs: Iterable[BatchJob], *, batch_cancelled: bool = False) -> list[BatchJob]:
    """Retry re-runs the failed jobs. Retrying a cancelled batch undoes the cancel, so the jobs it
    cancelled run too; a job someone cancelled on its own in a live batch stays cancelled. Empty
    means nothing to retry (answer 409 rather than a no-op)."""
    again = {JobStatus.FAILED, JobStatus.CANCELLED} if batch_cancelled else {JobStatus.FAILED}
    return sorted((job for job in jobs if job.status in again), key=lambda job: job.row)


def can_update_job_password(job: BatchJob) -> bool:
    """The spec's PATCH .../jobs/{job}/password is for a failed job (then retry the batch)."""
    return job.status == JobStatus.FAILED


def host_to_pause_for(
    jobs: Sequence[BatchJob],
    *,
    since: str | None = None,
    threshold: int = PAUSE_AFTER_HOST_FAILURES,
    failure_codes: frozenset[str] = HOST_FAILURE_CODES,
) -> str | None:
    """The source host whose last ``threshold`` finished jobs all failed with a host failure and
    which still has waiting jobs, or None. Only jobs finished after ``since`` (the batch's last
    resume or retry) count, so resuming gives the host a fresh chance instead of re-pausing at
    once. A completed job, or one failed for another reason (the host answered), ends a streak;
    a cancelled one neither counts nor ends it."""
    waiting_hosts = {job.source_host for job in jobs if job.waiting}
    for host in sorted(waiting_hosts):
        finished = sorted(
            (
                job
                for job in jobs
                if job.source_host == host
                and job.finished_at is not None
                and job.status != JobStatus.CANCELLED
                and (since is None or job.finished_at > since)
            ),
            key=lambda job: job.finished_at or "",
        )
        streak = 0
        for job in reversed(finished):
            if job.status != JobStatus.FAILED or job.error_code not in failure_codes:
                break
            streak += 1
        if streak >= threshold:
            return host
    return None


def pause_message(host: str, threshold: int = PAUSE_AFTER_HOST_FAILURES) -> str:
    return (
        f"Paused after {threshold} connection or sign-in failures in a row on {host}, to avoid the "
        "provider locking the accounts. Check the server settings and passwords (an app password "
        "may be needed), then resume."
    )


def next_jobs_to_start(
    jobs: Sequence[BatchJob],
    concurrency: int,
    capacity_left: int,
    *,
    busy_mailboxes: Iterable[str] = (),
) -> list[BatchJob]:
    """The waiting jobs to start now, in row order (first come, first served).

    ``concurrency``: how many of this batch's jobs may run at once (``migration_concurrency``);
    ``capacity_left``: free slots right now under the global limit, already lowered by whatever
    else of the organization runs if ``migration_concurrency`` is meant across its batches.
    ``busy_mailboxes``: destination mailboxes running a migration outside this batch. A job whose
    destination mailbox is busy (here or elsewhere) is skipped, not waited on, so later rows run."""
    running = [job for job in jobs if job.running]
    slots = min(concurrency - len(running), capacity_left)
    if slots <= 0:
        return []
    taken = {job.destination_mailbox_id for job in running} | set(busy_mailboxes)
    chosen: list[BatchJob] = []
    for job in sorted((job for job in jobs if job.waiting), key=lambda job: job.row):
        if job.destination_mailbox_id in taken:
            continue
        chosen.append(job)
        taken.add(job.destination_mailbox_id)
        if len(chosen) == slots:
            break
    return chosen


@dataclass(frozen=True, slots=True)
class Tick:
    """What to do with a batch now: its status after this tick, the jobs to start, and the host
    that made it pause (set only on the tick that pauses it; store ``paused`` and the message)."""

    status: BatchStatus
    start: list[BatchJob]
    paused_for_host: str | None = None


def plan_tick(
    jobs: Sequence[BatchJob],
    *,
    paused: bool,
    cancelled: bool,
    concurrency: int,
    capacity_left: int,
    resumed_at: str | None = None,
    busy_mailboxes: Iterable[str] = (),
) -> Tick:
    """One scheduling step, to run whenever a job of the batch finishes (and on a schedule, to
    pick up freed global capacity): pause if the breaker trips, else start what fits."""
    status = derive_batch_status(jobs, paused=paused, cancelled=cancelled)
    if status not in (BatchStatus.PENDING, BatchStatus.PROCESSING):
        return Tick(status, [])
    host = host_to_pause_for(jobs, since=resumed_at)
    if host is not None:
        return Tick(derive_batch_status(jobs, paused=True), [], host)
    start = next_jobs_to_start(jobs, concurrency, capacity_left, busy_mailboxes=busy_mailboxes)
    if start and status is BatchStatus.PENDING:
        status = BatchStatus.PROCESSING
    return Tick(status, start)
