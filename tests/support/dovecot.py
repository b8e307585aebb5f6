"""A real Dovecot IMAP server on loopback, with mailboxes the test writes straight into Maildir.

::

    with DovecotServer() as server:
        user, password = server.new_user()
        server.seed(user, "INBOX", [b"Subject: hi\\r\\n\\r\\nhello\\r\\n"], flags=[{"\\\\Seen"}])
        account = server.account(user, security="ssl")   # a mailroom.imap.source.SourceAccount
        ...  # SourceSession.open(account, allow_private=True, ca_file=server.ca_file)

Dovecot runs unprivileged in its own temporary directory (config, sockets, logs, mail) and listens
on 127.0.0.1: ``port`` speaks plaintext and offers STARTTLS, ``ssl_port`` is TLS from the first
byte. Its certificate (for ``localhost`` and ``127.0.0.1``) is signed by a CA made for this server
alone: ``ca_file``. Users and plain passwords live in passwd-files, one per user. The namespace
marks ``Sent``, ``Drafts``, ``Trash``, ``Junk`` and ``Archive`` with their SPECIAL-USE attributes.
Messages are written as Maildir files (received date = file mtime, flags in the file name),
thousands per second; Dovecot assigns UIDs in file-name order, which is seed order. Messages
should use CRLF line ends: Dovecot serves bare LFs as CRLF.

The server is killed with its process group on ``stop()``, and dies with the test process even
if that is killed (PR_SET_PDEATHSIG). If Dovecot is not installed, starting fails and says to run
``make system-deps``: tests that need it fail rather than skip.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import grp
import ipaddress
import itertools
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailroom.imap.models import SourceAccount
from tests.support import ports
from tests.support.mail_corpus import hostile_messages, stdlib_messages

MISSING = (
    "Dovecot is not installed (no dovecot/doveadm on PATH or in /usr/sbin): "
    "run `make system-deps` (it installs dovecot-imapd), or `make test`"
)
MAILDIR_FLAGS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
_SIMPLE_NAME = re.compile(r"^[A-Za-z0-9 _\-/]+$")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class SeededMessage:
    folder: str
    raw: bytes
    flags: frozenset[str]
    internal_date: datetime


def _binary(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def _free_ports(count: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < count:
        port = ports.free_port()
        if port not in chosen:
            chosen.append(port)
    return chosen


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills Dovecot's master if pytest dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class DovecotServer:
    host = "127.0.0.1"

    def __init__(self, *, without_capabilities: Collection[str] = ()) -> None:
        """``without_capabilities``: capabilities the server must not announce once logged in
        (``STATUS=SIZE``, say), to test a client against a server that lacks them."""
        self._without = frozenset(c.upper() for c in without_capabilities)
        dovecot, doveadm = _binary("dovecot"), _binary("doveadm")
        if dovecot is None or doveadm is None:
            raise RuntimeError(MISSING)
        self._dovecot, self._doveadm = dovecot, doveadm
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
        self.root.chmod(0o755)  # mail processes run as another user when we are root
        self._mail_uid, self._mail_gid, self._login_user, self._internal_user, self._internal_group = (
            _identities()
        )
        (self.root / "home").mkdir()
        self._chown(self.root / "home")
        self.ca_file, self._cert_file, self._key_file = _write_pki(self.root / "pki")
        self.port = 0
        self.ssl_port = 0
        self._passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._files = itertools.count(1)
        self._users = itertools.count(1)
        self._paths: dict[tuple[str, str], Path] = {}
        (self.root / "passwd.d").mkdir(mode=0o755)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> DovecotServer:
        """Starts Dovecot and waits for its greeting. A free port found by probing can be taken
        before Dovecot binds it (tests run in parallel): then it retries on fresh ports."""
        failure = ""
        for _attempt in range(3):
            self.port, self.ssl_port = _free_ports(2)
            self._write_config()
            with (self.root / "stderr.log").open("wb") as stderr:
                self._process = subprocess.Popen(
                    [self._dovecot, "-F", "-c", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - it only calls prctl
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC"},
                )
            failure = self._wait_until_serving(self._process)
            if not failure:
                return self
            self._kill()
        raise RuntimeError(f"Dovecot did not start: {failure}")

    def stop(self) -> None:
        """Kills Dovecot (all its processes) and removes its directory."""
        self._kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        # Whatever the master left behind (it normally takes its children down with it).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait()

    def _wait_until_serving(self, process: subprocess.Popen[bytes]) -> str:
        """'' once Dovecot greets on ``port`` and accepts on ``ssl_port``; otherwise why not."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return f"exited with {process.returncode}: {self.log_tail()}"
            with contextlib.suppress(OSError):
                with socket.create_connection((self.host, self.port), timeout=1) as probe:
                    greeting = probe.recv(512)
                with socket.create_connection((self.host, self.ssl_port), timeout=1):
                    pass
                if greeting.startswith(b"* OK"):
                    return ""
            time.sleep(0.02)
        return f"no greeting within 15 s: {self.log_tail()}"

    def log_tail(self, size: int = 2000) -> str:
        """The end of Dovecot's log and stderr (for failure messages)."""
        parts = []
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-size:])
        return "\n".join(parts)

    # -- users and mail ---------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """A user who can log in with ``password`` (plain; no ':' or line breaks), from now on.

        Each user has a passwd-file of their own: Dovecot looks at a passwd-file's changes at most
        once a second, so a user added to a shared one could be refused for up to a second. (The
        same holds for changing an existing user's password.)
        """
        if any(char in value for value in (user, password) for char in ":\r\n\x00") or "/" in user:
            raise ValueError("users and passwords cannot hold ':', line breaks or NUL, nor users '/'")
        self._passwords[user] = password
        self._write_passwd_file(user)
        home = self.root / "home" / user
        home.mkdir(exist_ok=True)
        self._chown(home)

    def new_user(self, prefix: str = "user") -> tuple[str, str]:
        """A fresh user with a random password: (username, password)."""
        user = f"{prefix}{next(self._users)}@example.org"
        password = secrets.token_urlsafe(12)
        self.add_user(user, password)
        return user, password

    def password(self, user: str) -> str:
        return self._passwords[user]

    def account(self, user: str, *, security: str = "ssl", timeout_seconds: float = 10.0) -> SourceAccount:
        """How ``SourceSession`` reaches ``user``'s mail here (``ssl`` on ``ssl_port``, else ``port``)."""
        return SourceAccount(
            host=self.host,
            port=self.ssl_port if security == "ssl" else self.port,
            security=security,
            username=user,
            password=self._passwords[user],
            timeout_seconds=timeout_seconds,
        )

    def seed(
        self,
        user: str,
        folder: str,
        messages: Sequence[bytes],
        *,
        flags: Sequence[Collection[str]] | None = None,
        internal_dates: Sequence[datetime] | None = None,
    ) -> list[SeededMessage]:
        """Writes ``messages`` into ``folder`` (created, and subscribed, if new), in this order.

        ``flags`` and ``internal_dates`` give each message's IMAP flags (``\\Seen``, ``\\Flagged``,
        ``\\Answered``, ``\\Draft``, ``\\Deleted``) and received date (aware; whole seconds), one
        entry per message; by default none and now.
        """
        if flags is not None and len(flags) != len(messages):
            raise ValueError("flags needs one entry per message")
        if internal_dates is not None and len(internal_dates) != len(messages):
            raise ValueError("internal_dates needs one entry per message")
        directory = self.mailbox_path(user, folder)
        self._create_maildir(directory, is_inbox=folder.upper() == "INBOX")
        now = datetime.now(UTC).replace(microsecond=0)
        cur, pid, chown = str(directory / "cur"), os.getpid(), os.geteuid() == 0
        seeded: list[SeededMessage] = []
        for index, raw in enumerate(messages):
            message_flags = frozenset(flags[index]) if flags is not None else frozenset()
            unknown = message_flags - MAILDIR_FLAGS.keys()
            if unknown:
                raise ValueError(f"flags Maildir cannot store here: {sorted(unknown)}")
            when = internal_dates[index] if internal_dates is not None else now
            letters = "".join(sorted(MAILDIR_FLAGS[flag] for flag in message_flags))
            # S= is the size on disk, W= the size with CRLF line ends (what RFC822.SIZE reports).
            virtual_size = len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
            number = next(self._files)
            name = f"{number:010d}.M{number}P{pid}.mailroom,S={len(raw)},W={virtual_size}:2,{letters}"
            # Plain descriptors rather than pathlib: seeding thousands of messages is mostly syscalls.
            fd = os.open(os.path.join(cur, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                remaining = memoryview(raw)
                while remaining:
                    remaining = remaining[os.write(fd, remaining) :]
                os.utime(fd, (when.timestamp(), when.timestamp()))
                if chown:
                    os.fchown(fd, self._mail_uid, self._mail_gid)
            finally:
                os.close(fd)
            seeded.append(SeededMessage(folder, raw, message_flags, when))
        self._subscribe(user, directory)
        return seeded

    def mailbox_path(self, user: str, folder: str) -> Path:
        """The Maildir++ directory of ``folder`` (``Work/Projects`` -> ``.Work.Projects``).

        Names beyond plain ASCII are left to Dovecot to encode (``doveadm mailbox path``), so the
        modified UTF-7 the tests read back was written by Dovecot, not by the code under test.
        """
        maildir = self.root / "home" / user / "Maildir"
        if folder.upper() == "INBOX":
            return maildir
        key = (user, folder)
        if key not in self._paths:
            if _SIMPLE_NAME.match(folder):
                self._paths[key] = maildir / ("." + folder.replace("/", "."))
            else:
                self._paths[key] = Path(self.doveadm("mailbox", "path", "-u", user, folder).strip())
        return self._paths[key]

    def doveadm(self, *arguments: str) -> str:
        """Runs doveadm against this server; its output."""
        completed = subprocess.run(
            [self._doveadm, "-c", str(self.config_file), *arguments],
            capture_output=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC"},
            check=False,
            timeout=30,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(arguments)} failed: {completed.stderr.decode(errors='replace')}"
            )
        return completed.stdout.decode()

    def _create_maildir(self, directory: Path, *, is_inbox: bool) -> None:
        for path in (directory.parent, directory, directory / "cur", directory / "new", directory / "tmp"):
            if not path.exists():
                path.mkdir(mode=0o700)
                self._chown(path)
        if not is_inbox and not (directory / "maildirfolder").exists():
            (directory / "maildirfolder").touch()
            self._chown(directory / "maildirfolder")

    def _subscribe(self, user: str, directory: Path) -> None:
        """Adds the folder to Dovecot's subscriptions file (v2: mUTF-7 names, levels split by tabs)."""
        maildir = self.root / "home" / user / "Maildir"
        name = "INBOX" if directory == maildir else directory.name[1:].replace(".", "\t")
        path = maildir / "subscriptions"
        lines = path.read_text().split("\n") if path.exists() else ["V\t2", ""]
        if name not in lines[2:]:
            body = [line for line in lines[2:] if line]
            path.write_text("\n".join(["V\t2", "", *body, name]) + "\n")
            self._chown(path)

    # -- files ------------------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self._mail_uid, self._mail_gid)

    def _write_passwd_file(self, user: str) -> None:
        temporary = self.root / "passwd.d" / f".{user}.tmp"
        temporary.write_text(f"{user}:{{PLAIN}}{self._passwords[user]}::::::\n")
        temporary.chmod(0o644)
        temporary.replace(self.root / "passwd.d" / user)

    def _capability_line(self) -> str:
        if not self._without:
            return ""
        kept = [c for c in _POST_LOGIN_CAPABILITIES.split() if c.upper() not in self._without]
        return f"  imap_capability = {' '.join(kept)}\n"

    def _write_config(self) -> None:
        root = self.root
        self.config_file.write_text(f"""\
protocols = imap
listen = {self.host}
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailroom-dovecot-{self.port}
log_path = {root}/dovecot.log
default_login_user = {self._login_user}
default_internal_user = {self._internal_user}
default_internal_group = {self._internal_group}
first_valid_uid = {self._mail_uid}
first_valid_gid = {self._mail_gid}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
ssl = yes
ssl_cert = <{self._cert_file}
ssl_key = <{self._key_file}
mail_location = maildir:~/Maildir
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd.d/%u
}}
userdb {{
  driver = static
  args = uid={self._mail_uid} gid={self._mail_gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Archive {{
    special_use = \\Archive
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
{self._capability_line()}}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: after a failed login Dovecot delays every later login from the same IP (2 s,
  # 4 s... up to 15 s), and every test logs in from 127.0.0.1, some with wrong passwords on purpose.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth-worker {{
  user = $default_internal_user
}}
""")


_POST_LOGIN_CAPABILITIES = (  # what Dovecot 2.3.19 announces after login, read from it
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS "
    "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS "
    "LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS "
    "BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)


def _identities() -> tuple[int, int, str, str, str]:
    """(mail uid, mail gid, login user, internal user, internal group) to run Dovecot as.

    As a normal user everything runs as that user. As root, Dovecot refuses to run its login
    processes or anyone's mail as root: the dovenull and dovecot users its package creates do.
    """
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(os.getegid()).gr_name
        return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name, group
    try:
        internal = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError as exc:
        raise RuntimeError(MISSING + " (the dovecot and dovenull users are missing)") from exc
    return internal.pw_uid, internal.pw_gid, "dovenull", "dovecot", grp.getgrgid(internal.pw_gid).gr_name


def _write_pki(directory: Path) -> tuple[str, Path, Path]:
    """A CA and a server certificate for localhost and 127.0.0.1 signed by it: (ca, cert, key) files."""
    directory.mkdir(mode=0o700)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mailroom test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    directory.chmod(0o755)
    ca_file.chmod(0o644)
    cert_file.chmod(0o644)
    return str(ca_file), cert_file, key_file


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """One Dovecot per test process (so one per xdist worker); tests isolate by user (``new_user``)."""
    with DovecotServer() as server:
        yield server


# -- the standard corpus --------------------------------------------------------------------------

CORPUS_FOLDERS = ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Work/Projects", "Entwürfe", "Café ☕")
CORPUS_START = datetime(2024, 1, 1, 9, 30, tzinfo=UTC)
_CORPUS_HOSTILE = (
    "broken-base64",
    "unknown-charset",
    "encoded-newline-subject",
    "bad-encoded-words",
    "no-headers",
    "unterminated-multipart",
    "nesting-20",
    "parts-50",
)


def seed_standard_corpus(
    server: DovecotServer, user: str, count: int = 300
) -> dict[str, list[SeededMessage]]:
    """About ``count`` messages over ``CORPUS_FOLDERS``, by folder, in UID order.

    Besides plain messages: non-ASCII headers (encoded words and raw UTF-8), a ~2 MB attachment,
    messages without Message-ID, CPython's email test messages, and malformed ones (broken MIME
    boundaries and base64, unknown charsets, bad encoded words, no headers). Every message has
    CRLF line ends, so IMAP returns it byte for byte. Received dates run from ``CORPUS_START`` in
    steps of six hours, in seed order; every third message is \\Seen, every seventh \\Flagged,
    Drafts' are \\Draft.
    """
    specials = _special_messages()
    plain_count = max(count - len(specials), len(CORPUS_FOLDERS))
    by_folder: dict[str, list[bytes]] = {folder: [] for folder in CORPUS_FOLDERS}
    for folder, raw in specials:
        by_folder[folder].append(raw)
    for number in range(plain_count):
        folder = CORPUS_FOLDERS[number % len(CORPUS_FOLDERS)] if number % 3 else "INBOX"
        by_folder[folder].append(_plain_message(number, folder))
    seeded: dict[str, list[SeededMessage]] = {}
    position = 0
    for folder, messages in by_folder.items():
        flags: list[set[str]] = []
        dates: list[datetime] = []
        for _ in messages:
            message_flags = set()
            if position % 3 == 0 or folder == "Sent":
                message_flags.add("\\Seen")
            if position % 7 == 0:
                message_flags.add("\\Flagged")
            if folder == "Drafts":
                message_flags.add("\\Draft")
            flags.append(message_flags)
            dates.append(CORPUS_START + timedelta(hours=6 * position))
            position += 1
        seeded[folder] = server.seed(user, folder, messages, flags=flags, internal_dates=dates)
    return seeded


def crlf(raw: bytes) -> bytes:
    """``raw`` with every line ending as CRLF."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def _plain_message(number: int, folder: str) -> bytes:
    when = format_datetime(CORPUS_START + timedelta(minutes=number))
    return (
        f"From: Sender {number} <sender{number}@example.net>\r\n"
        f"To: owner@example.org\r\n"
        f"Subject: Message {number} in {folder}\r\n"
        f"Date: {when}\r\n"
        f"Message-ID: <corpus-{number}@example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"Hello, this is message {number} in {folder}.\r\n"
    ).encode()


def _special_messages() -> list[tuple[str, bytes]]:
    head = (
        "From: Jörg <joerg@example.de>\r\nTo: owner@example.org\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
    )
    non_ascii = [
        (
            "INBOX",
            b"From: =?iso-8859-1?q?J=F6rg_M=FCller?= <joerg@example.de>\r\nTo: owner@example.org\r\n"
            b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln_=E2=98=95?=\r\n"
            b"Message-ID: <encoded-words@example.de>\r\n\r\nHallo!\r\n",
        ),
        (
            "Entwürfe",
            (
                head + "Subject: Grüße aus Köln ☕ (raw UTF-8)\r\nMessage-ID: <raw-utf8@example.de>\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\nSchöne Grüße 😀\r\n"
            ).encode(),
        ),
        (
            "Café ☕",
            (head + "Subject: Latin-1 body\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n").encode()
            + b"Caf\xe9\r\n",
        ),
    ]
    no_message_id = [
        ("INBOX", b"From: a@example.net\r\nTo: owner@example.org\r\nSubject: no id %d\r\n\r\nbody\r\n" % n)
        for n in range(3)
    ]
    hostile = {name: raw for name, raw, _ in hostile_messages()}
    malformed = [("INBOX", hostile[name]) for name in _CORPUS_HOSTILE]
    malformed.append(("Junk", _broken_boundary()))
    stdlib = [("Work/Projects", crlf(raw)) for _, raw in stdlib_messages() if b"\x00" not in raw]
    return [*non_ascii, *no_message_id, *malformed, ("INBOX", large_message()), *stdlib]


def _broken_boundary() -> bytes:
    return (
        b"From: spam@example.com\r\nTo: owner@example.org\r\nSubject: boundary mismatch\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="declared"\r\n\r\n'
        b"--actual\r\nContent-Type: text/plain\r\n\r\nparts use another boundary\r\n--actual--\r\n"
    )


def large_message(size: int = 2 * 1024 * 1024) -> bytes:
    """A message with an attachment of about ``size`` bytes (base64, 76-column lines)."""
    payload = base64.b64encode(random.Random(7).randbytes(size * 3 // 4))
    lines = b"\r\n".join(payload[index : index + 76] for index in range(0, len(payload), 76))
    return (
        b"From: big@example.net\r\nTo: owner@example.org\r\nSubject: large attachment\r\n"
        b"Message-ID: <large@example.net>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big"\r\n\r\n'
        b"--big\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n\r\n' + lines + b"\r\n--big--\r\n"
    )
