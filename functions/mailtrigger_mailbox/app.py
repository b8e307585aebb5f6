"""/api/v1/mailbox*: the MailTrigger mailbox view (list, create, view, update, delete), archives,
processing log, test mail and send. /api/v1/mailbox/{id}/data* is the mailbox_data function's."""

from mailroom.api.routers import mailtrigger_mailbox
from mailroom.entry.http import api_handler

handler = api_handler(mailtrigger_mailbox.router)
