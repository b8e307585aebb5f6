"""aioimaplib's protocol as Mailroom runs it, fed bytes directly: big responses arriving in one read,
responses cut at any byte, and what happens to a connection whose data cannot be parsed."""

import asyncio
import random
from typing import Any

import aioimaplib

from mailroom.imap.protocol import ImapProtocol
from mailroom.imap.response import fetched_message, parse_fetch, parse_list
from mailroom.loops import run_on_thread_loop


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def started(
    command: Any, state: str
) -> tuple[ImapProtocol, FakeTransport, "asyncio.Future[Any]", bytes]:
    """A protocol in ``state`` that has sent ``command(protocol)``: (protocol, transport, result, tag)."""
    protocol = ImapProtocol(asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.state = state
    result = asyncio.ensure_future(command(protocol))
    await asyncio.sleep(0)
    tag = transport.written[-1].split(b" ", 1)[0]
    return protocol, transport, result, tag


def test_a_list_of_thousands_of_folders_in_one_read() -> None:
    # Upstream recurses once per line of a read: this raised RecursionError in data_received.
    async def scenario() -> list[str]:
        protocol, _, result, tag = await started(
            lambda p: p.simple_command("LIST", '""', '"*"'), aioimaplib.AUTH
        )
        data = b"".join(b'* LIST (\\HasNoChildren) "/" "Folder %d"\r\n' % n for n in range(5000))
        # Upstream also removed every "* " in an untagged line, not only the leading one.
        data += b'* LIST () "/" "*** Urgent * now"\r\n' + tag + b" OK List completed.\r\n"
        protocol.data_received(data)
        response = await asyncio.wait_for(result, 5)
        return [entry.raw_name for entry in parse_list(response.lines)]

    names = run_on_thread_loop(scenario())
    assert len(names) == 5001
    assert names[:2] == ["Folder 0", "Folder 1"]
    assert names[-1] == "*** Urgent * now"


def test_a_fetch_response_cut_at_random_bytes_is_read_whole() -> None:
    bodies = [
        b"Subject: %d\r\n\r\n(body with a ) parenthesis\r\n* 1 FETCH (looks like a line\r\n" % n
        for n in range(50)
    ]
    bodies.append(b"")  # an empty literal

    async def scenario() -> list[bytes]:
        protocol, _, result, tag = await started(
            lambda p: p.uid_fetch("1:51", "(UID BODY.PEEK[])", inactivity_limit=5), aioimaplib.SELECTED
        )
        data = b"".join(
            b"* %d FETCH (UID %d FLAGS (\\Seen) BODY[] {%d}\r\n" % (n + 1, n + 1, len(body)) + body + b")\r\n"
            for n, body in enumerate(bodies)
        )
        data += tag + b" OK Fetch completed.\r\n"
        rng = random.Random(8)
        position = 0
        while position < len(data):
            step = rng.randint(1, 40)
            protocol.data_received(data[position : position + step])
            position += step
        response = await asyncio.wait_for(result, 5)
        items, problems = parse_fetch(response.lines)
        assert problems == []
        messages = [fetched_message(item) for item in items]
        return [message.raw for message in messages if message is not None]

    assert run_on_thread_loop(scenario()) == bodies


def test_data_that_cannot_be_parsed_ends_the_connection_and_is_remembered() -> None:
    async def scenario() -> tuple[ImapProtocol, FakeTransport]:
        protocol, transport, result, _ = await started(lambda p: p.simple_command("NOOP"), aioimaplib.AUTH)
        protocol.data_received(b"ZZZZ1 OK a completion for a command nobody sent\r\n")
        result.cancel()
        return protocol, transport

    protocol, transport = run_on_thread_loop(scenario())
    assert transport.aborted
    assert protocol.closed.done()
    assert isinstance(protocol.failure, aioimaplib.Abort)
