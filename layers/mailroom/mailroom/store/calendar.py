"""Calendar events of a mailbox, in the mailbox's partition (``ORG#<org>#MBX#<mbx>``; the mailbox
purge removes them). Key design (also in ``store/keys.py``):

event        SK EVENT#<eid>                  the iCalendar source and its indexed fields
by start     SK EVAT#<start utc>#<eid>       {event_id, end_utc}: single events of at most 7 days
long         SK EVLONG#<eid>                 {event_id, start_utc, until_utc}: recurring events and
                                             longer ones (stored once, expanded when read)
uid          SK EVUID#<sha256 of UID>        {event_id}: one event per iCalendar UID (an invitation
                                             updates the event of its UID); a conditional write

A range [since, before) is one Query of ``EVAT#`` from ``since - 7 days`` to ``before`` (an event
starting earlier than that cannot reach into the range) plus one Query of the mailbox's ``EVLONG#``
items, then one BatchGetItem per 100 events: no Scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, ids
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table, deserialize
from mailroom.store.txn import Op, Rejected, Update, delete, put, put_new, run

MAX_EVENTS = 20_000
SHORT_SPAN = timedelta(days=7)
MAX_RANGE_ITEMS = 5000


class LimitReached(Exception):
    """The mailbox holds MAX_EVENTS events."""


class UidTaken(Exception):
    """Another event of the mailbox has this UID."""


def event_sk(event_id: str) -> str:
    return f"EVENT#{event_id}"


def uid_sk(uid: str) -> str:
    return f"EVUID#{hashlib.sha256(uid.encode('utf-8')).hexdigest()}"


def _pk(org_id: str, mailbox_id: str) -> str:
    return keys.mailbox_pk(org_id, mailbox_id)


def _index_item(pk: str, event: Item) -> Item:
    if event.get("recurring") or event.get("until_utc"):
        return {
            "PK": pk,
            "SK": f"EVLONG#{event['id']}",
            "type": "event_index",
            "event_id": event["id"],
            "start_utc": event["start_utc"],
            "until_utc": event.get("until_utc"),
        }
    return {
        "PK": pk,
        "SK": f"EVAT#{event['start_utc']}#{event['id']}",
        "type": "event_index",
        "event_id": event["id"],
        "end_utc": event["end_utc"],
    }


def get(table: Table, org_id: str, mailbox_id: str, event_id: str) -> Item | None:
    return table.get(_pk(org_id, mailbox_id), event_sk(event_id))


def by_uid(table: Table, org_id: str, mailbox_id: str, uid: str) -> Item | None:
    pk = _pk(org_id, mailbox_id)
    pointer = table.get(pk, uid_sk(uid))
    return get(table, org_id, mailbox_id, str(pointer["event_id"])) if pointer else None


def create(table: Table, org_id: str, mailbox_id: str, values: dict[str, Any]) -> Item:
    """``values``: ics, uid and the indexed fields. UidTaken, LimitReached."""
    pk = _pk(org_id, mailbox_id)
    now = clock.now_iso()
    event: Item = {
        "PK": pk,
        "SK": "",
        "type": "event",
        "id": ids.new_id("evt"),
        **values,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    event["SK"] = event_sk(event["id"])
    count = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(event_count=1)
    count.at_most("event_count", MAX_EVENTS - 1)
    uid_item = {"PK": pk, "SK": uid_sk(values["uid"]), "type": "event_uid", "event_id": event["id"]}
    try:
        run(
            table,
            [
                put_new("event", event),
                put_new("uid", uid_item),
                put("index", _index_item(pk, event)),
                count.op("mailbox"),
            ],
        )
    except Rejected as rejected:
        if "uid" in rejected.roles:
            raise UidTaken(values["uid"]) from rejected
        raise LimitReached(f"at most {MAX_EVENTS} events per mailbox") from rejected
    return event


def replace(table: Table, org_id: str, mailbox_id: str, current: Item, values: dict[str, Any]) -> Item:
    """``values`` over ``current`` (same UID); ConditionFailed if it changed meanwhile."""
    pk = _pk(org_id, mailbox_id)
    event: Item = {
        **current,
        **values,
        "version": int(current.get("version", 1)) + 1,
        "updated_at": clock.now_iso(),
    }
    old_index, new_index = _index_item(pk, current), _index_item(pk, event)
    operations: list[Op] = [
        Op(
            "event",
            {
                "Put": {
                    **put("event", event).body["Put"],
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(int(current.get("version", 1)))}},
                }
            },
        ),
        put("index", new_index),
    ]
    if old_index["SK"] != new_index["SK"]:
        operations.append(delete("unindex", pk, old_index["SK"]))
    try:
        run(table, operations)
    except Rejected as rejected:
        raise ConditionFailed("the event changed meanwhile") from rejected
    return event


def remove(table: Table, org_id: str, mailbox_id: str, current: Item) -> None:
    pk = _pk(org_id, mailbox_id)
    try:
        run(
            table,
            [
                delete(
                    "event",
                    pk,
                    event_sk(current["id"]),
                    condition="version = :v",
                    v=int(current.get("version", 1)),
                ),
                delete("uid", pk, uid_sk(current["uid"])),
                delete("index", pk, _index_item(pk, current)["SK"]),
                Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(event_count=-1).op("mailbox"),
            ],
        )
    except Rejected as rejected:
        raise ConditionFailed("the event changed meanwhile") from rejected


def _query(table: Table, limit: int = MAX_RANGE_ITEMS, **kwargs: Any) -> Iterator[Item]:
    kwargs["TableName"] = table.name
    read = 0
    while True:
        response = table.client.query(**kwargs)
        for wire in response.get("Items", []):
            read += 1
            yield deserialize(wire)
        last = response.get("LastEvaluatedKey")
        if not last or read >= limit:
            return
        kwargs["ExclusiveStartKey"] = last


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def in_range(table: Table, org_id: str, mailbox_id: str, since: datetime, before: datetime) -> list[Item]:
    """Events that may have an occurrence in [since, before) (UTC datetimes)."""
    pk = _pk(org_id, mailbox_id)
    low, high = _stamp(since - SHORT_SPAN), _stamp(before)
    wanted: list[str] = []
    for item in _query(
        table,
        KeyConditionExpression="PK = :pk AND SK BETWEEN :lo AND :hi",
        ExpressionAttributeValues={
            ":pk": {"S": pk},
            ":lo": {"S": f"EVAT#{low}"},
            ":hi": {"S": f"EVAT#{high}"},
        },
    ):
        if str(item["end_utc"]) > _stamp(since):
            wanted.append(str(item["event_id"]))
    for item in _query(
        table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": "EVLONG#"}},
    ):
        until = item.get("until_utc")
        if str(item["start_utc"]) < high and (until is None or str(until) > _stamp(since)):
            wanted.append(str(item["event_id"]))
    found = table.batch_get([(pk, event_sk(e)) for e in wanted])
    return sorted(found, key=lambda e: str(e["start_utc"]))


def all_events(table: Table, org_id: str, mailbox_id: str) -> Iterator[Item]:
    yield from _query(
        table,
        MAX_EVENTS,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={":pk": {"S": _pk(org_id, mailbox_id)}, ":prefix": {"S": "EVENT#"}},
    )
