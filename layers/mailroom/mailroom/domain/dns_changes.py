"""The change set that publishes a domain's required records in a DNS zone (pure: no I/O).

``plan`` compares the records a domain needs (``dns_records.required_records``) with what the zone
holds at those names and says, per required record, whether it is already correct, will be created
or updated, or conflicts with something Mailroom will not touch; and lists the exact operations
(``Change``) that apply performs. The rules:

* SPF: one ``v=spf1`` record per name (RFC 7208 §3.2; a second one is a permanent error for
  receivers). An existing one without ``include:amazonses.com`` gets the include merged in, before
  its ``all`` or first modifier; never a second record. More than one already, or a merge that
  would exceed the 10 DNS-lookup limit (§4.6.4): conflict.
* MX: another MX set at the name is a conflict unless ``replace_mx``; then the set is replaced by
  Mailroom's (the only case where records Mailroom did not create are removed, and each one is
  listed in the preview first).
* DKIM at Mailroom's own selector and DMARC: created when absent; a different DKIM key or an
  unusable DMARC record is a conflict; an existing valid DMARC policy (whatever it is) is kept.
* A CNAME at a required name excludes every other record there: conflict.

``progress`` is apply's guard: the zone must still be as previewed, or be that state with some of
the changes already made (a retried apply); anything else means the zone changed meanwhile.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from mailroom.domain.dns_records import RequiredRecord

# The record types a plan reads at each required name: what it may write, and CNAME (which
# excludes everything else at a name).
READ_TYPES = ("MX", "TXT", "CNAME")
SPF_INCLUDE = "include:amazonses.com"
SPF_LOOKUP_LIMIT = 10
NEW_RECORD_TTL = 3600

Action = Literal["create", "update", "unchanged", "conflict"]
ChangeKind = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One record (one value) of a zone: a name, a type, its content and MX priority.

    ``name`` is the lower-case name without the trailing dot; ``content`` an MX target host
    (lower case, no trailing dot) or a TXT record's character-strings joined. ``id`` is the
    provider's handle on the record (Cloudflare's record id; Route 53's value as stored), ``ttl``
    its TTL in seconds.
    """

    type: str
    name: str
    content: str
    priority: int | None = None
    ttl: int | None = None
    id: str | None = None

    @property
    def key(self) -> tuple[str, str, str, int | None]:
        """What the record is, without the provider's bookkeeping (id, ttl)."""
        return (self.type, self.name, self.content, self.priority if self.type == "MX" else None)


@dataclass(frozen=True, slots=True)
class Change:
    """One operation of a plan: add a record, replace one record's content, or remove one."""

    kind: ChangeKind
    type: str
    name: str
    content: str  # the new content (create, update) or the content removed (delete)
    priority: int | None = None
    ttl: int = NEW_RECORD_TTL
    previous: ZoneRecord | None = None  # the record an update or delete acts on
    purpose: str = ""

    @property
    def record(self) -> ZoneRecord:
        """The record as it is once the change is made (for a delete: the record removed)."""
        return ZoneRecord(self.type, self.name, self.content, self.priority, self.ttl)


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """What a plan does about one required record, and why."""

    purpose: str
    type: str
    name: str
    value: str  # what Mailroom needs there (for a merged SPF record: the merged record)
    priority: int | None
    action: Action
    current: tuple[str, ...]  # the contents found at the name for this purpose
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    records: tuple[RecordPlan, ...]
    changes: tuple[Change, ...]
    fingerprint: str  # of the zone's records at the required names, as the plan saw them
    before: tuple[ZoneRecord, ...] = field(default=())

    def count(self, action: Action) -> int:
        return sum(1 for r in self.records if r.action == action)


class ZoneChanged(Exception):
    """The zone is neither as previewed nor that state with some of the previewed changes made."""


def normalize_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def required_names(required: Sequence[RequiredRecord]) -> list[str]:
    return sorted({normalize_name(r.name) for r in required})


def relevant(records: Iterable[ZoneRecord], names: Iterable[str]) -> list[ZoneRecord]:
    """The records a plan reads: MX, TXT and CNAME at the given names."""
    wanted = set(names)
    return [r for r in records if r.name in wanted and r.type in READ_TYPES]


def fingerprint(records: Iterable[ZoneRecord]) -> str:
    """A digest of what the records are (not their ids or TTLs): equal iff the same records."""
    digest = hashlib.sha256()
    for key in sorted(repr(r.key) for r in records):
        digest.update(key.encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


# --- SPF ---------------------------------------------------------------------------------------------

_ALL_RE = re.compile(r"^[+\-~?]?all$", re.IGNORECASE)
_MODIFIER_RE = re.compile(r"^[a-z][a-z0-9_.\-]*=", re.IGNORECASE)
_LOOKUP_RE = re.compile(r"^[+\-~?]?(include:|a$|a[:/]|mx$|mx[:/]|ptr$|ptr:|exists:|redirect=)", re.IGNORECASE)


def is_spf(content: str) -> bool:
    terms = content.strip().split()
    return bool(terms) and terms[0].lower() == "v=spf1"


def spf_has_include(content: str) -> bool:
    return SPF_INCLUDE in (t.lower().lstrip("+") for t in content.split())


def spf_lookups(content: str) -> int:
    """The terms of a record that cost a DNS lookup when evaluated (RFC 7208 §4.6.4)."""
    return sum(1 for t in content.split()[1:] if _LOOKUP_RE.match(t))


def merge_spf(content: str) -> str:
    """``content`` with Mailroom's include added before its ``all`` or first modifier (terms after
    ``all`` are never evaluated, and modifiers conventionally come last)."""
    terms = content.split()
    at = next(
        (i for i, t in enumerate(terms) if i > 0 and (_ALL_RE.match(t) or _MODIFIER_RE.match(t))),
        len(terms),
    )
    return " ".join([*terms[:at], SPF_INCLUDE, *terms[at:]])


# --- the plan ----------------------------------------------------------------------------------------


def _at(records: Sequence[ZoneRecord], type_: str, name: str) -> list[ZoneRecord]:
    # MX by preference, as mail servers try them.
    return sorted(
        (r for r in records if r.type == type_ and r.name == name), key=lambda r: (r.priority or 0, r.content)
    )


def _dkim_key(content: str) -> str | None:
    for part in content.split(";"):
        tag, sep, value = part.partition("=")
        if sep and tag.strip().lower() == "p":
            return re.sub(r"\s+", "", value)
    return None


def _valid_dmarc(content: str) -> bool:
    tags = {}
    for part in content.split(";"):
        tag, sep, value = part.partition("=")
        if sep:
            tags[tag.strip().lower()] = value.strip().lower()
    return tags.get("p") in {"none", "quarantine", "reject"}


def _plan_mx(
    want: RequiredRecord, name: str, records: Sequence[ZoneRecord], *, replace_mx: bool
) -> tuple[RecordPlan, list[Change]]:
    host = normalize_name(want.value)
    current = _at(records, "MX", name)
    shown = tuple(f"{r.priority} {r.content}" for r in current)
    base = RecordPlan(want.purpose, "MX", name, host, want.priority, "unchanged", shown)
    new = Change("create", "MX", name, host, want.priority, purpose=want.purpose)
    if not current:
        return replace(base, action="create"), [new]
    if len(current) == 1 and current[0].content == host:
        return base, []
    if not replace_mx:
        reason = (
            "other MX hosts also receive mail for this name"
            if any(r.content == host for r in current)
            else "another MX set receives mail for this name"
        )
        return replace(base, action="conflict", reason=f"{reason}; send replace_mx: true to replace it"), []
    keep = next((r for r in current if r.content == host), current[0])
    changes = [
        Change("delete", "MX", name, r.content, r.priority, r.ttl or NEW_RECORD_TTL, r, want.purpose)
        for r in current
        if r is not keep
    ]
    if keep.content != host or keep.priority != want.priority:
        ttl = keep.ttl or NEW_RECORD_TTL
        changes.insert(0, Change("update", "MX", name, host, want.priority, ttl, keep, want.purpose))
    return replace(base, action="update", reason="replace_mx: the MX set is replaced"), changes


def _plan_txt(
    want: RequiredRecord, name: str, records: Sequence[ZoneRecord]
) -> tuple[RecordPlan, list[Change]]:
    txt = _at(records, "TXT", name)
    new = Change("create", "TXT", name, want.value, None, purpose=want.purpose)
    if want.purpose == "spf":
        mine = [r for r in txt if is_spf(r.content)]
    elif want.purpose == "dmarc":
        mine = [r for r in txt if r.content.strip().lower().startswith("v=dmarc1")]
    else:  # dkim: any key published at the selector
        mine = [r for r in txt if _dkim_key(r.content) is not None]
    base = RecordPlan(
        want.purpose, "TXT", name, want.value, None, "unchanged", tuple(r.content for r in mine)
    )
    if not mine:
        return replace(base, action="create"), [new]
    if len(mine) > 1:
        what = {"spf": "SPF", "dmarc": "DMARC", "dkim": "DKIM"}[want.purpose]
        return replace(base, action="conflict", reason=f"{len(mine)} {what} records at this name"), []
    (found,) = mine
    if want.purpose == "spf":
        if spf_has_include(found.content):
            return replace(base, value=found.content), []
        if spf_lookups(found.content) >= SPF_LOOKUP_LIMIT:
            reason = f"the SPF record already needs {SPF_LOOKUP_LIMIT} DNS lookups; one more breaks it"
            return replace(base, action="conflict", reason=reason), []
        merged = merge_spf(found.content)
        change = Change("update", "TXT", name, merged, None, found.ttl or NEW_RECORD_TTL, found, want.purpose)
        return replace(base, value=merged, action="update", reason=f"{SPF_INCLUDE} merged in"), [change]
    if want.purpose == "dmarc":
        if _valid_dmarc(found.content):
            return replace(base, value=found.content), []
        return replace(base, action="conflict", reason="the DMARC record has no valid policy (p=)"), []
    if _dkim_key(found.content) == _dkim_key(want.value):
        return base, []
    return replace(base, action="conflict", reason="another DKIM key is published at this selector"), []


def plan(required: Sequence[RequiredRecord], zone: Iterable[ZoneRecord], *, replace_mx: bool = False) -> Plan:
    """The change set that makes ``zone`` hold ``required``; ``zone`` may hold any records (only
    those at the required names are read)."""
    names = required_names(required)
    records = relevant(zone, names)
    planned: list[RecordPlan] = []
    changes: list[Change] = []
    for want in required:
        name = normalize_name(want.name)
        cname = _at(records, "CNAME", name)
        if cname:
            planned.append(
                RecordPlan(
                    want.purpose,
                    want.type,
                    name,
                    want.value,
                    want.priority,
                    "conflict",
                    tuple(r.content for r in cname),
                    "a CNAME is published at this name; no other record can be",
                )
            )
            continue
        if want.type == "MX":
            record_plan, more = _plan_mx(want, name, records, replace_mx=replace_mx)
        else:
            record_plan, more = _plan_txt(want, name, records)
        planned.append(record_plan)
        changes.extend(more)
    return Plan(tuple(planned), tuple(changes), fingerprint(records), tuple(records))


# --- applying ----------------------------------------------------------------------------------------


def after(
    before: Iterable[ZoneRecord], changes: Iterable[Change]
) -> Counter[tuple[str, str, str, int | None]]:
    """The records (as keys) once ``changes`` are made to ``before``."""
    state = Counter(r.key for r in before)
    for change in changes:
        if change.previous is not None:
            state[change.previous.key] -= 1
        if change.kind != "delete":
            state[change.record.key] += 1
    return +state


def _made(change: Change, current: Counter[tuple[str, str, str, int | None]]) -> bool:
    if change.kind == "delete":
        return current[change.record.key] == 0
    return current[change.record.key] > 0


def progress(
    before: Sequence[ZoneRecord], changes: Sequence[Change], current: Iterable[ZoneRecord]
) -> tuple[list[Change], list[Change]]:
    """``(to make, already made)`` given the zone's ``current`` records at the plan's names.

    ZoneChanged unless ``current`` is ``before`` with exactly the already-made changes made."""
    now = +Counter(r.key for r in current)
    if now == +Counter(r.key for r in before):
        return list(changes), []
    made = [c for c in changes if _made(c, now)]
    if now != after(before, made):
        raise ZoneChanged("the zone's records at the domain's names changed since the preview")
    return [c for c in changes if c not in made], made


# --- TXT in zone-file form (Route 53's values, Cloudflare's quoted content) ---------------------------

TXT_STRING_MAX = 255  # octets in one character-string (RFC 1035 §3.3)


def txt_rdata(content: str) -> str:
    """``content`` as quoted character-strings of at most 255 octets (a 2048-bit DKIM key needs
    two), quotes and backslashes escaped."""
    raw = content.encode()
    chunks = [raw[i : i + TXT_STRING_MAX] for i in range(0, len(raw), TXT_STRING_MAX)] or [b""]
    quoted = []
    for chunk in chunks:
        text = chunk.decode("utf-8", errors="replace").replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(f'"{text}"')
    return " ".join(quoted)


_TXT_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_txt(rdata: str) -> str:
    """A TXT value as its strings joined: ``"a" "b"`` → ``ab``; unquoted text is taken as it is."""
    text = rdata.strip()
    if not text.startswith('"'):
        return text
    strings = _TXT_STRING_RE.findall(text)
    return "".join(re.sub(r"\\(.)", r"\1", s) for s in strings)
