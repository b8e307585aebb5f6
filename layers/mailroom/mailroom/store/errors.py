"""What an AWS call's failure means, as typed errors: the only place botocore errors are read.

Every client ``store.aws`` hands out raises these instead of botocore's ``ClientError`` and
``BotoCoreError``, classified once by the table below, so the layers above ask "was a condition
false, is it worth a retry, is the object gone, did SES refuse the message" without knowing
AWS's error vocabulary. ``retryable`` is the one question every caller has: the same call may
pass later (throttling, contention, outages), as opposed to a refusal of the request itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar


class StoreError(Exception):
    """An AWS call failed. ``code`` is AWS's error code, kept for logs and metrics only."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        service: str = "",
        operation: str = "",
        reasons: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.service = service
        self.operation = operation
        # TransactWriteItems: one cancellation code per operation, in order ("None" where it passed).
        self.reasons = list(reasons)


class ConditionFailed(StoreError):
    """A conditional write's condition did not hold: the invariant it guards would break."""

    # A cancelled transaction: for each operation asking ``ReturnValuesOnConditionCheckFailure:
    # ALL_OLD`` whose condition failed, its item as it was (wire format); None for the others.
    old_items: Sequence[dict[str, Any] | None] = ()

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"

    def old_item(self, index: int) -> dict[str, Any] | None:
        """The item operation ``index`` failed on, as it was (wire format), if it asked for it."""
        return self.old_items[index] if index < len(self.old_items) else None


class Contended(StoreError):
    """Another writer held the same items at that moment (a transaction conflict); nothing was written."""

    retryable = True


class Throttled(StoreError):
    """AWS is limiting the request rate; nothing was done."""

    retryable = True


class ServiceUnavailable(StoreError):
    """AWS answered with a server error, or could not be reached or answered too late."""

    retryable = True


class Unreachable(ServiceUnavailable):
    """No connection to the endpoint at all (wrong endpoint URL, no network, the local stack down)."""


class ItemTooLarge(StoreError):
    """DynamoDB will never take this item: it is over the 400 KB item size limit."""


class InvalidRequest(StoreError):
    """AWS refused the request as malformed (a bug or a value AWS cannot take, never transient)."""


class ObjectMissing(StoreError):
    """The object, execution, identity or other resource named does not exist."""


class AlreadyExists(StoreError):
    """The resource to create exists already (an execution name, an SES identity)."""


class AccessDenied(StoreError):
    """The function's role may not do this (a deployment problem, not the caller's)."""


class CredentialsRefused(StoreError):
    """A third party refused credentials a tenant gave (a Cloudflare token, a role to assume): the
    tenant's to fix, unlike AccessDenied, which is the deployment's."""


class NotConfigured(StoreError):
    """No credentials, region or profile to call AWS with (the operator's setup)."""


class SendRefused(StoreError):
    """SES refused this message for what it is (content, unverified identity): it will never pass."""


class SendingPaused(StoreError):
    """SES sending is paused or suspended for the account or configuration set: nothing was sent,
    and the same message passes once the operator has sending resumed."""

    retryable = True


# One table, by AWS error code. Codes that mean the same in several services are listed once.
_BY_CODE: dict[str, type[StoreError]] = {
    "ConditionalCheckFailedException": ConditionFailed,
    "TransactionConflictException": Contended,
    "TransactionInProgressException": Contended,
    "ThrottlingException": Throttled,
    "Throttling": Throttled,
    "ThrottledException": Throttled,
    "RequestThrottled": Throttled,  # SQS
    "RequestThrottledException": Throttled,
    "ProvisionedThroughputExceededException": Throttled,
    "RequestLimitExceeded": Throttled,
    "TooManyRequestsException": Throttled,
    "LimitExceededException": Throttled,
    "BandwidthLimitExceeded": Throttled,
    "SlowDown": Throttled,
    "InternalServerError": ServiceUnavailable,
    "InternalError": ServiceUnavailable,
    "InternalFailure": ServiceUnavailable,
    "ServiceUnavailable": ServiceUnavailable,
    "ServiceUnavailableException": ServiceUnavailable,
    "RequestTimeout": ServiceUnavailable,
    "RequestTimeoutException": ServiceUnavailable,
    "PriorRequestNotComplete": ServiceUnavailable,
    "ValidationException": InvalidRequest,
    "InvalidParameterValue": InvalidRequest,
    "BadRequestException": InvalidRequest,
    "NoSuchKey": ObjectMissing,
    "NoSuchBucket": ObjectMissing,
    "NotFound": ObjectMissing,
    "404": ObjectMissing,
    "ResourceNotFoundException": ObjectMissing,
    "NotFoundException": ObjectMissing,
    "ExecutionDoesNotExist": ObjectMissing,
    "StateMachineDoesNotExist": ObjectMissing,
    "QueueDoesNotExist": ObjectMissing,
    "GoneException": ObjectMissing,  # API Gateway management API: the WebSocket connection is gone
    "AWS.SimpleQueueService.NonExistentQueue": ObjectMissing,
    "AlreadyExistsException": AlreadyExists,
    "ExecutionAlreadyExists": AlreadyExists,
    "ConflictException": AlreadyExists,
    "AccessDenied": AccessDenied,
    "AccessDeniedException": AccessDenied,
    "UnrecognizedClientException": AccessDenied,
    "MessageRejected": SendRefused,
    "MailFromDomainNotVerifiedException": SendRefused,
    "SendingPausedException": SendingPaused,
    "AccountSuspendedException": SendingPaused,
}

# Codes whose meaning depends on the call: answering a send, SES v2's NotFound and BadRequest are
# about the message (an unknown sending identity or configuration set, a malformed message).
_BY_OPERATION_CODE: dict[tuple[str, str, str], type[StoreError]] = {
    ("sesv2", "send_email", "NotFoundException"): SendRefused,
    ("sesv2", "send_email", "BadRequestException"): SendRefused,
    ("ses", "send_raw_email", "InvalidParameterValue"): SendRefused,
    # Route 53 refuses a change batch whose DELETE does not match the record set exactly or whose
    # CREATE finds one: the zone is not as the batch assumed (a compare-and-swap that lost).
    ("route53", "change_resource_record_sets", "InvalidChangeBatch"): ConditionFailed,
    ("route53", "get_hosted_zone", "NoSuchHostedZone"): ObjectMissing,
    ("route53", "list_resource_record_sets", "NoSuchHostedZone"): ObjectMissing,
    ("route53", "change_resource_record_sets", "NoSuchHostedZone"): ObjectMissing,
    # A role the tenant named that does not trust Mailroom (or not with the organization's external id).
    ("sts", "assume_role", "AccessDenied"): CredentialsRefused,
}

_CONTENTION = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def _too_large(message: str) -> bool:
    # DynamoDB has no code of its own for it: a ValidationException says "Item size has exceeded
    # the maximum allowed size" (or "...item size..." in a transaction's reason).
    lowered = message.lower()
    return "size" in lowered and ("item" in lowered or "exceed" in lowered)


def _cancelled(message: str, reasons: list[dict[str, Any]], **where: str) -> StoreError:
    codes = [str(r.get("Code") or "None") for r in reasons]
    failing = {c for c in codes if c != "None"}
    if "ConditionalCheckFailed" in failing or not failing:
        failed = ConditionFailed(message, code="TransactionCanceledException", reasons=codes, **where)
        failed.old_items = [r.get("Item") for r in reasons]
        return failed
    if failing <= _CONTENTION:
        kind: type[StoreError] = Contended if "TransactionConflict" in failing else Throttled
        return kind(message, code="TransactionCanceledException", reasons=codes, **where)
    details = " ".join(str(r.get("Message") or "") for r in reasons)
    kind = ItemTooLarge if "ValidationError" in failing and _too_large(details) else InvalidRequest
    return kind(message, code="TransactionCanceledException", reasons=codes, **where)


def classify(
    code: str, message: str, *, status: int = 0, service: str = "", operation: str = "", extra: Any = None
) -> StoreError:
    """The typed error for an AWS error response (``extra``: a transaction's CancellationReasons)."""
    where = {"service": service, "operation": operation}
    if code == "TransactionCanceledException":
        return _cancelled(message, list(extra or []), **where)
    kind = _BY_OPERATION_CODE.get((service, operation, code)) or _BY_CODE.get(code)
    if kind is InvalidRequest and service == "dynamodb" and _too_large(message):
        kind = ItemTooLarge
    if service == "cloudformation" and code == "ValidationError" and "does not exist" in message:
        kind = ObjectMissing  # CloudFormation's answer for a stack that is not there
    if kind is None:
        kind = ServiceUnavailable if status >= 500 else StoreError
    return kind(message or code, code=code, **where)


def translate(exc: Exception, *, service: str = "", operation: str = "") -> StoreError:
    """A botocore exception as a ``StoreError`` (the caller raises it ``from exc``)."""
    from botocore import exceptions as boto

    where = {"service": service, "operation": operation}
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return classify(
            str(error.get("Code") or ""),
            str(error.get("Message") or ""),
            status=status,
            extra=exc.response.get("CancellationReasons"),  # type: ignore[typeddict-item]
            **where,
        )
    if isinstance(exc, boto.NoCredentialsError | boto.NoRegionError | boto.ProfileNotFound):
        return NotConfigured(str(exc), code=type(exc).__name__, **where)
    if isinstance(exc, boto.ParamValidationError):
        return InvalidRequest(str(exc), code=type(exc).__name__, **where)
    if isinstance(exc, boto.EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
        return Unreachable(f"cannot reach {endpoint}", code=type(exc).__name__, **where)
    if isinstance(exc, boto.HTTPClientError | boto.ConnectionError):
        # Connection reset, timeouts, retries exhausted on them: worth another try later.
        return ServiceUnavailable(str(exc), code=type(exc).__name__, **where)
    return StoreError(str(exc), code=type(exc).__name__, **where)


@contextlib.contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    """Translate botocore errors raised by a library that calls AWS with a raw client."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, service=service, operation=operation) from exc
