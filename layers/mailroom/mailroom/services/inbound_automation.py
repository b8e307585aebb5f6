"""Inbound mail's automation stage (docs/automation-inbound.md): the routes of a mailbox and of its
domain run on each message after the mailbox's own rules, before the message is stored.

**Reads.** The two route-set items (the mailbox's, its domain's) join the BatchGetItem of the
mailbox's screening (services/inbound_routing.py); so do the items the sets read: their mailbox-data
documents and the path claims of the custom folders their ``move`` actions name. Those are known
from a set once it is read, so a warm function guesses them from the version of the set it compiled
last (``first_keys``): in the steady state a message costs no request more than without routes; the
first message after a set changed (or in a new instance) reads what the guess missed in one more
BatchGetItem (``second_keys``). Sets are compiled once per ``built_version``, documents converted
once per version (bounded LRU caches, like the mailbox rules').

**Actions.** Inline ones fold into the rules stage's decision: ``label`` adds labels, ``move`` files
the message (not out of Spam, as for rules), ``delete`` keeps it in Trash, ``store_data`` writes the
document in the message's own transaction, conditioned on the version read (another writer first:
read again and retry; over the key limit: the action fails, the message is stored). Async ones
(webhook, eventbridge, forward, reply) are written as ``pending`` into the log entry, with the
top-level ``automation_pending`` count the autoworker's stream filter reads. Each matched route
leaves a route-hit item in the message's transaction. Every message of a mailbox with routes gets a
log entry, also when no route matched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from mailroom.domain import mailbox_data as data_model
from mailroom.domain.route_sets import (
    CompiledRoute,
    CompiledRouteSet,
    DataValues,
    RouteAction,
    RouteSetError,
    compile_route_set,
    data_values,
    evaluate,
    ordered,
)
from mailroom.domain.rules import Disposition, MessageView
from mailroom.mail import folders
from mailroom.observability import logger
from mailroom.services.mailbox_data import StoreDataPlan, apply_store_data
from mailroom.store import mailbox_data as data_store
from mailroom.store import route_sets as store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op, Rejected

Key = tuple[str, str]
CACHE_SIZE = 256  # compiled sets and converted documents kept per warm function
MAX_HITS_IN_TRANSACTION = 60  # the rest of a message's route hits are written after it
MAX_DATA_WRITES = 10  # documents one message writes (its transaction stays under 4 MB)
MAX_DATA_WRITE_BYTES = 2_000_000
DATA_ATTEMPTS = 3  # rounds of re-reading documents another writer changed meanwhile


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_compiled: _Lru[tuple[str, str, int], CompiledRouteSet | RouteSetError] = _Lru()
_latest: _Lru[Key, CompiledRouteSet] = _Lru()  # (PK, SK) → the set compiled last: the read guess
_documents: _Lru[tuple[str, str, int, str], DataValues] = _Lru()


def clear_caches() -> None:
    for cache in (_compiled, _latest, _documents):
        cache.clear()


def compiled(item: Item) -> CompiledRouteSet | RouteSetError:
    """A route-set item compiled, once per ``built_version`` in this function instance."""
    pk, sk = str(item["PK"]), str(item["SK"])
    cache_key = (pk, sk, int(item.get("built_version", 0)))
    found = _compiled.get(cache_key)
    if found is None:
        try:
            data_keys = [str(k) for k in item.get("data_keys") or []]
            found = compile_route_set(str(item.get("routes") or "[]"), data_keys)
        except RouteSetError as error:
            logger().error("route set cannot be compiled", extra={"route_set": sk, "error": str(error)})
            found = error
        _compiled.put(cache_key, found)
    if not isinstance(found, RouteSetError):
        _latest.put((pk, sk), found)
    return found


def _needs(org_id: str, mailbox_id: str, sets: list[CompiledRouteSet]) -> list[Key]:
    wanted: list[Key] = []
    for route_set in sets:
        wanted += [store.data_item_key(org_id, mailbox_id, k) for k in route_set.data_keys]
        for path in route_set.folders:
            canonical = _canonical(path)
            if canonical is not None and folders.system_key(canonical) is None:
                wanted.append(store.folder_path_key(org_id, mailbox_id, canonical))
    return list(dict.fromkeys(wanted))


def first_keys(org_id: str, mailbox_id: str, domain_id: str | None) -> list[Key]:
    """What to read with a mailbox's screening: its route-set keys, and what the sets compiled last
    for them read (a guess: ``second_keys`` reads what it missed)."""
    set_keys = store.route_set_keys(org_id, mailbox_id, domain_id)
    known = [found for key in set_keys if (found := _latest.get(key)) is not None]
    return [*set_keys, *_needs(org_id, mailbox_id, known)]


def second_keys(
    org_id: str, mailbox_id: str, domain_id: str | None, found: Mapping[Key, Item | None]
) -> list[Key]:
    """What the route sets just read need besides (``found`` holds the first keys)."""
    sets = [found.get(key) for key in store.route_set_keys(org_id, mailbox_id, domain_id)]
    usable = [c for item in sets if item is not None and not isinstance(c := compiled(item), RouteSetError)]
    return _needs(org_id, mailbox_id, usable)


def _canonical(path: str) -> str | None:
    try:
        return folders.canonical(path)
    except folders.InvalidFolder:
        return None


@dataclass(frozen=True, slots=True)
class Inputs:
    """One mailbox's automation for this message: its routes in order, the documents they read (as
    items, for ``store_data``'s version condition, and converted, for conditions), and the folder
    keys of the paths its ``move`` actions name (None: no such folder in this mailbox)."""

    org_id: str
    mailbox_id: str
    routes: tuple[CompiledRoute, ...]
    documents: Mapping[str, Item | None]
    data: Mapping[str, DataValues]
    folder_keys: Mapping[str, str | None]
    broken: tuple[str, ...] = ()  # route sets that could not be compiled (logged)


def _converted(org_id: str, mailbox_id: str, key: str, item: Item | None) -> DataValues:
    if item is None:
        return data_values(None)
    cache_key = (f"{org_id}/{mailbox_id}", key, int(item.get("version", 0)), str(item.get("updated_at")))
    found = _documents.get(cache_key)
    if found is None:
        try:
            found = data_values(data_model.decode(str(item.get("value"))))
        except ValueError:
            found = data_values(None)
        _documents.put(cache_key, found)
    return found


def inputs(
    org_id: str, mailbox_id: str, domain_id: str | None, found: Mapping[Key, Item | None]
) -> Inputs | None:
    """The mailbox's automation from items already read (every first and second key); None when
    neither the mailbox nor its domain has routes."""
    items = [found.get(key) for key in store.route_set_keys(org_id, mailbox_id, domain_id)]
    present = [item for item in items if item is not None]
    if not present:
        return None
    sets: list[CompiledRouteSet] = []
    broken: list[str] = []
    for item in present:
        result = compiled(item)
        if isinstance(result, RouteSetError):
            broken.append(str(item["SK"]))
        else:
            sets.append(result)
    documents: dict[str, Item | None] = {}
    for route_set in sets:
        for key in route_set.data_keys:
            documents[key] = found.get(store.data_item_key(org_id, mailbox_id, key))
    folder_keys: dict[str, str | None] = {}
    for route_set in sets:
        for path in route_set.folders:
            canonical = _canonical(path)
            if canonical is None:
                folder_keys[path] = None
            elif (system := folders.system_key(canonical)) is not None:
                folder_keys[path] = system
            else:
                claim = found.get(store.folder_path_key(org_id, mailbox_id, canonical))
                folder_keys[path] = str(claim["key"]) if claim else None
    return Inputs(
        org_id=org_id,
        mailbox_id=mailbox_id,
        routes=ordered(s.routes for s in sets),
        documents=documents,
        data={key: _converted(org_id, mailbox_id, key, item) for key, item in documents.items()},
        folder_keys=folder_keys,
        broken=tuple(broken),
    )


# --- running the routes on one message ------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """What the routes did to one message's copy, up to its transaction."""

    inputs: Inputs
    view: MessageView
    routes: list[dict[str, Any]] = field(default_factory=list)  # {id, name, matched}
    actions: list[dict[str, Any]] = field(default_factory=list)  # the log's records, in order
    matched: list[str] = field(default_factory=list)  # route ids
    folder: tuple[str, str] | None = None  # the last move that applied: (path, key)
    store_actions: list[tuple[int, RouteAction]] = field(default_factory=list)  # (record index, action)
    plan: StoreDataPlan | None = None
    refused: dict[str, str] = field(default_factory=dict)  # data key → why its writes fail
    documents: dict[str, Item | None] = field(default_factory=dict)  # as read (re-read on a conflict)
    data_rounds: int = 0

    # -- the log entry -------------------------------------------------------------------------

    def log_fields(self, *, kept: bool, reason: str | None = None) -> dict[str, Any]:
        """The entry's ``automation`` block and ``automation_pending`` (async actions to run). A
        message not kept (rejected, over quota, mailbox gone) runs none: its actions are skipped."""
        records = []
        for action in self.actions:
            record = dict(action)
            if not kept and record["status"] in ("done", "pending"):
                record.update(status="skipped", error=reason or "not_stored")
                record.pop("detail", None)
            records.append(record)
        pending = sum(1 for r in records if r["status"] == "pending")
        block: dict[str, Any] = {"routes": self.routes, "actions": records}
        if self.inputs.broken:
            block["broken"] = list(self.inputs.broken)
        return {"automation": block, "automation_pending": pending}

    # -- the message's transaction -------------------------------------------------------------

    def _hits(self, ulid: str, received_at: datetime) -> list[Item]:
        org_id, mailbox_id = self.inputs.org_id, self.inputs.mailbox_id
        return [store.hit_item(org_id, mailbox_id, route_id, ulid, received_at) for route_id in self.matched]

    def operations(self, ulid: str, received_at: datetime) -> list[Op]:
        """Route hits (the first ``MAX_HITS_IN_TRANSACTION``) and the data writes, for the message's
        transaction."""
        hits = [store.hit_op(item) for item in self._hits(ulid, received_at)[:MAX_HITS_IN_TRANSACTION]]
        writes = self.plan.writes if self.plan is not None else []
        ops = data_store.write_ops(
            self.inputs.org_id, self.inputs.mailbox_id, writes, max_keys=data_model.MAX_KEYS
        )
        return [*hits, *ops]

    def after_stored(self, table: Table, ulid: str, received_at: datetime) -> None:
        """The route hits that did not fit in the transaction (a message matching dozens of routes)."""
        store.put_hits(table, self._hits(ulid, received_at)[MAX_HITS_IN_TRANSACTION:])

    def recover(self, table: Table, rejected: Rejected) -> bool:
        """After the message's transaction failed on a data write: read the documents again (another
        writer came first) or refuse the keys over the limit, re-plan, and say whether to retry."""
        conflicted = [r.partition(":")[2] for r in rejected.by("data:")]
        over_limit = data_store.META_ROLE in rejected.roles
        if not conflicted and not over_limit:
            return False
        if over_limit:
            for write in self.plan.writes if self.plan else []:
                if write.current is None:
                    self.refused[write.key] = "data_key_limit_reached"
        self.data_rounds += 1
        if conflicted:
            if self.data_rounds >= DATA_ATTEMPTS:
                self.refused.update(dict.fromkeys(conflicted, "concurrent_update"))
            else:
                org_id, mailbox_id = self.inputs.org_id, self.inputs.mailbox_id
                wanted = [store.data_item_key(org_id, mailbox_id, k) for k in conflicted]
                fresh = {str(i["key"]): i for i in table.batch_get(wanted)}
                self.documents.update({k: fresh.get(k) for k in conflicted})
        self.plan_store_data()
        return True

    def plan_store_data(self) -> None:
        if not self.store_actions:
            return
        refused = dict(self.refused)
        while True:
            plan = apply_store_data(
                [action for _, action in self.store_actions], self.view, self.documents, refused=refused
            )
            # The message's transaction must stay within DynamoDB's limits: the writes beyond fail.
            total, over = 0, []
            for index, write in enumerate(plan.writes):
                total += write.size
                if index >= MAX_DATA_WRITES or total > MAX_DATA_WRITE_BYTES:
                    over.append(write.key)
            if not over:
                break
            refused.update(dict.fromkeys(over, "message_write_limit"))
        self.plan = plan
        for (index, _action), outcome in zip(self.store_actions, plan.outcomes, strict=True):
            record = self.actions[index]
            record["status"] = outcome.status
            record.pop("error", None)
            record.pop("detail", None)
            if outcome.error:
                record["error"] = outcome.error
            if outcome.detail:
                record["detail"] = outcome.detail


def _record(
    route: CompiledRoute, action: RouteAction, status: str, error: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "route_id": route.id,
        "action_id": action.id,
        "action_type": action.action_type,
        "mode": action.mode,
        "status": status,
    }
    if error is not None:
        record["error"] = error
    return record


def _labels(action: RouteAction) -> list[str]:
    return [str(label) for label in action.parameters.get("labels") or []]


def run(inputs: Inputs, view: MessageView, disposition: Disposition, *, spam: bool) -> Run:
    """Run the routes on one message, folding what inline actions decide into ``disposition`` (after
    the mailbox's own rules: a route's move comes last, so it wins). A message the mailbox's rules
    rejected runs no action (the routes are still evaluated, for the log)."""
    result = Run(inputs, view, documents=dict(inputs.documents))
    evaluation = evaluate(inputs.routes, view, inputs.data)
    for outcome in evaluation.results:
        route = outcome.route
        result.routes.append({"id": route.id, "name": route.name, "matched": outcome.matched})
        if not outcome.matched:
            continue
        result.matched.append(route.id)
        for action in route.actions:
            if disposition.reject:
                result.actions.append(_record(route, action, "skipped", "rejected"))
            elif action.mode == "async":
                result.actions.append(_record(route, action, "pending"))
            elif action.action_type == "store_data":
                result.store_actions.append((len(result.actions), action))
                result.actions.append(_record(route, action, "pending"))
            else:
                result.actions.append(_inline(result, disposition, route, action, spam=spam))
    result.plan_store_data()
    return result


def _inline(
    result: Run, disposition: Disposition, route: CompiledRoute, action: RouteAction, *, spam: bool
) -> dict[str, Any]:
    kind = action.action_type
    if kind == "label":
        for label in _labels(action):
            if label in disposition.remove_labels:
                disposition.remove_labels.remove(label)
            if label not in disposition.add_labels:
                disposition.add_labels.append(label)
        return _record(route, action, "done")
    if kind == "delete":
        disposition.discard = True
        return _record(route, action, "done")
    # move
    path = str(action.parameters.get("folder") or "")
    key = result.inputs.folder_keys.get(path)
    if key is None:
        return _record(route, action, "failed", "unknown_folder")
    if spam:
        # As for the mailbox's rules: a broad route must not pull spam into a work folder.
        return _record(route, action, "skipped", "spam")
    canonical = _canonical(path) or path
    disposition.folder = canonical
    result.folder = (canonical, key)
    return _record(route, action, "done")
