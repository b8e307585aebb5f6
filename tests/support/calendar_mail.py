"""Calendar invitations as calendar clients mail them, from ``tests/fixtures/calendar``.

The fixtures are the MIME Google Calendar writes (an invitation: multipart/mixed holding
multipart/alternative text, HTML and ``text/calendar; method=REQUEST``, then the same calendar as
``invite.ics``, base64; a cancellation), and the MIME Outlook (Exchange Online) writes (a
multipart/alternative whose ``text/calendar; method=REQUEST`` part is base64 only, so its calendar
is the sibling ``.ics`` file), with ``${ORGANIZER}``, ``${ATTENDEE}`` and ``${UID}`` to fill in.
``@@B64@@`` stands for the base64 copy of the calendar, computed once filled.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from string import Template

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "calendar"
_CALENDAR_RE = re.compile(r"BEGIN:VCALENDAR\r\n.*?END:VCALENDAR\r\n", re.DOTALL)


def invitation(name: str, *, organizer: str, attendee: str, uid: str) -> bytes:
    def filled(path: Path) -> str:
        template = Template(path.read_bytes().decode("utf-8"))
        return template.substitute(ORGANIZER=organizer, ATTENDEE=attendee, UID=uid)

    text = filled(FIXTURES / name)
    found = _CALENDAR_RE.search(text)
    calendar = found.group() if found is not None else filled((FIXTURES / name).with_suffix(".ics"))
    encoded = base64.encodebytes(calendar.encode()).decode().replace("\n", "\r\n").rstrip()
    return text.replace("@@B64@@", encoded).encode("utf-8")
