"""Standard Webhooks signatures: the spec's published test vector, and the reference library verifying
what Mailroom signs (one secret, and two during a rotation)."""

import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from mailroom.domain import webhooks as rules

# From the Standard Webhooks reference implementation's tests (libraries/*/tests in
# github.com/standard-webhooks/standard-webhooks), the vector every implementation reproduces.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector_is_reproduced_exactly():
    key = rules.secret_key(VECTOR_SECRET)
    assert rules.sign(key, VECTOR_MSG_ID, VECTOR_TIMESTAMP, VECTOR_PAYLOAD) == VECTOR_SIGNATURE


def test_a_changed_byte_changes_the_signature():
    key = rules.secret_key(VECTOR_SECRET)
    assert rules.sign(key, VECTOR_MSG_ID, VECTOR_TIMESTAMP + 1, VECTOR_PAYLOAD) != VECTOR_SIGNATURE
    assert rules.sign(key, VECTOR_MSG_ID, VECTOR_TIMESTAMP, VECTOR_PAYLOAD + b" ") != VECTOR_SIGNATURE


def test_the_reference_library_verifies_what_we_sign():
    secret = rules.new_secret()
    body = rules.encode_payload({"type": "event", "event_id": "evt_1", "data": {"subject": "héllo"}})
    headers = rules.headers([rules.secret_key(secret)], "evt_01JB2Z8D3K", int(time.time()), body)
    assert headers["content-type"] == "application/json"
    assert Webhook(secret).verify(body, headers)["data"]["subject"] == "héllo"
    with pytest.raises(WebhookVerificationError):
        Webhook(rules.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"evt_1", b"evt_2"), headers)


def test_during_a_rotation_either_secret_verifies():
    old, new = rules.new_secret(), rules.new_secret()
    body = b'{"type":"event"}'
    headers = rules.headers([rules.secret_key(new), rules.secret_key(old)], "evt_X", int(time.time()), body)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == json.loads(body)


def test_secrets_are_whsec_and_32_random_bytes():
    secrets = {rules.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(rules.secret_key(secret)) == 32


@pytest.mark.parametrize("bad", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!"])
def test_malformed_secrets_are_refused(bad):
    with pytest.raises(ValueError, match=r".+"):
        rules.secret_key(bad)


def test_an_id_with_a_dot_cannot_be_signed():
    with pytest.raises(ValueError, match="cannot contain"):
        rules.sign(b"k", "evt.1", 1, b"{}")
