"""Helpers for the mailbox tests: requests with idempotency keys, domains, mailboxes, and the
mail bucket and purge queue of template.yaml created in moto."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from mailroom.services.organizations import NewOrganization
from mailroom.store import aws
from tests.support.aws import template
from tests.support.lambda_api import Result, call

PASSWORD = "Correct-Horse-42"
_keys = itertools.count()


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{next(_keys)}"}


def post(function: str, token: str, path: str, body: Any = None) -> Result:
    return call(function, "POST", path, token=token, json_body=body, headers=key())


def put(function: str, token: str, path: str, body: Any) -> Result:
    return call(function, "PUT", path, token=token, json_body=body, headers=key())


def patch(function: str, token: str, path: str, body: Any) -> Result:
    return call(function, "PATCH", path, token=token, json_body=body)


def get(function: str, token: str, path: str, **query: Any) -> Result:
    return call(function, "GET", path, token=token, query=query or None)


def delete(function: str, token: str, path: str) -> Result:
    return call(function, "DELETE", path, token=token)


def public(function: str, path: str, body: Any) -> Result:
    return call(function, "POST", path, json_body=body, public=True)


def ok(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:2000])
    return result.json()["data"]


def add_domain(org: NewOrganization, name: str = "example.com", **limits: Any) -> dict[str, Any]:
    digest = hashlib.sha256(f"{name}{limits}".encode()).hexdigest()
    response = call(
        "domains",
        "POST",
        "/api/v1/domains",
        token=org.admin_token,
        json_body={"domain": name, **limits},
        headers={"Idempotency-Key": digest},
    )
    return ok(response, 201)  # type: ignore[no-any-return]


def create_mailbox(
    org: NewOrganization, local_part: str, domain: str = "example.com", **extra: Any
) -> Result:
    body = {"local_part": local_part, "domain": domain, "password": PASSWORD, **extra}
    return post("mailboxes", org.admin_token, "/api/v1/mailboxes", body)


def new_mailbox(
    org: NewOrganization, local_part: str, domain: str = "example.com", **extra: Any
) -> dict[str, Any]:
    return ok(create_mailbox(org, local_part, domain, **extra), 201)  # type: ignore[no-any-return]


def pool(org: NewOrganization) -> dict[str, int]:
    return ok_meta(get("mailboxes", org.admin_token, "/api/v1/mailboxes"))["storage_pool"]  # type: ignore[no-any-return]


def ok_meta(result: Result) -> Any:
    assert result.status == 200, (result.status, result.body[:2000])
    return result.json()["meta"]


def create_mail_infrastructure() -> tuple[str, str]:
    """The template's MailBucket and MailboxPurgeQueue (with its DLQ) in moto: (bucket, queue URL)."""
    resources = template()["Resources"]
    assert resources["MailBucket"]["Type"] == "AWS::S3::Bucket"
    redrive = resources["MailboxPurgeQueue"]["Properties"]["RedrivePolicy"]
    bucket = "mailroom-test-mailbucket"
    aws.client("s3").create_bucket(Bucket=bucket)
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="mailroom-test-MailboxPurgeDeadLetterQueue")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(redrive["maxReceiveCount"])}
    queue = sqs.create_queue(
        QueueName="mailroom-test-MailboxPurgeQueue",
        Attributes={
            "VisibilityTimeout": str(resources["MailboxPurgeQueue"]["Properties"]["VisibilityTimeout"]),
            "RedrivePolicy": json.dumps(policy),
        },
    )["QueueUrl"]
    return bucket, queue
