"""HTTP idempotency on Powertools' DynamoDB persistence layer.

Records live in the organization's own partition (``ORG#<org>#IDEMPOTENCY``), keyed on a hash of
(token id, Idempotency-Key) and validated against a hash of (method, path, body): same key with a
different request is a conflict, not a replay. Records expire after 24 hours (table TTL).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mailroom.store import aws, keys
from mailroom.store.errors import translated
from mailroom.store.table import Table

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

EXPIRES_AFTER_SECONDS = 24 * 3600
_layers: dict[str, DynamoDBPersistenceLayer] = {}
_layers_lock = threading.Lock()


class Claim(StrEnum):
    NEW = "new"  # first time: run the request, then complete() or abandon()
    REPLAY = "replay"  # completed before with the same request: replay ``stored``
    MISMATCH = "mismatch"  # key used before for a different request
    IN_PROGRESS = "in_progress"  # the first request with this key has not finished


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claim: Claim
    stored: dict[str, Any] | None = None


def _shared_layer(table_name: str) -> DynamoDBPersistenceLayer:
    """One configured layer per table and client, copied per organization: building a layer
    registers Powertools' User-Agent hook on the client it is given, and built per request the
    hooks piled up on the process's one DynamoDB client (every call ran them all and sent a
    User-Agent header that grew by a feature tag per earlier request)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    client = aws.raw_client("dynamodb")  # Powertools reads botocore errors itself
    layer = _layers.get(table_name)
    if layer is not None and layer.client is client:
        return layer
    with _layers_lock:
        layer = _layers.get(table_name)
        if layer is None or layer.client is not client:  # a new client after a SnapStart restore
            layer = DynamoDBPersistenceLayer(
                table_name=table_name,
                key_attr="PK",
                sort_key_attr="SK",
                static_pk_value="",  # each organization's copy sets its own
                expiry_attr="ttl",
                boto3_client=client,
            )
            layer.configure(
                IdempotencyConfig(
                    event_key_jmespath="[token, key]",
                    payload_validation_jmespath="[method, path, body_sha256]",
                    expires_after_seconds=EXPIRES_AFTER_SECONDS,
                    hash_function="sha256",
                ),
                key_prefix="http",
            )
            _layers[table_name] = layer
        return layer


class IdempotencyStore:
    def __init__(self, table: Table, org_id: str) -> None:
        # A copy shares the configured layer's client, serializers and compiled expressions.
        self._layer = copy.copy(_shared_layer(table.name))
        self._layer.static_pk_value = keys.idempotency_pk(org_id)

    def claim(self, request: dict[str, Any], *, remaining_ms: int | None) -> ClaimResult:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyItemAlreadyExistsError,
            IdempotencyValidationError,
        )

        try:
            with translated("dynamodb", "idempotency.claim"):
                self._layer.save_inprogress(request, remaining_time_in_millis=remaining_ms)
            return ClaimResult(Claim.NEW)
        except IdempotencyValidationError:
            # Powertools compares the stored request hash with this one before anything else.
            return ClaimResult(Claim.MISMATCH)
        except IdempotencyItemAlreadyExistsError as exists:
            return self._taken(request, exists.old_data_record)

    def claim_op(self, request: dict[str, Any], *, remaining_ms: int | None) -> dict[str, Any]:
        """``claim`` as a TransactWriteItems ``Put``: the item and the condition of Powertools'
        ``save_inprogress``, the existing item returned when the condition fails (``refused``)."""
        import datetime as dt

        from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS

        layer = self._layer
        key = layer._get_hashed_idempotency_key(data=request)
        if key is None:  # never with this configuration: the key is the (token, Idempotency-Key) pair
            raise ValueError("the request has no idempotency key")
        now = dt.datetime.now()
        item: dict[str, Any] = {
            **layer._get_key(key),
            layer.expiry_attr: {"N": str(layer._get_expiry_timestamp())},
            layer.status_attr: {"S": STATUS_CONSTANTS["INPROGRESS"]},
        }
        if remaining_ms is not None:
            expiry = (now + dt.timedelta(milliseconds=remaining_ms)).timestamp()
            item[layer.in_progress_expiry_attr] = {"N": str(int(expiry * 1000))}
        if layer.payload_validation_enabled:
            item[layer.validation_key_attr] = {"S": layer._get_hashed_payload(data=request)}
        return {
            "Put": {
                "Item": item,
                # Claimable: never claimed, expired, or an in-progress claim whose invocation ended.
                "ConditionExpression": "attribute_not_exists(#id) OR #expiry < :now OR "
                "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND "
                "#in_progress_expiry < :now_in_millis)",
                "ExpressionAttributeNames": {
                    "#id": layer.key_attr,
                    "#expiry": layer.expiry_attr,
                    "#in_progress_expiry": layer.in_progress_expiry_attr,
                    "#status": layer.status_attr,
                },
                "ExpressionAttributeValues": {
                    ":now": {"N": str(int(now.timestamp()))},
                    ":now_in_millis": {"N": str(int(now.timestamp() * 1000))},
                    ":inprogress": {"S": STATUS_CONSTANTS["INPROGRESS"]},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def refused(self, request: dict[str, Any], old_item: dict[str, Any] | None) -> ClaimResult:
        """What a ``claim_op`` whose condition failed means, from the item it failed on (wire format;
        None: not returned, read it), as ``claim`` would have answered."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

        if old_item is None:
            return self._taken(request, None)
        record = self._layer._item_to_data_record(old_item)
        try:
            self._layer._validate_payload(data_payload=request, stored_data_record=record)
        except IdempotencyValidationError:
            return ClaimResult(Claim.MISMATCH)
        return self._taken(request, record)

    def _taken(self, request: dict[str, Any], record: DataRecord | None) -> ClaimResult:
        """The answer for a key already claimed: ``record`` is the claim (validated against the
        request); None when the store did not return it: read then (that validates too)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

        if record is None:
            try:
                with translated("dynamodb", "idempotency.read"):
                    record = self._layer.get_record(request)
            except IdempotencyValidationError:
                return ClaimResult(Claim.MISMATCH)
        if record is not None and record.status == "COMPLETED":
            return ClaimResult(Claim.REPLAY, record.response_json_as_dict())
        return ClaimResult(Claim.IN_PROGRESS)

    def complete(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        with translated("dynamodb", "idempotency.complete"):
            self._layer.save_success(request, response)

    def completion_op(self, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        """``complete`` as a TransactWriteItems ``Update``: the attributes Powertools' ``save_success``
        sets (status, response, expiry, payload hash), so the pipeline writes the completion in the
        transaction of the request's audit record instead of a request of its own."""
        import json

        from aws_lambda_powertools.shared.json_encoder import Encoder
        from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS

        layer = self._layer
        names = {"#status": layer.status_attr, "#data": layer.data_attr, "#expiry": layer.expiry_attr}
        attribute_values: dict[str, Any] = {
            ":status": {"S": STATUS_CONSTANTS["COMPLETED"]},
            ":data": {"S": json.dumps(response, cls=Encoder, sort_keys=True)},
            ":expiry": {"N": str(layer._get_expiry_timestamp())},
        }
        expression = "SET #data = :data, #expiry = :expiry, #status = :status"
        if layer.payload_validation_enabled:
            names["#validation"] = layer.validation_key_attr
            attribute_values[":validation"] = {"S": layer._get_hashed_payload(data=request)}
            expression += ", #validation = :validation"
        key = layer._get_hashed_idempotency_key(data=request)
        if key is None:  # never with this configuration: the key is the (token, Idempotency-Key) pair
            raise ValueError("the request has no idempotency key")
        return {
            "Update": {
                "Key": layer._get_key(key),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": attribute_values,
            }
        }

    def abandon(self, request: dict[str, Any], reason: Exception) -> None:
        """Forget a claim whose request failed on our side, so the client's retry runs again."""
        with translated("dynamodb", "idempotency.abandon"):
            self._layer.delete_record(request, reason)
