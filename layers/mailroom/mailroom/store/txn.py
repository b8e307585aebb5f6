"""Named transactions: each operation carries a role, so a cancelled transaction says which
invariant broke (``Rejected.roles``) instead of an index the caller has to keep in step with the
list it built. The service layer turns roles into API error codes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table, serialize, values

MAX_OPERATIONS = 100  # TransactWriteItems' limit
_PLACEHOLDER_RE = re.compile(r"[#:][nv]\d+")


@dataclass(frozen=True, slots=True)
class Op:
    role: str
    body: dict[str, Any]


class Rejected(Exception):
    """A condition of the transaction did not hold; ``roles`` are the roles of the failed operations."""

    def __init__(self, roles: list[str]) -> None:
        super().__init__(f"transaction rejected by: {', '.join(roles) or 'unknown'}")
        self.roles = roles

    def by(self, prefix: str) -> list[str]:
        """Failed roles starting with ``prefix`` (``"address:"`` → every failed address op)."""
        return [r for r in self.roles if r.startswith(prefix)]


def run(table: Table, operations: Sequence[Op]) -> None:
    if len(operations) > MAX_OPERATIONS:
        raise ValueError(f"a transaction holds at most {MAX_OPERATIONS} operations")
    try:
        table.transact([op.body for op in operations])
    except ConditionFailed as failed:
        raise Rejected([op.role for i, op in enumerate(operations) if failed.failed(i)]) from failed


def key(pk: str, sk: str) -> dict[str, Any]:
    return serialize({"PK": pk, "SK": sk})


def put_new(role: str, item: Item) -> Op:
    return Op(role, {"Put": {"Item": serialize(item), "ConditionExpression": "attribute_not_exists(PK)"}})


def put(role: str, item: Item) -> Op:
    return Op(role, {"Put": {"Item": serialize(item)}})


def delete(role: str, pk: str, sk: str, *, condition: str | None = None, **condition_values: Any) -> Op:
    body: dict[str, Any] = {"Key": key(pk, sk)}
    if condition:
        body["ConditionExpression"] = condition
    if condition_values:
        body["ExpressionAttributeValues"] = values(**condition_values)
    return Op(role, {"Delete": body})


def check(role: str, pk: str, sk: str, condition: str, **condition_values: Any) -> Op:
    body: dict[str, Any] = {"Key": key(pk, sk), "ConditionExpression": condition}
    if condition_values:
        body["ExpressionAttributeValues"] = values(**condition_values)
    return Op(role, {"ConditionCheck": body})


class Update:
    """Builds one ``Update`` operation clause by clause (SET, REMOVE, ADD, conditions)."""

    def __init__(self, pk: str, sk: str, *, upsert: bool = False) -> None:
        """``upsert``: the item may not exist yet (counters); otherwise it must (never make stubs)."""
        self._key = key(pk, sk)
        self._set: list[str] = []
        self._remove: list[str] = []
        self._add: list[str] = []
        self._delete: list[str] = []
        self._conditions: list[str] = [] if upsert else ["attribute_exists(PK)"]
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        """``a.b`` → ``#a.#b`` with the names registered (any attribute name is safe this way)."""
        parts = []
        for part in attribute.split("."):
            placeholder = f"#n{len(self.names)}" if part not in self.names.values() else None
            if placeholder is None:
                placeholder = next(k for k, v in self.names.items() if v == part)
            else:
                self.names[placeholder] = part
            parts.append(placeholder)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values.update(values(**{placeholder[1:]: value}))
        return placeholder

    def set(self, **fields: Any) -> Update:
        for attribute, value in fields.items():
            if value is None:
                self._remove.append(self.name(attribute))
            else:
                self._set.append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def set_if_absent(self, **fields: Any) -> Update:
        """SET each attribute only if the item does not have it yet (first writer wins)."""
        for attribute, value in fields.items():
            ref = self.name(attribute)
            self._set.append(f"{ref} = if_not_exists({ref}, {self.value(value)})")
        return self

    def add_to_set(self, **members: AbstractSet[str]) -> Update:
        """ADD strings to string-set attributes (empty sets are skipped: DynamoDB refuses them)."""
        for attribute, strings in members.items():
            if strings:
                self._add.append(f"{self.name(attribute)} {self.value(set(strings))}")
        return self

    def remove_from_set(self, **members: AbstractSet[str]) -> Update:
        """DELETE strings from string-set attributes (a set left empty disappears)."""
        for attribute, strings in members.items():
            if strings:
                self._delete.append(f"{self.name(attribute)} {self.value(set(strings))}")
        return self

    def remove(self, *attributes: str) -> Update:
        self._remove.extend(self.name(a) for a in attributes)
        return self

    def add(self, **deltas: int) -> Update:
        for attribute, delta in deltas.items():
            if delta:
                self._add.append(f"{self.name(attribute)} {self.value(delta)}")
        return self

    def when(self, condition: str) -> Update:
        """Add a raw condition (build its placeholders with ``name`` and ``value``)."""
        self._conditions.append(condition)
        return self

    def at_most(self, attribute: str, maximum: int) -> Update:
        """``attribute <= maximum``, a missing attribute counting as 0 (if 0 <= maximum)."""
        ref = self.name(attribute)
        clause = f"{ref} <= {self.value(maximum)}"
        if maximum >= 0:
            clause = f"(attribute_not_exists({ref}) OR {clause})"
        self._conditions.append(clause)
        return self

    def equals(self, attribute: str, value: Any) -> Update:
        """``attribute = value``; ``None`` means the attribute must be absent."""
        ref = self.name(attribute)
        if value is None:
            self._conditions.append(f"attribute_not_exists({ref})")
        else:
            self._conditions.append(f"{ref} = {self.value(value)}")
        return self

    def expression(self) -> str:
        clauses = []
        if self._set:
            clauses.append("SET " + ", ".join(self._set))
        if self._remove:
            clauses.append("REMOVE " + ", ".join(self._remove))
        if self._add:
            clauses.append("ADD " + ", ".join(self._add))
        if self._delete:
            clauses.append("DELETE " + ", ".join(self._delete))
        return " ".join(clauses)

    def _placeholders(self, text: str) -> tuple[dict[str, str], dict[str, Any]]:
        # DynamoDB refuses placeholders an expression does not use.
        used = set(_PLACEHOLDER_RE.findall(text))
        return (
            {k: v for k, v in self.names.items() if k in used},
            {k: v for k, v in self.values.items() if k in used},
        )

    def op(self, role: str) -> Op:
        """The transaction operation; with nothing to write, a ConditionCheck of the conditions."""
        condition = " AND ".join(self._conditions)
        expression = self.expression()
        names, found = self._placeholders(f"{condition} {expression}")
        body: dict[str, Any] = {"Key": self._key}
        if condition:
            body["ConditionExpression"] = condition
        if names:
            body["ExpressionAttributeNames"] = names
        if found:
            body["ExpressionAttributeValues"] = found
        if not expression:
            return Op(role, {"ConditionCheck": body})
        return Op(role, {"Update": {**body, "UpdateExpression": expression}})

    def apply(self, table: Table) -> Item:
        """Run alone (outside a transaction); returns the new item. ConditionFailed if a condition fails."""
        condition = " AND ".join(self._conditions)
        expression = self.expression()
        names, found = self._placeholders(f"{condition} {expression}")
        return table.update(
            self._key["PK"]["S"],
            self._key["SK"]["S"],
            expression,
            condition=condition or None,
            names=names or None,
            expression_values=found or None,
        )
