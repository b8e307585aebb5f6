"""Invoking a function of the stack asynchronously (Lambda's ``InvocationType: Event``): Lambda
queues the event, runs it with its own retries and hands what still fails to the function's
``OnFailure`` destination. The local stack runs it in-process (local/stepfunctions.py routes moto's
Lambda ``Invoke`` to its functions).
"""

from __future__ import annotations

import json
from typing import Any

from mailroom.store.aws import client


def invoke_async(function_arn: str, payload: dict[str, Any]) -> None:
    """One Invoke call; returns once Lambda has queued the event (HTTP 202)."""
    client("lambda").invoke(
        FunctionName=function_arn,
        InvocationType="Event",
        Payload=json.dumps(payload, separators=(",", ":")).encode(),
    )
