"""The check of Cloudflare requests and answers against Cloudflare's published schema
(tests/support/cloudflare_schema.py) refuses what Cloudflare's API would: the integration tests
rely on it to hold the SDK's requests and the local Cloudflare API's answers to the schema."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cloudflare_api import PREFIX, Seen
from tests.support.cloudflare_schema import request_problems, response_problems

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
RECORDS = f"{PREFIX}/zones/{ZONE}/dns_records"
MX = {"name": "example.com", "type": "MX", "content": "inbound-smtp.us-east-1.amazonaws.com", "ttl": 3600}


def created(body: Any, query: dict[str, list[str]] | None = None) -> list[str]:
    return request_problems(Seen("POST", RECORDS, query or {}, body))


def test_a_record_body_as_the_sdk_sends_it_conforms() -> None:
    assert created({**MX, "priority": 10, "comment": "Mailroom: inbound_mx"}) == []
    txt = {"name": "_dmarc.example.com", "type": "TXT", "content": "v=DMARC1; p=none", "ttl": 1}
    assert request_problems(Seen("PATCH", f"{RECORDS}/{'a' * 32}", {}, txt)) == []
    listing = {"name.exact": ["example.com"], "page": ["1"], "per_page": ["100"]}
    assert request_problems(Seen("GET", RECORDS, listing, None)) == []
    assert request_problems(Seen("DELETE", f"{RECORDS}/{'a' * 32}", {}, None)) == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (MX, "'priority' is a required property"),  # an MX needs its priority
        ({**MX, "priority": 10, "ttl": 5}, "less than the minimum of 30 at ttl"),  # or 1: automatic
        ({**MX, "priority": 70000}, "greater than the maximum of 65535 at priority"),
        ({**MX, "type": "SPF", "priority": 10}, "valid under any"),  # no such type any more
        ({**MX, "priority": 10, "name": "x" * 256}, "is too long at name"),
        (None, "no body"),
    ],
)
def test_a_body_cloudflare_would_refuse_is_named(body: Any, why: str) -> None:
    (problem,) = created(body)
    assert why in problem


def test_unknown_operations_and_parameters_are_named() -> None:
    assert request_problems(Seen("GET", f"{PREFIX}/zones/{ZONE}/dns_records/export/all", {}, None))
    assert request_problems(Seen("PUT", f"{PREFIX}/zones", {}, None))
    (problem,) = request_problems(Seen("GET", RECORDS, {"name.like": ["example.com"]}, None))
    assert "name.like" in problem
    (problem,) = request_problems(Seen("GET", RECORDS, {"per_page": ["many"]}, None))
    assert "per_page=many" in problem


def answer(status: int, payload: Any) -> list[str]:
    return response_problems(Seen("GET", f"{PREFIX}/user/tokens/verify", {}, None, status, payload))


def test_answers_are_held_to_the_documented_envelopes() -> None:
    token = {"id": "ed17574386854bf78a67040be0a770b0", "status": "active"}
    assert answer(200, {"success": True, "errors": [], "messages": [], "result": token}) == []
    failure = {"success": False, "errors": [{"code": 1000, "message": "Invalid API Token"}], "messages": []}
    assert answer(401, {**failure, "result": None}) == []
    assert answer(200, {"success": True, "errors": [], "messages": [], "result": {**token, "status": "on"}})
    assert answer(200, {"errors": [], "messages": [], "result": token})  # no success
    assert answer(401, {**failure, "success": True, "result": None})
    assert answer(302, {})  # not a status Cloudflare documents here
    assert answer(503, {}) == []  # outages a test plays are not held to the schema
