"""The AWS emulator called in-process by the local stack's own code, without a socket.

The functions and the stack's pollers run in the same process as moto's server, yet every AWS call
went through a TCP connection to it: werkzeug's development server closes the connection after each
response (``Connection: close``: it cannot drain a request body before reading the next request
line), so each call paid a connect, a server thread and an HTTP parse on both sides, and waited out
the server's 10 ms read of what the client might still send. About a third of a busy stack's CPU.

Here botocore hands a request addressed to the emulator straight to the emulator's WSGI app (the one
the server runs, change tracking included) from its ``before-send`` event, the way moto's own mock
answers requests; botocore still serialises, signs, parses and retries as it would over HTTP.
botocore runs every ``before-send`` handler and takes the first answer, so a handler that answers
before this one (fault injection, registered first) marks the request (``mark_answered``) and the
emulator never sees it: an injected fault must leave nothing done. Requests to any other address,
and every client in another process (tests, the CLI), still go over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_apps: dict[str, WsgiApp] = {}
_lock = threading.Lock()
_ANSWERED = "mailroom_answered"


def mark_answered(request: Any) -> None:
    """For a ``before-send`` handler that answers ``request`` itself: the emulator must not run it."""
    if request.context is not None:
        request.context[_ANSWERED] = True


def serve(url: str, app: WsgiApp) -> Callable[[], None]:
    """Answer requests to ``url`` (``http://host:port``) with ``app`` in every botocore session
    created from now on; returns the function that stops it (clients made before then fall back
    to HTTP)."""
    from botocore.handlers import BUILTIN_HANDLERS, REGISTER_LAST

    netloc = urlsplit(url).netloc
    with _lock:
        _apps[netloc] = app
        if not any(spec[1] is _dispatch for spec in BUILTIN_HANDLERS):
            BUILTIN_HANDLERS.append(("before-send", _dispatch, REGISTER_LAST))

    def stop() -> None:
        with _lock:
            if _apps.get(netloc) is app:
                del _apps[netloc]

    return stop


def _body(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    data = body.read()  # a stream (an upload, aws-chunked): botocore rewinds it before a retry
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _dispatch(request: Any, **_: Any) -> Any:
    """botocore's ``before-send`` handler: the emulator's response, or None (send over HTTP)."""
    parts = urlsplit(request.url)
    app = _apps.get(parts.netloc)
    if app is None or (request.context or {}).get(_ANSWERED):
        return None
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders
    from moto.core.botocore_stubber import MockRawResponse
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    headers = {
        name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in request.headers.items()
    }
    builder = EnvironBuilder(
        path=parts.path or "/",
        base_url=f"{parts.scheme}://{parts.netloc}",
        query_string=parts.query,
        method=request.method,
        headers=headers,
        data=_body(request),
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    chunks, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    body = b"".join(chunks)
    answer = HTTPHeaders()
    for name, value in response_headers.items():
        answer[name] = value
    return AWSResponse(request.url, int(status.split(" ", 1)[0]), answer, MockRawResponse(body))
