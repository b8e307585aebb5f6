"""A small Cloudflare API v4 on loopback, for tests only: the endpoints Mailroom uses, shaped as
Cloudflare's published schema has them (the ``{success, errors, messages, result, result_info}``
envelope; zones; DNS records with ``id``, ``name`` as a full name, ``content``, ``priority`` for MX,
``ttl``, ``proxiable``, ``meta``, ``created_on``...), driven through the real ``cloudflare`` SDK by
pointing its ``base_url`` here.

Requests are checked like Cloudflare checks them: a bearer token it knows, active, allowed on the
zone; a record body with only the fields Cloudflare takes, each of its type and range (an MX
needs a priority, a TTL is 1 for automatic or 30..86400); an identical record is refused with
Cloudflare's code 81058. Every request is recorded (``requests``) for tests to read.

    with CloudflareApi() as api:
        token = api.add_token(zones=[zone_id])
        ...  MAILROOM_CLOUDFLARE_API_URL=api.base_url
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

RECORD_FIELDS = frozenset(
    {"name", "type", "content", "ttl", "priority", "proxied", "comment", "tags", "settings"}
)
RECORD_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "TXT", "NS", "CAA", "SRV"})
PREFIX = "/client/v4"
STAMP = "2026-01-01T00:00:00.000000Z"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0
    response: Any = None  # the JSON answered


@dataclass
class CloudflareApi:
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    history: list[Seen] = field(default_factory=list)  # every request, for checks at the end (never cleared)
    # Failures to answer: (method, path suffix, status, Cloudflare error code, matching requests to
    # let through first), each consumed once (an outage in the middle of an apply).
    failures: list[list[Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: http.server.ThreadingHTTPServer | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # --- the test's side --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"

    def add_zone(self, name: str, *, status: str = "active") -> str:
        zone_id = uuid.uuid4().hex
        self.zones[zone_id] = {"name": name, "status": status, "records": {}}
        return zone_id

    def add_token(self, *, zones: list[str] | None = None, status: str = "active") -> str:
        """A token (40 characters, as Cloudflare's) allowed on ``zones`` (every zone when None)."""
        token = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        self.tokens[token] = {"id": uuid.uuid4().hex, "status": status, "zones": zones}
        return token

    def add_record(
        self, zone_id: str, type_: str, name: str, content: str, *, priority: int | None = None
    ) -> str:
        body: dict[str, Any] = {"type": type_, "name": name, "content": content, "ttl": 1}
        if priority is not None:
            body["priority"] = priority
        return str(self._create(zone_id, body)["id"])

    def records(self, zone_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.zones[zone_id]["records"].values()]

    def delete_record(self, zone_id: str, record_id: str) -> None:
        with self._lock:
            del self.zones[zone_id]["records"][record_id]

    def fail_next(
        self,
        method: str,
        path_suffix: str,
        *,
        status: int = 500,
        code: int = 10001,
        skip: int = 0,
        times: int = 1,
    ) -> None:
        """Answer the matching requests after the next ``skip`` ones with an error, ``times`` times."""
        with self._lock:
            self.failures.append([method, path_suffix, status, code, skip, times])

    def __enter__(self) -> CloudflareApi:
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                seen = Seen(self.command, split.path, parse_qs(split.query), json.loads(raw) if raw else None)
                status, payload = api._answer(seen, self.headers.get("authorization", ""))
                seen.status, seen.response = status, payload
                with api._lock:
                    api.requests.append(seen)
                    api.history.append(seen)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- Cloudflare's side -----------------------------------------------------------------------

    def _answer(self, seen: Seen, authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            for failure in self.failures:
                method, suffix, status, code, skip, _times = failure
                if seen.method != method or not seen.path.endswith(suffix):
                    continue
                if skip:
                    failure[4] -= 1
                    break
                failure[5] -= 1
                if failure[5] == 0:
                    self.failures.remove(failure)
                return _error(status, code, "Internal error")
        if not seen.path.startswith(PREFIX):
            return _error(404, 7003, "Could not route to " + seen.path)
        path = seen.path[len(PREFIX) :].rstrip("/")
        token = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if path == "/user/tokens/verify" and seen.method == "GET":
            if token is None:
                return _error(401, 1000, "Invalid API Token")
            result = {"id": token["id"], "status": token["status"]}  # no expires_on, not_before: none set
            return 200, _ok(result)
        if token is None or token["status"] != "active":
            return _error(403, 9109, "Invalid access token")
        parts = path.strip("/").split("/")
        if parts == ["zones"] and seen.method == "GET":
            return self._list_zones(seen, token)
        if len(parts) < 2 or parts[0] != "zones" or parts[1] not in self.zones:
            return _error(404, 7003, "Could not route to " + seen.path)
        zone_id = parts[1]
        if token["zones"] is not None and zone_id not in token["zones"]:
            return _error(403, 10000, "Authentication error")
        if len(parts) == 2 and seen.method == "GET":
            return 200, _ok(self._zone(zone_id))
        if parts[2:] == ["dns_records"]:
            if seen.method == "GET":
                return self._list_records(zone_id, seen)
            if seen.method == "POST":
                return self._validated(zone_id, seen.body, lambda body: self._create(zone_id, body))
        if len(parts) == 4 and parts[2] == "dns_records":
            record = self.zones[zone_id]["records"].get(parts[3])
            if record is None:
                return _error(404, 81044, "Record does not exist.")
            if seen.method == "PATCH":
                return self._validated(
                    zone_id, seen.body, lambda body: self._patch(zone_id, parts[3], body), partial=True
                )
            if seen.method == "DELETE":
                with self._lock:
                    del self.zones[zone_id]["records"][parts[3]]
                return 200, _ok({"id": parts[3]})
        return _error(405, 10000, "Method not allowed")

    def _zone(self, zone_id: str) -> dict[str, Any]:
        zone = self.zones[zone_id]
        return {
            "id": zone_id,
            "name": zone["name"],
            "status": zone["status"],
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None,
            "original_registrar": None,
            "original_dnshost": None,
            "created_on": STAMP,
            "modified_on": STAMP,
            "activated_on": STAMP,
            "meta": {
                "step": 2,
                "custom_certificate_quota": 0,
                "page_rule_quota": 3,
                "phishing_detected": False,
            },
            "owner": {"id": "7c5dae5552338874e5053f2534d2767a", "type": "user", "email": "owner@example.com"},
            "account": {"id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "Test account"},
            "permissions": ["#zone:read", "#dns_records:edit"],
            "plan": {
                "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "name": "Free Website",
                "price": 0,
                "currency": "USD",
            },
        }

    def _list_zones(self, seen: Seen, token: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = (seen.query.get("name") or [None])[0]
        visible = [
            self._zone(z)
            for z in sorted(self.zones, key=lambda z: self.zones[z]["name"])
            if (token["zones"] is None or z in token["zones"])
            and (name is None or self.zones[z]["name"] == name)
        ]
        return _paged(visible, seen)

    def _list_records(self, zone_id: str, seen: Seen) -> tuple[int, dict[str, Any]]:
        exact = (seen.query.get("name.exact") or seen.query.get("name") or [None])[0]
        type_ = (seen.query.get("type") or [None])[0]
        with self._lock:
            records = [
                dict(r)
                for r in self.zones[zone_id]["records"].values()
                if (exact is None or r["name"] == exact.lower()) and (type_ is None or r["type"] == type_)
            ]
        return _paged(sorted(records, key=lambda r: (r["type"], r["name"], r["content"])), seen)

    def _validated(
        self, zone_id: str, body: Any, then: Any, *, partial: bool = False
    ) -> tuple[int, dict[str, Any]]:
        problem = _check_body(body, partial=partial)
        if problem:
            return _error(400, 1004, f"DNS Validation Error: {problem}")
        try:
            return 200, _ok(then(body))
        except ValueError as exists:
            return _error(400, 81058, str(exists))

    def _full_name(self, zone_id: str, name: str) -> str:
        zone = self.zones[zone_id]["name"]
        name = name.rstrip(".").lower()
        if name in ("@", ""):
            return zone
        return name if name == zone or name.endswith("." + zone) else f"{name}.{zone}"

    def _create(self, zone_id: str, body: dict[str, Any]) -> dict[str, Any]:
        record_id = uuid.uuid4().hex
        record = {
            "id": record_id,
            "name": self._full_name(zone_id, body["name"]),
            "type": body["type"],
            "content": body["content"],
            "proxiable": False,
            "proxied": False,
            "ttl": body.get("ttl", 1),
            "settings": {},
            "meta": {},
            "tags": body.get("tags", []),
            "created_on": STAMP,
            "modified_on": STAMP,
        }
        if body.get("comment") is not None:  # a string when there is one (the schema has no null)
            record["comment"] = body["comment"]
        if body["type"] == "MX":
            record["priority"] = body["priority"]
        with self._lock:
            records = self.zones[zone_id]["records"]
            if any(_same(r, record) for r in records.values()):
                raise ValueError("An identical record already exists.")
            records[record_id] = record
        return dict(record)

    def _patch(self, zone_id: str, record_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record = self.zones[zone_id]["records"][record_id]
            changed = {**record, **{k: v for k, v in body.items() if k in RECORD_FIELDS}}
            changed["name"] = self._full_name(zone_id, changed["name"])
            if any(
                _same(r, changed) for rid, r in self.zones[zone_id]["records"].items() if rid != record_id
            ):
                raise ValueError("An identical record already exists.")
            self.zones[zone_id]["records"][record_id] = changed
            return dict(changed)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("type", "name", "content", "priority")
    return all(a.get(k) == b.get(k) for k in keys)


def _check_body(body: Any, *, partial: bool) -> str:
    """What Cloudflare would refuse in a record body ("" when nothing)."""
    if not isinstance(body, dict):
        return "Request body is not a JSON object"
    unknown = set(body) - RECORD_FIELDS
    if unknown:
        return f"Unknown fields: {sorted(unknown)}"
    required = () if partial else ("type", "name", "content", "ttl")
    missing = [k for k in required if k not in body]
    if missing:
        return f"Missing fields: {missing}"
    if "type" in body and body["type"] not in RECORD_TYPES:
        return "Invalid record type"
    for text in ("name", "content", "comment"):
        if text in body and body[text] is not None and not isinstance(body[text], str):
            return f"{text} must be a string"
    ttl = body.get("ttl", 1)
    if not isinstance(ttl, int) or not (ttl == 1 or 30 <= ttl <= 86400):
        return "TTL must be between 30 and 86400 seconds, or 1 for Automatic"
    if body.get("type") == "MX":
        priority = body.get("priority")
        if not isinstance(priority, int) or not 0 <= priority <= 65535:
            return "MX records require a priority between 0 and 65535"
    if body.get("type") == "TXT" and len(body.get("content") or "") > 2048:
        return "TXT content is over 2048 characters"
    if len(body.get("comment") or "") > 100:
        return "Comment is over 100 characters"
    return ""


def _ok(result: Any, result_info: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        payload["result_info"] = result_info
    return payload


def _paged(items: list[dict[str, Any]], seen: Seen) -> tuple[int, dict[str, Any]]:
    page = int((seen.query.get("page") or ["1"])[0])
    per_page = int((seen.query.get("per_page") or ["20"])[0])
    chunk = items[(page - 1) * per_page : page * per_page]
    total_pages = max(1, -(-len(items) // per_page))
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": total_pages,
    }
    return 200, _ok(chunk, info)


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
