"""Latency of an authenticated API request through the local stack, against the gateway alone, same run.

The local stack (``python -m local``) runs as a subprocess on free ports, with its state in a
temporary folder, once with the token cache as the template sets it (``TokenCacheTtl``, 30 s) and
once with it off (``MAILROOM_AUTH_CACHE_TTL=0``). In each, over plain HTTP on loopback (one
keep-alive connection, one request at a time):

* **baseline**: a request the gateway answers itself (a path no route has: 404, no function runs),
  i.e. HTTP, the gateway's routing and its answer;
* **GET /api/v1/me** with the admin token: the account function authenticates the token, counts the
  request against the rate limit, reads the organization and answers.

Requests alternate baseline and target, after an unmeasured warm-up (cold starts, connections), so
load from other processes lands on both alike. Printed per kind: the median and 90th percentile of
the wall-clock latency, and the stack process's CPU time per request (its user + system time around
each request, from /proc; the emulated AWS runs in that process too, so DynamoDB's side of a lookup
counts): on a shared, loaded machine the wall clock mostly measures waiting for a CPU, CPU time much
less so. Ratios are against the baseline. With the cache on, the lookup is paid once per token per
cache period; with it off, on every request: the difference is what authenticating costs.

The local runtime invokes a function on a thread of the same process: an invocation costs far less
here than on Lambda, where API Gateway's call of a function (or of an authorizer) is a network round
trip. Nothing is asserted.

    python -m bench.api_latency [--requests N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

DEFAULT_REQUESTS = 200
WARM_UP = 20


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cpu_clock(pid: int) -> Callable[[], float]:
    """Milliseconds of CPU (user + system) the process has used so far."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{pid}/stat")

    def used() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * tick_ms  # utime, stime

    return used


def measure(requests: int, **env: str) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Wall milliseconds per request of each kind, and CPU milliseconds per request of each kind, in
    one local stack started with ``env``."""
    import httpx

    from tests.e2e.stack_process import LocalStackProcess

    timings: dict[str, list[float]] = {"baseline": [], "me": []}
    cpu = {"baseline": 0.0, "me": 0.0}
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as state:
        stack = LocalStackProcess(Path(state), env)
        stack.start()
        used = cpu_clock(stack.pid)
        try:
            auth = {"Authorization": f"Bearer {stack.admin_token}"}
            with httpx.Client(base_url=stack.api_url, timeout=30) as client:

                def baseline() -> None:
                    response = client.get("/bench/no-such-route")
                    if response.status_code != 404:
                        raise RuntimeError(f"baseline: {response.status_code} {response.text[:200]}")

                def me() -> None:
                    response = client.get("/api/v1/me", headers=auth)
                    if response.status_code != 200:
                        raise RuntimeError(f"GET /api/v1/me: {response.status_code} {response.text[:200]}")

                calls = {"baseline": baseline, "me": me}
                for _ in range(WARM_UP):
                    baseline()
                    me()
                for _ in range(requests):
                    for kind, call in calls.items():
                        started, cpu_before = time.perf_counter(), used()
                        call()
                        timings[kind].append((time.perf_counter() - started) * 1000)
                        cpu[kind] += used() - cpu_before
        finally:
            stack.stop()
    return timings, {kind: total / requests for kind, total in cpu.items()}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_latency", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--requests", type=int, default=DEFAULT_REQUESTS, help="measured requests of each kind"
    )
    args = parser.parse_args(argv)
    runs = {
        "on (30 s)": measure(args.requests),
        "off": measure(args.requests, MAILROOM_AUTH_CACHE_TTL="0"),
    }
    print(
        f"API latency through the local stack over HTTP on loopback: {args.requests} requests of each kind, "
        "interleaved, after a warm-up"
    )
    print(
        f"{'token cache':<12} {'request':<26} {'median ms':>10} {'p90 ms':>7} {'ratio':>6} "
        f"{'cpu ms/req':>11} {'ratio':>6}"
    )
    for cache, (timings, cpu) in runs.items():
        base, base_cpu = statistics.median(timings["baseline"]), cpu["baseline"]
        for kind, label in (("baseline", "baseline: no route (404)"), ("me", "GET /api/v1/me")):
            median, p90 = statistics.median(timings[kind]), _percentile(timings[kind], 0.9)
            print(
                f"{cache:<12} {label:<26} {median:>10.1f} {p90:>7.1f} {median / base:>6.2f} "
                f"{cpu[kind]:>11.2f} {cpu[kind] / base_cpu:>6.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
