"""/api/v1/messages/contacts*, /api/v1/messages/contact-groups*: a message token's address book."""

from mailroom.api.routers import contacts
from mailroom.entry.http import api_handler

handler = api_handler(contacts.router, contacts.groups_router)
