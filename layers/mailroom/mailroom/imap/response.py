"""Reading IMAP responses as aioimaplib hands them over.

aioimaplib gives a command's response as a list: one ``bytes`` per line (untagged lines without
their ``* `` and, for most commands, without the command name), one ``bytearray`` per literal that
followed a line ending in ``{n}``, and, last, the text of the tagged completion line. A response
whose data carries literals is spread over several entries; ``split_responses`` puts them back
together and ``tokenize`` turns one into values: atoms are ``str``, quoted strings and literals
``bytes``, ``NIL`` is None and parenthesized lists are lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeAlias

from mailroom.imap.models import FetchedMessage

Value: TypeAlias = "str | bytes | list[Value] | None"
Part: TypeAlias = bytes | bytearray

_LITERAL = re.compile(rb"~?\{(\d+)\+?\}")
_EXISTS = re.compile(rb"^(\d+) EXISTS", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_MONTHS = {
    name: index
    for index, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_INTERNALDATE = re.compile(
    r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*"
)


class ResponseError(ValueError):
    """A response that does not follow the IMAP grammar."""


def data_parts(lines: Sequence[Part]) -> Sequence[Part]:
    """The untagged data of a response: everything but the tagged completion text at the end."""
    return lines[:-1]


def split_responses(parts: Sequence[Part]) -> list[list[Part]]:
    """The parts grouped into one list per untagged response.

    A line after a literal continues the same response when it starts with a space or ``)``
    (``BODY[] {12}`` literal ``)``, or `` UID 7)`` on servers that put items after the body); any
    other line starts the next response, as does every line that follows a line.
    """
    groups: list[list[Part]] = []
    after_literal = False
    for part in parts:
        if isinstance(part, bytearray):
            if groups:
                groups[-1].append(part)
            after_literal = True
            continue
        if after_literal and groups and part[:1] in (b" ", b")"):
            groups[-1].append(part)
        elif part:
            groups.append([part])
        after_literal = False
    return groups


def tokenize(parts: Sequence[Part]) -> list[Value]:
    """The values of one response (see the module docstring); ResponseError if it is malformed."""
    stack: list[list[Value]] = [[]]
    literal_pending = False
    for part in parts:
        if isinstance(part, bytearray):
            if not literal_pending:
                raise ResponseError("literal data without a literal announcement")
            stack[-1].append(bytes(part))
            literal_pending = False
            continue
        if literal_pending:
            raise ResponseError("a literal was announced but did not follow")
        literal_pending = _tokenize_line(bytes(part), stack)
    if literal_pending:
        raise ResponseError("a literal was announced but did not follow")
    if len(stack) != 1:
        raise ResponseError("unbalanced parentheses")
    return stack[0]


def _tokenize_line(text: bytes, stack: list[list[Value]]) -> bool:
    """Appends the line's values to ``stack``; True if the line ends announcing a literal."""
    index, length = 0, len(text)
    while index < length:
        char = text[index : index + 1]
        if char == b" ":
            index += 1
        elif char == b"(":
            inner: list[Value] = []
            stack[-1].append(inner)
            stack.append(inner)
            index += 1
        elif char == b")":
            if len(stack) == 1:
                raise ResponseError("unbalanced parentheses")
            stack.pop()
            index += 1
        elif char == b'"':
            value, index = _quoted(text, index)
            stack[-1].append(value)
        elif char == b"{" or text.startswith(b"~{", index):
            if not _LITERAL.fullmatch(text, index):
                raise ResponseError(f"malformed literal announcement {text[index : index + 30]!r}")
            return True
        else:
            atom, index = _atom(text, index)
            stack[-1].append(None if atom.upper() == "NIL" else atom)
    return False


def _quoted(text: bytes, index: int) -> tuple[bytes, int]:
    out = bytearray()
    index += 1
    length = len(text)
    while index < length:
        byte = text[index]
        if byte == 0x5C and index + 1 < length:  # backslash escapes the next character
            out.append(text[index + 1])
            index += 2
        elif byte == 0x22:
            return bytes(out), index + 1
        else:
            out.append(byte)
            index += 1
    raise ResponseError("unterminated quoted string")


def _atom(text: bytes, index: int) -> tuple[str, int]:
    # A section like BODY[HEADER.FIELDS (SUBJECT)] holds spaces and parentheses: it is one atom.
    start, depth, length = index, 0, len(text)
    while index < length:
        byte = text[index]
        if byte == 0x5B:
            depth += 1
        elif byte == 0x5D and depth:
            depth -= 1
        elif depth == 0 and byte in b' ()"':
            break
        index += 1
    return text[start:index].decode("utf-8", "replace"), index


def text(token: Value) -> str:
    """A string token (atom, quoted or literal) as text; ResponseError for NIL or a list."""
    if isinstance(token, str):
        return token
    if isinstance(token, bytes):
        return token.decode("utf-8", "replace")
    raise ResponseError(f"expected a string, got {token!r}")


@dataclass(frozen=True)
class ListEntry:
    attributes: frozenset[str]
    delimiter: str | None
    raw_name: str


def parse_list(lines: Sequence[Part]) -> list[ListEntry]:
    """The mailboxes of a LIST response (``(\\HasNoChildren) "/" INBOX`` per line)."""
    entries: list[ListEntry] = []
    for group in split_responses(data_parts(lines)):
        tokens = tokenize(group)
        if len(tokens) < 3 or not isinstance(tokens[0], list):
            raise ResponseError(f"malformed LIST response {group[0][:100]!r}")
        attributes = frozenset(text(attribute) for attribute in tokens[0])
        delimiter = None if tokens[1] is None else text(tokens[1])
        entries.append(ListEntry(attributes, delimiter or None, text(tokens[2])))
    return entries


def parse_status(lines: Sequence[Part]) -> dict[str, int]:
    """The counters of a STATUS response (``"INBOX" (MESSAGES 3 UIDVALIDITY 1)``), keys upper-case."""
    for group in split_responses(data_parts(lines)):
        tokens = tokenize(group)
        if len(tokens) >= 2 and isinstance(tokens[-1], list):
            items = tokens[-1]
            return {
                text(key).upper(): int(text(value))
                for key, value in zip(items[::2], items[1::2], strict=False)
            }
    raise ResponseError("STATUS response without counters")


def parse_search(lines: Sequence[Part]) -> list[int]:
    """The numbers of a SEARCH response (``1 2 3``; an empty line when nothing matched)."""
    numbers: list[int] = []
    for group in split_responses(data_parts(lines)):
        for token in tokenize(group):
            if isinstance(token, str) and token.isdigit():
                numbers.append(int(token))
    return numbers


def parse_select(lines: Sequence[Part]) -> tuple[int | None, int | None]:
    """(UIDVALIDITY, EXISTS) from a SELECT or EXAMINE response, None for what the server left out."""
    uidvalidity: int | None = None
    exists: int | None = None
    for line in lines:
        if isinstance(line, bytearray):
            continue
        if (match := _UIDVALIDITY.search(line)) is not None:
            uidvalidity = int(match.group(1))
        elif (match := _EXISTS.match(line)) is not None:
            exists = int(match.group(1))
    return uidvalidity, exists


def parse_fetch(lines: Sequence[Part]) -> tuple[list[dict[str, Value]], list[str]]:
    """The items of each FETCH response (keys upper-case), and a description of each malformed one.

    A malformed response is reported rather than raised so that one message a server renders oddly
    does not hide the others of the same FETCH.
    """
    fetched: list[dict[str, Value]] = []
    problems: list[str] = []
    for group in split_responses(data_parts(lines)):
        try:
            tokens = tokenize(group)
            if len(tokens) < 3 or text(tokens[1]).upper() != "FETCH" or not isinstance(tokens[2], list):
                raise ResponseError("not a FETCH response")
            items = tokens[2]
            if len(items) % 2:
                raise ResponseError("odd number of FETCH items")
            fetched.append(
                {text(key).upper(): value for key, value in zip(items[::2], items[1::2], strict=True)}
            )
        except ResponseError as exc:
            problems.append(f"{exc}: {bytes(group[0][:80])!r}")
    return fetched, problems


def parse_sizes(lines: Sequence[Part], *, by_uid: bool) -> dict[int, int]:
    """RFC822.SIZE per message of a ``FETCH (UID RFC822.SIZE)`` response, keyed by UID (``by_uid``)
    or by sequence number; a response without a readable size is left out."""
    sizes: dict[int, int] = {}
    for group in split_responses(data_parts(lines)):
        try:
            tokens = tokenize(group)
        except ResponseError:
            continue
        if len(tokens) < 3 or text(tokens[1]).upper() != "FETCH" or not isinstance(tokens[2], list):
            continue
        items = tokens[2]
        values = {text(k).upper(): v for k, v in zip(items[::2], items[1::2], strict=False)}
        number = values.get("UID") if by_uid else tokens[0]
        size = values.get("RFC822.SIZE")
        if isinstance(number, str) and number.isdigit() and isinstance(size, str) and size.isdigit():
            sizes[int(number)] = int(size)
    return sizes


def fetched_message(items: dict[str, Value]) -> FetchedMessage | None:
    """The message a ``UID FETCH (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`` response carries.

    None for responses without a UID or a body: unsolicited flag updates, or a message the server
    could not return (``BODY[] NIL``).
    """
    uid = items.get("UID")
    body = items.get("BODY[]")
    if not isinstance(uid, str) or not uid.isdigit() or not isinstance(body, bytes):
        return None
    flags = items.get("FLAGS")
    size = items.get("RFC822.SIZE")
    date = items.get("INTERNALDATE")
    return FetchedMessage(
        uid=int(uid),
        raw=body,
        flags=frozenset(text(flag) for flag in flags) if isinstance(flags, list) else frozenset(),
        internal_date=parse_internaldate(text(date)) if isinstance(date, bytes | str) else None,
        size=int(size) if isinstance(size, str) and size.isdigit() else len(body),
    )


def parse_internaldate(value: str) -> datetime | None:
    """``17-Jul-1996 02:44:25 -0700`` as an aware datetime; None if it is not in that form.

    The month is looked up by hand: ``strptime``'s ``%b`` follows the process locale.
    """
    match = _INTERNALDATE.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, off_hours, off_minutes = match.groups()
    month_number = _MONTHS.get(month.upper())
    if month_number is None:
        return None
    offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
    try:
        return datetime(
            int(year),
            month_number,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
    except ValueError:
        return None
