"""A real authoritative DNS server (Debian's nsd) on loopback, serving zones the test writes."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rdatatype

from tests.support import ports


@dataclass(frozen=True)
class ZoneRecord:
    name: str  # fully qualified, without the trailing dot
    type: str  # MX or TXT (or A, CNAME...)
    value: str
    priority: int | None = None

    def line(self) -> str:
        if self.type == "TXT":
            # Long TXT values are split into 255-byte strings, as DNS requires.
            chunks = [self.value[i : i + 255] for i in range(0, len(self.value), 255)] or [""]
            rdata = " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
        elif self.type == "MX":
            rdata = f"{self.priority if self.priority is not None else 10} {self.value}."
        else:
            rdata = self.value
        return f"{self.name}. 60 IN {self.type} {rdata}"


def free_udp_port() -> int:
    """nsd binds the port for UDP and TCP both."""
    return ports.free_port(udp=True)


class AuthoritativeDns:
    """nsd serving one zone on 127.0.0.1:<port>; ``serve(records)`` replaces the zone's content."""

    def __init__(self, workdir: Path, zone: str) -> None:
        if shutil.which("nsd") is None:
            raise RuntimeError("nsd is not installed (make test installs it)")
        self.workdir = workdir
        self.zone = zone
        self.port = free_udp_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._serial = int(time.time())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write(self, records: Iterable[ZoneRecord]) -> None:
        self._serial += 1
        zone_lines = [
            f"$ORIGIN {self.zone}.",
            "$TTL 60",
            f"@ IN SOA ns1.{self.zone}. hostmaster.{self.zone}. ({self._serial} 3600 600 86400 60)",
            f"@ IN NS ns1.{self.zone}.",
            "ns1 IN A 127.0.0.1",
            *(r.line() for r in records),
        ]
        (self.workdir / "zone.db").write_text("\n".join(zone_lines) + "\n")
        (self.workdir / "nsd.conf").write_text(
            "\n".join(
                [
                    "server:",
                    f"  ip-address: 127.0.0.1@{self.port}",
                    "  do-ip6: no",
                    '  username: ""',
                    '  chroot: ""',
                    f'  zonesdir: "{self.workdir}"',
                    f'  pidfile: "{self.workdir}/nsd.pid"',
                    f'  xfrdfile: "{self.workdir}/xfrd.state"',
                    f'  zonelistfile: "{self.workdir}/zone.list"',
                    f'  logfile: "{self.workdir}/nsd.log"',
                    '  database: ""',
                    "  server-count: 1",
                    "  verbosity: 1",
                    "remote-control:",
                    "  control-enable: no",
                    "zone:",
                    f"  name: {self.zone}",
                    "  zonefile: zone.db",
                ]
            )
            + "\n"
        )

    def serve(self, records: Iterable[ZoneRecord]) -> None:
        """(Re)start nsd with exactly these records and wait until it answers with the new serial.

        A free port found by probing can be taken by another process before nsd binds it (tests
        run in parallel): if nsd exits at start, it is retried on a fresh port.
        """
        zone_records = list(records)
        failure = ""
        for _attempt in range(3):
            self.stop()
            self._write(zone_records)
            process = subprocess.Popen(
                ["nsd", "-d", "-c", str(self.workdir / "nsd.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            self._process = process
            failure = self._wait_until_serving(process)
            if not failure:
                return
            self.port = free_udp_port()
        raise RuntimeError(f"nsd did not start: {failure}")

    def _wait_until_serving(self, process: subprocess.Popen[bytes]) -> str:
        """'' once nsd answers with the current serial; otherwise why it did not."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log_file = self.workdir / "nsd.log"
                log = log_file.read_text() if log_file.exists() else ""
                return f"exited: {process.stderr.read().decode() if process.stderr else ''} {log[-500:]}"
            with contextlib.suppress(Exception):
                query = dns.message.make_query(self.zone, dns.rdatatype.SOA)
                answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
                if answer.answer and answer.answer[0][0].serial == self._serial:
                    return ""
            time.sleep(0.05)
        return "no answer within 30 s"

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


@contextlib.contextmanager
def authoritative_dns(workdir: Path, zone: str) -> Iterator[AuthoritativeDns]:
    server = AuthoritativeDns(workdir, zone)
    try:
        yield server
    finally:
        server.stop()


def records_from_requirements(records: Iterable[dict[str, Any]]) -> list[ZoneRecord]:
    """A zone built from the API's dns-requirements response."""
    return [
        ZoneRecord(
            name=str(r["name"]),
            type=str(r["type"]),
            value=str(r["value"]),
            priority=int(r["priority"]) if r.get("priority") is not None else None,
        )
        for r in records
    ]
