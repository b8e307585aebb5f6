"""Key design, in one place. Every tenant item's partition key starts with ``ORG#<org id>``.

organization   PK ORG#<org>                 SK #ORG            GSI1 ORGS / ORG#<org>
token          PK ORG#<org>                 SK TOKEN#<tok id>  GSI1 TOKEN#<sha256> / TOKEN
api key (v0)   PK ORG#<org>                 SK APIKEY#<key id> GSI1 TOKEN#<sha256> / TOKEN
                 the same hash lookup as tokens (one authentication query for every kind); its sort
                 key prefix and counter (api_key_count) so v0 lists keys and v1 lists tokens apart.
audit record   PK ORG#<org>#AUDIT           SK <ulid>          GSI1 ORG#<org>#AUDIT#ACTION#<action> / <ulid>
                                                               GSI2 ORG#<org>#AUDIT#ACTOR#<tok id> / <ulid>
rate window    PK ORG#<org>#RATE#<tok id>   SK <minute epoch>
idempotency    PK ORG#<org>#IDEMPOTENCY     SK http#<sha256 of token id + key>
ws connection  PK ORG#<org>#WS              SK <connection id> {principal, subscriptions} (ttl)
                 the fan-out reads an organization's connections with one Query of this partition.
event          PK ORG#<org>#EVENTS          SK <ulid>          GSI1 ORG#<org>#EVENTS#TYPE#<type> / <ulid>
                 of a mailbox also:                            GSI2 ORG#<org>#EVENTS#MBX#<mbx id> / <ulid>
                 the event log's filters (GET /api/v1/events): one Query each, newest first.
domain         PK ORG#<org>                 SK DOMAIN#<dom id> GSI2 RECHECK#<shard> / <next check at>#<dom id>
dns check      PK ORG#<org>                 SK DNSCHECK#<chk id>
webhook        PK ORG#<org>                 SK WEBHOOK#<wh id>   (secrets KMS-encrypted)
delivery       PK ORG#<org>#WEBHOOK#<wh id>#DELIVERIES  SK <event ulid>
                 one per (event, webhook): the key is the idempotency check of the fan-out, so a
                 retried stream batch cannot create a second delivery; its attempts live on it.
domain metrics PK ORG#<org>#DOMAIN#<dom id>#METRICS  SK <yyyy-mm-dd>
inbound receipt PK ORG#<org>#INBOUND         SK <ses message id>   (ttl; see services/inbound.py)
inbound forward PK ORG#<org>#INBOUND         SK <ses message id>#FWD#<address>  (an external forward sent)
ticket reply   PK ORG#<org>#INBOUND         SK <ses message id>#TICKET#<tkt id>  (an emailed answer stored)

Platform routing claims (the one kind of item not under a tenant key: they map a globally unique
name to its tenant, carry only ids, and are written in the same transaction as the tenant item):

domain claim   PK DOMAIN#<name>             SK #CLAIM          {org_id, domain_id}
ws route       PK WSCONN#<connection id>    SK #CONN           {org_id} (ttl): which organization a
                 WebSocket connection belongs to, for the frames after $connect (API Gateway names
                 only the connection); written in the same transaction as the connection item.

The platform domain (``MAILROOM_PLATFORM_DOMAIN``, where v0 inboxes get an address when no domain
is named) is shared by every organization: its claim says so (``shared``, no tenant), and each
address on it is claimed globally, in the same transaction as the mailbox that owns it, so inbound
mail finds the tenant by address instead of by domain. Each organization using it gets its own
domain item with the id ``platform-<name>`` (created on first use; it carries that organization's
mailbox counters on the domain, is not counted in domain_count and is not listed with its domains):

platform claim PK DOMAIN#<platform name>    SK #CLAIM          {shared, org_id "platform", SES/DKIM state}
address claim  PK PLATFORMADDR#<address>    SK #CLAIM          {org_id, domain_id, mailbox_id}
platform domain PK ORG#<org>                SK DOMAIN#platform-<name>  (no recheck index: the operator's)

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
                                            GSI1 TOKEN#<sha256> / TOKEN   (authentication's lookup)
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

Migrations (services/migrations.py, services/migration_steps.py; docs/migrations.md). A job is an
organization item; its working state (per-folder progress, batch descriptors, what was imported,
the sealed source password) lives in a partition of its own, so deleting a job is one Query:

migration job  PK ORG#<org>                 SK MIGRATION#<mig id>
                                            GSI2 ORG#<org>#MIGRATIONS#<status> / <mig id>  (by status)
                                            GSI3 ORG#<org>#MBX#<mbx>#MIGRATIONS / <mig id> (by mailbox)
                 A bulk batch's job also has {batch_id, row}; it waits (pending, no execution_arn,
                 no slot) until its batch starts it. GSI1 stays free: the batch lists its jobs
                 itself (job_ids, read back consistently, as its scheduler must see each job's latest).
migration batch PK ORG#<org>                SK MIGBATCH#<bat id>  {job_ids, status, counts, flags, version}
                 while it may have work:    GSI2 MIGBATCH_ACTIVE#<shard> / <last touched>#<org>#<bat id>
                 (store/migration_batches.py; the sweep's index, sharded by crc32 of the id, 8 shards)
batch key      PK ORG#<org>                 SK MIGBATCH_KEY#<sha256 of idempotency_key>  {batch_id, body hash}
batch purge    PK ORG#<org>                 SK MIGBATCH_PURGE#<bat id>  {job_ids whose partitions are left}
                                            GSI2 MIGBATCH_ACTIVE#<shard> / ...  (a deleted batch's cleanup)
migration slots PK ORG#<org>                SK MIGRATION_SLOTS  {active, active_ids, count, batch_count}
                 active: the organization's active jobs (a single start needs active = 0); count:
                 every job (the list's total). Moved in the transactions that start a job and end it.
job partition  PK ORG#<org>#MIGRATION#<mig id>
  folder        SK FOLDER#<seq, 4 digits>   source folder, target folder key, expected/imported/
                                            failed/skipped, batches and batches done
  batch         SK BATCH#<attempt, 4 digits>#<seq, 6 digits>  one folder's UIDs (<= batch size),
                                            counted once (its status flips in the counter transaction)
  imported set  SK DONE#<sha256(raw folder)[:16]>#<uidvalidity>#<uid // 1000>  {imported, skipped}
                                            number sets: what a retry need not fetch again
  secret        SK SECRET                   KMS ciphertext of the source password (ttl)

The platform-wide concurrency cap is a platform item (like the domain claim: ids only, written in
the same transactions as the jobs it counts):

capacity       PK MIGRATIONS#CAPACITY       SK #CAPACITY  {active, holders: set of mig ids}
throughput     PK MIGRATIONS#THROUGHPUT     SK #THROUGHPUT  {jobs, messages, bytes, transfer_ms,
                 overhead_ms, updated_at}: the sums of every completed job's record (no tenant data),
                 added to in the transaction that completes the job; what estimates read (one GetItem).

Imports before the Message-ID entries (below) left a marker for a message without a Message-ID in
its mailbox's partition (the mailbox purge removes it with the mail), still read when skip_duplicates
is on and the target held mail:

digest marker  PK ORG#<org>#MBX#<mbx>       SK DIGEST#<sha256 of raw>  {message_id, source_id}

Import batches (store/mail_batch.py) answer duplicates and threading for a whole chunk with
BatchGetItem instead of GSI1 Queries per message: entries written in the transaction that stores
the messages, in the mailbox's partition (the purge removes them with the mail):

message-id entries PK ORG#<org>#MBX#<mbx>   SK MSGID#<message-id hash | digest-<sha256 of raw>>
                                            {m_<msg ulid>: {id, thread, fp, src}}
subject entries    PK ORG#<org>#MBX#<mbx>   SK SUBJECT#<subject hash>  {t_<thread ulid>: last activity}
migration writes PK ORG#<org>#RATE#migrations-write:<tok id>  SK <minute epoch>  (10/min bucket)

Email verification (services/verification.py, docs/verification.md). Credits are one item per
organization and calendar month (UTC): the conditional ADD that consumes a credit is the write that
records the verification (its per-status tally). SMTP probes are rate-limited per organization and,
across organizations, per target domain (a platform item holding only the domain and a counter):

verify credits PK ORG#<org>                 SK VERIFYCREDITS#<yyyy-mm>  {allowance, used, per status, ttl}
probe window   PK ORG#<org>#RATE#verify-probe  SK <minute epoch>
domain probes  PK VERIFYPROBE#<ascii domain>   SK <minute epoch>  {hits, ttl}
verify job     PK ORG#<org>                 SK VERIFYJOB#<vjb id>  {status, counts, done_chunks, ...}
                 its files in the mail bucket under verify/<org>/<vjb id>/ (rows, chunk results, CSV);
                 a client's pre-signed upload at verify-uploads/<org>/<vup id>.csv (expires after a day)

Outbound SMTP relays (services/smtp_relays.py, docs/smtp-relays.md). A sender domain belongs to at
most one relay: its claim is written in the relay's transaction (``attribute_not_exists`` or the
same relay), and the send path finds a domain's relay with one GetItem. The organization item counts
relays (smtp_relay_count, bounded in the same transaction):

smtp relay     PK ORG#<org>                 SK SMTPRELAY#<rly id>   (password KMS-sealed)
relay domain   PK ORG#<org>                 SK SMTPRELAYDOMAIN#<ascii domain>  {relay_id}
relay test     PK ORG#<org>                 SK SMTPTEST#<job id>  {relay_id, status, steps, ttl}

DNS providers (services/dns_setup.py; docs/dns-providers.md). A domain is connected to one zone at
one provider; a preview is the exact change set apply will make, kept a short while (ttl):

cloudflare token PK ORG#<org>               SK CFTOKEN#<cft id>  {KMS ciphertext, token_prefix, ...}
                 (count kept on the organization: cloudflare_token_count, limited)
dns connection PK ORG#<org>                 SK DNSCONN#<dom id>  {provider, zone_id, zone_name,
                                            token_id | role_arn}
dns preview    PK ORG#<org>                 SK DNSPREVIEW#<dpv id>  {plan, fingerprint, ttl; applied}

Contacts and the calendar (store/contacts.py, store/calendar.py; docs/contacts-calendar.md) live in
the mailbox's partition, so the mailbox purge removes them with its mail; their counts
(contact_count, contact_group_count, event_count) are on the mailbox item, moved in the same
transactions:

contact        PK ORG#<org>#MBX#<mbx>       SK CONTACT#<ct id>     {fields, terms, groups, version}
contact address PK ORG#<org>#MBX#<mbx>      SK CADDR#<address>     {contact_id}: unique per mailbox
contact term   PK ORG#<org>#MBX#<mbx>       SK CFIND#<term>#<ct id>  prefix search (begins_with)
contact group  PK ORG#<org>#MBX#<mbx>       SK CGROUP#<cg id>      {name, members, member_count}
event          PK ORG#<org>#MBX#<mbx>       SK EVENT#<evt id>      {ics, indexed fields, version}
event by start PK ORG#<org>#MBX#<mbx>       SK EVAT#<start utc>#<evt id>  single events <= 7 days
long event     PK ORG#<org>#MBX#<mbx>       SK EVLONG#<evt id>     recurring or longer (expanded on read)
event uid      PK ORG#<org>#MBX#<mbx>       SK EVUID#<sha256 of UID>  {event_id}: one event per UID

Plans are platform items (operators' data, no tenant's); an organization on a plan is indexed by it
(GSI2 of the organization item), so an edited plan reaches every organization on it:

plan           PK PLAN#<name>               SK #PLAN        GSI1 PLANS / <name>
organization   (above)                                      GSI2 PLAN#<name>#ORGS / ORG#<org>

Support tickets (services/tickets.py; docs/tickets.md). A ticket is an organization item; its
messages live in a partition of their own (one Query lists them). The operator works across
organizations: every ticket is also in one index partition (GSI1, newest first), and the ids the
operator's side is given (a ticket's, by its reply address or the support API; an operator
message's, to edit or delete it) resolve through platform claims written in the same transaction:

ticket         PK ORG#<org>#TICKETS         SK <tkt ulid>   {subject, status, reply_token, ...}
                                            GSI1 SUPPORT#TICKETS / <tkt ulid>
ticket message PK ORG#<org>#TICKET#<tkt id> SK <tkm ulid>   {author, via, body, email ids}
ticket claim   PK TICKET#<tkt id>           SK #CLAIM       {org_id}
operator message claim PK TICKETMSG#<tkm id> SK #CLAIM      {org_id, ticket_id}
support nonce  PK SUPPORTSIG#<signature>    SK #SEEN        (ttl): a signed request is used once

Usage metering and billing (services/billing.py, docs/billing.md). One counter item per
organization and calendar month (UTC), maintained by an ADD folded into the transaction that does
the work (a stored message, a removal); verifications are the month's credit tally above. An
invoice is written once per organization and month by the closing schedule (attribute_not_exists:
a second run writes nothing); its id names its month, so a read is one GetItem:

usage          PK ORG#<org>                 SK USAGE#<yyyy-mm>    {messages_received, messages_sent,
                 sent_recipients, messages_imported, stored_bytes_added, stored_bytes_removed,
                 api_requests}
invoice        PK ORG#<org>                 SK INVOICE#<yyyy-mm>  {id invc_<yyyymm>_<digest>, usage,
                 plan, price, cost estimate}

The automation model (mailtrigger-api.txt; docs/automation.md). An organization's rules, actions,
routes and task configs live in one partition (each list is one Query of a prefix); its HEAD item
counts them (limits hold in the transaction that adds one) and carries the version every change
moves, so the route sets below are rebuilt monotonically. A route set is what inbound reads for one
mailbox, or for every mailbox of a domain: the target's routes in order, with their rule's
conditions and their actions' non-secret parameters copied in (one JSON document), fetched in the
BatchGetItem inbound already makes per mailbox (no request of its own):

automation head PK ORG#<org>#AUTOMATION     SK HEAD               {version, rule_count, action_count,
                                            route_count, task_count}
automation rule PK ORG#<org>#AUTOMATION     SK RULE#<rul id>      {name, match, conditions, version}
action         PK ORG#<org>#AUTOMATION      SK ACTION#<act id>    {name, type, parameters, version;
                                            a webhook's secret_ciphertext, KMS-sealed}
route          PK ORG#<org>#AUTOMATION      SK ROUTE#<rte id>     {target, rule_id, action_ids,
                                            position, stop, enabled, version}
task config    PK ORG#<org>#AUTOMATION      SK TASK#<tsk id>      {schedule, action_id, query, ...}
route set      PK ORG#<org>#AUTOMATION      SK ROUTESET#MBX#<mbx id> | ROUTESET#DOM#<dom id>
                                            {routes (JSON), data_keys, built_version}
task run       PK ORG#<org>#TASK#<tsk id>#RUNS  SK <run ulid>    {trigger, outcome, counts, ttl}

In the mailbox's partition (the mailbox purge removes them with its mail):

mailbox doc    PK ORG#<org>#MBX#<mbx>       SK DATA#<key>         {value (JSON text), bytes, version}
mailbox docs   PK ORG#<org>#MBX#<mbx>       SK DATAMETA           {keys, bytes}: the data limits
route hit      PK ORG#<org>#MBX#<mbx>       SK ROUTEHIT#<rte id>#<message ulid>  (a route's archive)
action run     PK ORG#<org>#MBX#<mbx>       SK ACTRUN#<message ulid>#<rte id>#<act id>
                                            {status, attempts, error, ttl}: runs once per message
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


API_KEY_PREFIX = "APIKEY#"


def api_key_sk(key_id: str) -> str:
    return f"{API_KEY_PREFIX}{key_id}"


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


def ws_connections_pk(org_id: str) -> str:
    return f"ORG#{org_id}#WS"


def ws_route_pk(connection_id: str) -> str:
    return f"WSCONN#{connection_id}"


def events_by_type_pk(org_id: str, event_type: str) -> str:
    return f"ORG#{org_id}#EVENTS#TYPE#{event_type}"


def events_by_mailbox_pk(org_id: str, mailbox_id: str) -> str:
    return f"ORG#{org_id}#EVENTS#MBX#{mailbox_id}"


def webhook_sk(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


def webhook_deliveries_pk(org_id: str, webhook_id: str) -> str:
    return f"ORG#{org_id}#WEBHOOK#{webhook_id}#DELIVERIES"


def domain_sk(domain_id: str) -> str:
    return f"DOMAIN#{domain_id}"


def domain_claim_pk(name: str) -> str:
    return f"DOMAIN#{name}"


DOMAIN_CLAIM_SK = "#CLAIM"
PLATFORM_DOMAIN_ID_PREFIX = "platform-"
# Generated domain ids all start so; a platform domain's item (``DOMAIN#platform-<name>``) does not,
# which keeps it out of an organization's domain listing without a filter.
DOMAIN_LIST_PREFIX = "DOMAIN#dom_"


def platform_domain_id(name: str) -> str:
    return f"{PLATFORM_DOMAIN_ID_PREFIX}{name}"


def platform_address_pk(address: str) -> str:
    return f"PLATFORMADDR#{address.lower()}"


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


def scheduled_send_prefix(mailbox_id: str) -> str:
    return f"SCHEDSEND#{mailbox_id}#"


def scheduled_send_sk(mailbox_id: str, scheduled_id: str) -> str:
    """A scheduled send (store/scheduled_sends.py), in the organization's partition."""
    return f"{scheduled_send_prefix(mailbox_id)}{scheduled_id}"


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
# rule set SK RULES           {rules: ordered list, version} (store/rules.py): read with the blocked-
#                              sender keys in the one BatchGetItem inbound already makes per mailbox
# auto-reply SK AUTOREPLY      {enabled, subject, text, html, start, end, interval_days, version}
# replied   SK AUTOREPLIED#<sha256 of sender>  {ttl}: one auto-reply per sender per interval
# rule log  SK RULELOG#<ulid>  one entry per message the rules ran on (ttl: 30 days)
# identity  SK IDENTITY#<idn id>   a sending identity (store/compose_items.py), counted as
#                              identity_count; the default is the mailbox item's default_identity_id
# template  SK TEMPLATE#<tpl id>   a message template, counted as template_count
# sent draft SK DRAFTSENT#<ulid>   {sent_message_id, ttl}: a draft sent lately (store/drafts.py)
# scheduled send: ORG#<org> / SCHEDSEND#<mbx>#<sch id> (the organization's partition, so a mailbox
#                              deleted before the time leaves the failure on record; ttl once final)
# Custom folders and blocked senders are counted on the mailbox item (custom_folder_count,
# blocked_sender_count) so their limits hold in the transaction that adds one.
# quarantined SK QUAR#<ulid>   kept raw in S3 under quarantine/, in no folder
# Folder counters live on the mailbox item (org partition) as fc_<key>_total / fc_<key>_unread,
# beside message_count and thread_count (every folder; moved in the transactions that store a
# message, remove one or drop an empty thread): the totals of /api/v0's numbered lists.
# /api/v0 pages by number, not cursor (Table.query_window): page p of the messages is the MSG#
# range of the mailbox partition read newest first, the first (p-1) * page_size keys skipped
# with key-only Queries; threads likewise on GSI2 <P>#THREADS.


def message_sk(ulid: str) -> str:
    return f"MSG#{ulid}"


def thread_sk(ulid: str) -> str:
    return f"THREAD#{ulid}"


def folder_sk(folder_key: str) -> str:
    return f"FOLDER#{folder_key}"


def folder_path_sk(path: str) -> str:
    import hashlib

    return f"FPATH#{hashlib.sha256(path.encode()).hexdigest()}"


RULESET_SK = "RULES"
AUTO_REPLY_SK = "AUTOREPLY"
RULE_LOG_PREFIX = "RULELOG#"


def auto_replied_sk(sender: str) -> str:
    import hashlib

    return f"AUTOREPLIED#{hashlib.sha256(sender.lower().encode()).hexdigest()}"


def rule_log_sk(ulid: str) -> str:
    return f"{RULE_LOG_PREFIX}{ulid}"


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


def inbound_ticket_sk(ses_message_id: str, ticket_id: str) -> str:
    return f"{ses_message_id}#TICKET#{ticket_id}"


# --- sending (services/sending.py) ---------------------------------------------------------------

SUPPRESSION_PREFIX = "SUPPRESS#"


def suppression_sk(address: str) -> str:
    return f"{SUPPRESSION_PREFIX}{address.lower()}"


# --- migrations (services/migrations.py; see the module docstring) ---------------------------------

MIGRATION_PREFIX = "MIGRATION#"
MIGRATION_SLOTS_SK = "MIGRATION_SLOTS"
MIGRATION_CAPACITY_PK = "MIGRATIONS#CAPACITY"
MIGRATION_CAPACITY_SK = "#CAPACITY"
MIGRATION_THROUGHPUT_PK = "MIGRATIONS#THROUGHPUT"
MIGRATION_THROUGHPUT_SK = "#THROUGHPUT"
MIGRATION_SECRET_SK = "SECRET"  # noqa: S105 - a sort key, not a secret


def migration_sk(migration_id: str) -> str:
    return f"{MIGRATION_PREFIX}{migration_id}"


def migration_pk(org_id: str, migration_id: str) -> str:
    """The partition of one job's working state (folders, batches, imported sets, secret)."""
    return f"ORG#{org_id}#MIGRATION#{migration_id}"


def migrations_by_status_pk(org_id: str, status: str) -> str:
    return f"ORG#{org_id}#MIGRATIONS#{status}"


def migrations_by_mailbox_pk(org_id: str, mailbox_id: str) -> str:
    return f"{mailbox_pk(org_id, mailbox_id)}#MIGRATIONS"


def migration_folder_sk(seq: int) -> str:
    return f"FOLDER#{seq:04d}"


def migration_batch_sk(attempt: int, seq: int) -> str:
    return f"BATCH#{attempt:04d}#{seq:06d}"


def migration_done_sk(folder_hash: str, uidvalidity: int, bucket: int) -> str:
    return f"DONE#{folder_hash}#{uidvalidity}#{bucket}"


def digest_marker_sk(digest: str) -> str:
    return f"DIGEST#{digest}"


def verify_credits_sk(month: str) -> str:
    return f"VERIFYCREDITS#{month}"


def probe_domain_pk(ascii_domain: str) -> str:
    return f"VERIFYPROBE#{ascii_domain}"


def smtp_relay_sk(relay_id: str) -> str:
    return f"SMTPRELAY#{relay_id}"


def smtp_relay_domain_sk(ascii_domain: str) -> str:
    return f"SMTPRELAYDOMAIN#{ascii_domain}"


def smtp_test_sk(job_id: str) -> str:
    return f"SMTPTEST#{job_id}"


def verify_job_sk(job_id: str) -> str:
    return f"VERIFYJOB#{job_id}"


CLOUDFLARE_TOKEN_PREFIX = "CFTOKEN#"  # noqa: S105 - a sort key prefix, not a secret


def cloudflare_token_sk(token_id: str) -> str:
    return f"{CLOUDFLARE_TOKEN_PREFIX}{token_id}"


def dns_connection_sk(domain_id: str) -> str:
    return f"DNSCONN#{domain_id}"


def dns_preview_sk(preview_id: str) -> str:
    return f"DNSPREVIEW#{preview_id}"


PLAN_SK = "#PLAN"
PLANS_INDEX_PK = "PLANS"


def plan_pk(name: str) -> str:
    return f"PLAN#{name}"


def plan_orgs_pk(name: str) -> str:
    return f"PLAN#{name}#ORGS"


TICKET_CLAIM_SK = "#CLAIM"
TICKETS_INDEX_PK = "SUPPORT#TICKETS"


def tickets_pk(org_id: str) -> str:
    return f"ORG#{org_id}#TICKETS"


def ticket_messages_pk(org_id: str, ticket_id: str) -> str:
    return f"ORG#{org_id}#TICKET#{ticket_id}"


def ticket_claim_pk(ticket_id: str) -> str:
    return f"TICKET#{ticket_id}"


def ticket_message_claim_pk(message_id: str) -> str:
    return f"TICKETMSG#{message_id}"


def support_nonce_pk(signature: str) -> str:
    return f"SUPPORTSIG#{signature}"


USAGE_PREFIX = "USAGE#"
INVOICE_PREFIX = "INVOICE#"


def usage_sk(month: str) -> str:
    return f"{USAGE_PREFIX}{month}"


def invoice_sk(month: str) -> str:
    return f"{INVOICE_PREFIX}{month}"


def message_id_entries_sk(message_id_hash: str) -> str:
    """The mailbox's entries for one RFC Message-ID (store/mail_batch.py): what an import batch
    reads for a whole chunk in one BatchGetItem instead of one GSI1 Query per message."""
    return f"MSGID#{message_id_hash}"


def subject_entries_sk(subject_hash: str) -> str:
    """The threads imported with one normalized subject (store/mail_batch.py), by last activity:
    the subject fallback of threading for a whole chunk in one BatchGetItem."""
    return f"SUBJECT#{subject_hash}"


# --- the automation model (see the module docstring) ----------------------------------------------

AUTOMATION_HEAD_SK = "HEAD"
AUTOMATION_RULE_PREFIX = "RULE#"
AUTOMATION_ACTION_PREFIX = "ACTION#"
AUTOMATION_ROUTE_PREFIX = "ROUTE#"
AUTOMATION_TASK_PREFIX = "TASK#"
MAILBOX_DATA_PREFIX = "DATA#"
MAILBOX_DATA_META_SK = "DATAMETA"


def automation_pk(org_id: str) -> str:
    return f"ORG#{org_id}#AUTOMATION"


def automation_rule_sk(rule_id: str) -> str:
    return f"{AUTOMATION_RULE_PREFIX}{rule_id}"


def automation_action_sk(action_id: str) -> str:
    return f"{AUTOMATION_ACTION_PREFIX}{action_id}"


def automation_route_sk(route_id: str) -> str:
    return f"{AUTOMATION_ROUTE_PREFIX}{route_id}"


def automation_task_sk(task_id: str) -> str:
    return f"{AUTOMATION_TASK_PREFIX}{task_id}"


def mailbox_route_set_sk(mailbox_id: str) -> str:
    return f"ROUTESET#MBX#{mailbox_id}"


def domain_route_set_sk(domain_id: str) -> str:
    return f"ROUTESET#DOM#{domain_id}"


def task_runs_pk(org_id: str, task_id: str) -> str:
    return f"ORG#{org_id}#TASK#{task_id}#RUNS"


def mailbox_data_sk(key: str) -> str:
    return f"{MAILBOX_DATA_PREFIX}{key}"


def route_hit_sk(route_id: str, message_ulid: str) -> str:
    return f"ROUTEHIT#{route_id}#{message_ulid}"


def action_run_sk(message_ulid: str, route_id: str, action_id: str) -> str:
    return f"ACTRUN#{message_ulid}#{route_id}#{action_id}"
