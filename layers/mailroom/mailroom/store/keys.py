"""Key design, in one place. Every tenant item's partition key starts with ``ORG#<org id>``.

| item            | PK                              | SK                  | GSI1 (PK / SK)                       | GSI2 (PK / SK)                     |
|-----------------|---------------------------------|---------------------|--------------------------------------|------------------------------------|
| organization    | ORG#<org>                       | #ORG                | ORGS / ORG#<org>                     |                                    |
| ops/msg token   | ORG#<org>                       | TOKEN#<tok id>      | TOKEN#<sha256> / TOKEN               |                                    |
| audit record    | ORG#<org>#AUDIT                 | <ulid>              | ORG#<org>#AUDIT#ACTION#<action> / <ulid> | ORG#<org>#AUDIT#ACTOR#<tok> / <ulid> |
| rate window     | ORG#<org>#RATE#<tok id>         | <minute epoch>      |                                      |                                    |
| idempotency     | ORG#<org>#IDEMPOTENCY           | <fn>#<hash>         |                                      |                                    |
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
