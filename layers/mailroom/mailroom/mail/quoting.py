"""Prefilled compose data for reply, reply-all and forward (the v1 GET endpoints and v0's POSTs)."""

from __future__ import annotations

from collections.abc import Iterable

from mailroom.mail.addresses import address_only
from mailroom.mail.header_text import bracketed_message_id

MAX_REFERENCES = 20


def reply_subject(subject: str) -> str:
    return subject if subject.lower().lstrip().startswith("re:") else f"Re: {subject}".strip()


def forward_subject(subject: str) -> str:
    return subject if subject.lower().lstrip().startswith(("fwd:", "fw:")) else f"Fwd: {subject}".strip()


def usable_message_id(value: str | None) -> str | None:
    """A received Message-ID a reply can carry in its headers, or None (received mail may hold
    ids no header of ours can: spaces, non-ASCII)."""
    return bracketed_message_id(value) if value and value.startswith("<") else None


def references_for_reply(message_id: str | None, references: Iterable[str]) -> list[str]:
    chain = [usable_message_id(r) for r in [*references, message_id]]
    return list(dict.fromkeys(r for r in chain if r))[-MAX_REFERENCES:]


def quote(text: str | None, *, sender: str | None, date: str | None) -> str:
    lines = (text or "").splitlines() or [""]
    attribution = f"On {date or 'an earlier date'}, {sender or 'the sender'} wrote:"
    return "\n\n" + attribution + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines) + "\n"


def forward_block(
    text: str | None, *, sender: str | None, date: str | None, subject: str, to: list[str]
) -> str:
    return (
        "\n\n---------- Forwarded message ---------\n"
        f"From: {sender or ''}\nDate: {date or ''}\nSubject: {subject}\nTo: {', '.join(to)}\n\n"
        + (text or "")
    )


def reply_recipients(
    *,
    own: Iterable[str],
    sender: str | None,
    reply_to: list[str],
    to: list[str],
    cc: list[str],
    reply_all: bool,
) -> tuple[list[str], list[str]]:
    """(to, cc) of a reply: the Reply-To (or the sender); for reply-all also the original To and Cc,
    never our own addresses, without repeats."""
    mine = {address_only(a) for a in own}
    primary = reply_to or ([sender] if sender else [])
    seen: set[str] = set()

    def keep(values: Iterable[str]) -> list[str]:
        kept = []
        for value in values:
            bare = address_only(value)
            if bare in mine or bare in seen:
                continue
            seen.add(bare)
            kept.append(value)
        return kept

    reply_to_list = keep(primary)
    if not reply_all:
        return reply_to_list, []
    return reply_to_list + keep(to), keep(cc)
