"""Sieve as a view of the rules (domain/sieve.py): real tools' scripts read as the rules they mean,
what the engine cannot run is refused by name, and rules → Sieve → rules is the identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.domain.auto_reply import AutoReply
from mailroom.domain.rules import (
    FLAG_FIELDS,
    SIZE_OPS,
    TEXT_OPS,
    Action,
    Condition,
    Rule,
    validate_rule_set,
)
from mailroom.domain.sieve import SieveError, render, translate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sieve"


def read(name: str) -> list[Rule]:
    return validate_rule_set(translate((FIXTURES / name).read_text()).rules)


def test_a_roundcube_managesieve_export() -> None:
    rules = read("roundcube_managesieve.sieve")
    assert [r.name for r in rules] == [
        "Newsletters",
        "Boss",
        "Invoices",
        "Large mail",
        "Old rule",
        "Prize spam",
    ]
    newsletters, boss, invoices, large, old, prize = rules
    assert newsletters.match == "any" and newsletters.stop
    assert newsletters.conditions[0] == Condition("header", "contains", "newsletter.example.org", "list-id")
    assert [a.type for a in newsletters.actions] == ["move", "mark_read"]
    assert boss.conditions == (Condition("from", "is", "carol@example.com"),)
    assert [a.type for a in boss.actions] == ["flag", "forward"]
    assert invoices.conditions[0] == Condition("subject", "starts_with", "Invoice ")
    assert invoices.actions[1] == Action("add_label", label="$label4")
    assert large.conditions == (Condition("size", "greater_than", 10 * 1024 * 1024),)
    assert not old.enabled and old.actions == (Action("discard"),)
    assert prize.conditions[0].op == "regex" and prize.actions == (Action("reject"),)


def test_a_thunderbird_style_filter_set() -> None:
    rules = read("thunderbird_filters.sieve")
    assert [r.name for r in rules] == ["Rule 1", "Rule 2", "Rule 3", "Rule 4"]
    assert rules[0].actions[0] == Action("move", folder="Lists/Dev") and rules[0].stop
    assert rules[1].match == "any" and rules[1].conditions[0] == Condition(
        "from", "ends_with", "@example.com"
    )
    assert rules[2].conditions[1] == Condition("header", "not_contains", "ann@example.com", "To")
    assert [a.type for a in rules[3].actions] == ["add_label", "flag"]


def test_a_vacation_script() -> None:
    translation = translate((FIXTURES / "vacation.sieve").read_text())
    assert translation.rules == []
    reply = translation.auto_reply
    assert reply is not None and reply.enabled and reply.interval_days == 5
    assert reply.subject == "Out of office until 14 July"
    assert (
        reply.text is not None and reply.text.startswith("Hello,\n\nI am away") and reply.text.endswith("Ann")
    )
    assert (reply.start, reply.end) == ("2026-07-01T00:00:00.000Z", "2026-07-14T23:59:59.999Z")


def test_a_syntax_error_names_line_and_column() -> None:
    with pytest.raises(SieveError) as refused:
        translate('require ["fileinto"];\nif header :contains "subject" "x" {\n  fileinto "A";\n  stop\n}\n')
    assert refused.value.code == "sieve_syntax" and (refused.value.line, refused.value.column) == (5, 1)


@pytest.mark.parametrize(
    ("script", "named"),
    [
        ('require ["variables"];\nset "a" "b";', '"variables"'),
        ('require ["fileinto"];\nif header :contains "subject" "x" { fileinto "A"; } else { keep; }', "else"),
        ('require ["relational"];\nif header :value "ge" "x-priority" "3" { discard; }', "match type :value"),
        ('require ["envelope"];\nif envelope :localpart :is "from" "x" { discard; }', "envelope :localpart"),
        ('if header :comparator "i;octet" :is "subject" "X" { discard; }', "comparator i;octet"),
        ('if exists "x-spam" { discard; }', "exists x-spam"),
        ('require ["imap4flags"];\nif true { addflag "\\\\Deleted"; }', "addflag \\Deleted"),
        (
            'require ["vacation"];\nif header :contains "subject" "x" { vacation "away"; }',
            "vacation under the test header",
        ),
        ('if allof (header :is ["to", "cc"] "x", size :over 1) { discard; }', "several headers or keys"),
    ],
)
def test_what_the_engine_cannot_run_is_refused_by_name(script: str, named: str) -> None:
    with pytest.raises(SieveError) as refused:
        translate(script)
    assert refused.value.code == "sieve_unsupported" and named in refused.value.message, refused.value.message


def test_an_oversized_script_is_refused() -> None:
    with pytest.raises(SieveError) as refused:
        translate("# " + "x" * 70_000)
    assert refused.value.code == "sieve_too_large"


# --- round trip ---------------------------------------------------------------------------------------

TEXT_FIELDS = ("from", "to", "cc", "recipient", "envelope_from", "envelope_to", "subject", "body", "header")
text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from('*?\\"'),
    min_size=1,
    max_size=20,
)
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-$", min_size=1, max_size=12)
header_name = st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z")


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    field = draw(st.sampled_from((*TEXT_FIELDS, "size", *FLAG_FIELDS)))
    if field == "size":
        return Condition(field, draw(st.sampled_from(SIZE_OPS)), draw(st.integers(0, 10**9)))
    if field in FLAG_FIELDS:
        return Condition(field, "is", draw(st.booleans()))
    op = draw(st.sampled_from([o for o in TEXT_OPS if "regex" not in o]) | st.just("regex"))
    value = draw(st.sampled_from(["^a.*b$", "[0-9]{3}", "(x|y)+"])) if "regex" in op else draw(text)
    return Condition(field, op, value, draw(header_name) if field == "header" else None)


actions = st.one_of(
    st.builds(Action, st.just("move"), folder=st.sampled_from(["Work", "Lists/Dev", 'Quote "q"', "Ünïcode"])),
    st.builds(Action, st.sampled_from(["add_label", "remove_label"]), label=word),
    st.builds(Action, st.sampled_from(["mark_read", "flag", "discard"])),
    st.builds(Action, st.just("forward"), to=st.sampled_from(["a@example.net", "b.c@example.org"])),
)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    reject = draw(st.booleans()) and draw(st.booleans())
    return Rule(
        id="",
        name=draw(st.text(alphabet="abc XYZ-_0123456789", min_size=1, max_size=30).filter(str.strip)).strip(),
        enabled=draw(st.booleans()),
        match=draw(st.sampled_from(["all", "any"])),
        conditions=tuple(draw(st.lists(conditions(), max_size=4))),
        actions=(Action("reject"),) if reject else tuple(draw(st.lists(actions, min_size=1, max_size=4))),
        stop=draw(st.booleans()),
    )


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rules(), max_size=5))
def test_rules_to_sieve_to_rules_is_the_identity(drawn: list[Rule]) -> None:
    valid = validate_rule_set(drawn)  # the rules as the API would store them
    script = render(valid, None)
    assert validate_rule_set(translate(script).rules) == valid, script


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    st.builds(
        AutoReply,
        enabled=st.just(True),
        subject=st.none() | st.text(alphabet="abc XYZ:!", min_size=1, max_size=30).filter(str.strip),
        text=st.none()
        | st.text(alphabet="abc .\n", min_size=1, max_size=60).filter(
            lambda t: t.strip() and "\n\n" not in t
        ),
        html=st.none() | st.just("<p>Away</p>"),
        start=st.none() | st.just("2026-07-01T00:00:00.000Z"),
        end=st.none() | st.just("2026-07-14T00:00:00.000Z"),
        interval_days=st.integers(1, 365),
    ).filter(lambda r: r.canonical().text is not None or r.html is not None)
)
def test_the_auto_reply_survives_the_round_trip(drawn: AutoReply) -> None:
    reply = drawn.canonical()  # as the service stores it
    back = translate(render([], reply)).auto_reply
    assert back is not None and back.canonical() == reply, render([], reply)
