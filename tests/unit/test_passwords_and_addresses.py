"""Pure logic of mailboxes: the password policy and hash, address rules, transaction building."""

from __future__ import annotations

import pytest

from mailroom.domain import addresses, passwords
from mailroom.store.txn import Update


def test_hash_is_salted_self_describing_and_verifies() -> None:
    first, second = passwords.hash_password("Correct-Horse-42"), passwords.hash_password("Correct-Horse-42")
    assert first != second  # a fresh salt each time
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert salt and digest and "Correct" not in first
    assert passwords.verify_password("Correct-Horse-42", first)
    assert not passwords.verify_password("Correct-Horse-43", first)
    assert not passwords.needs_rehash(first)


def test_weaker_stored_parameters_still_verify_and_ask_for_a_rehash() -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"Correct-Horse-42", salt=salt, n=2**10, r=8, p=1, dklen=32)

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode().rstrip("=")

    stored = f"scrypt${2**10}$8$1${b64(salt)}${b64(digest)}"
    assert passwords.verify_password("Correct-Horse-42", stored)
    assert passwords.needs_rehash(stored)


@pytest.mark.parametrize("stored", [None, "", "bcrypt$xyz", "scrypt$a$b$c$d$e", "scrypt$16384$8$1"])
def test_unreadable_hashes_never_verify(stored: str | None) -> None:
    assert passwords.verify_password("anything-Goes-1", stored) is False


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("Correct-Horse-42", True),
        ("abcdefghij1", True),  # two classes are enough
        ("abcdefghij", False),  # one class
        ("ABCDEFGHIJKL", False),
        ("1234567890", False),
        ("Ab1!Ab1!", False),  # too short
        ("aaaaaaaaaa1", False),  # too few distinct characters
        ("ab1D" * 64, True),  # 256 characters
        ("ab1D" * 64 + "e", False),
    ],
)
def test_policy(password: str, ok: bool) -> None:
    if ok:
        passwords.check_policy(password)
    else:
        with pytest.raises(passwords.WeakPassword):
            passwords.check_policy(password)


def test_policy_refuses_the_local_part_case_insensitively() -> None:
    with pytest.raises(passwords.WeakPassword, match="local part"):
        passwords.check_policy("my-ALICE-password-1", local_part="alice")
    passwords.check_policy("my-ab-password-1", local_part="ab")  # too short to be meaningful


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        (" a.b+tag@example.com ", "a.b+tag@example.com"),
        ("x%y_z-1@bücher.example.com", "x%y_z-1@xn--bcher-kva.example.com"),
    ],
)
def test_hosted_addresses_normalize(raw: str, expected: str) -> None:
    assert addresses.normalize_hosted(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "no-at",
        "@example.com",
        "a@",
        "a b@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "o'brien@example.com",
        "a@localhost",
        "a@127.0.0.1",
        f"{'a' * 65}@example.com",
    ],
)
def test_bad_hosted_addresses(raw: str) -> None:
    with pytest.raises(addresses.InvalidAddress):
        addresses.normalize_hosted(raw)


def test_external_addresses_allow_the_rfc_dot_atom() -> None:
    assert addresses.normalize_any("O'Brien@Example.COM") == "o'brien@example.com"
    with pytest.raises(addresses.InvalidAddress):
        addresses.normalize_any("a..b@example.com")


def test_update_builds_one_expression_with_only_used_placeholders() -> None:
    change = Update("ORG#o", "MAILBOX#m").set(name="A", note=None).add(version=1, zero=0)
    change.at_most("count", 4).equals("limits.quota", 100)
    body = change.op("mailbox").body["Update"]
    assert body["UpdateExpression"] == "SET #n0 = :v0 REMOVE #n1 ADD #n2 :v1"
    assert body["ConditionExpression"] == (
        "attribute_exists(PK) AND (attribute_not_exists(#n3) OR #n3 <= :v2) AND #n4.#n5 = :v3"
    )
    assert body["ExpressionAttributeNames"] == {
        "#n0": "name",
        "#n1": "note",
        "#n2": "version",
        "#n3": "count",
        "#n4": "limits",
        "#n5": "quota",
    }
    assert set(body["ExpressionAttributeValues"]) == {":v0", ":v1", ":v2", ":v3"}


def test_an_update_with_nothing_to_write_is_a_condition_check() -> None:
    op = Update("ORG#o", "MAILBOX#m").add(count=0).op("mailbox")
    assert list(op.body) == ["ConditionCheck"]
    assert op.body["ConditionCheck"]["ConditionExpression"] == "attribute_exists(PK)"
    upsert = Update("RATE#x", "1", upsert=True).add(hits=1).op("budget")
    assert "ConditionExpression" not in upsert.body["Update"]
