"""A corpus of real-world and malformed messages for the inbound path.

``stdlib_messages()`` are CPython's own email test messages (vendored in tests/fixtures/mail/stdlib);
``hostile_messages()`` are generated: each is (name, raw bytes, expected quarantine reason or None).
"""

from __future__ import annotations

import base64
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "stdlib"


def stdlib_messages() -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted(CORPUS.glob("msg_*.txt"))]


def nested(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for level in range(depth):
        boundary = f"level{level}".encode()
        inner = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\r\n\r\n--'
            + boundary
            + b"\r\n"
            + inner
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return (
        b"From: nest@example.net\r\nTo: inbox@example.com\r\nSubject: nested\r\nMIME-Version: 1.0\r\n" + inner
    )


def many_parts(count: int) -> bytes:
    head = (
        b"From: parts@example.net\r\nTo: inbox@example.com\r\nSubject: many parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
    )
    return (
        head + b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(count)) + b"--p--\r\n"
    )


def big_header(size: int) -> bytes:
    return (
        b"From: big@example.net\r\nTo: inbox@example.com\r\nX-Big: "
        + b"a" * size
        + b"\r\nSubject: big header\r\n\r\nbody\r\n"
    )


def hostile_messages() -> list[tuple[str, bytes, str | None]]:
    broken_base64 = (
        b"From: b64@example.net\r\nTo: inbox@example.com\r\nSubject: broken base64\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="x.bin"\r\n\r\n!!!not*base64###\r\n--b--\r\n'
    )
    unknown_charset = (
        b"From: cs@example.net\r\nTo: inbox@example.com\r\nSubject: charset\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nbody \xff\xfe\r\n"
    )
    encoded_newline = (
        b"From: nl@example.net\r\nTo: inbox@example.com\r\n"
        b"Subject: =?utf-8?q?line=0D=0ABcc:_evil@example.org?=\r\n\r\nbody\r\n"
    )
    bad_encoded_word = (
        b"From: =?utf-8?b?" + base64.b64encode(b"\xff\xfe broken")[:-2] + b"?= <w@example.net>\r\n"
        b"To: inbox@example.com\r\nSubject: =?x-unknown?q?hi?=\r\n\r\nbody\r\n"
    )
    no_headers = b"just some bytes without any header at all\r\n"
    binary_garbage = bytes(range(256)) * 64
    unterminated = (
        b"From: u@example.net\r\nTo: inbox@example.com\r\nSubject: unterminated\r\n"
        b'Content-Type: multipart/mixed; boundary="never"\r\n\r\n--never\r\nContent-Type: text/plain\r\n\r\n'
        b"no closing boundary\r\n"
    )
    return [
        ("nesting-101", nested(101), "too_deep"),
        ("nesting-20", nested(20), None),
        ("parts-100000", many_parts(100_000), "too_many_parts"),
        ("parts-50", many_parts(50), None),
        ("header-1mb", big_header(1024 * 1024), "header_too_large"),
        ("broken-base64", broken_base64, None),
        ("unknown-charset", unknown_charset, None),
        ("encoded-newline-subject", encoded_newline, None),
        ("bad-encoded-words", bad_encoded_word, None),
        ("no-headers", no_headers, None),
        ("binary-garbage", binary_garbage, None),
        ("unterminated-multipart", unterminated, None),
    ]
