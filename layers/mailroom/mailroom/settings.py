"""Typed settings, read from the environment once, on first use (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    stage: str
    table_name: str
    rate_limit_per_minute: int
    audit_retention_days: int
    region: str
    endpoint_url: str | None
    dns_resolver: str | None
    dmarc_rua: str | None
    platform_domain: str
    # Seconds an API function reuses a token's lookup (mailroom.auth). Deployed stacks set it from the
    # template's TokenCacheTtl; unset, every request looks its token up.
    auth_cache_seconds: int = 0
    # Mailboxes (defaults keep the existing constructor calls valid).
    mail_bucket: str | None = None
    ses_configuration_set: str | None = None
    # The configuration set whose DeliveryOptions require TLS (TlsPolicy REQUIRE): what a mailbox
    # with tls_enforce_out sends through. Unset, such a mailbox cannot send through SES.
    ses_tls_configuration_set: str | None = None
    purge_queue_url: str | None = None
    delete_daily_limit: int = 20
    delete_cooldown_seconds: int = 10
    signin_max_failures: int = 5
    signin_window_seconds: int = 900
    signin_token_ttl_seconds: int = 3600
    # Webhooks and secrets at rest.
    kms_key_id: str | None = None
    webhook_queue_url: str | None = None
    webhook_dlq_url: str | None = None
    webhook_allow_private: bool = False
    webhook_retry_schedule: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    # AWS accounts whose event buses webhooks may deliver to (EventBridge destinations); empty: none.
    eventbridge_accounts: frozenset[str] = frozenset()
    # The WebSocket API's management endpoint (https://<api>.execute-api.<region>.amazonaws.com/<stage>):
    # the event fan-out pushes events to connections through it; unset, nothing is pushed.
    websocket_endpoint: str | None = None
    websocket_max_connections: int = 500  # per organization
    # Inbound mail: where the SES receipt rule's S3 action writes (template.yaml's ObjectKeyPrefix).
    inbound_prefix: str = "inbound/"
    # IMAP migrations: the source server's address must be public unless allowed (local stack,
    # tests); a CA bundle may be added to the system's; every network step has this time limit.
    imap_allow_private: bool = False
    imap_ca_file: str | None = None
    imap_timeout_seconds: int = 30
    # Migrations (IMAP import; see docs/migrations.md for how these bound the workflow).
    migration_state_machine_arn: str | None = None
    migration_capacity: int = 20  # active migrations across the whole platform
    migration_write_limit_per_minute: int = 10  # per token, on migration write endpoints
    migration_batch_size: int = 250  # UIDs per batch (one Map iteration, one Lambda invocation)
    migration_window_batches: int = 40  # batches per Map run
    migration_windows_per_execution: int = 20  # Map runs before the execution continues as new
    migration_map_concurrency: int = 4  # batches of one job imported at once
    migration_fetch_chunk: int = 50  # UIDs per UID FETCH command (a chunk is held in memory)
    migration_store_threads: int = 8  # messages of one batch stored at once
    migration_secret_retention_days: int = 7  # a failed/cancelled job's source password, for :retry
    # Email verification (docs/verification.md). The SMTP probe is off unless enabled: AWS blocks
    # outbound port 25 from Lambda by default, and a probe that cannot connect answers "unknown".
    verify_monthly_credits: int = 1000  # per organization and UTC month, unless its item says otherwise
    verify_probe_enabled: bool = False
    verify_probe_port: int = 25
    verify_probe_sender: str | None = None  # MAIL FROM; default verify@<platform domain>
    verify_probe_helo: str | None = None  # EHLO name; default the platform domain
    verify_probe_timeout_seconds: int = 10  # per SMTP step
    verify_probe_org_per_minute: int = 30
    verify_probe_domain_per_minute: int = 20  # across every organization
    verify_allow_private: bool = False  # probes may reach loopback/private mail hosts (local, tests)
    verify_queue_url: str | None = None  # bulk verification chunks
    verify_bulk_concurrency: int = 50  # addresses of one chunk verified at once
    # Outbound SMTP relays (docs/smtp-relays.md).
    smtp_test_queue_url: str | None = None
    smtp_relay_allow_private: bool = False  # relays on loopback/private addresses (local stack, tests)
    smtp_relay_ca_file: str | None = None  # an extra CA bundle trusted for relay TLS
    smtp_relay_timeout_seconds: int = 20  # per SMTP step
    smtp_relay_limit: int = 10  # relays per organization
    # DNS providers (docs/dns-providers.md): Cloudflare's API base (None: Cloudflare's own); whether
    # tenants may use the Route 53 zones of the stack's own account (off: only roles they give).
    cloudflare_api_url: str | None = None
    route53_own_account: bool = False
    dns_preview_ttl_seconds: int = 900
    # Scheduled send (services/scheduled.py): the one-off schedules' target, role, DLQ and group.
    scheduled_send_function_arn: str | None = None
    scheduler_role_arn: str | None = None
    scheduled_send_dlq_arn: str | None = None
    schedule_group: str = "default"
    schedule_min_lead_seconds: int = 60  # how far ahead send_at must be (the contract: 1 minute)
    # Support tickets (docs/tickets.md): the operator's support address (empty: tickets are not
    # emailed; the operator answers with the CLI or the support API) and the support API's HMAC
    # secret (empty: every signed request is refused).
    support_address: str | None = None
    support_hmac_secret: str | None = None
    # Usage metering (docs/billing.md): API requests are counted in memory and added to the month's
    # counter at most this many seconds apart (0: at every request; the template sets 60).
    usage_flush_seconds: int = 0
    # Automation (docs/automation-execution.md): the queue of asynchronous actions, its dead-letter
    # queue, and the seconds before each retry of an action (at most 12 h each: one visibility).
    automation_queue_url: str | None = None
    automation_dlq_url: str | None = None
    automation_retry_schedule: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000)
    # Task configs (docs/automation-tasks.md): the recurring schedules' group, the task runner's
    # alias they (and action/execute) invoke, the role they run as, and where undeliverable firings go.
    task_runner_function_arn: str | None = None
    task_scheduler_role_arn: str | None = None
    task_schedule_group: str = "default"
    task_runner_dlq_arn: str | None = None

    @property
    def is_local(self) -> bool:
        """True when AWS is emulated (the local stack sets ``AWS_ENDPOINT_URL``)."""
        return self.endpoint_url is not None


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise RuntimeError(f"{name} must be >= {minimum}, got {value}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        stage=os.environ.get("MAILROOM_STAGE", "dev"),
        table_name=os.environ.get("MAILROOM_TABLE_NAME", "mailroom"),
        rate_limit_per_minute=_int("MAILROOM_RATE_LIMIT_PER_MINUTE", 600, minimum=1),
        audit_retention_days=_int("MAILROOM_AUDIT_RETENTION_DAYS", 365, minimum=1),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        dns_resolver=os.environ.get("MAILROOM_DNS_RESOLVER") or None,
        dmarc_rua=os.environ.get("MAILROOM_DMARC_RUA") or None,
        platform_domain=os.environ.get("MAILROOM_PLATFORM_DOMAIN", "mailroom.localhost"),
        auth_cache_seconds=_int("MAILROOM_AUTH_CACHE_TTL", 0),
        mail_bucket=os.environ.get("MAILROOM_MAIL_BUCKET") or None,
        ses_configuration_set=os.environ.get("MAILROOM_SES_CONFIGURATION_SET") or None,
        ses_tls_configuration_set=os.environ.get("MAILROOM_SES_TLS_CONFIGURATION_SET") or None,
        purge_queue_url=os.environ.get("MAILROOM_PURGE_QUEUE_URL") or None,
        delete_daily_limit=_int("MAILROOM_DELETE_DAILY_LIMIT", 20, minimum=1),
        delete_cooldown_seconds=_int("MAILROOM_DELETE_COOLDOWN_SECONDS", 10),
        signin_max_failures=_int("MAILROOM_SIGNIN_MAX_FAILURES", 5, minimum=1),
        signin_window_seconds=_int("MAILROOM_SIGNIN_WINDOW_SECONDS", 900, minimum=1),
        signin_token_ttl_seconds=_int("MAILROOM_SIGNIN_TOKEN_TTL_SECONDS", 3600, minimum=60),
        kms_key_id=os.environ.get("MAILROOM_KMS_KEY_ID") or None,
        webhook_queue_url=os.environ.get("MAILROOM_WEBHOOK_QUEUE_URL") or None,
        webhook_dlq_url=os.environ.get("MAILROOM_WEBHOOK_DLQ_URL") or None,
        # Off in every deployed stack: it lets webhooks (and v0 attachment URLs) reach http and
        # non-public addresses.
        webhook_allow_private=os.environ.get("MAILROOM_WEBHOOK_ALLOW_PRIVATE", "") in ("1", "true"),
        webhook_retry_schedule=_schedule("MAILROOM_WEBHOOK_RETRY_SCHEDULE"),
        eventbridge_accounts=_accounts("MAILROOM_EVENTBRIDGE_ACCOUNTS"),
        websocket_endpoint=os.environ.get("MAILROOM_WEBSOCKET_ENDPOINT") or None,
        websocket_max_connections=_int("MAILROOM_WEBSOCKET_MAX_CONNECTIONS", 500, minimum=1),
        inbound_prefix=os.environ.get("MAILROOM_INBOUND_PREFIX") or "inbound/",
        # Off in every deployed stack: it lets migrations reach loopback and private addresses.
        imap_allow_private=os.environ.get("MAILROOM_IMAP_ALLOW_PRIVATE", "") in ("1", "true"),
        imap_ca_file=os.environ.get("MAILROOM_IMAP_CA_FILE") or None,
        imap_timeout_seconds=_int("MAILROOM_IMAP_TIMEOUT_SECONDS", 30, minimum=1),
        migration_state_machine_arn=os.environ.get("MAILROOM_MIGRATION_STATE_MACHINE_ARN") or None,
        migration_capacity=_int("MAILROOM_MIGRATION_CAPACITY", 20),
        migration_write_limit_per_minute=_int("MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE", 10, minimum=1),
        migration_batch_size=_int("MAILROOM_MIGRATION_BATCH_SIZE", 250, minimum=1),
        migration_window_batches=_int("MAILROOM_MIGRATION_WINDOW_BATCHES", 40, minimum=1),
        migration_windows_per_execution=_int("MAILROOM_MIGRATION_WINDOWS_PER_EXECUTION", 20, minimum=1),
        migration_map_concurrency=_int("MAILROOM_MIGRATION_MAP_CONCURRENCY", 4, minimum=1),
        migration_fetch_chunk=_int("MAILROOM_MIGRATION_FETCH_CHUNK", 50, minimum=1),
        migration_store_threads=_int("MAILROOM_MIGRATION_STORE_THREADS", 8, minimum=1),
        migration_secret_retention_days=_int("MAILROOM_MIGRATION_SECRET_RETENTION_DAYS", 7, minimum=1),
        verify_monthly_credits=_int("MAILROOM_VERIFY_MONTHLY_CREDITS", 1000),
        verify_probe_enabled=os.environ.get("MAILROOM_VERIFY_SMTP_PROBE", "") in ("1", "true"),
        verify_probe_port=_int("MAILROOM_VERIFY_PROBE_PORT", 25, minimum=1),
        verify_probe_sender=os.environ.get("MAILROOM_VERIFY_PROBE_SENDER") or None,
        verify_probe_helo=os.environ.get("MAILROOM_VERIFY_PROBE_HELO") or None,
        verify_probe_timeout_seconds=_int("MAILROOM_VERIFY_PROBE_TIMEOUT_SECONDS", 10, minimum=1),
        verify_probe_org_per_minute=_int("MAILROOM_VERIFY_PROBE_ORG_PER_MINUTE", 30, minimum=1),
        verify_probe_domain_per_minute=_int("MAILROOM_VERIFY_PROBE_DOMAIN_PER_MINUTE", 20, minimum=1),
        # Off in every deployed stack: it lets probes reach loopback and private addresses.
        verify_allow_private=os.environ.get("MAILROOM_VERIFY_ALLOW_PRIVATE", "") in ("1", "true"),
        verify_queue_url=os.environ.get("MAILROOM_VERIFY_QUEUE_URL") or None,
        verify_bulk_concurrency=_int("MAILROOM_VERIFY_BULK_CONCURRENCY", 50, minimum=1),
        smtp_test_queue_url=os.environ.get("MAILROOM_SMTP_TEST_QUEUE_URL") or None,
        # Off in every deployed stack: it lets relays be loopback and private addresses.
        smtp_relay_allow_private=os.environ.get("MAILROOM_SMTP_RELAY_ALLOW_PRIVATE", "") in ("1", "true"),
        smtp_relay_ca_file=os.environ.get("MAILROOM_SMTP_RELAY_CA_FILE") or None,
        smtp_relay_timeout_seconds=_int("MAILROOM_SMTP_RELAY_TIMEOUT_SECONDS", 20, minimum=1),
        usage_flush_seconds=_int("MAILROOM_USAGE_FLUSH_SECONDS", 0),
        smtp_relay_limit=_int("MAILROOM_SMTP_RELAY_LIMIT", 10, minimum=1),
        cloudflare_api_url=os.environ.get("MAILROOM_CLOUDFLARE_API_URL") or None,
        route53_own_account=os.environ.get("MAILROOM_ROUTE53_OWN_ACCOUNT", "") in ("1", "true"),
        dns_preview_ttl_seconds=_int("MAILROOM_DNS_PREVIEW_TTL_SECONDS", 900, minimum=60),
        scheduled_send_function_arn=os.environ.get("MAILROOM_SCHEDULED_SEND_FUNCTION_ARN") or None,
        scheduler_role_arn=os.environ.get("MAILROOM_SCHEDULER_ROLE_ARN") or None,
        scheduled_send_dlq_arn=os.environ.get("MAILROOM_SCHEDULED_SEND_DLQ_ARN") or None,
        schedule_group=os.environ.get("MAILROOM_SCHEDULE_GROUP") or "default",
        schedule_min_lead_seconds=_int("MAILROOM_SCHEDULE_MIN_LEAD_SECONDS", 60),
        support_address=(os.environ.get("MAILROOM_SUPPORT_ADDRESS") or "").strip() or None,
        support_hmac_secret=os.environ.get("MAILROOM_SUPPORT_HMAC_SECRET") or None,
        automation_queue_url=os.environ.get("MAILROOM_AUTOMATION_QUEUE_URL") or None,
        automation_dlq_url=os.environ.get("MAILROOM_AUTOMATION_DLQ_URL") or None,
        automation_retry_schedule=_automation_schedule("MAILROOM_AUTOMATION_RETRY_SCHEDULE"),
        task_runner_function_arn=os.environ.get("MAILROOM_TASK_RUNNER_FUNCTION_ARN") or None,
        task_scheduler_role_arn=os.environ.get("MAILROOM_TASK_SCHEDULER_ROLE_ARN") or None,
        task_schedule_group=os.environ.get("MAILROOM_TASK_SCHEDULE_GROUP") or "default",
        task_runner_dlq_arn=os.environ.get("MAILROOM_TASK_RUNNER_DLQ_ARN") or None,
    )


def _schedule(name: str) -> tuple[int, ...]:
    from mailroom.domain.webhooks import parse_schedule

    try:
        return parse_schedule(os.environ.get(name))
    except ValueError as exc:
        raise RuntimeError(f"{name}: {exc}") from exc


def _automation_schedule(name: str) -> tuple[int, ...]:
    from mailroom.domain.automation_runs import DEFAULT_RETRY_SCHEDULE, MAX_RETRY_DELAY_SECONDS
    from mailroom.domain.webhooks import parse_schedule

    raw = os.environ.get(name)
    try:
        schedule = parse_schedule(raw) if raw and raw.strip() else DEFAULT_RETRY_SCHEDULE
    except ValueError as exc:
        raise RuntimeError(f"{name}: {exc}") from exc
    if any(delay > MAX_RETRY_DELAY_SECONDS for delay in schedule):
        raise RuntimeError(f"{name}: each delay is at most {MAX_RETRY_DELAY_SECONDS} s (one SQS visibility)")
    return schedule


def _accounts(name: str) -> frozenset[str]:
    """``"111122223333,444455556666"`` → the set of account ids; each must be 12 digits."""
    accounts = frozenset(a.strip() for a in (os.environ.get(name) or "").split(",") if a.strip())
    bad = sorted(a for a in accounts if not (len(a) == 12 and a.isdigit()))
    if bad:
        raise RuntimeError(f"{name}: AWS account ids are 12 digits, got {', '.join(bad)}")
    return accounts
