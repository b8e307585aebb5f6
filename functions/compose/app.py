"""/api/v1/messages/drafts*, /identities*, /templates*: compose resources of a message token's mailbox."""

from mailroom.api.routers import compose
from mailroom.entry.http import api_handler

handler = api_handler(compose.router)
