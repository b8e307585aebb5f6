"""SES v2 ``PutEmailIdentityDkimSigningAttributes`` (BYODKIM key rotation), which moto lacks."""

from __future__ import annotations

import json
import time
from typing import Any


def _put_email_identity_dkim_signing_attributes(self: Any) -> str:
    from moto.ses.exceptions import NotFoundException

    name = self._get_param("EmailIdentity")
    origin = self._get_param("SigningAttributesOrigin") or "AWS_SES"
    attributes = self._get_param("SigningAttributes") or {}
    identity = self.sesv2_backend.core_backend.email_identities.get(name)
    if identity is None:
        raise NotFoundException(f"Email identity {name} does not exist.")
    identity.dkim_signing_attributes = {**attributes, "SigningAttributesOrigin": origin}
    identity.dkim_attributes.update(
        {
            "SigningEnabled": True,
            "Status": "PENDING",
            "SigningAttributesOrigin": origin,
            "LastKeyGenerationTimestamp": time.time(),
        }
    )
    if attributes.get("DomainSigningSelector"):
        identity.dkim_attributes["Tokens"] = [attributes["DomainSigningSelector"]]
    return json.dumps({"DkimStatus": "PENDING", "DkimTokens": identity.dkim_attributes.get("Tokens", [])})


def install() -> None:
    from moto.sesv2.responses import SESV2Response

    if not hasattr(SESV2Response, "put_email_identity_dkim_signing_attributes"):
        SESV2Response.put_email_identity_dkim_signing_attributes = (  # type: ignore[attr-defined]
            _put_email_identity_dkim_signing_attributes
        )
