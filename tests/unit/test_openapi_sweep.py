"""The document logic of the two-tenant sweep (tests/support/openapi_sweep.py): which operations it
finds, the variants of values it tries, the ids that never existed it compares with, and the
minimal bodies it builds from the real document's request schemas."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mailroom.api.openapi import document
from tests.support.openapi_sweep import Operation, example, ghost, operations, unknown_parameters, variants

DELIVERY = Operation(
    "GET",
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}",
    ("webhook_id", "delivery_id"),
    None,
    False,
)


def _document() -> dict[str, Any]:
    return json.loads(json.dumps(document()))  # type: ignore[no-any-return]


def test_every_operation_of_the_document_with_its_path_parameters_in_order() -> None:
    found = {o.key: o for o in operations(_document())}
    attachment = found["GET /api/v0/inboxes/{inboxId}/messages/{messageId}/attachments/{attachmentId}"]
    assert attachment.parameters == ("inboxId", "messageId", "attachmentId")
    assert found["GET /api/v1/me"].parameters == ()
    assert found["PATCH /api/v1/messages/folders/{path}"].body_required
    assert unknown_parameters(attachment, {"inboxId": [], "messageId": []}) == ["attachmentId"]


def test_a_value_fills_its_parameter_as_one_segment() -> None:
    folder = Operation("DELETE", "/api/v1/messages/folders/{path}", ("path",), None, False)
    assert folder.url({"path": "Projects/2026 Q1"}) == "/api/v1/messages/folders/Projects%2F2026%20Q1"


def test_variants_are_all_of_theirs_then_each_of_theirs_alone_among_ours() -> None:
    theirs = {"webhook_id": ["wh_B"], "delivery_id": ["dlv_B1", "dlv_B2"]}
    ours = {"webhook_id": ["wh_A"], "delivery_id": ["dlv_A"]}
    assert list(variants(DELIVERY, theirs, ours)) == [
        {"webhook_id": "wh_B", "delivery_id": "dlv_B1"},
        {"webhook_id": "wh_B", "delivery_id": "dlv_B2"},
        {"webhook_id": "wh_B", "delivery_id": "dlv_A"},
        {"webhook_id": "wh_A", "delivery_id": "dlv_B1"},
        {"webhook_id": "wh_A", "delivery_id": "dlv_B2"},
    ]


def test_no_pairing_without_a_value_of_ours_and_none_for_a_value_both_share() -> None:
    theirs = {"webhook_id": ["wh_B"], "delivery_id": ["dlv_B"]}
    assert list(variants(DELIVERY, theirs, {})) == [{"webhook_id": "wh_B", "delivery_id": "dlv_B"}]
    attachment = Operation("GET", "/m/{message_id}/attachments/{index}", ("message_id", "index"), None, False)
    paired = variants(
        attachment, {"message_id": ["msg_B"], "index": ["0"]}, {"message_id": ["msg_A"], "index": ["0"]}
    )
    assert list(paired) == [{"message_id": "msg_B", "index": "0"}]


def test_a_ghost_has_the_shape_of_the_value_and_is_another() -> None:
    assert ghost("wh_01M97ERG524HNNYEGH2WPH4TCX") == "wh_01M97ERG524HNNYEGH2WPH4TCZ"
    assert ghost("att_01M97ERG524HNNYEGH2WPH4TCZ") == "att_01M97ERG524HNNYEGH2WPH4TCY"
    assert ghost("b1.example.org") == "b1.example.orZ"


def test_the_minimal_example_of_every_required_body_is_valid_against_its_schema() -> None:
    doc = _document()
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    checked = 0
    for operation in operations(doc):
        if not operation.body_required or operation.body_schema is None:
            continue
        rooted = json.loads(
            json.dumps(operation.body_schema).replace('"#/components/', '"urn:doc#/components/')
        )
        errors = list(
            Draft202012Validator(rooted, registry=registry).iter_errors(example(operation.body_schema, doc))
        )
        assert errors == [], (operation.key, [e.message for e in errors])
        checked += 1
    assert checked > 40
