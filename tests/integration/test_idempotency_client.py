"""A warm function's DynamoDB client carries the same hooks however many keyed mutations it served.

Powertools registers a User-Agent hook on the client of every idempotency layer it builds; a layer
built per request once left one more hook on the process's one DynamoDB client each time, and every
later AWS call ran them all (in a fuzzed local stack, an eighth of its CPU after a few thousand
requests)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.shared import user_agent

from mailroom.services.organizations import NewOrganization
from tests.support.lambda_api import call


def test_keyed_mutations_add_no_hooks_to_the_shared_client(
    org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    factory = user_agent._create_feature_function

    def counting(feature: str) -> Callable[..., Any]:
        made.append(feature)
        return factory(feature)

    monkeypatch.setattr(user_agent, "_create_feature_function", counting)
    for index in range(12):
        response = call(
            "domains",
            "POST",
            "/api/v1/domains",
            token=org.admin_token,
            json_body={"domain": f"d{index}.example.com"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        # Past the plan's domain limit a keyed request still goes through its idempotency claim.
        assert response.status in (201, 422), response.body
    assert made.count("idempotency") <= 1  # the process's first layer, if no test built it before
