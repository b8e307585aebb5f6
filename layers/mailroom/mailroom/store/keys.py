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
webhook        PK ORG#<org>                 SK WEBHOOK#<wh id>   (secrets KMS-encrypted)
delivery       PK ORG#<org>#WEBHOOK#<wh id>#DELIVERIES  SK <event ulid>
                 one per (event, webhook): the key is the idempotency check of the fan-out, so a
                 retried stream batch cannot create a second delivery; its attempts live on it.
domain metrics PK ORG#<org>#DOMAIN#<dom id>#METRICS  SK <yyyy-mm-dd>
inbound receipt PK ORG#<org>#INBOUND         SK <ses message id>   (ttl; see services/inbound.py)
inbound forward PK ORG#<org>#INBOUND         SK <ses message id>#FWD#<address>  (an external forward sent)

Platform routing claims (the one kind of item not under a tenant key: they map a globally unique
name to its tenant, carry only ids, and are written in the same transaction as the tenant item):

domain claim   PK DOMAIN#<name>             SK #CLAIM          {org_id, domain_id}

Addresses (mailboxes, aliases and pending invites) are unique per organization. The address
item is written in the same transaction as its owner, so ``attribute_not_exists`` on it is the
uniqueness check:

address        PK ORG#<org>                 SK ADDR#<address>  {kind: mailbox|alias|invite, id}
mailbox        PK ORG#<org>                 SK MAILBOX#<mbx id>
                                            GSI1 ORG#<org>#DOMAIN#<dom id>#MAILBOXES / MAILBOX#<mbx id>
alias          PK ORG#<org>                 SK ALIAS#<als id>
                                            GSI1 ORG#<org>#DOMAIN#<dom id>#ALIASES / ALIAS#<als id>
invite         PK ORG#<org>                 SK INVITE#<inv id>
                                            GSI1 INVITE#<sha256 of code> / INVITE
                 while pending:             GSI2 INVITE_EXPIRY#<shard> / <expires at>#<inv id>
message token  PK ORG#<org>                 SK MSGTOKEN#<mtk id>
                                            GSI1 TOKEN#<sha256> / TOKEN   (the authorizer's lookup)
                                            GSI2 ORG#<org>#MBX#<mbx>#MSGTOKENS / <mtk id>  (managed)
                                              or ORG#<org>#MBX#<mbx>#SESSIONS / <mtk id>   (sign-in)
delete intent  PK ORG#<org>                 SK DELINTENT#<dli id>
purge job      PK ORG#<org>                 SK PURGE#<mbx id>
                 until done:                GSI2 PURGE_PENDING#<shard> / <queued at>#<mbx id>
delete budget  PK ORG#<org>#RATE#delete-day:<tok id>       SK <UTC day start epoch>
delete cooldown PK ORG#<org>#RATE#delete-cooldown:<tok id> SK LAST

A mailbox's mail (the mail-flow issue) lives in its own partition, so deleting a mailbox's mail is
a Query of one partition, never a Scan; its S3 objects live under one prefix:

mailbox data   PK ORG#<org>#MBX#<mbx id>    SK MSG#..., FOLDER#..., THREAD#...
S3             s3://<mail bucket>/orgs/<org>/mailboxes/<mbx id>/...

Sign-in throttling is keyed on the address before it is known to exist (an unknown address must
be throttled exactly like a real one, or the lockout would reveal which addresses exist), so it is
a platform item holding only a hash and a counter:

sign-in window PK SIGNIN#<sha256 of address> SK <window start epoch>  {failures, ttl}

Sending (services/sending.py, services/delivery_events.py). The suppression list is per
organization; a send reads every recipient's entry with one BatchGetItem:

suppression    PK ORG#<org>                 SK SUPPRESS#<address>  {reason, source, created_at}
                                            (count kept on the organization: suppression_count)
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


def webhook_sk(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


def webhook_deliveries_pk(org_id: str, webhook_id: str) -> str:
    return f"ORG#{org_id}#WEBHOOK#{webhook_id}#DELIVERIES"


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


INVITE_EXPIRY_SHARDS = 8
PURGE_SHARDS = 8


def mailbox_sk(mailbox_id: str) -> str:
    return f"MAILBOX#{mailbox_id}"


def domain_mailboxes_pk(org_id: str, domain_id: str) -> str:
    return f"ORG#{org_id}#DOMAIN#{domain_id}#MAILBOXES"


def alias_sk(alias_id: str) -> str:
    return f"ALIAS#{alias_id}"


def domain_aliases_pk(org_id: str, domain_id: str) -> str:
    return f"ORG#{org_id}#DOMAIN#{domain_id}#ALIASES"


def mailbox_pk(org_id: str, mailbox_id: str) -> str:
    """The partition holding a mailbox's mail (messages, folders, threads)."""
    return f"ORG#{org_id}#MBX#{mailbox_id}"


def mailbox_s3_prefix(org_id: str, mailbox_id: str) -> str:
    return f"orgs/{org_id}/mailboxes/{mailbox_id}/"


def invite_sk(invite_id: str) -> str:
    return f"INVITE#{invite_id}"


def invite_code_pk(code_hash: str) -> str:
    return f"INVITE#{code_hash}"


def invite_expiry_pk(shard: int) -> str:
    return f"INVITE_EXPIRY#{shard}"


def message_token_sk(token_id: str) -> str:
    return f"MSGTOKEN#{token_id}"


def mailbox_message_tokens_pk(org_id: str, mailbox_id: str) -> str:
    return f"ORG#{org_id}#MBX#{mailbox_id}#MSGTOKENS"


def mailbox_sessions_pk(org_id: str, mailbox_id: str) -> str:
    return f"ORG#{org_id}#MBX#{mailbox_id}#SESSIONS"


def delete_intent_sk(intent_id: str) -> str:
    return f"DELINTENT#{intent_id}"


def purge_sk(mailbox_id: str) -> str:
    return f"PURGE#{mailbox_id}"


def purge_pending_pk(shard: int) -> str:
    return f"PURGE_PENDING#{shard}"


def signin_pk(address_hash: str) -> str:
    return f"SIGNIN#{address_hash}"


# --- mail (the mailbox partition ORG#<org>#MBX#<mbx>; see store/mail.py) ------------------------
#
# message   SK MSG#<ulid>      GSI1 <P>#MID#<message-id hash> / MSG#<ulid>   (threading: parent lookup)
#                              GSI2 <P>#FOLDER#<folder key> / <ulid>          (a folder, newest first)
#                              GSI3 <P>#THREAD#<thread id> / <ulid>           (a thread, in order)
# thread    SK THREAD#<ulid>   GSI1 <P>#SUBJ#<subject key> / <last activity> (subject fallback)
#                              GSI2 <P>#THREADS / <last activity>#<thread id> (threads by activity)
# folder    SK FOLDER#<key>    custom folders (system folders are implicit)
# folder path SK FPATH#<sha256 of path>  {key, path}: a custom folder's path is unique per mailbox
#                              (hashed: a 255-character path can exceed the sort key's 1024 bytes)
# blocked   SK BLOCK#<address or @domain>   (store/blocked_senders.py)
# Custom folders and blocked senders are counted on the mailbox item (custom_folder_count,
# blocked_sender_count) so their limits hold in the transaction that adds one.
# quarantined SK QUAR#<ulid>   kept raw in S3 under quarantine/, in no folder
# Folder counters live on the mailbox item (org partition) as fc_<key>_total / fc_<key>_unread.


def message_sk(ulid: str) -> str:
    return f"MSG#{ulid}"


def thread_sk(ulid: str) -> str:
    return f"THREAD#{ulid}"


def folder_sk(folder_key: str) -> str:
    return f"FOLDER#{folder_key}"


def folder_path_sk(path: str) -> str:
    import hashlib

    return f"FPATH#{hashlib.sha256(path.encode()).hexdigest()}"


def quarantine_sk(ulid: str) -> str:
    return f"QUAR#{ulid}"


def message_id_index_pk(org_id: str, mailbox_id: str, message_id_hash: str) -> str:
    return f"{mailbox_pk(org_id, mailbox_id)}#MID#{message_id_hash}"


def folder_index_pk(org_id: str, mailbox_id: str, folder_key: str) -> str:
    return f"{mailbox_pk(org_id, mailbox_id)}#FOLDER#{folder_key}"


def thread_index_pk(org_id: str, mailbox_id: str, thread_id: str) -> str:
    return f"{mailbox_pk(org_id, mailbox_id)}#THREAD#{thread_id}"


def threads_index_pk(org_id: str, mailbox_id: str) -> str:
    return f"{mailbox_pk(org_id, mailbox_id)}#THREADS"


def subject_index_pk(org_id: str, mailbox_id: str, subject_hash: str) -> str:
    return f"{mailbox_pk(org_id, mailbox_id)}#SUBJ#{subject_hash}"


# --- inbound receipts (the mail-flow issue; see services/inbound.py) -----------------------------
#
# One item per (organization, SES message) once every recipient of that organization was handled,
# written in the same transaction as the domain counters: a redelivered SES or S3 event finds it
# and stops, and the counters move exactly once. One item per external forward sent, so a retry
# after a failure later in the message does not forward twice. Both expire (ttl).


def inbound_pk(org_id: str) -> str:
    return f"ORG#{org_id}#INBOUND"


def inbound_receipt_sk(ses_message_id: str) -> str:
    return ses_message_id


def inbound_forward_sk(ses_message_id: str, address: str) -> str:
    return f"{ses_message_id}#FWD#{address}"


# --- sending (services/sending.py) ---------------------------------------------------------------

SUPPRESSION_PREFIX = "SUPPRESS#"


def suppression_sk(address: str) -> str:
    return f"{SUPPRESSION_PREFIX}{address.lower()}"
