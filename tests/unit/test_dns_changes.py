"""The pure change set: what a preview proposes for a zone, and apply's guard against a changed zone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain import dns_changes as dc
from mailroom.domain.dns_changes import ZoneRecord
from mailroom.domain.dns_providers import zone_covers
from mailroom.domain.dns_records import required_records

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 350  # as long as a 2048-bit key
REQUIRED = required_records("example.com", region="us-east-1", dkim_selector="mr1", dkim_public_key=KEY)
INBOUND = "inbound-smtp.us-east-1.amazonaws.com"
FEEDBACK = "feedback-smtp.us-east-1.amazonses.com"
BOUNCE = "bounce.example.com"


def published() -> list[ZoneRecord]:
    """The zone once every required record is there."""
    return [ZoneRecord(r.type, r.name, r.value, r.priority) for r in REQUIRED]


def by_purpose(plan: dc.Plan) -> dict[str, dc.RecordPlan]:
    return {r.purpose: r for r in plan.records}


def test_an_empty_zone_gets_every_record_created() -> None:
    plan = dc.plan(REQUIRED, [])
    assert [r.action for r in plan.records] == ["create"] * 5
    assert [(c.kind, c.type, c.name) for c in plan.changes] == [
        ("create", "MX", "example.com"),
        ("create", "MX", BOUNCE),
        ("create", "TXT", BOUNCE),
        ("create", "TXT", "mr1._domainkey.example.com"),
        ("create", "TXT", "_dmarc.example.com"),
    ]
    assert plan.count("create") == 5


def test_a_zone_that_has_everything_needs_nothing() -> None:
    plan = dc.plan(REQUIRED, published())
    assert {r.action for r in plan.records} == {"unchanged"}
    assert plan.changes == ()


@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        ("v=spf1 include:_spf.google.com ~all", "v=spf1 include:_spf.google.com include:amazonses.com ~all"),
        ("v=spf1 mx -all", "v=spf1 mx include:amazonses.com -all"),
        ("v=spf1 a mx", "v=spf1 a mx include:amazonses.com"),  # no all: appended
        (
            "v=spf1 ip4:192.0.2.0/24 redirect=_spf.example.net",
            "v=spf1 ip4:192.0.2.0/24 include:amazonses.com redirect=_spf.example.net",
        ),
        ("v=spf1 ?all", "v=spf1 include:amazonses.com ?all"),
        ("V=SPF1 +mx ~ALL", "V=SPF1 +mx include:amazonses.com ~ALL"),
    ],
)
def test_spf_is_merged_into_the_existing_record_never_added(existing: str, merged: str) -> None:
    zone = [
        ZoneRecord("TXT", BOUNCE, existing, ttl=600, id="r1"),
        ZoneRecord("TXT", BOUNCE, "google-site-verification=x"),
    ]
    plan = dc.plan(REQUIRED, zone)
    spf = by_purpose(plan)["spf"]
    assert (spf.action, spf.value, spf.current) == ("update", merged, (existing,))
    (change,) = [c for c in plan.changes if c.purpose == "spf"]
    assert (change.kind, change.content, change.ttl) == ("update", merged, 600)
    assert change.previous == zone[0]
    # Never a second SPF record: the other TXT record is left as it is.
    assert not [c for c in plan.changes if c.kind == "create" and c.name == BOUNCE and c.type == "TXT"]


def test_spf_that_already_includes_ses_is_left_alone() -> None:
    zone = [ZoneRecord("TXT", BOUNCE, "v=spf1 include:amazonses.com include:_spf.google.com -all")]
    spf = by_purpose(dc.plan(REQUIRED, zone))["spf"]
    assert spf.action == "unchanged"


def test_two_spf_records_or_a_full_lookup_budget_are_conflicts() -> None:
    two = [ZoneRecord("TXT", BOUNCE, "v=spf1 mx -all"), ZoneRecord("TXT", BOUNCE, "v=spf1 a -all")]
    assert by_purpose(dc.plan(REQUIRED, two))["spf"].action == "conflict"
    ten = "v=spf1 " + " ".join(f"include:s{i}.example.net" for i in range(10)) + " -all"
    full = by_purpose(dc.plan(REQUIRED, [ZoneRecord("TXT", BOUNCE, ten)]))["spf"]
    assert full.action == "conflict"
    assert "10 DNS lookups" in (full.reason or "")


def test_another_mx_set_is_a_conflict_and_nothing_changes_there() -> None:
    google = [
        ZoneRecord("MX", "example.com", "aspmx.l.google.com", 1, 300, "a"),
        ZoneRecord("MX", "example.com", "alt1.aspmx.l.google.com", 5, 300, "b"),
    ]
    plan = dc.plan(REQUIRED, google)
    mx = by_purpose(plan)["inbound_mx"]
    assert mx.action == "conflict"
    assert mx.current == ("1 aspmx.l.google.com", "5 alt1.aspmx.l.google.com")
    assert "replace_mx" in (mx.reason or "")
    assert not [c for c in plan.changes if c.name == "example.com"]


def test_replace_mx_replaces_the_set_and_lists_each_removal() -> None:
    google = [
        ZoneRecord("MX", "example.com", "aspmx.l.google.com", 1, 300, "a"),
        ZoneRecord("MX", "example.com", "alt1.aspmx.l.google.com", 5, 300, "b"),
    ]
    plan = dc.plan(REQUIRED, google, replace_mx=True)
    assert by_purpose(plan)["inbound_mx"].action == "update"
    changes = [
        (c.kind, c.content, c.previous.id if c.previous else None)
        for c in plan.changes
        if c.name == "example.com"
    ]
    assert changes == [("update", INBOUND, "a"), ("delete", "alt1.aspmx.l.google.com", "b")]


def test_our_mx_among_others_is_a_conflict_too() -> None:
    mixed = [
        ZoneRecord("MX", "example.com", INBOUND, 10),
        ZoneRecord("MX", "example.com", "mx.other.example", 20),
    ]
    plan = dc.plan(REQUIRED, mixed)
    assert by_purpose(plan)["inbound_mx"].action == "conflict"
    replaced = dc.plan(REQUIRED, mixed, replace_mx=True)
    assert [(c.kind, c.content) for c in replaced.changes if c.name == "example.com"] == [
        ("delete", "mx.other.example")
    ]


def test_dkim_dmarc_and_cname_rules() -> None:
    zone = [
        ZoneRecord("TXT", "mr1._domainkey.example.com", "v=DKIM1; k=rsa; p=OTHERKEY"),
        ZoneRecord("TXT", "_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com"),
        ZoneRecord("CNAME", BOUNCE, "elsewhere.example.net"),
    ]
    records = by_purpose(dc.plan(REQUIRED, zone))
    assert records["dkim"].action == "conflict"
    assert (records["dmarc"].action, records["dmarc"].value) == (
        "unchanged",
        zone[1].content,
    )  # a stricter policy is kept
    assert records["mail_from_mx"].action == records["spf"].action == "conflict"
    assert "CNAME" in (records["spf"].reason or "")
    broken = by_purpose(dc.plan(REQUIRED, [ZoneRecord("TXT", "_dmarc.example.com", "v=DMARC1; rua=x")]))
    assert broken["dmarc"].action == "conflict"


def test_records_elsewhere_in_the_zone_do_not_count() -> None:
    noise = [ZoneRecord("A", "example.com", "192.0.2.1"), ZoneRecord("TXT", "www.example.com", "v=spf1 -all")]
    assert dc.plan(REQUIRED, noise).fingerprint == dc.plan(REQUIRED, []).fingerprint


def test_the_fingerprint_ignores_ids_and_ttls_only() -> None:
    one = [ZoneRecord("MX", "example.com", "a.example", 1, 300, "x")]
    assert dc.fingerprint(one) == dc.fingerprint([ZoneRecord("MX", "example.com", "a.example", 1, 60, "y")])
    assert dc.fingerprint(one) != dc.fingerprint([ZoneRecord("MX", "example.com", "a.example", 2)])


def test_zone_covers_the_apex_and_names_below_only() -> None:
    assert zone_covers("example.com", "example.com")
    assert zone_covers("example.com.", "mail.Example.com")
    assert not zone_covers("example.com", "badexample.com")
    assert not zone_covers("mail.example.com", "example.com")


# --- apply's guard -----------------------------------------------------------------------------------

GOOGLE_ZONE = [
    ZoneRecord("MX", "example.com", "aspmx.l.google.com", 1),
    ZoneRecord("MX", "example.com", "alt1.aspmx.l.google.com", 5),
    ZoneRecord("TXT", BOUNCE, "v=spf1 include:_spf.google.com ~all"),
    ZoneRecord("TXT", "_dmarc.example.com", "v=DMARC1; p=quarantine"),
]


def _made(before: list[ZoneRecord], changes: list[dc.Change]) -> list[ZoneRecord]:
    return [ZoneRecord(*key) for key in dc.after(before, changes).elements()]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(replace_mx=st.booleans(), data=st.data())
def test_progress_knows_any_subset_of_the_changes_made(replace_mx: bool, data: st.DataObject) -> None:
    plan = dc.plan(REQUIRED, GOOGLE_ZONE, replace_mx=replace_mx)
    changes = list(plan.changes)
    made = data.draw(st.lists(st.sampled_from(changes), unique=True) if changes else st.just([]))
    current = _made(list(plan.before), made)
    pending, done = dc.progress(list(plan.before), changes, current)
    assert sorted(map(repr, done)) == sorted(map(repr, made))
    assert sorted(map(repr, pending + done)) == sorted(map(repr, changes))
    # Making the rest reaches the planned zone: a second plan has nothing left to do.
    final = _made(current, pending)
    assert dc.plan(REQUIRED, final, replace_mx=replace_mx).changes == ()


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    data=st.data(),
    foreign=st.sampled_from(
        [
            ZoneRecord("TXT", BOUNCE, "v=spf1 -all"),
            ZoneRecord("MX", "example.com", "mx.intruder.example", 0),
            ZoneRecord("TXT", "_dmarc.example.com", "v=DMARC1; p=none"),
            ZoneRecord("CNAME", "mr1._domainkey.example.com", "elsewhere.example"),
        ]
    ),
)
def test_progress_refuses_a_zone_someone_else_changed(data: st.DataObject, foreign: ZoneRecord) -> None:
    plan = dc.plan(REQUIRED, GOOGLE_ZONE, replace_mx=True)
    made = data.draw(st.lists(st.sampled_from(list(plan.changes)), unique=True))
    current = [*_made(list(plan.before), made), foreign]
    with pytest.raises(dc.ZoneChanged):
        dc.progress(list(plan.before), list(plan.changes), current)


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=700))
def test_txt_values_survive_the_zone_file_form(content: str) -> None:
    rdata = dc.txt_rdata(content)
    assert dc.parse_txt(rdata) == content
    assert all(len(s.encode()) <= 255 + 2 * s.count("\\") for s in rdata.split('" "'))


@settings(max_examples=50, derandomize=True, deadline=None)
@given(
    st.lists(
        st.sampled_from(["mx", "a", "ip4:192.0.2.1", "include:_spf.example.net", "exists:%{i}.x", "ptr"]),
        max_size=6,
    ),
    st.sampled_from(["", " ~all", " -all", " ?all", " redirect=_spf.example.org"]),
)
def test_a_merged_spf_record_is_one_valid_record_with_the_include_before_its_end(
    terms: list[str], end: str
) -> None:
    record = ("v=spf1 " + " ".join(terms) + end).replace("  ", " ").strip()
    merged = dc.merge_spf(record)
    assert dc.is_spf(merged)
    assert dc.spf_has_include(merged)
    assert dc.spf_lookups(merged) == dc.spf_lookups(record) + 1
    assert merged.split()[: len(terms) + 1] == record.split()[: len(terms) + 1]
    if end:
        assert merged.endswith(end.strip())
