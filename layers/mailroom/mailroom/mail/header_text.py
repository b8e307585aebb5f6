"""Text in outbound headers: which characters a header value may carry, and how Mailroom writes one.

What is refused (``ComposeError`` naming the field), everywhere a value becomes a header: control
characters (U+0000-U+001F except TAB, U+007F-U+009F: CR, LF and NUL, but also VT, FF, the
separators U+001C-U+001E and NEL, which ``str.splitlines`` and the ``email`` package treat as line
breaks), the Unicode line and paragraph separators U+2028 and U+2029, and unpaired surrogates (they
cannot be encoded at all). Bodies may hold any text but unpaired surrogates.

What is encoded instead: everything else. Mailroom writes header values itself rather than through
the ``email`` package's folder, which re-parses what it is given (a display name decoded from an
RFC 2047 encoded word can come out as address syntax) and drops quoting when it folds a long
phrase. Values are written as ASCII: printable ASCII that cannot be mistaken for an encoded word is
folded at spaces as it is; anything else becomes RFC 2047 encoded words (UTF-8, base64: no
character in them means anything to an address parser), at most 75 characters each, a whole number
of characters each, folded between words. A reader decodes adjacent encoded words into exactly the
text given.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from email.policy import Policy

MAX_LINE = 78  # RFC 5322's recommended line length; folding aims for it
MAX_HARD_LINE = 998  # RFC 5322's limit
_WORD_PREFIX = "=?utf-8?b?"
_WORD_SUFFIX = "?="
# 75 characters per encoded word (RFC 2047 section 2): 12 of markup leave 63, i.e. 45 bytes of base64.
_WORD_BYTES = 45
REFUSED_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_REFUSED_IN_BODY_RE = re.compile("[\ud800-\udfff]")
_PLAIN_RE = re.compile(r"^[\x20-\x7e]*$")
_ENCODED_WORD = r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?="
_ENCODED_WORD_GAP_RE = re.compile(rf"({_ENCODED_WORD})\s+(?={_ENCODED_WORD})")
# RFC 5322 msg-id, leniently: printable ASCII without spaces or angle brackets, in angle brackets.
_MESSAGE_ID_RE = re.compile(r"^<[!-;=?-~]{1,900}>$")


class ComposeError(ValueError):
    """A draft Mailroom will not compose: the field, a stable code, and a message stating the rule."""

    def __init__(self, field_name: str, message: str, code: str = "validation_error") -> None:
        super().__init__(message)
        self.field = field_name
        self.code = code
        self.message = message


def describe(char: str) -> str:
    """``U+2028 LINE SEPARATOR``: how an error names a refused character."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"U+{code:04X} (an unpaired surrogate)"
    return f"U+{code:04X} {unicodedata.name(char, 'control character')}"


def refused_in_header(value: str) -> str | None:
    """The first character a header value may not carry (see the module docstring), or None."""
    found = REFUSED_RE.search(value)
    return found.group() if found else None


def shown(value: str, limit: int = 100) -> str:
    """``value`` as an error message may quote it: cut to ``limit`` characters, and what it may not
    hold written as ``\\uXXXX`` (a response cannot even be encoded with an unpaired surrogate)."""
    return REFUSED_RE.sub(lambda found: f"\\u{ord(found.group()):04x}", value[:limit])


def check_header_text(field_name: str, value: str) -> None:
    char = refused_in_header(value)
    if char is not None:
        raise ComposeError(
            field_name,
            f"{field_name} contains {describe(char)}: line breaks, control characters and unpaired "
            "surrogates cannot be part of a header",
        )


def check_body_text(field_name: str, value: str) -> None:
    found = _REFUSED_IN_BODY_RE.search(value)
    if found is not None:
        raise ComposeError(
            field_name,
            f"{field_name} contains {describe(found.group())}, which is not text (UTF-8 has no form)",
        )


class Written(str):
    """A header value Mailroom encoded and folded itself (lines joined by ``\\n``). It follows the
    header-object protocol of ``email.policy.EmailPolicy`` (a ``name`` and ``fold``), so the
    ``email`` package stores and writes it as it is, never re-parsing or re-folding it."""

    name: str

    def __new__(cls, name: str, folded: str) -> Written:
        written = super().__new__(cls, folded)
        written.name = name
        return written

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: " + policy.linesep.join(self.split("\n")) + policy.linesep


def bracketed_message_id(value: str) -> str | None:
    """``value`` as a Message-ID header writes it (``<id>``; the brackets may be left out), or None
    when it is none (a space, non-ASCII, a bracket inside)."""
    bracketed = value if value.startswith("<") else f"<{value}>"
    return bracketed if _MESSAGE_ID_RE.match(bracketed) else None


def join_encoded_words(value: str) -> str:
    """``value`` without the whitespace between adjacent encoded words. RFC 2047 (6.2) says it is
    no part of the text; Python's address parser keeps it, putting a space into every name written
    as several encoded words. Applied before that parser reads an address header."""
    return _ENCODED_WORD_GAP_RE.sub(r"\1", value)


def needs_encoding(text: str) -> bool:
    """True unless ``text`` is printable ASCII a reader would show as it is (no ``=?``)."""
    return not _PLAIN_RE.match(text) or "=?" in text


def _encoded_word(text: str) -> str:
    return _WORD_PREFIX + base64.b64encode(text.encode("utf-8")).decode("ascii") + _WORD_SUFFIX


def encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), each at most 75 characters and holding
    whole characters, so a reader decodes them back to exactly ``text``. Words end after a space
    where they can: some readers (Python's address parser among them) show the whitespace between
    two encoded words, which RFC 2047 says to drop; at a space that costs at most a doubled space."""
    words: list[str] = []
    chunk = ""
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        while size + width > _WORD_BYTES:
            cut = chunk.rfind(" ") + 1 or len(chunk)
            words.append(_encoded_word(chunk[:cut]))
            chunk = chunk[cut:]
            size = len(chunk.encode("utf-8"))
        chunk += char
        size += width
    if chunk or not words:
        words.append(_encoded_word(chunk))
    return words


def fold(name: str, tokens: list[str]) -> str:
    """A header value from ``tokens`` joined by single spaces, with a fold (CRLF and the space) in
    place of a joining space wherever the line would pass 78 characters. Unfolding gives back the
    tokens joined by spaces. Lines are joined by ``\\n``: ``Written`` writes the policy's line ending."""
    lines: list[str] = []
    line = ""
    used = len(name) + 2  # "Name: "
    for token in tokens:
        if not line:
            line = token
        elif used + len(line) + 1 + len(token) > MAX_LINE:
            lines.append(line)
            line, used = " " + token, 0
        else:
            line += " " + token
    lines.append(line)
    return "\n".join(lines)


def plain_tokens(text: str) -> list[str] | None:
    """``text`` split at single spaces into tokens ``fold`` can join again, or None when that
    would not give back the same text (leading, trailing or repeated spaces)."""
    tokens = text.split(" ")
    return tokens if all(tokens) else None


def unstructured(name: str, text: str, *, encode: bool = True) -> str:
    """An unstructured header value (``Subject``, a custom header) written as ASCII and folded.

    Plain text (printable ASCII, no ``=?``, single spaces, no word too long for a line) is written as
    it is. Other text is encoded words when ``encode``; without it (a custom header, whose value may
    be structured: a URL, a list of ids) printable ASCII is kept as given and only folded where it
    can be, and a line that would pass 998 characters is refused.
    """
    if not text:
        return ""
    tokens = plain_tokens(text)
    long_word = tokens is None or any(len(t) > MAX_LINE - len(name) - 2 for t in tokens)
    if not needs_encoding(text) and tokens is not None and not long_word:
        return fold(name, tokens)
    if encode or not _PLAIN_RE.match(text):
        return fold(name, encoded_words(text))
    value = fold(name, tokens) if tokens is not None else text
    if any(len(line) > MAX_HARD_LINE - len(name) - 2 for line in value.split("\n")):
        raise ComposeError(
            f"headers.{name}", f"headers.{name} has a word too long for a header line ({MAX_HARD_LINE})"
        )
    return value
