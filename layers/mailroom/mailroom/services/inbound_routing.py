"""Inbound mail, steps 1 and 4 of services/inbound.py: which organization each envelope recipient
belongs to (``route``), and what each organization's recipients expand to (``Expansion``): copies
for mailboxes, forwards to external addresses, and drops, counted by reason.

Expansion is bounded (``MAX_EXPANSION_DEPTH``) and visits each mailbox and alias once, so loops end
and a mailbox reached twice gets one copy. Every mailbox a copy is planned for is screened once
(``store.rules.screen``: its blocked-sender keys, rules and auto-reply in one BatchGetItem); the
rules stage (services/inbound_rules.py) reads the same screening, so rules cost no request of their
own.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.mail import forwarding
from mailroom.services import inbound_automation
from mailroom.store import domains, keys, platform_domain
from mailroom.store import rules as rule_store
from mailroom.store.rules import Screening
from mailroom.store.table import Item, Table

MAX_EXPANSION_DEPTH = 5  # alias → alias → mailbox forwarding → ...: deeper is a loop or a mistake
MAX_RECIPIENTS = 100  # SES accepts at most 50 per message


@dataclass(frozen=True, slots=True)
class Copy:
    mailbox: Item
    via: str  # the envelope recipient it was addressed to (the first, if several lead here)
    domain_id: str  # the recipient domain the copy is counted for


@dataclass(slots=True)
class Forward:
    source: str  # hosted address the forward is sent from (envelope sender and From)
    tags: dict[str, str]
    domain_id: str
    targets: list[str] = field(default_factory=list)


# --- reads, cached for the message ------------------------------------------------------------------


Key = tuple[str, str]
MAX_ROUTE_HINTS = 4096  # addresses remembered per warm function (a few hundred KB at most)


@dataclass(frozen=True, slots=True)
class RouteHint:
    """Where an address led the last time this process delivered to it. Only a guess of which keys
    to read: every item it names is read again, with the claim, and used only if the fresh items
    still agree (services/inbound.py; a wrong guess costs the reads it would have cost anyway)."""

    org_id: str
    domain_id: str
    mailbox_id: str | None  # the address's own mailbox (None: an alias, a catch-all, nobody)


class RouteHints:
    """A bounded, least-recently-used map of address → ``RouteHint``, kept for the life of the
    process (a warm function receives mail for the same addresses again and again)."""

    def __init__(self, size: int = MAX_ROUTE_HINTS) -> None:
        self._size = size
        self._hints: OrderedDict[str, RouteHint] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, address: str) -> RouteHint | None:
        with self._lock:
            hint = self._hints.get(address)
            if hint is not None:
                self._hints.move_to_end(address)
            return hint

    def put(self, address: str, hint: RouteHint) -> None:
        with self._lock:
            self._hints[address] = hint
            self._hints.move_to_end(address)
            while len(self._hints) > self._size:
                self._hints.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._hints.clear()


_hints: weakref.WeakKeyDictionary[Any, RouteHints] = weakref.WeakKeyDictionary()
_hints_lock = threading.Lock()


def route_hints(table: Table) -> RouteHints:
    """The hints learned through ``table``'s DynamoDB client: they describe the data behind that
    client, so another client (another endpoint or account: ``store.aws.reset_clients``) starts
    without any."""
    with _hints_lock:
        hints = _hints.get(table.client)
        if hints is None:
            hints = _hints[table.client] = RouteHints()
        return hints


class Directory:
    """Every item resolution reads, read once per message (an alias fan-out touches the same
    domain and mailboxes many times).

    ``prefetch_routes`` and ``prefetch_mailboxes`` read what a message needs ahead of routing and
    expansion, in as few BatchGetItems as the keys allow: the recipients' domain claims, domains and
    address entries with the caller's own keys (the receipt), then the mailboxes the addresses name
    with their screening keys (blocked senders, rules, auto-reply). With a ``RouteHint`` for every
    recipient (a warm function that delivered to them before) all of it is one BatchGetItem, the
    hinted claims and mailboxes included, so the hint is checked against what is read; without,
    the claims are read first (GetItem) and the mailboxes after the address entries. Anything not
    prefetched (an alias's targets, a forward's domain) is read on demand."""

    def __init__(self, table: Table, hints: RouteHints | None = None) -> None:
        self.table = table
        self.hints = hints or RouteHints(0)
        self._claims: dict[str, Item | None] = {}
        self._routes: dict[str, Item | None] = {}
        self._items: dict[Key, Item | None] = {}

    def claim(self, domain_name: str) -> Item | None:
        if domain_name not in self._claims:
            self._claims[domain_name] = domains.claim_of(self.table, domain_name)
        return self._claims[domain_name]

    def route(self, address: str) -> Item | None:
        """The claim (``org_id``, ``domain_id``) that routes ``address``."""
        if address not in self._routes:
            self._routes[address] = platform_domain.routing_claim(
                self.table, self.claim(domain_part(address)), address
            )
        return self._routes[address]

    def item(self, key: Key) -> Item | None:
        """The item at ``key`` (strongly consistent), from the cache when read before."""
        if key not in self._items:
            self._items[key] = self.table.get(*key)
        return self._items[key]

    def prefetch(self, wanted: list[Key]) -> None:
        """Read the keys not read yet, in one BatchGetItem (absent ones are remembered as None)."""
        missing = [key for key in dict.fromkeys(wanted) if key not in self._items]
        if not missing:
            return
        found = {(str(i["PK"]), str(i["SK"])): i for i in self.table.batch_get(missing)}
        for key in missing:
            self._items[key] = found.get(key)

    def prefetch_routes(
        self, recipients: tuple[str, ...], also: Callable[[str], list[Key]], senders: list[str | None]
    ) -> None:
        """Each recipient's domain claim, domain and address entry, with ``also(org_id)`` for every
        organization they belong to; for a hinted recipient its mailbox and screening keys too
        (for ``senders``: those known before the message is read)."""
        addresses = list(dict.fromkeys(a for a in map(normalize_recipient, recipients[:MAX_RECIPIENTS]) if a))
        hints = {address: self.hints.get(address) for address in addresses}
        wanted: list[Key] = []
        orgs: dict[str, None] = {}
        for address in addresses:
            hint = hints[address]
            if hint is None:
                claim = self.route(address)  # the claim first: one GetItem per domain
                if claim is None:
                    continue
                org_id, domain_id = str(claim["org_id"]), str(claim["domain_id"])
            else:
                org_id, domain_id = hint.org_id, hint.domain_id
                wanted.append(_claim_key(domain_part(address)))
                if hint.mailbox_id is not None:
                    wanted.append((keys.org_pk(org_id), keys.mailbox_sk(hint.mailbox_id)))
                    wanted += rule_store.screen_keys(org_id, hint.mailbox_id, senders)
                    wanted += inbound_automation.first_keys(org_id, hint.mailbox_id, hint.domain_id)
            orgs[org_id] = None
            wanted += [
                (keys.org_pk(org_id), keys.domain_sk(domain_id)),
                (keys.org_pk(org_id), keys.address_sk(address)),
            ]
        for org_id in orgs:
            wanted += also(org_id)
        self.prefetch(wanted)
        for address, hint in hints.items():
            domain_name = domain_part(address)
            if hint is not None and domain_name not in self._claims:
                self._claims[domain_name] = self._items[_claim_key(domain_name)]  # read just now

    def prefetch_mailboxes(self, plan: OrgPlan, senders: list[str | None]) -> None:
        """The mailboxes the plan's recipients name directly, with their screening keys (blocked
        senders, rules, auto-reply): what ``prefetch_routes`` did not read, in one BatchGetItem.
        Remembers where each recipient led, as the hint for its next message."""
        org_id = plan.org_id
        wanted: list[Key] = []
        for address, domain in plan.recipients.items():
            owner = self.owner(org_id, address)
            mailbox_id = str(owner["id"]) if owner is not None and owner.get("kind") == "mailbox" else None
            if mailbox_id is not None:
                wanted.append((keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)))
                wanted += rule_store.screen_keys(org_id, mailbox_id, senders)
                wanted += inbound_automation.first_keys(org_id, mailbox_id, str(domain["id"]))
            if not (self._claims.get(domain_part(address)) or {}).get("shared"):
                # A shared platform domain routes each address by its own claim: not hinted.
                self.hints.put(address, RouteHint(org_id, str(domain["id"]), mailbox_id))
        self.prefetch(wanted)

    def screening(
        self, org_id: str, mailbox_id: str, senders: list[str | None], also: list[Key] | None = None
    ) -> Screening:
        """A mailbox's screening: from prefetched items, or one BatchGetItem of its own (with
        ``also``: the mailbox's automation keys, services/inbound_automation.py)."""
        wanted = rule_store.screen_keys(org_id, mailbox_id, senders)
        self.prefetch([*wanted, *(also or [])])
        return rule_store.screening_of(org_id, mailbox_id, senders, self._items)

    def automation(self, org_id: str, mailbox: Item) -> inbound_automation.Inputs | None:
        """The mailbox's routes and what they read: prefetched with its screening, except what a
        route set changed since this function last compiled it needs (one BatchGetItem then)."""
        mailbox_id, domain_id = str(mailbox["id"]), mailbox.get("domain_id")
        self.prefetch(inbound_automation.first_keys(org_id, mailbox_id, domain_id))
        self.prefetch(inbound_automation.second_keys(org_id, mailbox_id, domain_id, self._items))
        return inbound_automation.inputs(org_id, mailbox_id, domain_id, self._items)

    def domain(self, org_id: str, domain_id: str) -> Item | None:
        return self.item((keys.org_pk(org_id), keys.domain_sk(domain_id)))

    def owner(self, org_id: str, address: str) -> Item | None:
        return self.item((keys.org_pk(org_id), keys.address_sk(address)))

    def mailbox(self, org_id: str, mailbox_id: str) -> Item | None:
        return self.item((keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)))

    def alias(self, org_id: str, alias_id: str) -> Item | None:
        return self.item((keys.org_pk(org_id), keys.alias_sk(alias_id)))

    def hosted_domain(self, org_id: str, address: str) -> Item | None:
        """The domain item when ``address`` is on one of ``org_id``'s domains."""
        claim = self.route(address)
        if claim is None or claim["org_id"] != org_id:
            return None
        return self.domain(org_id, claim["domain_id"])


def _claim_key(domain_name: str) -> Key:
    return keys.domain_claim_pk(domain_name), keys.DOMAIN_CLAIM_SK


def domain_part(address: str) -> str:
    host = address.rpartition("@")[2]
    try:
        return normalize_domain(host)
    except InvalidDomainName:
        return host.lower()


def normalize_recipient(raw: str) -> str | None:
    address = raw.strip().strip("<>").strip().lower()
    local, at, host = address.rpartition("@")
    if not at or not local or not host:
        return None
    return f"{local}@{domain_part(address)}"


# --- routing and expansion ----------------------------------------------------------------------------


@dataclass(slots=True)
class OrgPlan:
    """One organization's share of a message: its recipients, then what they expand to."""

    org_id: str
    recipients: dict[str, Item] = field(default_factory=dict)  # address → its domain item
    copies: dict[str, Copy] = field(default_factory=dict)  # mailbox id → copy
    forwards: dict[str, Forward] = field(default_factory=dict)  # source address → forward
    drops: list[tuple[str, str]] = field(default_factory=list)  # (domain id, reason)
    held: Counter[str] = field(default_factory=Counter)  # forwards not sent, the mailbox kept the copy


@dataclass(frozen=True, slots=True)
class Context:
    """What expansion needs to know about the message itself."""

    senders: list[str | None]  # envelope sender and From address, for blocked-sender checks
    raw: bytes | None
    no_forward_reason: str | None  # spam, virus, unparseable: forwarding is skipped


def route(directory: Directory, recipients: tuple[str, ...]) -> tuple[dict[str, OrgPlan], Counter[str]]:
    """Recipients grouped by the organization hosting their domain; the rest counted by reason."""
    plans: dict[str, OrgPlan] = {}
    unrouted: Counter[str] = Counter()
    seen: set[str] = set()
    for raw_address in recipients[:MAX_RECIPIENTS]:
        address = normalize_recipient(raw_address)
        if address is None or address in seen:
            if address is None:
                unrouted["invalid_recipient"] += 1
            continue
        seen.add(address)
        claim = directory.route(address)
        domain = directory.domain(claim["org_id"], claim["domain_id"]) if claim else None
        if claim is None or domain is None:
            # On the shared platform domain an address nobody holds has no organization to count it.
            shared = (directory.claim(domain_part(address)) or {}).get("shared")
            unrouted["unknown_recipient" if shared else "unknown_domain"] += 1
            continue
        plan = plans.setdefault(claim["org_id"], OrgPlan(claim["org_id"]))
        plan.recipients[address] = domain
    return plans, unrouted


class Expansion:
    """Expands one organization's recipients into copies, forwards and drops (see module doc)."""

    def __init__(self, directory: Directory, plan: OrgPlan, context: Context) -> None:
        self.directory = directory
        self.plan = plan
        self.context = context
        self._visited: set[str] = set()
        self._forward_targets: set[str] = set()
        self._screened: dict[str, Screening] = {}
        self._automation: dict[str, inbound_automation.Inputs | None] = {}

    def run(self) -> OrgPlan:
        for address, domain in self.plan.recipients.items():
            self.recipient(address, domain)
        return self.plan

    def drop(self, domain_id: str, reason: str) -> None:
        self.plan.drops.append((domain_id, reason))

    def recipient(self, address: str, domain: Item) -> None:
        domain_id = str(domain["id"])
        if not domain.get("active", True):
            self.drop(domain_id, "domain_inactive")
            return
        owner = self.directory.owner(self.plan.org_id, address)
        kind = owner.get("kind") if owner else None
        if owner is not None and kind in ("mailbox", "alias"):
            self.owner(owner, via=address, depth=0, domain_id=domain_id)
        elif kind == "invite":
            # Reserved for a mailbox that does not exist yet: its future owner's mail must not
            # land in a catch-all someone else reads.
            self.drop(domain_id, "pending_invite")
        elif domain.get("catch_all"):
            not_sent = self.target(
                str(domain["catch_all"]),
                via=address,
                depth=1,
                domain_id=domain_id,
                source=address,
                source_tags={"catch_all": domain_id},
            )
            if not_sent:
                self.drop(domain_id, f"not_forwarded_{not_sent}")
        else:
            self.drop(domain_id, "unknown_recipient")

    def owner(self, owner: Item, *, via: str, depth: int, domain_id: str) -> None:
        org_id, ident = self.plan.org_id, str(owner["id"])
        if owner.get("kind") == "mailbox":
            mailbox = self.directory.mailbox(org_id, ident)
            if mailbox is None:
                self.drop(domain_id, "missing_target")
            else:
                self.mailbox(mailbox, via=via, depth=depth, domain_id=domain_id)
        else:
            alias = self.directory.alias(org_id, ident)
            if alias is None:
                self.drop(domain_id, "missing_target")
            else:
                self.alias(alias, via=via, depth=depth, domain_id=domain_id)

    def target(
        self,
        address: str,
        *,
        via: str,
        depth: int,
        domain_id: str,
        source: str,
        source_tags: dict[str, str],
    ) -> str | None:
        """Deliver to an alias, forwarding or catch-all target. Returns why an external target is
        not forwarded (spam, virus, loop...), for the caller to decide what becomes of the copy;
        None when it was handled (delivered, forwarded, or dropped and counted here)."""
        if depth > MAX_EXPANSION_DEPTH:
            self.drop(domain_id, "expansion_too_deep")
            return None
        hosted = self.directory.hosted_domain(self.plan.org_id, address)
        if hosted is None:
            return self.forward(address, source=source, source_tags=source_tags, domain_id=domain_id)
        if not hosted.get("active", True):
            self.drop(domain_id, "domain_inactive")
            return None
        owner = self.directory.owner(self.plan.org_id, address)
        if owner is None or owner.get("kind") not in ("mailbox", "alias"):
            self.drop(domain_id, "missing_target")
            return None
        self.owner(owner, via=via, depth=depth, domain_id=domain_id)
        return None

    def forward(self, target: str, *, source: str, source_tags: dict[str, str], domain_id: str) -> str | None:
        if target in self._forward_targets:
            return None  # already forwarded from another path: one copy per target
        reason = self.context.no_forward_reason
        raw = self.context.raw
        if reason is None and raw is not None and forwarding.is_looping(raw, source):
            reason = "loop"
        if reason is not None:
            return reason
        self._forward_targets.add(target)
        forward = self.plan.forwards.setdefault(
            source,
            Forward(source=source, tags={"org_id": self.plan.org_id, **source_tags}, domain_id=domain_id),
        )
        forward.targets.append(target)
        return None

    def screen(self, mailbox: Item) -> Screening:
        """The mailbox's blocked-sender verdict, rules and auto-reply (read once per message)."""
        mailbox_id = str(mailbox["id"])
        if mailbox_id not in self._screened:
            self._screened[mailbox_id] = self.directory.screening(
                self.plan.org_id,
                mailbox_id,
                self.context.senders,
                also=inbound_automation.first_keys(self.plan.org_id, mailbox_id, mailbox.get("domain_id")),
            )
        return self._screened[mailbox_id]

    def automation(self, mailbox: Item) -> inbound_automation.Inputs | None:
        """The mailbox's routes (None: neither it nor its domain has any), read once per message."""
        mailbox_id = str(mailbox["id"])
        if mailbox_id not in self._automation:
            self._automation[mailbox_id] = self.directory.automation(self.plan.org_id, mailbox)
        return self._automation[mailbox_id]

    def blocked(self, mailbox: Item) -> bool:
        # Blocked senders are the first rule: nothing else runs for them.
        return self.screen(mailbox).blocked

    def mailbox(self, mailbox: Item, *, via: str, depth: int, domain_id: str) -> None:
        mailbox_id = str(mailbox["id"])
        if f"mbx:{mailbox_id}" in self._visited:
            return  # reached twice (an alias and directly, two aliases...): one copy
        self._visited.add(f"mbx:{mailbox_id}")
        if not mailbox.get("active", True):
            self.drop(domain_id, "mailbox_inactive")
            return
        if self.blocked(mailbox):
            self.drop(domain_id, "blocked_sender")
            return
        settings = mailbox.get("forwarding") or {}
        targets = [str(t) for t in settings.get("targets") or []]
        keep_copy = bool(settings.get("keep_copy", True)) or not targets
        for target in targets:
            hosted = self.directory.hosted_domain(self.plan.org_id, target) is not None
            if not hosted and mailbox.get("paused"):
                # Pausing stops what a mailbox sends, and an external forward is sent from its
                # address: held back, and the mailbox keeps the copy so nothing is lost.
                self.plan.held["mailbox_paused"] += 1
                keep_copy = True
                continue
            not_sent = self.target(
                target,
                via=via,
                depth=depth + 1,
                domain_id=domain_id,
                source=str(mailbox["address"]),
                source_tags={"mailbox_id": mailbox_id},
            )
            if not_sent:
                # Spam, virus, unparseable or a loop: not forwarded, so the mailbox keeps it (Spam
                # folder or quarantine) even without keep_copy.
                self.plan.held[not_sent] += 1
                keep_copy = True
        if keep_copy:
            self.plan.copies.setdefault(mailbox_id, Copy(mailbox=mailbox, via=via, domain_id=domain_id))

    def alias(self, alias: Item, *, via: str, depth: int, domain_id: str) -> None:
        alias_id = str(alias["id"])
        if f"als:{alias_id}" in self._visited:
            return
        self._visited.add(f"als:{alias_id}")
        if not alias.get("active", True):
            self.drop(domain_id, "alias_inactive")
            return
        for target in alias.get("goto") or []:
            not_sent = self.target(
                str(target),
                via=via,
                depth=depth + 1,
                domain_id=domain_id,
                source=str(alias["address"]),
                source_tags={"alias_id": alias_id},
            )
            if not_sent:
                self.drop(domain_id, f"not_forwarded_{not_sent}")
