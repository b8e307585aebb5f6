"""Real-time events: SMTP accept → WebSocket frame, against SMTP accept → webhook POST, same run.

The local stack (``python -m local``) runs as a subprocess on free ports with its state in a
temporary folder. One organization has a mailbox, a webhook for ``message.received`` pointing at a
loopback receiver (``tests.support.webhooks``, a threaded HTTP server answering 204), and
``--connections`` WebSocket connections (default 100, the ``websockets`` asyncio client), each
subscribed to ``message.received`` for that mailbox. Every message therefore becomes one event that
the stream consumer fans out to 100 connections (``PostToConnection`` through the local management
API) and to the webhook (SQS → the delivery function → POST).

* **Latency**: ``--messages`` messages, one at a time, each sent over SMTP (the clock starts when
  the listener has answered the DATA, i.e. accepted the message); measured per message: the first
  and the last of the connections to get its frame, and the webhook receiver getting its POST.
  Printed: median and 90th percentile, and the ratio of the WebSocket path to the webhook path.
* **Throughput**: ``--burst`` messages sent back to back over one SMTP session; measured: the time
  until every connection has every frame (frames/s, events/s) and until the receiver has every POST
  (deliveries/s).

Both paths share everything up to the stream consumer (SMTP, the receipt rule's S3 write, the
inbound function, the event's transaction, the DynamoDB stream); the difference is the push itself
against the queue hop and the delivery function. Every frame and POST is checked to carry the
event id of the other path (one event, two channels). The local stack polls its queues and streams
and runs AWS in moto on the same 2 cores, so the absolute figures are the emulation's; the ratio is
the claim. Nothing is asserted beyond completeness (a round with a missing frame fails the bench).

    python -m bench.events [--connections N] [--messages M] [--burst B]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import smtplib
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

DEFAULT_CONNECTIONS = 100
DEFAULT_MESSAGES = 20
DEFAULT_BURST = 50
WAIT_SECONDS = 60.0  # for one message (latency) or the whole burst
POLL_SECONDS = 0.005  # how often the webhook receiver's list is looked at


class BenchError(RuntimeError):
    pass


@dataclass
class Frames:
    """What the connections got: subject → (connection index → arrival time, event id)."""

    expected_connections: int
    by_subject: dict[str, dict[int, tuple[float, str]]] = field(default_factory=lambda: defaultdict(dict))
    complete: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))

    def got(self, connection: int, frame: dict[str, Any]) -> None:
        subject = str(frame["data"].get("subject"))
        arrivals = self.by_subject[subject]
        if connection in arrivals:
            raise BenchError(f"connection {connection} got {subject!r} twice")
        arrivals[connection] = (time.time(), str(frame["event_id"]))
        if len(arrivals) == self.expected_connections:
            self.complete[subject].set()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _message(to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bench <bench@example.net>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    message.set_content("hello\n")
    return message


def send_mail(smtp_port: int, to: str, subjects: list[str]) -> list[float]:
    """Send one message per subject over one SMTP session; the time each was accepted."""
    accepted = []
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as smtp:
        for subject in subjects:
            smtp.send_message(_message(to, subject))
            accepted.append(time.time())
    return accepted


def provision(api_url: str, admin_token: str, hook_url: str) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as http:

        def post(path: str, body: dict[str, Any]) -> Any:
            response = http.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
            if response.status_code != 201:
                raise BenchError(f"POST {path}: {response.status_code} {response.text[:300]}")
            return response.json()["data"]

        domain = post("/api/v1/domains", {"domain": "bench-events.example.com"})
        mailbox = post(
            "/api/v1/mailboxes",
            {"local_part": "agent", "domain": domain["domain"], "password": "Correct-Horse-42"},
        )
        post("/api/v1/webhooks", {"url": hook_url, "event_types": ["message.received"]})
    return dict(mailbox)


async def webhook_times(hook: Any, subjects: set[str], deadline: float) -> dict[str, tuple[float, str]]:
    """subject → (arrival, webhook-id) once the receiver has a POST for every subject."""
    while True:
        found: dict[str, tuple[float, str]] = {}
        for received in list(hook.received):
            subject = received.json()["data"].get("subject")
            if subject in subjects and subject not in found:
                found[subject] = (received.at, received.webhook_id)
        if len(found) == len(subjects):
            return found
        if time.monotonic() > deadline:
            raise BenchError(f"the webhook got {len(found)} of {len(subjects)} events in time")
        await asyncio.sleep(POLL_SECONDS)


async def frames_complete(frames: Frames, subjects: list[str], deadline: float) -> None:
    for subject in subjects:
        try:
            await asyncio.wait_for(frames.complete[subject].wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            got = len(frames.by_subject.get(subject, {}))
            wanted = frames.expected_connections
            raise BenchError(f"{subject!r}: {got} of {wanted} connections got it") from None


def check_ids(frames: Frames, hooks: dict[str, tuple[float, str]], subjects: list[str]) -> None:
    for subject in subjects:
        ids = {event_id for _, event_id in frames.by_subject[subject].values()}
        if ids != {hooks[subject][1]}:
            raise BenchError(f"{subject!r}: frames carry {ids}, the webhook {hooks[subject][1]}")


async def run(stack: Any, hook: Any, mailbox: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from websockets.asyncio.client import ClientConnection, connect

    frames = Frames(expected_connections=args.connections)
    connections: list[ClientConnection] = []

    async def read(index: int, connection: ClientConnection) -> None:
        async for text in connection:
            frame = json.loads(text)
            if frame.get("type") == "event":
                frames.got(index, frame)

    subscribe = {"type": "subscribe", "event_types": ["message.received"], "inbox_ids": [mailbox["id"]]}
    for _ in range(args.connections):
        offered = ["mailroom", stack.admin_token]
        connection = await connect(stack.ws_url, subprotocols=offered, open_timeout=60)  # type: ignore[arg-type]
        await connection.send(json.dumps(subscribe))
        answer = json.loads(await asyncio.wait_for(connection.recv(), 60))
        if answer.get("type") != "subscribed":
            raise BenchError(f"subscribe answered {answer}")
        connections.append(connection)
    readers = [asyncio.create_task(read(i, c)) for i, c in enumerate(connections)]
    try:
        # Warm-up (cold starts of the inbound, fan-out and delivery functions): not measured.
        warm = ["warm-up"]
        await asyncio.to_thread(send_mail, stack.smtp_port, mailbox["address"], warm)
        deadline = time.monotonic() + WAIT_SECONDS
        await frames_complete(frames, warm, deadline)
        await webhook_times(hook, set(warm), deadline)

        latency: dict[str, list[float]] = {"first": [], "last": [], "webhook": []}
        for n in range(args.messages):
            subject = f"latency {n}"
            (accepted,) = await asyncio.to_thread(send_mail, stack.smtp_port, mailbox["address"], [subject])
            deadline = time.monotonic() + WAIT_SECONDS
            await frames_complete(frames, [subject], deadline)
            hooks = await webhook_times(hook, {subject}, deadline)
            check_ids(frames, hooks, [subject])
            arrivals = [at for at, _ in frames.by_subject[subject].values()]
            latency["first"].append((min(arrivals) - accepted) * 1000)
            latency["last"].append((max(arrivals) - accepted) * 1000)
            latency["webhook"].append((hooks[subject][0] - accepted) * 1000)

        burst = [f"burst {n}" for n in range(args.burst)]
        started = time.time()
        to = mailbox["address"]
        sending = asyncio.create_task(asyncio.to_thread(send_mail, stack.smtp_port, to, burst))
        deadline = time.monotonic() + WAIT_SECONDS
        hooks_task = asyncio.create_task(webhook_times(hook, set(burst), deadline))
        await frames_complete(frames, burst, deadline)
        hooks = await hooks_task
        accepted_all = await sending
        check_ids(frames, hooks, burst)
        last_frame = max(at for s in burst for at, _ in frames.by_subject[s].values())
        last_hook = max(at for at, _ in hooks.values())
        return {
            "latency": latency,
            "burst_send_s": accepted_all[-1] - started,
            "burst_ws_s": last_frame - started,
            "burst_webhook_s": last_hook - started,
        }
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS)
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, help="latency samples")
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST, help="messages of the throughput run")
    args = parser.parse_args(argv)

    from tests.e2e.stack_process import LocalStackProcess
    from tests.support.webhooks import receiver

    with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as state, receiver() as hook:
        stack = LocalStackProcess(Path(state))
        stack.start()
        try:
            mailbox = provision(stack.api_url, stack.admin_token, hook.url)
            result = asyncio.run(run(stack, hook, mailbox, args))
        except BenchError as exc:
            print(f"bench.events could not run: {exc}", file=sys.stderr)
            return 1
        finally:
            stack.stop()

    latency = result["latency"]
    webhook = statistics.median(latency["webhook"])
    print(
        f"Event fan-out through the local stack: {args.connections} WebSocket connections subscribed to one "
        f"mailbox's message.received, and one webhook to a loopback receiver; {args.messages} messages one "
        "at a time, after a warm-up"
    )
    print(f"{'SMTP accept →':<34} {'median ms':>10} {'p90 ms':>8} {'ratio to webhook':>17}")
    rows = (
        ("first WebSocket frame", "first"),
        (f"frame on all {args.connections} connections", "last"),
        ("webhook POST (baseline)", "webhook"),
    )
    for label, key in rows:
        median = statistics.median(latency[key])
        print(f"{label:<34} {median:>10.1f} {_percentile(latency[key], 0.9):>8.1f} {median / webhook:>17.2f}")
    frames = args.burst * args.connections
    ws_s, hook_s = result["burst_ws_s"], result["burst_webhook_s"]
    print(
        f"Burst of {args.burst} messages (sent in {result['burst_send_s']:.1f} s): every frame on every "
        f"connection after {ws_s:.1f} s ({frames / ws_s:.0f} frames/s, {args.burst / ws_s:.1f} events/s); "
        f"every webhook POST after {hook_s:.1f} s ({args.burst / hook_s:.1f} deliveries/s); "
        f"WebSocket/webhook events per second: {hook_s / ws_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
