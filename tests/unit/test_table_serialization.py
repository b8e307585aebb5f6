"""Item (de)serialization and cursor handling of the table wrapper."""

from __future__ import annotations

import base64
import json

import pytest

from mailroom.store.table import InvalidCursor, _decode_cursor, _encode_cursor, deserialize, serialize


def test_round_trip_keeps_types_drops_top_level_none_keeps_nested_none() -> None:
    item = {
        "s": "x",
        "n": 3,
        "f": 1.5,
        "b": True,
        "l": [1, "a"],
        "m": {"k": 2, "gone": None},
        "none": None,
        "bytes": b"\x00\xff",
    }
    wire = serialize(item)
    assert "none" not in wire
    assert wire["f"] == {"N": "1.5"}
    back = deserialize(wire)
    assert back == {
        "s": "x",
        "n": 3,
        "f": 1.5,
        "b": True,
        "l": [1, "a"],
        "m": {"k": 2, "gone": None},
        "bytes": b"\x00\xff",
    }
    assert isinstance(back["n"], int)


def test_cursor_round_trip() -> None:
    payload = {"k": {"PK": "ORG#a", "SK": "TOKEN#1"}, "p": 2, "d": "next"}
    assert _decode_cursor(_encode_cursor(payload)) == payload


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"p": 1}).encode()).decode(),
    ],
)
def test_bad_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        _decode_cursor(cursor)
