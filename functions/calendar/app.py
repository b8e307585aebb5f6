"""/api/v1/messages/calendar/*: a message token's calendar (events, ranges, .ics, invitations)."""

from mailroom.api.routers import calendar
from mailroom.entry.http import api_handler

handler = api_handler(calendar.router)
