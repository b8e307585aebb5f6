"""The mailbox ``bench/migration.py`` migrates: realistic messages, generated the same way every time.

Message ``i`` is the same bytes whatever the corpus size, so the 1,000-message corpus is the first
1,000 of the 8,000-message one, and both have the same mix (sizes and kinds are spread by a
low-discrepancy sequence, not drawn at random):

* 15 in 16 are conversations: ``multipart/alternative`` with a text and an HTML part, headers as
  a real server leaves them (Received, DKIM-Signature, ...), 2-20 KB in all (log-uniform);
  about 30% are replies (``Re:``, In-Reply-To and References naming an earlier message).
* 1 in 16 carries an attachment (PDF, PNG or ZIP of random bytes, base64): 100 KB-1 MB in all.
* Folders: INBOX 55%, Sent 15%, Archive 20%, Work/Projects 10% (a custom folder); about 70%
  \\Seen, 5% \\Flagged, Sent all \\Seen; received dates two hours apart from 2023-01-02.

Every line ends with CRLF, so IMAP serves each message byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

FOLDERS = ("INBOX", "Sent", "Archive", "Work/Projects")
START = datetime(2023, 1, 2, 8, 0, tzinfo=UTC)
OWNER = "jane.doe@example.org"
ATTACHMENT_EVERY = 16
TEXT_SIZES = (2 * 1024, 20 * 1024)
ATTACHMENT_SIZES = (100 * 1024, 1024 * 1024)
_GOLDEN = 0.6180339887498949
_WORD_LIST = (
    "the project meeting schedule budget review draft invoice customer release notes team update "
    "quarter report deadline proposal contract design server migration mailbox folder account please "
    "thanks regards attached following question answer tomorrow today next week monday friday office "
    "remote travel hotel flight agenda minutes action items owner status risk estimate delivery "
    "support ticket issue fixed deployed staging production database backup restore password "
    "security policy holiday lunch coffee call video link document spreadsheet slides feedback "
    "approve approved pending blocked ready shipped order payment receipt tax a an and or but if "
    "then also just only very really quite some many few more less new old we you they it this that "
    "these those our your their with for from about into over after"
)
_WORDS = tuple(_WORD_LIST.split())
_NAMES = (
    "Alice Martin",
    "Bob Nguyen",
    "Chloé Dubois",
    "Dmitri Ivanov",
    "Emma Schmidt",
    "Farid Haddad",
    "Grace Lee",
    "Hiroshi Tanaka",
    "Ingrid Larsen",
    "José García",
)
_ATTACHMENTS = (
    ("application/pdf", "report.pdf"),
    ("image/png", "photo.png"),
    ("application/zip", "files.zip"),
)


@dataclass(frozen=True, slots=True)
class BenchMessage:
    folder: str
    raw: bytes
    flags: frozenset[str]
    internal_date: datetime


def _spread(index: int) -> float:
    """A number in [0, 1) that fills the interval evenly whatever prefix of indexes is taken."""
    return (index * _GOLDEN) % 1.0


def _log_between(low: int, high: int, fraction: float) -> int:
    return int(low * (high / low) ** fraction)


def _folder(index: int) -> str:
    slot = index % 20
    if slot < 11:
        return "INBOX"
    if slot < 14:
        return "Sent"
    if slot < 18:
        return "Archive"
    return "Work/Projects"


def _address(name: str) -> str:
    local = name.split(maxsplit=1)[0].lower().replace("é", "e")
    return f"{local}@partner{len(name) % 4}.example.com"


def _words(rng: random.Random, size: int) -> list[str]:
    """Lines of words, about ``size`` bytes in all, wrapped at 72 columns."""
    lines, line, total = [], [], 0
    while total < size:
        word = rng.choice(_WORDS)
        line.append(word)
        total += len(word) + 1
        if sum(len(w) + 1 for w in line) > 72:
            lines.append(" ".join(line))
            line = []
            if rng.random() < 0.12:
                lines.append("")
    if line:
        lines.append(" ".join(line))
    return lines


def _subject(index: int) -> str:
    rng = random.Random(index * 31 + 7)
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 7))).capitalize() + f" #{index}"


def message_id(index: int) -> str:
    return f"<{index}.{hashlib.sha1(str(index).encode()).hexdigest()[:12]}@mail.example.com>"


def _parent(index: int) -> int | None:
    """The earlier message this one replies to (about 30% are replies), or None."""
    if index < 10 or index % 10 not in (2, 5, 8):
        return None
    return index - 1 - (index * 7919) % min(index, 200)


def _headers(index: int, folder: str, when: datetime, rng: random.Random) -> list[str]:
    sender = _NAMES[index % len(_NAMES)]
    other = _NAMES[(index * 3 + 1) % len(_NAMES)]
    if folder == "Sent":
        from_, to = f"Jane Doe <{OWNER}>", f"{sender} <{_address(sender)}>"
    else:
        from_, to = f"{sender} <{_address(sender)}>", f"Jane Doe <{OWNER}>"
    parent = _parent(index)
    subject = _subject(index) if parent is None else "Re: " + _subject(_root(parent))
    date = format_datetime(when)
    signature = base64.b64encode(hashlib.sha256(f"dkim{index}".encode()).digest() * 6).decode()
    headers = [
        f"Return-Path: <{_address(sender)}>",
        f"Received: from mx{index % 7}.partner.example.com (mx{index % 7}.partner.example.com "
        f"[198.51.100.{index % 250 + 1}])\r\n\tby mail.example.org with ESMTPS id {index:08x}\r\n"
        f"\tfor <{OWNER}>; {date}",
        f"Received: from [10.0.{index % 200}.{index % 251}] (unknown [203.0.113.{index % 250 + 1}])\r\n"
        f"\tby mx{index % 7}.partner.example.com with ESMTPSA; {date}",
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=partner.example.com; s=sel1;\r\n"
        f"\th=from:to:subject:date:message-id; bh={signature[:44]};\r\n"
        f"\tb={signature[44:114]}\r\n\t{signature[114:184]}\r\n\t{signature[184:]}",
        f"From: {from_}",
        f"To: {to}",
    ]
    if index % 4 == 1:
        headers.append(f"Cc: {other} <{_address(other)}>")
    headers += [f"Subject: {subject}", f"Date: {date}", f"Message-ID: {message_id(index)}"]
    if parent is not None:
        references = [message_id(p) for p in _ancestors(parent)]
        headers += [f"In-Reply-To: {message_id(parent)}", "References: " + "\r\n ".join(references)]
    headers += ["MIME-Version: 1.0", f"X-Mailer: Bench Mailer {rng.randint(1, 9)}.{rng.randint(0, 9)}"]
    return headers


def _ancestors(index: int) -> list[int]:
    chain = [index]
    while (parent := _parent(chain[0])) is not None and len(chain) < 10:
        chain.insert(0, parent)
    return chain


def _root(index: int) -> int:
    return _ancestors(index)[0]


def _alternative(rng: random.Random, size: int, boundary: str) -> list[str]:
    text = _words(rng, max(200, size * 2 // 5))
    html_lines = _words(rng, max(200, size * 2 // 5))
    html = ['<html><head><meta charset="utf-8"></head><body>']
    html += [f"<p>{line}</p>" if line else "<br>" for line in html_lines]
    html.append("</body></html>")
    return [
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        *text,
        f"--{boundary}",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        *html,
        f"--{boundary}--",
    ]


def _raw(index: int, folder: str, when: datetime) -> bytes:
    rng = random.Random(index)
    headers = _headers(index, folder, when, rng)
    head_size = sum(len(h) + 2 for h in headers)
    if index % ATTACHMENT_EVERY == ATTACHMENT_EVERY // 2:
        total = _log_between(*ATTACHMENT_SIZES, _spread(index // ATTACHMENT_EVERY))
        content_type, filename = _ATTACHMENTS[(index // ATTACHMENT_EVERY) % len(_ATTACHMENTS)]
        text_size = rng.randint(1500, 4000)
        payload = base64.b64encode(rng.randbytes(max(1, (total - head_size - text_size) * 3 // 4)))
        body = [f'Content-Type: multipart/mixed; boundary="mixed-{index}"', "", f"--mixed-{index}"]
        body += _alternative(rng, text_size, f"alt-{index}")
        body += [
            f"--mixed-{index}",
            f'Content-Type: {content_type}; name="{filename}"',
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="{filename}"',
            "",
            *(payload[i : i + 76].decode() for i in range(0, len(payload), 76)),
            f"--mixed-{index}--",
        ]
    else:
        total = _log_between(*TEXT_SIZES, _spread(index))
        body = _alternative(rng, max(400, total - head_size), f"alt-{index}")
    return ("\r\n".join(headers + body) + "\r\n").encode()


def _flags(index: int, folder: str) -> frozenset[str]:
    flags = set()
    if folder == "Sent" or index % 10 < 7:
        flags.add("\\Seen")
    if index % 20 == 3:
        flags.add("\\Flagged")
    return frozenset(flags)


def messages(count: int) -> list[BenchMessage]:
    """Messages ``0 .. count-1`` (each the same bytes whatever ``count``)."""
    corpus = []
    for index in range(count):
        folder = _folder(index)
        when = START + timedelta(hours=2 * index)
        corpus.append(BenchMessage(folder, _raw(index, folder, when), _flags(index, folder), when))
    return corpus
