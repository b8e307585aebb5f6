"""Action items as the automation API writes them (docs/automation.md), for the task runner's
in-process tests: an action item under the organization's automation partition, a webhook action's
secret generated and KMS-sealed with context {org_id, action_id}. The API would refuse what these
tests need (a webhook URL on a name only the test's resolver knows, an item without its secret);
the e2e tests and the tenant sweep create their actions through ``/api/v1/actions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import clock, ids
from mailroom.domain import webhooks
from mailroom.store import keys
from mailroom.store.table import serialize


@dataclass(frozen=True)
class Action:
    item: dict[str, Any]
    secret: str | None  # a webhook's whsec_ secret, as the create response shows it once

    @property
    def id(self) -> str:
        return str(self.item["id"])


def put_action(
    dynamodb: Any,
    table_name: str,
    org_id: str,
    action_type: str,
    parameters: dict[str, Any],
    *,
    kms: Any = None,
    key_id: str | None = None,
    name: str | None = None,
) -> Action:
    """Write an action item with raw clients (moto in-process, or a local stack's endpoint)."""
    action_id = ids.new_id("act")
    now = clock.now_iso()
    item: dict[str, Any] = {
        "PK": keys.automation_pk(org_id),
        "SK": keys.automation_action_sk(action_id),
        "type": "action",
        "id": action_id,
        "org_id": org_id,
        "name": name or f"{action_type} action",
        "action_type": action_type,
        "parameters": parameters,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    secret = None
    if action_type == "webhook":
        assert kms is not None and key_id is not None, "a webhook action's secret is sealed with KMS"
        secret = webhooks.new_secret()
        item["secret_ciphertext"] = kms.encrypt(
            KeyId=key_id,
            Plaintext=secret.encode(),
            EncryptionContext={"org_id": org_id, "action_id": action_id},
        )["CiphertextBlob"]
    dynamodb.put_item(TableName=table_name, Item=serialize(item))
    return Action(item=item, secret=secret)
