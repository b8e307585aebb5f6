"""The IMAP source client against a real Dovecot, and against tiny fake servers for the failures a
healthy Dovecot does not produce (silence, no STARTTLS, a server that hangs up).

``dovecot_server`` is one Dovecot per test process (one per xdist worker) and every test works as
its own user, so these tests run in parallel under ``-n 2 --dist loadgroup`` without a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest

from mailroom.imap.errors import mask_username
from mailroom.imap.source import SourceAccount, SourceError, SourceFolder, SourceSession, open_session
from mailroom.loops import run_on_thread_loop
from mailroom.settings import get_settings
from tests.support.dovecot import DovecotServer, SeededMessage, seed_standard_corpus

T = TypeVar("T")
Corpus = tuple[str, dict[str, list[SeededMessage]]]


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return run_on_thread_loop(main())


async def open_as(server: DovecotServer, user: str, security: str = "ssl") -> SourceSession:
    return await SourceSession.open(
        server.account(user, security=security), allow_private=True, ca_file=server.ca_file
    )


def failure(opening: Awaitable[Any]) -> SourceError:
    with pytest.raises(SourceError) as caught:
        run(opening)
    return caught.value


@pytest.fixture(scope="module")
def corpus(dovecot_server: DovecotServer) -> Corpus:
    """The standard corpus for one user, shared by the tests that only read it."""
    user, _ = dovecot_server.new_user("corpus")
    return user, seed_standard_corpus(dovecot_server, user)


# -- folders, UIDs, messages ----------------------------------------------------------------------


def test_folders_have_counts_special_uses_and_decoded_names(
    dovecot_server: DovecotServer, corpus: Corpus
) -> None:
    user, seeded = corpus

    async def scenario() -> list[SourceFolder]:
        async with await open_as(dovecot_server, user) as session:
            return await session.folders()

    folders = run(scenario())
    by_name = {folder.name: folder for folder in folders}
    assert folders[0].name == "INBOX"
    assert set(by_name) == {*seeded, "Work"}
    for name, messages in seeded.items():
        assert by_name[name].messages == len(messages), name
        assert by_name[name].selectable
        assert isinstance(by_name[name].uidvalidity, int)
        assert by_name[name].delimiter == "/"
    assert {name: folder.special_use for name, folder in by_name.items()} == {
        "INBOX": "inbox",
        "Sent": "sent",
        "Drafts": "drafts",
        "Trash": "trash",
        "Junk": "spam",
        "Work": None,
        "Work/Projects": None,
        "Entwürfe": None,
        "Café ☕": None,
    }
    assert "\\Sent" in by_name["Sent"].attributes
    assert by_name["Entwürfe"].raw_name == "Entw&APw-rfe"  # as Dovecot itself encoded it
    assert by_name["Café ☕"].raw_name == "Caf&AOk- &JhU-"
    # "Work" only exists as the parent of Work/Projects.
    assert not by_name["Work"].selectable
    assert (by_name["Work"].messages, by_name["Work"].uidvalidity) == (0, None)


def test_fetch_in_chunks_returns_every_message_byte_for_byte(
    dovecot_server: DovecotServer, corpus: Corpus
) -> None:
    user, seeded = corpus

    async def scenario() -> dict[str, list[Any]]:
        fetched: dict[str, list[Any]] = {}
        async with await open_as(dovecot_server, user) as session:
            for folder in await session.folders():
                if folder.selectable:
                    _, exists = await session.select(folder.raw_name)
                    uids = await session.uids()
                    assert len(uids) == exists
                    fetched[folder.name] = [message async for message in session.fetch(uids, chunk_size=16)]
        return fetched

    fetched = run(scenario())
    assert set(fetched) == set(seeded)
    for name, expected in seeded.items():
        got = fetched[name]
        assert [message.raw for message in got] == [message.raw for message in expected], name
        assert [message.flags - {"\\Recent"} for message in got] == [message.flags for message in expected]
        assert [message.internal_date for message in got] == [message.internal_date for message in expected]
        assert all(message.size == len(message.raw) for message in got)
        assert [message.uid for message in got] == sorted(message.uid for message in got)
    assert max(len(message.raw) for message in fetched["INBOX"]) > 2_000_000


def test_folder_sizes_and_message_sizes_are_the_servers_octets(
    dovecot_server: DovecotServer, corpus: Corpus
) -> None:
    """STATUS=SIZE (Dovecot offers it) gives each folder's octets in the listing; RFC822.SIZE is read
    by sequence number or by UID, only for the numbers asked (a number past the end is left out)."""
    user, seeded = corpus

    async def scenario() -> tuple[list[SourceFolder], dict[int, int], dict[int, int], list[int]]:
        async with await open_as(dovecot_server, user) as session:
            assert "STATUS=SIZE" in session.capabilities
            folders = await session.folders()
            _, exists = await session.select("INBOX")
            by_number = await session.sizes([1, 3, exists])
            uids = await session.uids()
            by_uid = await session.sizes([uids[0], uids[-1], uids[-1] + 100], by_uid=True)
            return folders, by_number, by_uid, uids

    folders, by_number, by_uid, uids = run(scenario())
    by_name = {folder.name: folder for folder in folders}
    for name, messages in seeded.items():
        assert by_name[name].size == sum(len(m.raw) for m in messages), name
    assert by_name["Work"].size is None  # not selectable: no STATUS
    inbox = seeded["INBOX"]
    assert by_number == {1: len(inbox[0].raw), 3: len(inbox[2].raw), len(inbox): len(inbox[-1].raw)}
    assert by_uid == {uids[0]: len(inbox[0].raw), uids[-1]: len(inbox[-1].raw)}


def test_uids_since_a_date_are_those_received_that_day_or_later(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()
    days = [datetime(2024, 3, 1, 12, 0, tzinfo=UTC) + timedelta(days=n) for n in range(10)]
    messages = [b"Subject: day %d\r\n\r\nbody\r\n" % n for n in range(10)]
    dovecot_server.seed(user, "INBOX", messages, internal_dates=days)

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        async with await open_as(dovecot_server, user) as session:
            await session.select("INBOX")
            return (
                await session.uids(),
                await session.uids(date(2024, 3, 6)),
                await session.uids(date(2025, 1, 1)),
            )

    every, since, future = run(scenario())
    assert len(every) == 10
    assert since == every[5:]
    assert future == []


def test_fetch_skips_uids_the_folder_does_not_have(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()
    dovecot_server.seed(user, "INBOX", [b"Subject: %d\r\n\r\nbody\r\n" % n for n in range(3)])

    async def scenario() -> list[int]:
        async with await open_as(dovecot_server, user) as session:
            await session.select("INBOX")
            uids = await session.uids()
            return [message.uid async for message in session.fetch([*uids, 4000, 4001], chunk_size=2)]

    assert run(scenario()) == [1, 2, 3]


def test_one_fetch_of_many_small_messages_is_read_whole(dovecot_server: DovecotServer) -> None:
    # Upstream aioimaplib recurses once per response line within one network read: a FETCH of
    # this many small messages arriving together raised RecursionError and lost the connection.
    user, _ = dovecot_server.new_user()
    messages = [b"Subject: %d\r\n\r\nx\r\n" % n for n in range(2000)]
    dovecot_server.seed(user, "INBOX", messages)

    async def scenario() -> list[bytes]:
        async with await open_as(dovecot_server, user, security="none") as session:
            await session.select("INBOX")
            return [message.raw async for message in session.fetch(await session.uids(), chunk_size=2000)]

    assert run(scenario()) == messages


def test_folder_names_that_need_quoting_can_be_listed_and_opened(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()
    names = ['Say "hi"', "back\\slash", "Ordner mit Leerzeichen"]
    for name in names:
        dovecot_server.seed(user, name, [f"Subject: in {name}\r\n\r\nbody\r\n".encode()])

    async def scenario() -> dict[str, list[bytes]]:
        found: dict[str, list[bytes]] = {}
        async with await open_as(dovecot_server, user) as session:
            for folder in await session.folders():
                if folder.name in names:
                    await session.select(folder.raw_name)
                    found[folder.name] = [
                        message.raw async for message in session.fetch(await session.uids())
                    ]
        return found

    found = run(scenario())
    assert found == {name: [f"Subject: in {name}\r\n\r\nbody\r\n".encode()] for name in names}


def test_select_of_a_missing_folder_is_a_protocol_error(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()

    async def scenario() -> None:
        async with await open_as(dovecot_server, user) as session:
            await session.select("No such folder")

    assert failure(scenario()).code == "protocol_error"


# -- security modes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("security", "encrypted"), [("ssl", True), ("tls", True), ("none", False)])
def test_each_security_mode_logs_in(dovecot_server: DovecotServer, security: str, encrypted: bool) -> None:
    user, _ = dovecot_server.new_user()
    dovecot_server.seed(user, "INBOX", [b"Subject: hi\r\n\r\nbody\r\n"])

    async def scenario() -> tuple[str | None, int]:
        async with await open_as(dovecot_server, user, security=security) as session:
            folders = await session.folders()
            return session.tls_version, next(f.messages for f in folders if f.name == "INBOX")

    tls_version, inbox_count = run(scenario())
    assert (tls_version is not None) == encrypted
    assert inbox_count == 1


@pytest.mark.parametrize("security", ["ssl", "tls"])
def test_a_certificate_from_an_untrusted_ca_is_tls_failed(
    dovecot_server: DovecotServer, security: str
) -> None:
    user, _ = dovecot_server.new_user()
    error = failure(SourceSession.open(dovecot_server.account(user, security=security), allow_private=True))
    assert error.code == "tls_failed"
    assert "certificate" in str(error)


def test_implicit_tls_to_a_plaintext_port_is_tls_failed(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()
    account = dataclasses.replace(dovecot_server.account(user, security="ssl"), port=dovecot_server.port)
    error = failure(SourceSession.open(account, allow_private=True, ca_file=dovecot_server.ca_file))
    assert error.code == "tls_failed"


def test_starttls_is_required_for_security_tls() -> None:
    async def scenario() -> tuple[SourceError, list[str]]:
        async with fake_imap(capabilities="IMAP4rev1 AUTH=PLAIN") as server:
            with pytest.raises(SourceError) as caught:
                await SourceSession.open(server.account(security="tls"), allow_private=True)
            return caught.value, server.commands

    error, commands = run(scenario())
    assert error.code == "tls_failed"
    assert "STARTTLS" in str(error)
    assert not [command for command in commands if "LOGIN" in command.upper()]


def test_a_preauthenticated_plaintext_connection_is_refused_for_security_tls() -> None:
    async def scenario() -> SourceError:
        async with fake_imap(greeting="* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi") as server:
            with pytest.raises(SourceError) as caught:
                await SourceSession.open(server.account(security="tls"), allow_private=True)
            return caught.value

    assert run(scenario()).code == "tls_failed"


# -- failures -------------------------------------------------------------------------------------


def test_a_wrong_password_is_auth_failed_and_not_repeated(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()
    wrong = 'Not-the-Passw0rd "quoted" \\ back'
    account = dataclasses.replace(dovecot_server.account(user), password=wrong)
    error = failure(SourceSession.open(account, allow_private=True, ca_file=dovecot_server.ca_file))
    assert error.code == "auth_failed"
    assert f"refused the login for {mask_username(user)}" in str(error)
    assert wrong not in str(error)
    assert wrong not in repr(error)
    assert wrong not in repr(account)


def test_a_server_refusing_plaintext_logins_is_auth_failed_without_sending_the_password() -> None:
    async def scenario() -> tuple[SourceError, list[str]]:
        async with fake_imap(capabilities="IMAP4rev1 LOGINDISABLED") as server:
            with pytest.raises(SourceError) as caught:
                await SourceSession.open(server.account(security="none"), allow_private=True)
            return caught.value, server.commands

    error, commands = run(scenario())
    assert error.code == "auth_failed"
    assert not [command for command in commands if "secret" in command]


def test_a_closed_port_is_connection_failed(dovecot_server: DovecotServer) -> None:
    user, _ = dovecot_server.new_user()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    account = dataclasses.replace(dovecot_server.account(user), port=closed_port)
    assert failure(SourceSession.open(account, allow_private=True)).code == "connection_failed"


def test_a_server_that_never_greets_times_out() -> None:
    async def scenario() -> SourceError:
        async with fake_imap(greeting=None) as server:
            with pytest.raises(SourceError) as caught:
                await SourceSession.open(server.account(timeout_seconds=0.5), allow_private=True)
            return caught.value

    assert run(scenario()).code == "timeout"


def test_a_command_without_an_answer_times_out_and_ends_the_session() -> None:
    async def scenario() -> tuple[SourceError, SourceError]:
        async with fake_imap(silent_on=frozenset({"LIST"})) as server:
            session = await SourceSession.open(server.account(timeout_seconds=0.5), allow_private=True)
            with pytest.raises(SourceError) as first:
                await session.folders()
            with pytest.raises(SourceError) as second:
                await session.select("INBOX")
            await session.close()  # tolerant of the dropped connection
            return first.value, second.value

    first, second = run(scenario())
    assert first.code == "timeout"
    assert second.code == "connection_failed"


def test_a_cancelled_command_ends_the_session() -> None:
    async def scenario() -> SourceError:
        async with fake_imap(silent_on=frozenset({"LIST"})) as server:
            session = await SourceSession.open(server.account(timeout_seconds=30), allow_private=True)
            listing = asyncio.ensure_future(session.folders())
            await asyncio.wait_for(server.heard("LIST").wait(), 5)
            listing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listing
            with pytest.raises(SourceError) as caught:
                await session.select("INBOX")
            await session.close()
            return caught.value

    assert run(scenario()).code == "connection_failed"


def test_a_server_that_hangs_up_at_once_is_connection_failed() -> None:
    async def scenario() -> SourceError:
        async with fake_imap(greeting="* BYE Too many connections") as server:
            with pytest.raises(SourceError) as caught:
                await SourceSession.open(server.account(timeout_seconds=5), allow_private=True)
            return caught.value

    assert run(scenario()).code == "connection_failed"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_unless_private_addresses_are_allowed(host: str) -> None:
    async def scenario() -> tuple[SourceError, int, int]:
        async with fake_imap() as server:
            account = dataclasses.replace(server.account(), host=host)
            with pytest.raises(SourceError) as caught:
                await SourceSession.open(account)
            refused_connections = server.connections
            session = await SourceSession.open(account, allow_private=True)
            await session.close()
            return caught.value, refused_connections, server.connections

    error, before, after = run(scenario())
    assert error.code == "connection_failed"
    assert "loopback" in str(error)
    assert before == 0  # refused before connecting
    assert after == 1


def test_open_session_takes_private_access_and_the_ca_from_settings(
    dovecot_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, _ = dovecot_server.new_user()
    account = dovecot_server.account(user)

    async def scenario() -> str | None:
        async with open_session(account) as session:
            return session.tls_version

    monkeypatch.delenv("MAILROOM_IMAP_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("MAILROOM_IMAP_CA_FILE", raising=False)
    get_settings.cache_clear()
    try:
        assert failure(scenario()).code == "connection_failed"
        monkeypatch.setenv("MAILROOM_IMAP_ALLOW_PRIVATE", "1")
        monkeypatch.setenv("MAILROOM_IMAP_CA_FILE", dovecot_server.ca_file)
        get_settings.cache_clear()
        assert run(scenario()) is not None
    finally:
        get_settings.cache_clear()


# -- a scriptable fake IMAP server ----------------------------------------------------------------


@dataclasses.dataclass
class FakeImap:
    port: int
    commands: list[str] = dataclasses.field(default_factory=list)
    connections: int = 0
    verbs: dict[str, asyncio.Event] = dataclasses.field(default_factory=dict)

    def heard(self, verb: str) -> asyncio.Event:
        """Set once a command with this verb has arrived."""
        return self.verbs.setdefault(verb, asyncio.Event())

    def account(self, *, security: str = "none", timeout_seconds: float = 5.0) -> SourceAccount:
        return SourceAccount("127.0.0.1", self.port, security, "jane@example.com", "secret", timeout_seconds)


@contextlib.asynccontextmanager
async def fake_imap(
    *,
    greeting: str | None = "* OK fake IMAP ready",
    capabilities: str = "IMAP4rev1 AUTH=PLAIN",
    silent_on: frozenset[str] = frozenset(),
) -> AsyncIterator[FakeImap]:
    """A loopback IMAP server that greets (unless ``greeting`` is None), answers CAPABILITY with
    ``capabilities``, accepts any LOGIN, lists only INBOX, and never answers the commands in
    ``silent_on``."""
    fake = FakeImap(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fake.connections += 1
        try:
            if greeting is None:
                await reader.read()  # say nothing, until the client gives up
                return
            writer.write(greeting.encode() + b"\r\n")
            if greeting.startswith("* BYE"):
                return
            while line := await reader.readline():
                text = line.decode().strip()
                fake.commands.append(text)
                tag, _, command = text.partition(" ")
                verb = command.split(" ", 1)[0].upper()
                fake.heard(verb).set()
                if verb in silent_on:
                    continue
                if verb == "CAPABILITY":
                    writer.write(f"* CAPABILITY {capabilities}\r\n{tag} OK done\r\n".encode())
                elif verb == "LIST":
                    writer.write(f'* LIST () "/" INBOX\r\n{tag} OK done\r\n'.encode())
                elif verb == "LOGOUT":
                    writer.write(f"* BYE bye\r\n{tag} OK done\r\n".encode())
                    return
                else:
                    writer.write(f"{tag} OK done\r\n".encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake
