"""The rules engine (domain/rules.py), the message view (mail/rule_view.py) and the auto-reply's rules
of restraint (domain/auto_reply.py): pure, no AWS."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from mailroom.domain import auto_reply
from mailroom.domain.rule_view import view_of
from mailroom.domain.rules import (
    Action,
    Condition,
    MessageView,
    Rule,
    RuleError,
    compile_rules,
    evaluate,
    glob_to_re2,
    validate_rule,
    validate_rule_set,
)
from mailroom.mail.parse import parse

VIEW = MessageView(
    from_=("orders@shop.example",),
    to=("ann@example.com",),
    cc=("team@example.com",),
    envelope_from=("bounce-123@shop.example",),
    envelope_to=("ann@example.com",),
    subject="Invoice #42 for March",
    body="Your order total: 12 EUR.\nThank you.",
    headers={"list-id": ("<deals.shop.example>",), "x-mailer": ("BulkMailer 2.0",)},
    size=5_000,
    has_attachment=True,
    spam=False,
)


def rule(
    *conditions: Condition,
    match: str = "all",
    actions: tuple[Action, ...] = (Action("flag"),),
    **extra: object,
) -> Rule:
    return validate_rule(
        Rule(str(extra.pop("id", "r")), "rule", match=match, conditions=conditions, actions=actions, **extra)
    )  # type: ignore[arg-type]


def matches(*conditions: Condition, match: str = "all") -> bool:
    return evaluate(compile_rules([rule(*conditions, match=match)]), VIEW).matched == ["r"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Condition("subject", "contains", "INVOICE"), True),  # case-insensitive, as Sieve's default
        (Condition("subject", "not_contains", "invoice"), False),
        (Condition("subject", "is", "invoice #42 for march"), True),
        (Condition("subject", "starts_with", "Invoice #"), True),
        (Condition("subject", "ends_with", "march"), True),
        (Condition("subject", "matches", "invoice #?? for *"), True),
        (Condition("subject", "matches", "invoice #? for *"), False),
        (Condition("subject", "regex", r"#[0-9]+\b"), True),
        (Condition("subject", "not_regex", r"^receipt"), True),
        (Condition("from", "ends_with", "@shop.example"), True),
        (Condition("to", "is", "ann@example.com"), True),
        (Condition("cc", "contains", "team@"), True),
        (Condition("recipient", "is", "team@example.com"), True),  # To or Cc
        (Condition("envelope_from", "starts_with", "bounce-"), True),
        (Condition("envelope_to", "is", "ann@example.com"), True),
        (Condition("body", "contains", "order total"), True),
        (Condition("header", "contains", "bulkmailer", "X-Mailer"), True),
        (Condition("header", "contains", "x", "X-Absent"), False),
        (Condition("header", "not_contains", "x", "X-Absent"), True),  # Sieve: no value satisfies
        (Condition("size", "greater_than", 4_999), True),
        (Condition("size", "less_than", 5_000), False),
        (Condition("has_attachment", "is", True), True),
        (Condition("spam", "is", True), False),
        (Condition("list", "is", True), True),
    ],
)
def test_each_condition(condition: Condition, expected: bool) -> None:
    assert matches(condition) is expected


def test_all_any_and_no_condition() -> None:
    yes, no = Condition("subject", "contains", "invoice"), Condition("subject", "contains", "receipt")
    assert matches(yes, no, match="any") and not matches(yes, no, match="all") and matches()


def test_rules_run_in_order_stop_ends_and_the_last_move_wins() -> None:
    rules = compile_rules(
        [
            rule(actions=(Action("move", folder="A"), Action("add_label", label="x")), id="1"),
            rule(actions=(Action("move", folder="B"), Action("remove_label", label="x")), id="2", stop=True),
            rule(actions=(Action("move", folder="C"),), id="3"),
        ]
    )
    decided = evaluate(rules, VIEW)
    assert decided.matched == ["1", "2"] and decided.folder == "B" and decided.outcome == "moved"
    assert decided.labels(["keep"]) == ["keep"] and decided.remove_labels == ["x"]


def test_reject_ends_the_run_and_disabled_rules_never_run() -> None:
    rules = compile_rules(
        [
            validate_rule(Rule("off", "off", enabled=False, actions=(Action("discard"),))),
            rule(actions=(Action("forward", to="a@example.net"),), id="fwd"),
            rule(actions=(Action("reject"),), id="no"),
            rule(actions=(Action("flag"),), id="late"),
        ]
    )
    decided = evaluate(rules, VIEW)
    assert decided.matched == ["fwd", "no"] and decided.reject and decided.forwards == ["a@example.net"]
    assert decided.outcome == "rejected"


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    # (a+)+$ on "aaaa…b" takes exponential time on a backtracking engine; RE2 is linear.
    view = MessageView(subject="a" * 100_000 + "b")
    started = time.perf_counter()
    decided = evaluate(compile_rules([rule(Condition("subject", "regex", "(a+)+$"))]), view)
    assert decided.matched == [] and time.perf_counter() - started < 1.0


def test_globs_become_anchored_re2_and_canonical_ops() -> None:
    assert glob_to_re2(r"a*b?\*") == r"^(?s:a.*b.\*)$"
    canonical = validate_rule(
        Rule(
            "r",
            "r",
            conditions=(
                Condition("subject", "matches", "*x*"),
                Condition("subject", "matches", "x*"),
                Condition("subject", "matches", "*x"),
                Condition("subject", "matches", r"x\*"),
                Condition("subject", "not_matches", "*x*"),
                Condition("subject", "matches", "*x?"),
            ),
            actions=(Action("flag"),),
        )
    )
    assert [(c.op, c.value) for c in canonical.conditions] == [
        ("contains", "x"),
        ("starts_with", "x"),
        ("ends_with", "x"),
        ("is", "x*"),
        ("not_contains", "x"),
        ("matches", "*x?"),
    ]


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (Rule("r", "", actions=(Action("flag"),)), "validation_error"),
        (
            Rule(
                "r",
                "r",
                conditions=(Condition("subject", "regex", "(?P<n>a)\\k<n>"),),
                actions=(Action("flag"),),
            ),
            "invalid_regex",
        ),
        (
            Rule(
                "r", "r", conditions=(Condition("subject", "regex", "x" * 1001),), actions=(Action("flag"),)
            ),
            "pattern_too_long",
        ),
        (
            Rule("r", "r", conditions=(Condition("subject", "is", 3),), actions=(Action("flag"),)),
            "invalid_condition",
        ),
        (
            Rule("r", "r", conditions=(Condition("size", "greater_than", True),), actions=(Action("flag"),)),
            "invalid_condition",
        ),
        (
            Rule("r", "r", conditions=(Condition("header", "is", "x"),), actions=(Action("flag"),)),
            "invalid_condition",
        ),
        (
            Rule(
                "r",
                "r",
                conditions=(Condition("header", "is", "yes", "X-Mailroom-Spam"),),
                actions=(Action("flag"),),
            ),
            "invalid_condition",
        ),
        (
            Rule("r", "r", conditions=(Condition("subject", "is", "a\nb"),), actions=(Action("flag"),)),
            "invalid_condition",
        ),
        (
            Rule("r", "r", conditions=(Condition("subject", "is", "x"),) * 51, actions=(Action("flag"),)),
            "too_many_conditions",
        ),
        (Rule("r", "r"), "invalid_action"),
        (Rule("r", "r", actions=(Action("add_label", label="two words"),)), "invalid_action"),
        (Rule("r", "r", actions=(Action("add_label", label="\\Seen"),)), "invalid_action"),
        (Rule("r", "r", actions=(Action("flag", folder="x"),)), "invalid_action"),
        (Rule("r", "r", actions=(Action("reject"), Action("flag"))), "invalid_action"),
    ],
)
def test_invalid_rules_name_their_problem(bad: Rule, code: str) -> None:
    with pytest.raises(RuleError) as refused:
        validate_rule(bad)
    assert refused.value.code == code


def test_the_rule_limit() -> None:
    with pytest.raises(RuleError) as refused:
        validate_rule_set([Rule(str(i), "r", actions=(Action("flag"),)) for i in range(251)])
    assert refused.value.code == "rule_limit_reached"


def test_the_view_of_a_parsed_message() -> None:
    raw = (
        b"From: Shop <Orders@Shop.Example>\r\nTo: Ann <ann@example.com>\r\nSubject: Hi\r\n"
        b"List-Id: <deals.shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
        b"<style>p {color: red}</style><p>Total &amp; more</p>\r\n"
    )
    view = view_of(parse(raw), spam=True, envelope_from="<B@Shop.Example>", envelope_to="ann@example.com")
    assert view.from_ == ("orders@shop.example",) and view.to == ("ann@example.com",)
    assert view.envelope_from == ("b@shop.example",) and view.is_list and view.spam
    assert "Total & more" in view.body and "color" not in view.body


# --- auto-reply ----------------------------------------------------------------------------------


def refusal(
    headers: dict[str, tuple[str, ...]] | None = None, sender: str | None = "carol@example.net", **flags: bool
) -> str | None:
    return auto_reply.refusal(
        headers or {},
        return_path=sender,
        own_addresses=["ann@example.com"],
        spam=flags.get("spam", False),
        virus=flags.get("virus", False),
    )


@pytest.mark.parametrize(
    ("headers", "sender", "flags", "reason"),
    [
        ({}, "carol@example.net", {}, None),
        ({"auto-submitted": ("no",)}, "carol@example.net", {}, None),
        ({"auto-submitted": ("auto-replied",)}, "carol@example.net", {}, "auto_submitted"),
        ({"auto-submitted": ("auto-generated; type=dsn",)}, "carol@example.net", {}, "auto_submitted"),
        ({"precedence": ("Bulk",)}, "carol@example.net", {}, "precedence"),
        ({"precedence": ("junk",)}, "carol@example.net", {}, "precedence"),
        ({"list-unsubscribe": ("<mailto:u@x>",)}, "carol@example.net", {}, "list"),
        ({}, "", {}, "no_return_path"),
        ({}, "<>", {}, "no_return_path"),
        ({}, "MAILER-DAEMON@example.net", {}, "system_sender"),
        ({}, "postmaster@example.net", {}, "system_sender"),
        ({}, "no-reply@example.net", {}, "system_sender"),
        ({}, "owner-list@example.net", {}, "system_sender"),
        ({}, "list-request@example.net", {}, "system_sender"),
        ({}, "Ann@Example.com", {}, "own_address"),
        ({}, "carol@example.net", {"spam": True}, "spam"),
        ({}, "carol@example.net", {"virus": True}, "virus"),
    ],
)
def test_auto_reply_restraint(
    headers: dict[str, tuple[str, ...]], sender: str, flags: dict[str, bool], reason: str | None
) -> None:
    assert refusal(headers, sender, **flags) == reason


def test_auto_reply_schedule_and_subject() -> None:
    settings = auto_reply.AutoReply(
        enabled=True, text="x", start="2026-07-01T00:00:00.000Z", end="2026-07-14T00:00:00.000Z"
    )
    assert not settings.active_at(datetime(2026, 6, 30, 23, 59, tzinfo=UTC))
    assert settings.active_at(datetime(2026, 7, 1, tzinfo=UTC))
    assert not settings.active_at(datetime(2026, 7, 14, tzinfo=UTC))
    assert settings.reply_subject("Lunch?") == "Auto: Lunch?"
    assert auto_reply.AutoReply(enabled=True, subject="Away").reply_subject("Lunch?") == "Away"
