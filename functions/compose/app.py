"""/api/v1/messages/drafts*, /identities*, /templates*, /scheduled*: compose resources of a
message token's mailbox; /api/v0/inboxes/{inboxId}/drafts*: an inbox's drafts."""

from mailroom.api.routers import compose, scheduled
from mailroom.api.routers.v0 import drafts
from mailroom.entry.http import api_handler

handler = api_handler(compose.router, drafts.router, scheduled.router)
