"""KMS in the local stack: keys and aliases from the template, and key material surviving a restart
(what was encrypted before it must decrypt after it)."""

from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.aws import Clients, provision
from local.persistence import StateStore
from local.stack import Stack

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "streams.yaml"
ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_the_template_key_and_alias_are_created_once():
    with mock_aws():
        stack = Stack.load(FIXTURE)
        clients = Clients(region=REGION)
        provision(stack, clients)
        provision(stack, clients)  # a second start finds them
        kms = clients("kms")
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
        assert aliases.get("alias/fixture")
        assert len(kms.list_keys()["Keys"]) == 1
        blob = kms.encrypt(KeyId="alias/fixture", Plaintext=b"s3cret")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"s3cret"


def test_ciphertexts_stay_readable_across_a_restart(tmp_path):
    context = {"purpose": "test"}
    with mock_aws():
        stack = Stack.load(FIXTURE)
        clients = Clients(region=REGION)
        provision(stack, clients)
        kms = clients("kms")
        blob = kms.encrypt(KeyId="alias/fixture", Plaintext=b"whsec_abc", EncryptionContext=context)[
            "CiphertextBlob"
        ]
        StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION).save()

    with mock_aws():  # a fresh emulated account: provisioning makes a new key for the alias first
        stack = Stack.load(FIXTURE)
        clients = Clients(region=REGION)
        provision(stack, clients)
        kms = clients("kms")
        with pytest.raises(ClientError):  # the ciphertext's key is not in this account yet
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId="alias/fixture")
        assert StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION).restore()
        plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId="alias/fixture")[
            "Plaintext"
        ]
        assert plain == b"whsec_abc"
        assert len(kms.list_keys()["Keys"]) == 1  # the key made afresh is gone
