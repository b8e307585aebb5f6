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
load from other processes lands on both alike. Printed: median and 90th percentile per kind, and the
ratio of the target's median to the baseline's. With the cache on, the lookup is paid once per token
per cache period; with it off, on every request: the difference is what authenticating costs.

The local runtime invokes a function on a thread of the same process: an invocation costs far less
here than on Lambda, where API Gateway's call of a function (or of an authorizer) is a network round
trip. Nothing is asserted.

    python -m bench.api_latency [--requests N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_REQUESTS = 200
WARM_UP = 20


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(requests: int, **env: str) -> dict[str, list[float]]:
    """Milliseconds per request of each kind, in one local stack started with ``env``."""
    import httpx

    from tests.e2e.stack_process import LocalStackProcess

    timings: dict[str, list[float]] = {"baseline": [], "me": []}
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as state:
        stack = LocalStackProcess(Path(state), env)
        stack.start()
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
                        started = time.perf_counter()
                        call()
                        timings[kind].append((time.perf_counter() - started) * 1000)
        finally:
            stack.stop()
    return timings


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
    print(f"{'token cache':<12} {'request':<36} {'median ms':>10} {'p90 ms':>8} {'ratio':>6}")
    for cache, timings in runs.items():
        base = statistics.median(timings["baseline"])
        rows = [("baseline: no route (404)", timings["baseline"]), ("GET /api/v1/me", timings["me"])]
        for label, values in rows:
            median, p90 = statistics.median(values), _percentile(values, 0.9)
            print(f"{cache:<12} {label:<36} {median:>10.1f} {p90:>8.1f} {median / base:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
