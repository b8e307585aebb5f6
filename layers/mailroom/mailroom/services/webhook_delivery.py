"""Delivering one batch of queue messages: sign, POST, record the attempt, schedule what follows.

Per batch the webhooks and deliveries named by its messages are read in one BatchGetItem, the
signing secrets decrypted (cached for ten minutes per ciphertext), then every message is handled
concurrently. What a message's delivery needs next:

* gone, finished, or superseded by a newer chain (``generation``): nothing; the message is dropped;
* its webhook disabled (test deliveries excepted): the delivery is marked failed (replayable);
* not due yet (``next_attempt_at`` ahead): the message waits again;
* due: one attempt (a signed POST, or for an EventBridge destination a ``PutEvents`` on its bus:
  ``services.event_bus_delivery``). 2xx succeeds. 410 (a bus that does not exist) fails the
  delivery and disables the webhook at once. Anything
  else (3xx, 4xx, 5xx, timeout, connection error) is retried on the schedule, ``Retry-After``
  honoured; after the last attempt the delivery fails and the message goes to the dead-letter queue.
  A webhook whose failures have run for five days without a success is disabled.

Waiting keeps the message: its visibility timeout is moved to the next attempt (SQS allows up to 12
hours from the receive, so a longer wait comes back early and waits again), and it is reported as a
batch item failure so SQS keeps it. A message received too many times is replaced by a fresh copy
(with ``DelaySeconds``), so the queue's redrive policy only ever catches real poison messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import enum
import functools
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from mailroom import clock
from mailroom.domain import webhooks as rules
from mailroom.observability import logger
from mailroom.settings import Settings
from mailroom.store import keys, kms, webhook_queue, webhooks
from mailroom.store import webhook_deliveries as deliveries
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Table
from mailroom.store.webhook_queue import DeliveryMessage

T = TypeVar("T")

# A message received this often is re-sent as a fresh one before the redrive policy (30) takes it.
REFRESH_AFTER_RECEIVES = 25
EARLY_TOLERANCE_SECONDS = 1.0  # a message back this close to its time is delivered, not re-parked
FAILED_BACKOFF_CAP_SECONDS = 300  # a message whose handling failed is back within this
SECRET_CACHE_SECONDS = 600

_secret_cache: dict[bytes, tuple[bytes, float]] = {}


@functools.cache
def _io_pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="webhook-io")


async def _blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking AWS call beside the event loop. The pool is sized for a whole batch: asyncio's
    default one (CPU count + 4 threads) would make a batch's writes wait for each other."""
    call = functools.partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_io_pool(), call)


class AttemptResult(Protocol):
    """What one attempt did, whatever the destination (``webhook_http.PostResult``,
    ``event_bus_delivery.PutResult``)."""

    @property
    def succeeded(self) -> bool: ...
    @property
    def gone(self) -> bool: ...  # the destination no longer exists: disable the webhook
    @property
    def status_code(self) -> int | None: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def retry_after(self) -> float | None: ...
    @property
    def response_excerpt(self) -> str | None: ...


class Outcome(enum.Enum):
    DONE = "done"  # delete the message
    WAIT = "wait"  # keep it: its visibility was moved to the next attempt


@dataclass(frozen=True, slots=True)
class Job:
    message_id: str
    receipt_handle: str
    receive_count: int
    body: str
    message: DeliveryMessage


def secret_context(org_id: str, webhook_id: str) -> dict[str, str]:
    return {"purpose": "webhook-secret", "org_id": org_id, "webhook_id": webhook_id}


def signing_keys(webhook: Item, *, now_iso: str) -> list[bytes]:
    """The HMAC keys of the webhook's active secrets: the current one, then previous ones whose 24
    hours of overlap have not run out."""
    found = []
    context = secret_context(webhook["org_id"], webhook["id"])
    for secret in webhook.get("secrets") or []:
        expires = secret.get("expires_at")
        if expires and expires <= now_iso:
            continue
        found.append(_key_of(bytes(secret["ciphertext"]), context))
    return found


def _key_of(ciphertext: bytes, context: dict[str, str]) -> bytes:
    digest = hashlib.sha256(ciphertext).digest()
    cached = _secret_cache.get(digest)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    key = rules.secret_key(kms.decrypt(ciphertext, context).decode())
    if len(_secret_cache) > 1000:
        _secret_cache.clear()
    _secret_cache[digest] = (key, now + SECRET_CACHE_SECONDS)
    return key


class BatchDelivery:
    def __init__(self, table: Table, settings: Settings, *, client: Any = None) -> None:
        self.table = table
        self.settings = settings
        self.client = client  # an httpx.AsyncClient; None: the shared one of the running loop
        self.webhooks: dict[tuple[str, str], Item] = {}
        self.deliveries: dict[tuple[str, str], Item] = {}
        self.keys: dict[tuple[str, str], list[bytes]] = {}
        # What the batch did, for the function's metrics: succeeded, retried, failed, disabled.
        self.outcomes: Counter[str] = Counter()

    # ------------------------------------------------------------------------- batch-wide reads

    def prefetch(self, messages: list[DeliveryMessage]) -> None:
        wanted: list[tuple[str, str]] = []
        for m in messages:
            wanted.append((keys.org_pk(m.org_id), keys.webhook_sk(m.webhook_id)))
            wanted.append(deliveries.key(m.org_id, m.webhook_id, m.delivery_id))
        found = webhooks.batch_get(self.table, wanted)
        now_iso = clock.now_iso()
        for (pk, sk), item in found.items():
            if item.get("type") == "webhook":
                self.webhooks[(pk, sk)] = item
                if item.get("event_bus_arn"):
                    continue  # nothing to sign: EventBridge authenticates the stack's role
                try:
                    self.keys[(pk, sk)] = signing_keys(item, now_iso=now_iso)
                except Exception:
                    # Its messages fail and come back; the others in the batch go ahead.
                    logger().exception("webhook secret not decrypted", extra={"webhook_id": item.get("id")})
            else:
                self.deliveries[(pk, sk)] = item

    # ------------------------------------------------------------------------- one message

    async def process(self, job: Job) -> Outcome:
        m = job.message
        webhook_key = (keys.org_pk(m.org_id), keys.webhook_sk(m.webhook_id))
        webhook = self.webhooks.get(webhook_key)
        delivery = self.deliveries.get(deliveries.key(m.org_id, m.webhook_id, m.delivery_id))
        if webhook is None or delivery is None:
            return Outcome.DONE  # the webhook was deleted (or the delivery expired)
        if int(delivery.get("generation", 1)) != m.generation or delivery.get("state") != deliveries.PENDING:
            return Outcome.DONE  # finished, or a newer chain (manual retry, replay) took over
        now_iso = clock.now_iso()
        is_test = delivery.get("event_type") == rules.TEST_EVENT_TYPE
        if not webhook.get("enabled") and not is_test:
            await _blocking(
                deliveries.mark_failed, self.table, delivery, reason="webhook_disabled", now_iso=now_iso
            )
            return Outcome.DONE
        due = max(m.not_before, _epoch(delivery.get("next_attempt_at")))
        wait = due - time.time()
        if wait > EARLY_TOLERANCE_SECONDS:
            return await self._wait(job, wait, due)
        signing = self.keys.get(webhook_key)
        if not signing and not webhook.get("event_bus_arn"):  # a bus is not signed for: IAM is
            raise RuntimeError(f"no signing key for webhook {m.webhook_id}")
        body = m.payload
        if body is None:
            body = await _blocking(self._render, delivery)
        return await self._attempt(job, webhook, delivery, body.encode(), signing)

    def _render(self, delivery: Item) -> str:
        ulid = delivery["event_id"].partition("_")[2]
        event = self.table.get(keys.events_pk(delivery["org_id"]), ulid)
        if event is None:
            raise LookupError(f"event {delivery['event_id']} expired before it was delivered")
        return rules.encode_payload(rules.payload(event)).decode()

    async def _send(
        self, webhook: Item, delivery: Item, body: bytes, signing: list[bytes] | None, timestamp: int
    ) -> AttemptResult:
        if webhook.get("event_bus_arn"):
            from mailroom.services import event_bus_delivery

            return await _blocking(
                event_bus_delivery.put,
                delivery,
                webhook["event_bus_arn"],
                body.decode(),
                allowed_accounts=self.settings.eventbridge_accounts,
            )
        from mailroom import webhook_http

        headers = rules.headers(signing or [], delivery["event_id"], timestamp, body)
        client = self.client or webhook_http.shared_client(allow_private=self.settings.webhook_allow_private)
        return await webhook_http.post(client, webhook["url"], body, headers)

    async def _attempt(
        self, job: Job, webhook: Item, delivery: Item, body: bytes, signing: list[bytes] | None
    ) -> Outcome:
        started = clock.utcnow()
        result = await self._send(webhook, delivery, body, signing, int(started.timestamp()))

        now = clock.utcnow()
        now_iso, now_epoch = clock.isoformat(now), int(now.timestamp())
        attempt = {
            "attempt": int(delivery.get("attempt_count", 0)) + 1,
            "at": clock.isoformat(started),
            "status_code": result.status_code,
            "duration_ms": result.duration_ms,
            "error": result.error,
            "response": result.response_excerpt,
            "trigger": delivery.get("trigger", "event"),
        }
        state, reason, next_at, wait = deliveries.PENDING, None, None, None
        if result.succeeded:
            state = deliveries.SUCCEEDED
        elif result.gone:
            state, reason = deliveries.FAILED, "endpoint_gone"
        else:
            made = int(delivery.get("chain_attempts", 0)) + 1
            wait = rules.retry_delay(
                self.settings.webhook_retry_schedule, made, retry_after=result.retry_after
            )
            if wait is None:
                state, reason = deliveries.FAILED, "retries_exhausted"
            else:
                next_at = clock.isoformat(datetime.fromtimestamp(time.time() + wait, UTC))
        disabled = await self._health(webhook, result.succeeded, result.gone, now_iso, now_epoch)
        if disabled and state == deliveries.PENDING:
            state, reason, next_at, wait = deliveries.FAILED, "webhook_disabled", None, None
        recorded = await _blocking(
            deliveries.record_attempt,
            self.table,
            delivery,
            attempt=attempt,
            state=state,
            next_attempt_at=next_at,
            failure_reason=reason,
            now_iso=now_iso,
            now_epoch=now_epoch,
        )
        logger().info(
            "webhook attempt",
            extra={
                "webhook_id": webhook["id"],
                "delivery_id": delivery["id"],
                "status_code": result.status_code,
                "duration_ms": result.duration_ms,
                "state": state,
                "error": result.error,
            },
        )
        if not recorded:
            return Outcome.DONE  # a newer chain started meanwhile; it carries on
        self.outcomes["succeeded" if state == deliveries.SUCCEEDED else "retried" if wait else "failed"] += 1
        if reason == "retries_exhausted":
            try:
                await _blocking(
                    webhook_queue.dead_letter, job.body, reason=reason, delivery_id=delivery["id"]
                )
            except Exception:
                # The delivery is recorded as failed (and replayable); failing the message now would
                # only bring it back to find it finished. Loud instead.
                logger().exception("dead-letter copy not sent", extra={"delivery_id": delivery["id"]})
        if wait is not None:
            return await self._wait(job, wait, time.time() + wait)
        return Outcome.DONE

    async def _health(self, webhook: Item, succeeded: bool, gone: bool, now_iso: str, now_epoch: int) -> bool:
        """Keep the webhook's failure clock; True if this attempt disabled it."""
        org_id, webhook_id = webhook["org_id"], webhook["id"]
        if succeeded:
            if webhook.pop("first_failure_at", None) is not None:
                await _blocking(webhooks.mark_recovered, self.table, org_id, webhook_id)
            return False
        if gone:
            return await self._disable(webhook, "endpoint_gone", now_iso)
        first = webhook.get("first_failure_at")
        if first is None:
            webhook["first_failure_at"] = now_iso  # the batch's other failures need not write it again
            await _blocking(webhooks.mark_failing, self.table, org_id, webhook_id, now_iso=now_iso)
            return False
        if rules.should_disable(_epoch(first), now_epoch):
            return await self._disable(webhook, "failing_continuously", now_iso)
        return False

    async def _disable(self, webhook: Item, reason: str, now_iso: str) -> bool:
        if not webhook.get("enabled"):
            return True
        webhook["enabled"] = False
        changed = await _blocking(
            webhooks.disable, self.table, webhook["org_id"], webhook["id"], reason=reason, now_iso=now_iso
        )
        if changed:
            self.outcomes["disabled"] += 1
            logger().warning("webhook disabled", extra={"webhook_id": webhook["id"], "reason": reason})
        return True

    def back_off(self, job: Job) -> None:
        """After handling ``job`` failed (an AWS error that outlasted its retries): bring its message
        back after the retry schedule's first step, doubling with each receive, rather than after
        the queue's visibility timeout. Best effort: if this fails too, the timeout applies."""
        first = self.settings.webhook_retry_schedule[0] if self.settings.webhook_retry_schedule else 5
        seconds = min(FAILED_BACKOFF_CAP_SECONDS, first * 2 ** min(job.receive_count - 1, 10))
        try:
            webhook_queue.change_visibility(job.receipt_handle, seconds)
        except StoreError:
            logger().warning("failed delivery left to the queue's visibility timeout", exc_info=True)

    async def _wait(self, job: Job, seconds: float, due: float) -> Outcome:
        if job.receive_count >= REFRESH_AFTER_RECEIVES:
            fresh = dataclasses.replace(job.message, not_before=due)
            await _blocking(webhook_queue.send, [fresh], delay_seconds=int(seconds))
            return Outcome.DONE
        await _blocking(webhook_queue.change_visibility, job.receipt_handle, seconds)
        return Outcome.WAIT


def _epoch(iso: str | None) -> float:
    return clock.parse_iso(iso).timestamp() if iso else 0.0
