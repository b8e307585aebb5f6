"""Modified UTF-7, the encoding of IMAP mailbox names (RFC 3501 section 5.1.3).

Printable ASCII stands for itself, except ``&``, which is written ``&-``. Any other run of
characters is written as ``&`` + the modified base64 (``,`` instead of ``/``, no padding) of its
UTF-16BE form + ``-``; characters outside the Basic Multilingual Plane become surrogate pairs.
"""

from __future__ import annotations

import base64
import binascii

_PRINTABLE = range(0x20, 0x7F)


def encode(name: str) -> str:
    """``name`` as it is written on the wire (``"Entwürfe"`` -> ``"Entw&APw-rfe"``)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if ord(char) in _PRINTABLE:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(raw: str) -> str:
    """The Unicode name ``raw`` stands for; ValueError if ``raw`` is not valid modified UTF-7.

    Lenient where no ambiguity follows: a shift sequence missing its closing ``-`` at the very end
    is accepted, as several servers have been seen to send it.
    """
    out: list[str] = []
    index = 0
    length = len(raw)
    while index < length:
        char = raw[index]
        if ord(char) not in _PRINTABLE:
            raise ValueError(f"{raw!r} is not modified UTF-7: {char!r} must be encoded")
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = raw.find("-", index + 1)
        if end == -1:
            end = length
        chunk = raw[index + 1 : end]
        if not chunk:
            out.append("&")
        else:
            out.append(_decode_chunk(raw, chunk))
        index = end + 1
    return "".join(out)


def _decode_chunk(raw: str, chunk: str) -> str:
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    try:
        utf16 = base64.b64decode(padded, validate=True)
        if len(utf16) % 2:
            raise ValueError("odd number of bytes")
        return utf16.decode("utf-16-be")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{raw!r} is not modified UTF-7: bad shift sequence &{chunk}-") from exc
