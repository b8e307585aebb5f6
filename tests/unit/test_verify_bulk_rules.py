"""The pure part of bulk verification: reading input, duplicates, chunks, progress, the results CSV."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain import verify_bulk as rules


def test_csv_with_a_header_reads_the_email_column() -> None:
    document = "Name,E-Mail,Company\r\nAnn, ann@example.com ,Acme\r\n,,\r\nBob,bob@example.org\r\nShort\r\n"
    assert rules.from_csv(document) == ["ann@example.com", "bob@example.org", ""]


def test_csv_without_a_header_reads_the_first_column() -> None:
    assert rules.from_csv("ann@example.com,Ann\nbob@example.org\n\n") == [
        "ann@example.com",
        "bob@example.org",
    ]
    assert rules.from_csv("") == []


def test_a_csv_that_is_not_one_is_refused() -> None:
    with pytest.raises(rules.BadInput, match="not a CSV"):
        rules.from_csv("email\n" + "x" * 200_000)  # a field over the csv module's limit


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no addresses"),
        (["a@example.com"] * (rules.MAX_ADDRESSES + 1), "at most 100000"),
        (["a@example.com", "x" * (rules.MAX_ADDRESS_LENGTH + 1)], "row 2"),
    ],
)
def test_row_limits(rows: list[str], message: str) -> None:
    with pytest.raises(rules.BadInput, match=message):
        rules.check_rows(rows)


def test_duplicates_are_one_address_whatever_their_case_and_spaces() -> None:
    rows = ["Ann@Example.com", " ann@example.COM ", "bob@example.com", "ann@example.com"]
    assert rules.unique(rows) == ["Ann@Example.com", "bob@example.com"]


def test_chunks_keep_each_domains_addresses_together() -> None:
    addresses = [f"u{n}@big.example" for n in range(7)] + [f"u{n}@small{n % 3}.example" for n in range(6)]
    chunks = rules.chunks(addresses, size=5)
    assert [len(c) for c in chunks] == [5, 4, 4]  # big: 5 + 2; small0 joins big's rest, then the others
    for domain in ("small0.example", "small1.example", "small2.example"):
        assert sum(any(a.endswith("@" + domain) for a in c) for c in chunks) == 1


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(["a.example", "b.example", "c.example", "d.example"])),
        max_size=120,
    ),
    st.integers(1, 17),
)
def test_chunks_cover_every_address_once_within_the_size(pairs: list[tuple[int, str]], size: int) -> None:
    addresses = rules.unique(f"u{n}@{domain}" for n, domain in pairs)
    chunks = rules.chunks(addresses, size=size)
    assert sorted(a for c in chunks for a in c) == sorted(addresses)
    assert all(0 < len(c) <= size for c in chunks)


def test_progress_and_eta() -> None:
    assert rules.progress(done=0, total=100, elapsed_seconds=5) == rules.Progress(0, None)
    assert rules.progress(done=25, total=100, elapsed_seconds=10) == rules.Progress(25, 30)
    assert rules.progress(done=100, total=100, elapsed_seconds=40) == rules.Progress(100, 0)
    assert rules.progress(done=0, total=0, elapsed_seconds=None) == rules.Progress(100, 0)


def _verdict(status: str, *codes: str) -> dict[str, object]:
    checks = {"syntax": True, "domain": True, "mx": True, "disposable": False, "role": "role" in codes,
              "free_provider": False, "catch_all": None, "smtp": "not_requested"}  # fmt: skip
    return {
        "status": status,
        "reasons": [{"code": c, "message": c} for c in codes],
        "checks": checks,
        "normalized": "x",
        "suggestion": None,
    }


def test_results_csv_has_every_row_in_order_and_quotes_formulas() -> None:
    rows = ["ann@example.com", '=HYPERLINK("http://evil")', "ANN@example.com", "lost@example.com"]
    results = {
        "ann@example.com": _verdict("deliverable"),
        '=hyperlink("http://evil")': _verdict("undeliverable", "invalid_syntax"),
    }
    lines = list(csv.reader(io.StringIO(rules.results_csv(rows, results).decode())))
    assert lines[0] == list(rules.RESULT_COLUMNS)
    assert [line[:4] for line in lines[1:]] == [
        ["1", "ann@example.com", "deliverable", ""],
        ["2", '\'=HYPERLINK("http://evil")', "undeliverable", "invalid_syntax"],
        ["3", "ANN@example.com", "deliverable", ""],
        ["4", "lost@example.com", "", ""],
    ]
    assert lines[1][6:] == ["true", "true", "true", "false", "false", "false", "", "not_requested"]
