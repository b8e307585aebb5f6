"""Calendar invitations as calendar clients mail them, from ``tests/fixtures/calendar``.

The fixtures are the MIME Google Calendar writes (an invitation: multipart/mixed holding
multipart/alternative text, HTML and ``text/calendar; method=REQUEST``, then the same calendar as
``invite.ics``, base64; a cancellation), with ``${ORGANIZER}``, ``${ATTENDEE}`` and ``${UID}`` to
fill in. ``@@B64@@`` stands for the base64 copy of the text/calendar part, computed once filled.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from string import Template

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "calendar"
_CALENDAR_RE = re.compile(r"BEGIN:VCALENDAR\r\n.*?END:VCALENDAR\r\n", re.DOTALL)


def invitation(name: str, *, organizer: str, attendee: str, uid: str) -> bytes:
    text = Template((FIXTURES / name).read_bytes().decode("utf-8")).substitute(
        ORGANIZER=organizer, ATTENDEE=attendee, UID=uid
    )
    found = _CALENDAR_RE.search(text)
    assert found is not None, name
    encoded = base64.encodebytes(found.group().encode()).decode().replace("\n", "\r\n").rstrip()
    return text.replace("@@B64@@", encoded).encode("utf-8")
