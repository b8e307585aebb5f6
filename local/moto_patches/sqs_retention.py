"""SQS receive without counting the queue: moto checks each received message's retention period by
computing every attribute of its queue, which counts the queue's messages, so receiving gets
quadratic in the queue's length (a few hundred queued webhook deliveries took seconds per
receive). Same answer, from the one attribute."""

from __future__ import annotations

from typing import Any


def install() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_mailroom_retention", False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    SQSBackend._mailroom_retention = True  # type: ignore[attr-defined]
