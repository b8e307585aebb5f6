"""Route evaluation with mailbox data conditions stays linear in the message count: 1,000 messages
against 10,000, the same route set and data, time per message compared.

The route set is one a mailbox would have (the automation model's stored format, compiled by
``services.inbound_automation`` as inbound compiles it): a route whose rule tests the sender
``in_data`` against a 1,000-entry document (a VIP list), one testing the document's text with a
``data`` condition and the subject with a regular expression, and a catch-all route with an async
action. Each message goes through what inbound runs per message once the mailbox's items are read:
the automation inputs from the items (cached compiled set and converted document), then the routes
on the message (``inbound_automation.run``, inline actions folded into a fresh disposition, the
store_data plan, the log fields). Half the senders are in the document.

Pure Python (no AWS: the items are given as read), so the times are the evaluation's own. A cost that
grew with the number of messages processed (a document re-parsed per message, a list scanned per
lookup, a cache that grows) would show as a ratio above 1. Printed: the medians of microseconds per
message for each size and their ratio (target: <= 1.2), and the work counted per message. Nothing is
asserted (tests/unit/test_route_sets.py counts the work).

    python -m bench.automation [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "mailroom"
DEFAULT_ROUNDS = 3
SIZES = (1_000, 10_000)
DOCUMENT_ENTRIES = 1_000
TARGET_RATIO = 1.2
ORG, MAILBOX, DOMAIN = "org_bench", "mbx_bench", "dom_bench"


def route_set_item() -> dict[str, Any]:
    from mailroom.store import keys

    routes = [
        {
            "id": "rte_vip",
            "name": "VIP senders",
            "position": 0,
            "stop": False,
            "rule": {
                "id": "rul_vip",
                "match": "all",
                "conditions": [{"field": "from", "op": "in_data", "key": "vip"}],
            },
            "actions": [
                {"id": "act_label", "name": "vip", "action_type": "label", "parameters": {"labels": ["vip"]}}
            ],
        },
        {
            "id": "rte_mode",
            "name": "Holiday orders",
            "position": 1,
            "stop": False,
            "rule": {
                "id": "rul_mode",
                "match": "all",
                "conditions": [
                    {"field": "data", "key": "mode", "op": "is", "value": "holiday"},
                    {"field": "subject", "op": "regex", "value": r"order #?\d+"},
                ],
            },
            "actions": [
                {
                    "id": "act_move",
                    "name": "later",
                    "action_type": "move",
                    "parameters": {"folder": "Archive"},
                }
            ],
        },
        {
            "id": "rte_all",
            "name": "Everything to the webhook",
            "position": 2,
            "stop": False,
            "rule": None,
            "actions": [
                {
                    "id": "act_hook",
                    "name": "hook",
                    "action_type": "webhook",
                    "parameters": {"url": "https://h.example.net/"},
                }
            ],
        },
    ]
    return {
        "PK": keys.automation_pk(ORG),
        "SK": keys.mailbox_route_set_sk(MAILBOX),
        "type": "route_set",
        "built_version": 1,
        "routes": json.dumps(routes),
        "data_keys": ["vip", "mode"],
    }


def found_items() -> dict[tuple[str, str], Any]:
    from mailroom.store import keys
    from mailroom.store import route_sets as store

    item = route_set_item()
    vip = [f"sender{i}@example.net" for i in range(DOCUMENT_ENTRIES)]
    documents = {"vip": vip, "mode": "holiday"}
    found: dict[tuple[str, str], Any] = {(item["PK"], item["SK"]): item}
    found[(keys.automation_pk(ORG), keys.domain_route_set_sk(DOMAIN))] = None
    for key, value in documents.items():
        text = json.dumps(value, separators=(",", ":"))
        found[store.data_item_key(ORG, MAILBOX, key)] = {
            "key": key,
            "value": text,
            "version": 1,
            "updated_at": "t",
        }
    return found


def messages(count: int) -> list[Any]:
    from mailroom.domain.rules import MessageView

    return [
        MessageView(
            from_=(f"Sender{n % (2 * DOCUMENT_ENTRIES)}@Example.net".lower(),),
            to=("inbox@example.com",),
            subject=f"Your order #{n}" if n % 3 else f"Hello {n}",
            body="A short body.",
        )
        for n in range(count)
    ]


def per_message_us(count: int, found: dict[tuple[str, str], Any]) -> float:
    from mailroom.domain.rules import Disposition
    from mailroom.services import inbound_automation

    views = messages(count)
    started = time.perf_counter()
    for view in views:
        inputs = inbound_automation.inputs(ORG, MAILBOX, DOMAIN, found)
        assert inputs is not None
        run = inbound_automation.run(inputs, view, Disposition(), spam=False)
        run.log_fields(kept=True)
    return (time.perf_counter() - started) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.automation", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"default {DEFAULT_ROUNDS}")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sys.path[:0] = [p for p in (str(ROOT), str(LAYER_DIR)) if p not in sys.path]
    from mailroom.domain.route_sets import Stats, data_values, evaluate
    from mailroom.services import inbound_automation

    inbound_automation.clear_caches()
    found = found_items()
    per_size: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(args.rounds):
        for size in SIZES:  # alternated, so drift in the machine hits both alike
            per_size[size].append(per_message_us(size, found))
    small, large = (statistics.median(per_size[size]) for size in SIZES)
    ratio = large / small
    inputs = inbound_automation.inputs(ORG, MAILBOX, DOMAIN, found)
    assert inputs is not None
    stats = Stats()
    data = {
        "vip": data_values([f"sender{i}@example.net" for i in range(DOCUMENT_ENTRIES)]),
        "mode": data_values("holiday"),
    }
    for view in messages(SIZES[1]):
        evaluate(inputs.routes, view, data, stats)
    print(f"route set: 3 routes, a {DOCUMENT_ENTRIES:,}-entry in_data document and a data condition")
    for size in SIZES:
        median = statistics.median(per_size[size])
        print(f"{size:>7,} messages: {median:8.1f} us per message (median of {args.rounds})")
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(
        f"ratio {SIZES[1]:,}/{SIZES[0]:,} per message: {ratio:.2f} ({verdict} the target <= {TARGET_RATIO})"
    )
    routes, tests, lookups = (n / stats.messages for n in (stats.routes, stats.tests, stats.lookups))
    print(
        f"work per message: {routes:.1f} routes, {tests:.1f} condition tests, {lookups:.1f} set lookups "
        "(constant: no scan of the document)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
