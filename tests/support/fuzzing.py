"""Hypothesis strategies and settings for the mail fuzz tests: addresses and display names, hostile
text, drafts, and real-world messages (the corpus of tests/fixtures/mail) with mutations.

Every fuzz test runs with ``fuzz(examples)`` settings: derandomized (the same examples on every run
and machine, so CI cannot flake), no example database, no deadline (a shared CI machine is slow
sometimes), a bounded number of examples. To hunt further by hand:
``MAILROOM_FUZZ_RANDOM=1 MAILROOM_FUZZ_SCALE=20`` (fresh random examples, twenty times as many), and
``MAILROOM_FUZZ_NO_SHRINK=1`` to see a failing example as found rather than after minutes of shrinking.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from mailroom.mail.compose import Address, Draft, OutgoingAttachment
from tests.support.mail_corpus import hostile_messages, stdlib_messages

SCALE = int(os.environ.get("MAILROOM_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        derandomize=not os.environ.get("MAILROOM_FUZZ_RANDOM"),
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[p for p in Phase if p is not Phase.shrink or not os.environ.get("MAILROOM_FUZZ_NO_SHRINK")],
    )


LETTERS = "abcdefghijklmnopqrstuvwxyz"
ATEXT = LETTERS + LETTERS.upper() + "0123456789!#$%&'*+/=?^_`{|}~-"
# What no header may carry (mail.header_text): the fuzzers mix them into text on purpose.
LINE_BREAKS = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
# Address syntax and encoded words: a display name holding them must stay a name.
NAME_TRAPS = [
    "=?",
    "?=",
    "=?utf-8?q?ceo=40bank.example?=",
    "=?utf-8?b?PGNlb0BiYW5rLmV4YW1wbGU+LCB4?=",
    "<ceo@bank.example>",
    "ceo@bank.example",
    ", ",
    '"',
    "\\",
    ";",
    ":",
    "(",
    ")",
    "Bcc: spy@bank.example",
]
TRAPS = [*LINE_BREAKS, "\x00", "\t", "\x7f", "\ud800", "\udcff", "\u202e", *NAME_TRAPS]

# Plain strategies rather than from_regex: generating stays cheap on a busy CI machine.
local_parts = st.lists(st.text(ATEXT, min_size=1, max_size=10), min_size=1, max_size=3).map(".".join)
labels = st.text(LETTERS + "0123456789", min_size=1, max_size=10)
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]),
    st.lists(labels, min_size=1, max_size=3),
    st.text(LETTERS, min_size=2, max_size=6),
)
addr_specs = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)

# Text anywhere in Unicode but what no header may carry: a display name Mailroom must keep a name.
name_chars = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])
names = st.one_of(
    st.text(name_chars, max_size=60),
    st.lists(st.one_of(st.text(name_chars, max_size=12), st.sampled_from(NAME_TRAPS)), max_size=8).map(
        "".join
    ),
    st.text(name_chars, min_size=60, max_size=200),
)
# Text of any kind, refused characters and surrogates included.
any_chars = st.characters(exclude_categories=[])
hostile_text = st.lists(st.one_of(st.text(any_chars, max_size=20), st.sampled_from(TRAPS)), max_size=10).map(
    "".join
)
# Mostly ordinary text (so most drafts compose), sometimes hostile.
texts = st.one_of(st.text(name_chars, max_size=120), hostile_text)


def quoted(name: str, address: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{address}>'


mailboxes = st.builds(Address, names, addr_specs)
# How an API client writes one: structured, quoted, bare, or "name <addr>" without quotes.
mailbox_inputs = st.one_of(
    mailboxes,
    st.builds(lambda m: quoted(m.name, m.address), mailboxes),
    addr_specs,
    st.builds(lambda n, a: f"{n} <{a}>", texts, addr_specs),
)
message_ids = st.one_of(
    st.builds(lambda local, domain: f"<{local}@{domain}>", local_parts, domains),
    texts,
)
media_types = st.one_of(
    st.sampled_from(["", "text/plain", "application/pdf", "image/png; name=x.png", "TEXT/CSV"]),
    texts,
)
attachments = st.builds(
    OutgoingAttachment,
    filename=st.one_of(st.text(name_chars, min_size=1, max_size=60), texts),
    content_type=media_types,
    content=st.binary(max_size=300),
    content_id=st.one_of(st.none(), st.builds(lambda m: m.strip("<>"), message_ids)),
    inline=st.booleans(),
)
custom_headers = st.dictionaries(
    st.text(LETTERS + "0123456789-", min_size=1, max_size=12).map(lambda name: f"X-{name}"), texts, max_size=3
)
drafts = st.builds(
    Draft,
    sender=mailbox_inputs,
    to=st.lists(mailbox_inputs, min_size=1, max_size=3),
    cc=st.lists(mailbox_inputs, max_size=2),
    bcc=st.lists(mailbox_inputs, max_size=2),
    reply_to=st.lists(mailbox_inputs, max_size=2),
    subject=texts,
    text=st.one_of(st.none(), texts),
    html=st.one_of(st.none(), texts.map(lambda t: f"<p>{t}</p>")),
    attachments=st.lists(attachments, max_size=2),
    headers=custom_headers,
    in_reply_to=st.one_of(st.none(), message_ids),
    references=st.lists(message_ids, max_size=3),
)


# --- received mail: the corpus and its mutations ------------------------------------------------------

# Byte strings that matter to a MIME parser, spliced into real messages.
SPLICES = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"\r\n ",
    b"\n--",
    b"--",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\xe2\x80\xa8",
    b"\xc2\x85",
    b"=?utf-8?q?a=0D=0Ab?=",
    b"=?utf-8?b?",
    b"=?x-unknown?q?x?=",
    b"?=",
    b'"',
    b"<",
    b">",
    b"@",
    b",",
    b";",
    b":",
    b"(",
    b"\\",
    b"=\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%E2%80%A8%0D%0A.txt\r\n",
    b"From: =?utf-8?q?Carol_=3Cceo=40bank=2Eexample=3E=2C?= <c@example.net>\r\n",
    b'To: "a, <b@c.d>" <e@f.g>, undisclosed-recipients:;\r\n',
    b"Subject: =?utf-8?q?x=0D=0ABcc:_spy@bank.example?=\r\n",
]


def corpus() -> list[bytes]:
    """Real-world messages (CPython's test mail) and the small hostile ones (the large ones, which
    only test limits, stay in the corpus tests)."""
    small = [raw for _, raw, _ in hostile_messages() if len(raw) < 20_000]
    return [raw for _, raw in stdlib_messages()] + small


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    """A corpus message with a few splices, byte flips, cuts and repeated slices."""
    raw = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        action = draw(st.sampled_from(["splice", "flip", "cut", "repeat", "truncate"]))
        if action == "splice":
            raw[at:at] = draw(st.sampled_from(SPLICES))
        elif action == "flip" and at < len(raw):
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del raw[at : at + draw(st.integers(min_value=1, max_value=200))]
        elif action == "repeat":
            piece = raw[at : at + draw(st.integers(min_value=1, max_value=300))]
            raw[at:at] = piece * draw(st.integers(min_value=1, max_value=3))
        elif action == "truncate":
            del raw[at:]
    return bytes(raw)


def received_mail(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Mutated real messages, mostly; sometimes bytes of no shape at all."""
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), st.binary(max_size=3000))
