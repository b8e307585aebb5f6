"""Contacts and calendar: AWS calls per imported record, and per calendar range query as the calendar
grows outside the range.

**Import.** A vCard file of ``--small`` and then ``--large`` new contacts (default 100 and 1,000, each
with two addresses, a phone, an organization) is imported through the contacts function's real
handler, as API Gateway invokes it; then the large book's own export is imported again (every card
merges into its contact and changes nothing). Measured: DynamoDB calls per request, by operation,
and the marginal calls per record, (calls at large - calls at small) / (large - small): the
request's own fixed calls (mailbox, rate limit, idempotency, audit) cancel out. Expected 1.02 (one
transaction per contact, one BatchGetItem per 100 addresses, two addresses each); target <= 1.05,
which a per-record read or a quadratic pass would break.

**Range query.** A calendar holds a few events inside one week (singles, a weekly series, an
all-day event), then ``--outside`` more single events in the months around it are added. The same
week is asked for before and after, through the calendar function's handler. Measured: DynamoDB
calls per range query; target ratio after / before = 1.00 (a range reads its own events, never the
calendar).

Counted with a botocore ``before-call`` hook on the functions' DynamoDB client; the token was looked
up before the window (a warm function's cache, as deployed). AWS is moto in this process, so the
call counts are the measurement; times are printed but not compared.

    python -m bench.contacts_calendar [--small N] [--large N] [--outside N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.listing import BenchError, CallCounter, emulated_aws

WEEK_START = datetime(2026, 3, 23, tzinfo=UTC)


def mailbox_with_token() -> tuple[dict[str, Any], str]:
    """(mailbox item, message token with read and write), made through the API."""
    from mailroom.services.organizations import create_organization
    from mailroom.store import mailboxes
    from mailroom.store.table import Table
    from tests.support.mailboxes import add_domain, new_mailbox, ok, post

    org = create_organization(Table(), name="Bench contacts")
    add_domain(org, "bench.example.com")
    created = new_mailbox(org, "book", "bench.example.com")
    token = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{created['id']}/message-tokens",
            {"name": "bench", "scopes": ["messages:read", "messages:write"]},
        ),
        201,
    )["token"]
    item = mailboxes.get(Table(), org.organization["id"], created["id"])
    if item is None:
        raise BenchError("the mailbox was not created")
    return item, token


def vcards(first: int, count: int) -> str:
    cards = []
    for n in range(first, first + count):
        cards.append(
            "\r\n".join(
                [
                    "BEGIN:VCARD",
                    "VERSION:3.0",
                    f"N:Person{n};Bench;;;",
                    f"FN:Bench Person{n}",
                    f"ORG:Company {n % 37};",
                    f"EMAIL;type=INTERNET;type=WORK;type=pref:person{n}@work.example.com",
                    f"EMAIL;type=INTERNET;type=HOME:person{n}@home.example.net",
                    f"TEL;type=CELL:+1 415 555 {n % 10_000:04d}",
                    "END:VCARD",
                ]
            )
        )
    return "\r\n".join(cards) + "\r\n"


class Api:
    def __init__(self, token: str, counter: CallCounter) -> None:
        from tests.support.lambda_api import function_module

        self.token = token
        self.counter = counter
        self.functions = {name: function_module(name).handler for name in ("contacts", "calendar")}
        self.requests = 0

    def __call__(
        self, function: str, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[dict[str, Any] | str, Counter[str], float]:
        from tests.support.lambda_api import LambdaContext, http_event

        self.requests += 1
        headers = {"Idempotency-Key": f"bench-{self.requests}"} if method == "POST" else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        event = http_event(
            method,
            path,
            token=self.token,
            headers=headers,
            query=query,
            body=json.dumps(body).encode() if body is not None else None,
        )
        with self.counter.window() as calls:
            started = time.perf_counter()
            response = self.functions[function](event, LambdaContext(function_name=function))
            elapsed = time.perf_counter() - started
        if response["statusCode"] not in (200, 201):
            raise BenchError(f"{method} {path} answered {response['statusCode']}: {response.get('body')}")
        text = response["body"]
        parsed: dict[str, Any] | str = (
            json.loads(text)
            if response["headers"].get("content-type", "").startswith("application/json")
            else text
        )
        return parsed, Counter(calls), elapsed


def _detail(calls: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))


def imports(api: Api, small: int, large: int) -> float:
    print(f"{'import':<34}{'records':>9}{'calls':>8}{'per rec':>9}{'s':>8}   calls")
    totals: list[int] = []
    for label, first, count in (("new contacts (small)", 0, small), ("new contacts (large)", small, large)):
        report, calls, seconds = api(
            "contacts",
            "POST",
            "/api/v1/messages/contacts:import",
            body={"format": "vcard", "content": vcards(first, count)},
        )
        assert isinstance(report, dict)
        if report["data"]["imported"] != count:
            raise BenchError(f"{label}: {report['data']['imported']} of {count} imported")
        total = sum(calls.values())
        totals.append(total)
        print(f"{label:<34}{count:>9}{total:>8}{total / count:>9.3f}{seconds:>8.1f}   {_detail(calls)}")
    exported, _, _ = api("contacts", "GET", "/api/v1/messages/contacts:export", query={"format": "vcard"})
    assert isinstance(exported, str)
    report, calls, seconds = api(
        "contacts", "POST", "/api/v1/messages/contacts:import", body={"format": "vcard", "content": exported}
    )
    assert isinstance(report, dict)
    records = small + large
    if report["data"]["merged"] != records:
        raise BenchError(f"re-import of the export: {report['data']} (expected {records} merged)")
    total = sum(calls.values())
    print(
        f"{'its export re-imported (merges)':<34}{records:>9}{total:>8}{total / records:>9.3f}"
        f"{seconds:>8.1f}   {_detail(calls)}"
    )
    marginal = (totals[1] - totals[0]) / (large - small) if large > small else totals[1] / large
    print(f"marginal calls per imported record: {marginal:.3f} (expected 1.02, target <= 1.05)")
    return marginal


def ranges(api: Api, mailbox: dict[str, Any], outside: int) -> float:
    from mailroom.domain.calendar import EventInput
    from mailroom.services import calendar
    from mailroom.store.table import Table

    day = timedelta(days=1)
    inside = [
        EventInput(
            summary="Standup",
            start="2026-03-02T09:00:00",
            time_zone="Europe/Berlin",
            rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR",
        ),
        EventInput(summary="Offsite", start="2026-03-24", end="2026-03-26", all_day=True),
        *(
            EventInput(
                summary=f"Meeting {n}",
                start=(WEEK_START + n * day + timedelta(hours=13)).strftime("%Y-%m-%dT%H:%M:%S"),
            )
            for n in range(5)
        ),
    ]
    for event in inside:
        calendar.create(Table(), mailbox, event)
    query = {"since": "2026-03-23T00:00:00Z", "before": "2026-03-30T00:00:00Z"}
    print(f"\n{'range query (one week)':<34}{'events':>9}{'occur.':>8}{'calls':>8}{'ms':>8}   calls")
    counts: list[int] = []
    for label in ("a small calendar", f"+{outside} events outside"):
        if counts:
            started = time.perf_counter()
            for n in range(outside):
                # Spread over the six months before and after the week, never inside it.
                offset = timedelta(hours=(n * 7919) % (180 * 24)) + 8 * day
                when = WEEK_START + offset if n % 2 else WEEK_START - offset
                calendar.create(
                    Table(),
                    mailbox,
                    EventInput(summary=f"Other {n}", start=when.strftime("%Y-%m-%dT%H:%M:%S")),
                )
            print(
                f"  (seeded {outside} events through the calendar service in "
                f"{time.perf_counter() - started:.1f} s)"
            )
        listing, calls, seconds = api("calendar", "GET", "/api/v1/messages/calendar/events", query=query)
        assert isinstance(listing, dict)
        total = sum(calls.values())
        counts.append(total)
        events = len(inside) + (outside if len(counts) > 1 else 0)
        print(
            f"{label:<34}{events:>9}{listing['meta']['count']:>8}{total:>8}{seconds * 1000:>8.1f}"
            f"   {_detail(calls)}"
        )
        if listing["meta"]["count"] != 3 + 1 + 5:
            raise BenchError(f"{label}: {listing['meta']['count']} occurrences in the week, expected 9")
    ratio = counts[1] / counts[0]
    print(f"calls per range query, large / small calendar: {ratio:.2f} (target 1.00)")
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.contacts_calendar", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--outside", type=int, default=1000)
    args = parser.parse_args(argv)
    if not 0 < args.small <= args.large <= 10_000 - args.small:
        print("contacts_calendar: need 0 < small <= large and small + large <= 10,000", file=sys.stderr)
        return 2
    try:
        with emulated_aws():
            from mailroom.auth import authenticate
            from mailroom.store import aws
            from mailroom.store.table import Table

            mailbox, token = mailbox_with_token()
            counter = CallCounter()
            aws.dynamodb().meta.events.register("before-call.dynamodb", counter)
            authenticate(f"Bearer {token}", Table())  # the lookup a warm function made earlier
            api = Api(token, counter)
            print(
                "contacts_calendar: DynamoDB calls per request through the functions' handlers "
                "(botocore hook; moto in-process)"
            )
            imports(api, args.small, args.large)
            ranges(api, mailbox, args.outside)
            print()
    except BenchError as exc:
        print(f"contacts_calendar: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
