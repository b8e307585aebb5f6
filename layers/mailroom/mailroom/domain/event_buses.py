"""EventBridge destinations, the pure part: what an event bus ARN may be, and the entry an event
becomes on it. No I/O here.

A webhook can deliver to an event bus (usually in the customer's own AWS account) instead of an
https URL: each event is one ``PutEvents`` entry, source ``mailroom``, detail-type the event type,
detail the exact JSON body a URL webhook is sent (same ``event_id``, same ``data``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

SOURCE = "mailroom"
# arn:<partition>:events:<region>:<account>:event-bus/<name>; names as EventBridge allows them
# (a partner bus's name has slashes: aws.partner/<partner>/<name>).
_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):events:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):event-bus/(?P<name>[/.\-_A-Za-z0-9]{1,256})"
)
MAX_ARN_LENGTH = 1600


class InvalidEventBusArn(ValueError):
    """Not an event bus ARN at all (syntax)."""


class EventBusNotAllowed(ValueError):
    """An event bus in an account this stack does not deliver to."""


@dataclass(frozen=True, slots=True)
class EventBusArn:
    arn: str
    partition: str
    region: str
    account: str
    name: str


def parse_arn(raw: str) -> EventBusArn:
    """``arn:aws:events:eu-west-1:123456789012:event-bus/orders`` → its parts; InvalidEventBusArn
    when it is not one."""
    if len(raw) > MAX_ARN_LENGTH:
        raise InvalidEventBusArn(f"an event bus ARN is at most {MAX_ARN_LENGTH} characters")
    match = _ARN.fullmatch(raw)
    if match is None:
        raise InvalidEventBusArn(
            "not an event bus ARN (arn:aws:events:<region>:<12-digit account>:event-bus/<name>)"
        )
    return EventBusArn(arn=raw, **match.groupdict())


def check_allowed(bus: EventBusArn, allowed_accounts: Collection[str]) -> EventBusArn:
    """The stack delivers only to the accounts its operator listed: the function's role may put
    events on any bus whose policy lets it, so without a list one organization could write onto a
    bus that trusts the stack for another one."""
    if bus.account not in allowed_accounts:
        raise EventBusNotAllowed(
            f"this Mailroom stack does not deliver to event buses of account {bus.account}"
            + ("" if allowed_accounts else " (EventBridge destinations are not enabled)")
        )
    return bus


def entry(bus_arn: str, event_type: str, body: str, *, time: Any) -> dict[str, Any]:
    """The ``PutEvents`` entry of one delivery. ``body``: the payload a URL webhook is POSTed."""
    return {
        "EventBusName": bus_arn,
        "Source": SOURCE,
        "DetailType": event_type,
        "Detail": body,
        "Time": time,
    }
