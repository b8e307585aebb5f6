"""Bulk verification, the pure part: reading the input (CSV or a JSON list), finding duplicates,
cutting the work into chunks that keep each domain's addresses together, progress and ETA, and
writing the results CSV.

Duplicates: two rows are the same address when their trimmed text matches case-insensitively (the
domain is case-insensitive, and so are local parts in practice). The address is verified once, and
every row gets the result.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_ADDRESSES = 100_000
MAX_ADDRESS_LENGTH = 512
MAX_INLINE_CSV = 5_000_000  # characters: a request body stays under Lambda's 6 MB payload limit
MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # a pre-signed upload: the whole file is read in the API function
CHUNK_SIZE = 500  # addresses per work item (one SQS message, one Lambda record)
EMAIL_COLUMNS = ("email", "e-mail", "email_address", "address", "mail")
RESULT_COLUMNS = ("row", "email", "status", "reasons", "normalized", "suggestion", "syntax", "domain", "mx",
                  "disposable", "role", "free_provider", "catch_all", "smtp")  # fmt: skip


class BadInput(ValueError):
    pass


def key_of(address: str) -> str:
    """What makes two rows the same address."""
    return address.strip().lower()


def domain_of(address: str) -> str:
    return key_of(address).rpartition("@")[2]


def from_csv(text: str) -> list[str]:
    """The addresses of a CSV: the column named email (or e-mail, address, ...) if the first row
    names one, else the first column of every row. Blank rows are skipped."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise BadInput(f"not a CSV file: {exc}") from exc
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in EMAIL_COLUMNS if name in header), None)
    if column is None:
        return [row[0].strip() for row in rows]
    return [row[column].strip() if column < len(row) else "" for row in rows[1:]]


def check_rows(rows: Sequence[str]) -> None:
    if not rows:
        raise BadInput("no addresses")
    if len(rows) > MAX_ADDRESSES:
        raise BadInput(f"at most {MAX_ADDRESSES} addresses per job (got {len(rows)})")
    for index, row in enumerate(rows):
        if len(row) > MAX_ADDRESS_LENGTH:
            raise BadInput(f"row {index + 1}: longer than {MAX_ADDRESS_LENGTH} characters")


def unique(rows: Iterable[str]) -> list[str]:
    """Each distinct address once (first spelling kept), in input order."""
    seen: dict[str, str] = {}
    for row in rows:
        seen.setdefault(key_of(row), row.strip())
    return list(seen.values())


def chunks(addresses: Sequence[str], size: int = CHUNK_SIZE) -> list[list[str]]:
    """Addresses grouped by domain, domains packed into chunks of at most ``size``: each domain's
    addresses stay together (a domain larger than a chunk fills whole chunks of its own), so DNS is
    asked about a domain by as few workers as possible."""
    by_domain: dict[str, list[str]] = {}
    for address in addresses:
        by_domain.setdefault(domain_of(address), []).append(address)
    result: list[list[str]] = []
    current: list[str] = []
    for group in sorted(by_domain.values(), key=len, reverse=True):
        for start in range(0, len(group), size):
            part = group[start : start + size]
            if len(current) + len(part) > size:
                result.append(current)
                current = []
            current.extend(part)
    if current:
        result.append(current)
    return result


@dataclass(frozen=True, slots=True)
class Progress:
    percent: int
    eta_seconds: int | None


def progress(*, done: int, total: int, elapsed_seconds: float | None) -> Progress:
    """Share of unique addresses verified, and the time left at the rate so far."""
    percent = 100 if total == 0 else min(100, done * 100 // total)
    if not done or elapsed_seconds is None or done >= total:
        return Progress(percent, 0 if done >= total else None)
    rate = done / max(elapsed_seconds, 0.001)
    return Progress(percent, int((total - done) / rate + 0.999))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell a spreadsheet would run as a formula (CSV injection) is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def results_csv(rows: Sequence[str], results: dict[str, dict[str, object]]) -> bytes:
    """One line per input row (duplicates included), in input order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    for index, row in enumerate(rows, 1):
        result = results.get(key_of(row))
        if result is None:
            writer.writerow([index, row, "", "", "", "", *([""] * 8)])
            continue
        checks = result["checks"]
        assert isinstance(checks, dict)
        reasons = result["reasons"]
        assert isinstance(reasons, list)
        writer.writerow(
            [
                index,
                _cell(row),
                result["status"],
                " ".join(str(r["code"]) for r in reasons),
                _cell(result["normalized"]),
                _cell(result["suggestion"]),
                *(_cell(checks.get(name)) for name in RESULT_COLUMNS[6:]),
            ]
        )
    return out.getvalue().encode("utf-8")
