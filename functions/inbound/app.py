"""SES receipt rule (Lambda action) or S3 ObjectCreated under inbound/ → deliver the received message."""

from mailroom.entry.ses_inbound import inbound as handler

__all__ = ["handler"]
