"""Operations moto does not implement yet that Mailroom calls, added to the emulator; bounds on what
its DynamoDB Streams keep (records already read, old shard iterators); and two fixes of moto's speed
(a linear SQS receive, a server that does not list its package on every request). SES v2 sends keep
the configuration set and tags moto drops, and are reported to listeners (``add_send_listener``:
the local stack delivers what SES "sends", see local/outbound.py).

Production code calls the real AWS APIs; these teach the local emulator to answer them the way AWS
does, so neither the code nor the tests carry local special cases. ``install()`` is idempotent and
must run before moto serves requests (the local stack and the test fixtures call it).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def _put_email_identity_dkim_signing_attributes(self: Any) -> str:
    """SES v2 PutEmailIdentityDkimSigningAttributes (BYODKIM key rotation)."""
    from moto.ses.exceptions import NotFoundException

    name = self._get_param("EmailIdentity")
    origin = self._get_param("SigningAttributesOrigin") or "AWS_SES"
    attributes = self._get_param("SigningAttributes") or {}
    identity = self.sesv2_backend.core_backend.email_identities.get(name)
    if identity is None:
        raise NotFoundException(f"Email identity {name} does not exist.")
    identity.dkim_signing_attributes = {**attributes, "SigningAttributesOrigin": origin}
    identity.dkim_attributes.update(
        {
            "SigningEnabled": True,
            "Status": "PENDING",
            "SigningAttributesOrigin": origin,
            "LastKeyGenerationTimestamp": time.time(),
        }
    )
    if attributes.get("DomainSigningSelector"):
        identity.dkim_attributes["Tokens"] = [attributes["DomainSigningSelector"]]
    return json.dumps({"DkimStatus": "PENDING", "DkimTokens": identity.dkim_attributes.get("Tokens", [])})


# --- DynamoDB Streams: records already read can be dropped; iterators expire -----------------------
#
# moto keeps every stream record for the life of the process, and its transactions deep-copy the
# whole table, stream included: with records piling up, every transaction gets slower. Records the
# local pollers have read are dropped (``trim_stream``; AWS keeps them 24 hours, which nothing here
# relies on). moto numbers a record by the stream's length, so dropping records moves the stream's
# starting sequence number along with them, under one lock shared with appending, reading and
# copying. moto also keeps every shard iterator ever issued (AWS expires them after 15 minutes);
# only the newest ones are kept.

_stream_lock = threading.RLock()
MAX_SHARD_ITERATORS = 1000


def trim_stream(table_name: str, through_sequence: int, *, account_id: str, region: str) -> int:
    """Drop the stream records of ``table_name`` up to ``through_sequence``; how many were dropped."""
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[account_id][region].tables.get(table_name)
    shard = getattr(table, "stream_shard", None)
    if shard is None:
        return 0
    with _stream_lock:
        count = max(0, min(len(shard.items), through_sequence - int(shard.starting_sequence_number) + 1))
        if count:
            del shard.items[:count]
            shard.starting_sequence_number += count
        return count


def _install_stream_retention() -> None:
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if getattr(StreamShard, "_mailroom_locked", False):
        return
    add, get = StreamShard.add, StreamShard.get

    def locked_add(self: Any, old: Any, new: Any) -> None:
        with _stream_lock:
            add(self, old, new)

    def locked_get(self: Any, start: int, quantity: int) -> Any:
        with _stream_lock:
            # An iterator from before a trim starts at the oldest record left (AWS: the trim horizon).
            return get(self, max(start, self.starting_sequence_number), quantity)

    def locked_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        # Transactions copy the table to roll back to: the copy must not catch a trim half-done.
        with _stream_lock:
            copied = self.__class__.__new__(self.__class__)
            memo[id(self)] = copied
            for name, value in self.__dict__.items():
                setattr(copied, name, copy.deepcopy(value, memo))
            return copied

    StreamShard.add = locked_add  # type: ignore[method-assign]
    StreamShard.get = locked_get  # type: ignore[method-assign]
    StreamShard.__deepcopy__ = locked_deepcopy  # type: ignore[attr-defined]
    StreamShard._mailroom_locked = True  # type: ignore[attr-defined]

    get_shard_iterator = DynamoDBStreamsBackend.get_shard_iterator
    get_records = DynamoDBStreamsBackend.get_records

    def expire(backend: Any) -> None:
        excess = len(backend.shard_iterators) - MAX_SHARD_ITERATORS
        for arn in list(backend.shard_iterators)[: max(0, excess)]:
            backend.shard_iterators.pop(arn, None)

    def bounded_get_shard_iterator(self: Any, *args: Any, **kwargs: Any) -> Any:
        expire(self)
        return get_shard_iterator(self, *args, **kwargs)

    def bounded_get_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = get_records(self, *args, **kwargs)
        expire(self)
        return result

    DynamoDBStreamsBackend.get_shard_iterator = bounded_get_shard_iterator  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = bounded_get_records  # type: ignore[method-assign]


def _install_sqs_retention_check() -> None:
    """moto checks each received message's retention period by computing every attribute of its
    queue, which counts the queue's messages: receiving gets quadratic in the queue's length (a few
    hundred queued webhook deliveries took seconds per receive). Same answer, from the one attribute."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_mailroom_retention", False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    SQSBackend._mailroom_retention = True  # type: ignore[attr-defined]


def _install_module_list_cache() -> None:
    """moto's server lists its own package folder (a listdir and a stat per entry), under a lock, on
    every request to find the service: most of its time went there under load. The list never
    changes while it runs."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_mailroom_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def cached() -> tuple[str, ...]:
        return modules

    cached._mailroom_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = cached


# --- SES v2 SendEmail: what moto drops, kept; listeners told of every send ---------------------------


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One accepted SES v2 ``SendEmail``, as the request gave it."""

    message_id: str
    from_address: str | None
    recipients: list[str]  # the envelope: Destination's To, Cc and Bcc addresses
    raw: bytes | None  # raw MIME (``Content.Raw``); None for simple or templated content
    configuration_set: str | None
    tags: dict[str, str] = field(default_factory=dict)
    account_id: str = ""
    region: str = ""


SendListener = Callable[[SentEmail], object]
_send_listeners: list[SendListener] = []
_listeners_lock = threading.Lock()


def add_send_listener(listener: SendListener) -> None:
    """Call ``listener`` after every accepted send, on moto's request thread: it must only hand the
    work to a thread of its own and return."""
    with _listeners_lock:
        _send_listeners.append(listener)


def remove_send_listener(listener: SendListener) -> None:
    with _listeners_lock:
        if listener in _send_listeners:
            _send_listeners.remove(listener)


def _install_sesv2_send_record() -> None:
    """moto accepts ``ConfigurationSetName`` and ``EmailTags`` and forgets them; SES acts on both (the
    set's event destinations publish the send's events, carrying its tags). They are kept on moto's
    stored message (``configuration_set_name``, ``email_tags``) and passed to the listeners."""
    from moto.sesv2.responses import SESV2Response

    if getattr(SESV2Response, "_mailroom_recorded", False):
        return
    send_email = SESV2Response.send_email

    def recorded_send_email(self: Any) -> str:
        answer: str = send_email(self)
        params = json.loads(self.body or "{}")
        destination = params.get("Destination") or {}
        raw = ((params.get("Content") or {}).get("Raw") or {}).get("Data")
        sent = SentEmail(
            message_id=str(json.loads(answer)["MessageId"]),
            from_address=params.get("FromEmailAddress"),
            recipients=[
                str(a)
                for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
                for a in destination.get(kind) or []
            ],
            raw=base64.b64decode(raw) if raw else None,
            configuration_set=params.get("ConfigurationSetName"),
            tags={str(t["Name"]): str(t["Value"]) for t in params.get("EmailTags") or []},
            account_id=self.current_account,
            region=self.region,
        )
        for message in reversed(self.sesv2_backend.core_backend.sent_messages):
            if message.id == sent.message_id:
                message.configuration_set_name = sent.configuration_set
                message.email_tags = dict(sent.tags)
                break
        with _listeners_lock:
            listeners = list(_send_listeners)
        for listener in listeners:
            try:
                listener(sent)
            except Exception:
                # SES has accepted the message whatever happens after: a listener never fails a send.
                log.exception("SES send listener failed for %s", sent.message_id)
        return answer

    SESV2Response.send_email = recorded_send_email  # type: ignore[method-assign]
    SESV2Response._mailroom_recorded = True  # type: ignore[attr-defined]


def install() -> None:
    from moto.sesv2.responses import SESV2Response

    if not hasattr(SESV2Response, "put_email_identity_dkim_signing_attributes"):
        SESV2Response.put_email_identity_dkim_signing_attributes = (  # type: ignore[attr-defined]
            _put_email_identity_dkim_signing_attributes
        )
    _install_stream_retention()
    _install_sqs_retention_check()
    _install_module_list_cache()
    _install_sesv2_send_record()
