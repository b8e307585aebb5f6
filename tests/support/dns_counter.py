"""A UDP forwarder in front of the test's authoritative DNS server that counts the questions it is
asked: what a test reads to see how often the code under test really asked DNS (not what the code
says it asked)."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.query


class CountingDns:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.asked: Counter[tuple[str, str]] = Counter()  # (name without the final dot, type)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-counter", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            for question in query.question:
                self.asked[
                    (
                        question.name.to_text(omit_final_dot=True).lower(),
                        dns.rdatatype.to_text(question.rdtype),
                    )
                ] += 1
            answer = dns.query.udp(query, "127.0.0.1", port=self.upstream_port, timeout=2)
            self._socket.sendto(answer.to_wire(), client)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@contextmanager
def counting_dns(upstream_port: int) -> Iterator[CountingDns]:
    counter = CountingDns(upstream_port)
    counter.start()
    try:
        yield counter
    finally:
        counter.stop()
