"""``Table.transact``: contention is tried again, a failed condition never is."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from mailroom.store import aws
from mailroom.store import table as table_module
from mailroom.store.errors import ConditionFailed, Contended, InvalidRequest
from mailroom.store.table import Table


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },  # type: ignore[typeddict-unknown-key]
        "TransactWriteItems",
    )


class ScriptedClient:
    """Answers TransactWriteItems with the given errors, then succeeds."""

    def __init__(self, *errors: ClientError) -> None:
        self.errors = list(errors)
        self.calls: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(TransactItems)
        if self.errors:
            raise self.errors.pop(0)
        return {}


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("mailroom.store.table.time.sleep", slept.append)
    return slept


def table_with(monkeypatch: pytest.MonkeyPatch, client: ScriptedClient) -> Table:
    # Behind the same translation as every real client: botocore errors become store errors.
    translated = aws._Translated("dynamodb", client)
    monkeypatch.setattr(Table, "client", property(lambda self: translated))
    return Table("t")


OPERATION = {"Put": {"Item": {"PK": {"S": "a"}, "SK": {"S": "b"}}}}


def test_a_conflict_is_tried_again_until_it_goes_through(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    client = ScriptedClient(cancelled("None", "TransactionConflict"), cancelled("TransactionConflict"))
    table_with(monkeypatch, client).transact([OPERATION])
    assert len(client.calls) == 3
    assert client.calls[0] == [{"Put": {"TableName": "t", **OPERATION["Put"]}}]
    assert len(no_sleep) == 2
    assert all(0 <= pause <= table_module.TRANSACT_BACKOFF_CAP for pause in no_sleep)


def test_a_failed_condition_is_not_retried_even_beside_a_conflict(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    client = ScriptedClient(cancelled("ConditionalCheckFailed", "TransactionConflict"))
    with pytest.raises(ConditionFailed):
        table_with(monkeypatch, client).transact([OPERATION])
    assert len(client.calls) == 1
    assert no_sleep == []


def test_lasting_contention_gives_up_after_the_last_attempt(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    errors = [cancelled("TransactionConflict") for _ in range(table_module.TRANSACT_ATTEMPTS)]
    client = ScriptedClient(*errors)
    with pytest.raises(Contended) as raised:
        table_with(monkeypatch, client).transact([OPERATION])
    assert raised.value.code == "TransactionCanceledException"
    assert len(client.calls) == table_module.TRANSACT_ATTEMPTS


def test_other_cancellations_are_not_retried(monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]) -> None:
    client = ScriptedClient(cancelled("ValidationError"))
    with pytest.raises(InvalidRequest):
        table_with(monkeypatch, client).transact([OPERATION])
    assert len(client.calls) == 1
