"""HTML made safe to display: scripts, handlers and styles removed by nh3 (ammonia), and remote
content blocked — images and other resources may only come from the message itself (``cid:``) or
inline ``data:`` images; links stay clickable but open without referrer."""

from __future__ import annotations

import re

_REMOTE_SRC_RE = re.compile(
    r"""\s(src|srcset|background)\s*=\s*("|')\s*(https?:)?//[^"']*\2""", re.IGNORECASE
)


def sanitize_html(html: str) -> str:
    import nh3

    # Strip remote sources before nh3, so a blocked image keeps its alt text but fetches nothing.
    without_remote = _REMOTE_SRC_RE.sub(' data-blocked-src="remote"', html)
    return nh3.clean(
        without_remote,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
