"""Key design, in one place. Every tenant item's partition key starts with ``ORG#<org id>``.

organization   PK ORG#<org>                 SK #ORG            GSI1 ORGS / ORG#<org>
token          PK ORG#<org>                 SK TOKEN#<tok id>  GSI1 TOKEN#<sha256> / TOKEN
audit record   PK ORG#<org>#AUDIT           SK <ulid>          GSI1 ORG#<org>#AUDIT#ACTION#<action> / <ulid>
                                                               GSI2 ORG#<org>#AUDIT#ACTOR#<tok id> / <ulid>
rate window    PK ORG#<org>#RATE#<tok id>   SK <minute epoch>
idempotency    PK ORG#<org>#IDEMPOTENCY     SK http#<sha256 of token id + key>
event          PK ORG#<org>#EVENTS          SK <ulid>
domain         PK ORG#<org>                 SK DOMAIN#<dom id> GSI2 RECHECK#<shard> / <next check at>#<dom id>
dns check      PK ORG#<org>                 SK DNSCHECK#<chk id>
domain metrics PK ORG#<org>#DOMAIN#<dom id>#METRICS  SK <yyyy-mm-dd>

Platform routing claims (the one kind of item not under a tenant key: they map a globally unique
name to its tenant, carry only ids, and are written in the same transaction as the tenant item):

domain claim   PK DOMAIN#<name>             SK #CLAIM          {org_id, domain_id}

Addresses (mailboxes and aliases, written by the mailboxes issue) are unique per organization:

address        PK ORG#<org>                 SK ADDR#<address>  {kind, id}
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


def events_pk(org_id: str) -> str:
    return f"ORG#{org_id}#EVENTS"


def domain_sk(domain_id: str) -> str:
    return f"DOMAIN#{domain_id}"


def domain_claim_pk(name: str) -> str:
    return f"DOMAIN#{name}"


DOMAIN_CLAIM_SK = "#CLAIM"
RECHECK_SHARDS = 8


def recheck_pk(shard: int) -> str:
    return f"RECHECK#{shard}"


def dns_check_sk(check_id: str) -> str:
    return f"DNSCHECK#{check_id}"


def domain_metrics_pk(org_id: str, domain_id: str) -> str:
    return f"ORG#{org_id}#DOMAIN#{domain_id}#METRICS"


def address_sk(address: str) -> str:
    return f"ADDR#{address.lower()}"
