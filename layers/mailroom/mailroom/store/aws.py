"""boto3 clients, created on first use and reused for the life of the process.

Nothing here runs at import time: importing boto3 and building a client costs ~0.3 s of cold start,
paid only by the code path that needs it. ``AWS_ENDPOINT_URL`` (set by the local stack) is honoured
by boto3 itself, so the code has no local special cases.

``client(service)`` raises ``store.errors`` types, never botocore's: every operation call goes
through ``_Translated``, so no code above ``store`` ever sees ``ClientError``. ``raw_client`` is for
libraries that read botocore errors themselves (Powertools' idempotency persistence).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mailroom.settings import get_settings
from mailroom.store.errors import translate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_translated: dict[str, Any] = {}

# Client attributes that are not AWS operations: handed out as they are.
_NOT_OPERATIONS = frozenset({"meta", "exceptions", "can_paginate", "close"})


class _Translated:
    """A boto3 client whose operations raise ``store.errors`` instead of botocore exceptions."""

    def __init__(self, service: str, raw: Any) -> None:
        self._service = service
        self._raw = raw
        self._calls: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        call = self._calls.get(name)
        if call is not None:
            return call
        attribute = getattr(self._raw, name)
        if name in _NOT_OPERATIONS or name.startswith("_") or not callable(attribute):
            return attribute
        service = self._service

        @functools.wraps(attribute)
        def call_translated(*args: Any, **kwargs: Any) -> Any:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                result = attribute(*args, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, service=service, operation=name) from exc
            if name in ("get_paginator", "get_waiter"):
                return _Translated(service, result)
            if name == "paginate":
                return _Pages(service, result)
            return result

        self._calls[name] = call_translated
        return call_translated


class _Pages:
    """A paginator's pages: each page is a request, translated like any other call."""

    def __init__(self, service: str, pages: Any) -> None:
        self._service = service
        self._pages = pages

    def __iter__(self) -> Iterator[Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield from self._pages
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, service=self._service, operation="paginate") from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pages, name)


def _name(service: str, region: str | None, endpoint_url: str | None) -> str:
    return "@".join([service, region or "", endpoint_url or ""]) if region or endpoint_url else service


@functools.cache
def _data_loader() -> Any:
    """One loader per process: it caches the service models, endpoints and retry rules it reads
    from botocore's JSON files, which a session of its own per client would read again each time."""
    from botocore.loaders import create_loader

    return create_loader()


def _botocore_session() -> Any:
    """A new session (credentials and region resolved from the environment as it is now) sharing
    the process's data loader."""
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", _data_loader())
    return session


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """``region``: another region than the stack's (a customer's event bus lives where they chose);
    ``endpoint_url``: a service whose endpoint is per resource (a WebSocket API's management API)."""
    name = _name(service, region, endpoint_url)
    cached = _translated.get(name)
    if cached is not None:
        return cached
    raw = raw_client(service, region=region, endpoint_url=endpoint_url)
    with _lock:
        return _translated.setdefault(name, _Translated(service, raw))


def raw_client(service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """The boto3 client itself (errors are botocore's): only for libraries that handle them."""
    name = _name(service, region, endpoint_url)
    cached = _clients.get(name)
    if cached is not None:
        return cached
    with _lock:
        if name not in _clients:
            import boto3
            from botocore.config import Config

            # S3: SigV4 also for pre-signed URLs (botocore presigns with SigV2 in us-east-1, which S3
            # refuses for buckets created since 2020).
            # DynamoDB: no client-side validation of parameters. Every request is built by
            # store/table.py from boto3's typed serializer, and DynamoDB validates it again (a bad
            # one is the same InvalidRequest either way); botocore walking every value of a message
            # item was the largest part of inbound's own time (docs/mail-inbound.md).
            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=20,
                signature_version="s3v4" if service == "s3" else None,
                parameter_validation=service != "dynamodb",
            )
            # Any: the stubs only type literal service names.
            session: Any = boto3.session.Session(botocore_session=_botocore_session())
            try:
                _clients[name] = session.client(
                    service,
                    region_name=region or get_settings().region,
                    config=config,
                    **({"endpoint_url": endpoint_url} if endpoint_url else {}),
                )
            except Exception as exc:  # no region, an unknown profile: the operator's setup
                from botocore.exceptions import BotoCoreError

                if isinstance(exc, BotoCoreError):
                    raise translate(exc, service=service, operation="create_client") from exc
                raise
        return _clients[name]


def client_with_credentials(service: str, credentials: dict[str, str]) -> Any:
    """A translated client acting with temporary credentials (an assumed role's), never cached: the
    credentials belong to one caller and expire."""
    import boto3
    from botocore.config import Config

    session: Any = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)
    return _Translated(service, session.client(service, region_name=get_settings().region, config=config))


def profile_region() -> str | None:
    """The region the operator's AWS configuration (profile, config file) names, if any."""
    import boto3

    session: Any = boto3.session.Session()
    region: str | None = session.region_name
    return region


def dynamodb() -> DynamoDBClient:
    return client("dynamodb")  # type: ignore[no-any-return]


def prime(service: str = "dynamodb") -> None:
    """Do, before any request, the work of building a client that is the same in every execution
    environment: import boto3, read the service model, endpoint rules and retry settings into the
    process's data loader. The client itself is thrown away and never cached: it is built with
    placeholder credentials and makes no request, so no credentials, connection or environment's
    identity ends up in a SnapStart snapshot (``entry/snapstart``); the first real client then only
    resolves this environment's credentials."""
    import boto3
    from botocore.config import Config

    session: Any = boto3.session.Session(botocore_session=_botocore_session())
    session.client(
        service,
        region_name=get_settings().region,
        aws_access_key_id="snapshot-priming",
        aws_secret_access_key="snapshot-priming",  # noqa: S106 - a placeholder, never sent anywhere
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    ).close()


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints or regions)."""
    with _lock:
        _clients.clear()
        _translated.clear()
