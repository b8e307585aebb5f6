"""Key design, in one place. Every tenant item's partition key starts with ``ORG#<org id>``.

organization   PK ORG#<org>                 SK #ORG            GSI1 ORGS / ORG#<org>
token          PK ORG#<org>                 SK TOKEN#<tok id>  GSI1 TOKEN#<sha256> / TOKEN
audit record   PK ORG#<org>#AUDIT           SK <ulid>          GSI1 ORG#<org>#AUDIT#ACTION#<action> / <ulid>
                                                               GSI2 ORG#<org>#AUDIT#ACTOR#<tok id> / <ulid>
rate window    PK ORG#<org>#RATE#<tok id>   SK <minute epoch>
idempotency    PK ORG#<org>#IDEMPOTENCY     SK http#<sha256 of token id + key>
"""

from __future__ import annotations

ORG_SK = "#ORG"
ORGS_INDEX_PK = "ORGS"


def org_pk(org_id: str) -> str:
    return f"ORG#{org_id}"


def token_sk(token_id: str) -> str:
    return f"TOKEN#{token_id}"


def token_lookup_pk(token_hash: str) -> str:
    return f"TOKEN#{token_hash}"


def audit_pk(org_id: str) -> str:
    return f"ORG#{org_id}#AUDIT"


def audit_action_pk(org_id: str, action: str) -> str:
    return f"ORG#{org_id}#AUDIT#ACTION#{action}"


def audit_actor_pk(org_id: str, actor_id: str) -> str:
    return f"ORG#{org_id}#AUDIT#ACTOR#{actor_id}"


def rate_pk(org_id: str, token_id: str) -> str:
    return f"ORG#{org_id}#RATE#{token_id}"


def idempotency_pk(org_id: str) -> str:
    return f"ORG#{org_id}#IDEMPOTENCY"
