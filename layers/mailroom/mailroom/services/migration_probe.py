"""How big a source account is, read within bounds: the test connection, the bulk preview and the
plan step ask it (docs/migrations.md, "Estimates").

Sizes: a folder's exact octets when the server offers STATUS=SIZE (RFC 8438: in the STATUS the
listing sends anyway, no extra command), else the RFC822.SIZE of a sample of its messages, spread
evenly over the folder (one EXAMINE and one FETCH per folder). The bounds:

* at most ``SAMPLE_MESSAGES`` sizes read per account, shared by the folders in proportion to their
  counts, and at most ``SAMPLE_FOLDERS`` folders opened (the largest; the others take the mean);
* at most ``SIZE_SECONDS`` for the sizes after the listing: what was read by then is used, and
  without any sample the sizes are the defaults (said by the basis);
* a bulk preview probes at most ``PREVIEW_ROWS`` rows (spread over the data), ``PREVIEW_PARALLEL``
  at a time, all within ``PREVIEW_SECONDS`` (the API function has 29 s); the other rows are
  taken as the mean of those probed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailroom.domain.migration_estimates import FolderSizes, SourceSize, sample_plan, source_size, spread
from mailroom.observability import logger

if TYPE_CHECKING:
    from mailroom.imap.source import SourceAccount, SourceFolder, SourceSession

SAMPLE_MESSAGES = 300
SAMPLE_FOLDERS = 10
SIZE_SECONDS = 5.0
PREVIEW_ROWS = 10
PREVIEW_PARALLEL = 5
PREVIEW_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Target:
    """A folder to size: its STATUS, and the UIDs to be imported when they are known (the plan
    step), else every message (sequence numbers)."""

    folder: SourceFolder
    uids: Sequence[int] | None = None

    @property
    def messages(self) -> int:
        return len(self.uids) if self.uids is not None else max(0, self.folder.messages)

    @property
    def exact(self) -> int | None:
        # STATUS SIZE covers the whole folder: it answers only when all of it is to be imported.
        return self.folder.size if self.uids is None or len(self.uids) == self.folder.messages else None


async def measure(
    session: SourceSession, targets: Sequence[Target], *, seconds: float = SIZE_SECONDS
) -> SourceSize:
    """The bytes of ``targets`` (module docstring); never raises for a server that will not say:
    a sizing failure or timeout keeps what was read so far."""
    from mailroom.imap.source import SourceError

    counts = [t.messages if t.exact is None else 0 for t in targets]
    opened = sorted((i for i, c in enumerate(counts) if c > 0), key=lambda i: -counts[i])[:SAMPLE_FOLDERS]
    plan = dict(zip(opened, sample_plan([counts[i] for i in opened], SAMPLE_MESSAGES), strict=True))
    sampled: dict[int, tuple[int, ...]] = {}

    async def read() -> None:
        for index in opened:
            target = targets[index]
            _uidvalidity, exists = await session.select(target.folder.raw_name)
            if target.uids is not None:
                ordered = sorted(target.uids)
                chosen = [ordered[p - 1] for p in spread(len(ordered), plan[index])]
                found = await session.sizes(chosen, by_uid=True)
            else:
                found = await session.sizes(spread(exists, plan[index]))
            sampled[index] = tuple(found.values())

    try:
        await asyncio.wait_for(read(), timeout=seconds)
    except TimeoutError:
        logger().info("source sizes: out of time", extra={"folders_sampled": len(sampled)})
    except SourceError as exc:
        logger().info(
            "source sizes: not all read", extra={"reason": exc.code, "folders_sampled": len(sampled)}
        )
    return source_size(
        [
            FolderSizes(target.messages, target.exact, sampled.get(index, ()))
            for index, target in enumerate(targets)
        ]
    )


def listed_targets(folders: Sequence[SourceFolder]) -> list[Target]:
    return [Target(folder) for folder in folders if folder.selectable]


async def probe_account(account: SourceAccount, *, deadline: float) -> SourceSize | None:
    """Log in, list, size (the test connection's reading, for a bulk row); None when the account
    cannot be read before ``deadline`` (``time.monotonic()``)."""
    from mailroom.imap.source import SourceError, open_session

    async def read() -> SourceSize:
        async with open_session(account) as session:
            folders = await session.folders()
            left = max(0.5, min(SIZE_SECONDS, deadline - time.monotonic()))
            return await measure(session, listed_targets(folders), seconds=left)

    try:
        return await asyncio.wait_for(read(), timeout=max(0.1, deadline - time.monotonic()))
    except (TimeoutError, SourceError) as exc:
        logger().info("bulk preview: source not probed", extra={"reason": getattr(exc, "code", "timeout")})
        return None


async def probe_accounts(accounts: Sequence[SourceAccount]) -> list[SourceSize | None]:
    """``probe_account`` for each, ``PREVIEW_PARALLEL`` at a time, all within ``PREVIEW_SECONDS``."""
    deadline = time.monotonic() + PREVIEW_SECONDS
    gate = asyncio.Semaphore(PREVIEW_PARALLEL)

    async def one(account: SourceAccount) -> SourceSize | None:
        async with gate:
            if time.monotonic() >= deadline:
                return None
            return await probe_account(account, deadline=deadline)

    return list(await asyncio.gather(*(one(account) for account in accounts)))
