"""The CSV ``data`` of a bulk request: one row per line, ``source_email,source_password,
destination_email`` (3 columns) or, with ``per_row_server``, ``...,source_host,source_port,
source_security`` (6 columns). Each line is parsed on its own with the standard ``csv`` module,
strictly: the spec says one row per line, and a stray quote then spoils one row (``malformed_row``)
instead of swallowing the rest of the file. Fields are kept as written here; ``rows`` trims the
emails and keeps passwords byte for byte."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailroom.domain.bulk.request import BASIC_COLUMNS, MAX_DATA_CHARS, PER_ROW_COLUMNS, InvalidBulkRequest

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


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
