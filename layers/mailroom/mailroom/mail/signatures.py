"""An identity's signature in a message's bodies: once, above any quoted message.

Text: after the RFC 3676 delimiter ``-- `` (dash, dash, space), which mail clients recognise to
strip signatures when quoting. HTML: in a ``<div class="mailroom-signature">``. The signature is
placed above the quoted original of a reply (the attribution line ``On ..., ... wrote:`` that
``mail.quoting`` writes, or the first ``<blockquote``) and at the end otherwise. It is not added
again when the body's own (unquoted) part already carries it: a draft edited and saved again, or
a reply to a message that carried the same signature in its quote (that one stays, quoted).
"""

from __future__ import annotations

import re

TEXT_DELIMITER = "-- "
HTML_CLASS = "mailroom-signature"
_ATTRIBUTION_RE = re.compile(r"^On .*wrote:\s*$")
_BLOCKQUOTE_RE = re.compile(r"<blockquote\b", re.IGNORECASE)
_QUOTED_HTML_RE = re.compile(r"<blockquote\b.*?</blockquote\s*>", re.IGNORECASE | re.DOTALL)
_BODY_END_RE = re.compile(r"</body\s*>", re.IGNORECASE)
_ATTRIBUTION_HTML_RE = re.compile(r"(?:<br>)*<div>[^<]*wrote:</div>\s*$", re.IGNORECASE)


def _text_split(text: str) -> tuple[str, str]:
    """(what the sender wrote, the quoted original with its attribution line)."""
    lines = text.split("\n")
    for position, line in enumerate(lines):
        if not line.startswith(">"):
            continue
        start = position
        while start > 0 and not lines[start - 1].strip():
            start -= 1
        if start > 0 and _ATTRIBUTION_RE.match(lines[start - 1].strip()):
            start -= 1
            while start > 0 and not lines[start - 1].strip():
                start -= 1
        return "\n".join(lines[:start]), "\n".join(lines[start:])
    return text, ""


def with_text_signature(text: str, signature: str) -> str:
    signature = signature.strip("\n")
    if not signature:
        return text
    own, quoted = _text_split(text)
    block = f"{TEXT_DELIMITER}\n{signature}"
    if block in own:
        return text
    own = own.rstrip("\n")
    signed = f"{own}\n\n{block}\n" if own else f"{block}\n"
    return signed + ("\n" + quoted.lstrip("\n") if quoted else "")


def with_html_signature(html: str, signature: str) -> str:
    if not signature.strip():
        return html
    unquoted = _QUOTED_HTML_RE.sub("", html)
    if f'class="{HTML_CLASS}"' in unquoted:
        return html
    block = f'<div class="{HTML_CLASS}">{signature}</div>'
    quote = _BLOCKQUOTE_RE.search(html)
    if quote is not None:
        before = html[: quote.start()]
        attribution = _ATTRIBUTION_HTML_RE.search(before)
        at = attribution.start() if attribution else quote.start()
        return html[:at] + block + html[at:]
    end = _BODY_END_RE.search(html)
    if end is not None:
        return html[: end.start()] + block + html[end.start() :]
    return html + block


def signed(
    text: str | None, html: str | None, *, text_signature: str | None, html_signature: str | None
) -> tuple[str | None, str | None]:
    """The bodies with the signature: the text one in the text body, the HTML one (or else the
    text one, escaped) in the HTML body. A message without a text body gets no text part for it."""
    import html as html_lib

    if text is not None and text_signature:
        text = with_text_signature(text, text_signature)
    if html is not None:
        if html_signature:
            html = with_html_signature(html, html_signature)
        elif text_signature:
            html = with_html_signature(html, html_lib.escape(text_signature).replace("\n", "<br>"))
    return text, html
