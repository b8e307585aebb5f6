"""The bulk request's vocabulary: providers and securities, the data's columns, the request's server
fields, the organization limits a batch is held to, and the errors that refuse a request as a whole."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """The request's server fields, as the preview and start endpoints receive them."""

    provider: str | None = None
    source_host: str | None = None
    source_port: int | None = None
    source_security: str | None = None
    per_row_server: bool = False
