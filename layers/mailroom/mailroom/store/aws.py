"""boto3 clients, created on first use and reused for the life of the process.

Nothing here runs at import time: importing boto3 and building a client costs ~0.3 s of cold start,
paid only by the code path that needs it. ``AWS_ENDPOINT_URL`` (set by the local stack) is honoured
by boto3 itself, so the code has no local special cases.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from mailroom.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    cached = _clients.get(service)
    if cached is not None:
        return cached
    with _lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            # S3: SigV4 also for pre-signed URLs (botocore presigns with SigV2 in us-east-1, which S3
            # refuses for buckets created since 2020).
            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=20,
                signature_version="s3v4" if service == "s3" else None,
            )
            session: Any = boto3.session.Session()  # Any: the stubs only type literal service names
            _clients[service] = session.client(service, region_name=get_settings().region, config=config)
        return _clients[service]


def dynamodb() -> DynamoDBClient:
    return client("dynamodb")  # type: ignore[no-any-return]


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints or regions)."""
    with _lock:
        _clients.clear()
