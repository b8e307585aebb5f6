"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3): known encodings, round trips, bad input."""

import random

import pytest

from mailroom.imap import utf7

KNOWN = [
    ("INBOX", "INBOX"),
    ("", ""),
    ("Entwürfe", "Entw&APw-rfe"),
    ("Café ☕", "Caf&AOk- &JhU-"),
    ("&", "&-"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("&&", "&-&-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501's example
    ("😀", "&2D3eAA-"),  # outside the BMP: a surrogate pair
    ("a😀b€", "a&2D3eAA-b&IKw-"),
    ("😀€", "&2D3eACCs-"),  # one shift for a run of characters
    ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
    ("tab\there", "tab&AAk-here"),  # control characters are encoded too
]


@pytest.mark.parametrize(("name", "wire"), KNOWN)
def test_known_names_encode_and_decode(name: str, wire: str) -> None:
    assert utf7.encode(name) == wire
    assert utf7.decode(wire) == name


def test_random_names_survive_a_round_trip() -> None:
    rng = random.Random(3501)
    alphabet = "abcXYZ &-./,+~ äöüß€台北😀🎉\u0100\uffff\U0010fffd"
    for _ in range(500):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        wire = utf7.encode(name)
        assert wire.isascii()
        assert utf7.decode(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        "Entwürfe",  # raw non-ASCII is not modified UTF-7
        "&2D0-",  # a lone high surrogate
        "&A-",  # six bits: not even one byte
        "&AP-",  # an odd number of bytes
        "&AP!w-",  # not base64
    ],
)
def test_invalid_names_are_refused(wire: str) -> None:
    with pytest.raises(ValueError, match="modified UTF-7"):
        utf7.decode(wire)


def test_a_shift_left_open_at_the_end_is_accepted() -> None:
    assert utf7.decode("Entw&APw") == "Entwü"
