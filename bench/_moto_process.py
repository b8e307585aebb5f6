"""moto's server on loopback as its own process, for benchmarks whose measured process must not also
run the emulated AWS (on AWS, DynamoDB's work is not on the function's CPU either). Prints its port,
then serves until stdin closes. Uses the local stack's moto fixes (``local.moto_patches``).

``--profile PATH``: every request is profiled with its thread's CPU clock (the server answers each
request in a thread of its own, so a wall clock would charge one request for the others' time),
and the merged statistics are written to PATH (pstats) when the server stops.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _profile_requests(path: str) -> Any:
    """Profile every request; returns what writes the merged statistics to ``path``."""
    import cProfile
    import pstats
    import threading
    import time

    from werkzeug.serving import WSGIRequestHandler

    lock = threading.Lock()
    merged: list[pstats.Stats] = []
    run_wsgi = WSGIRequestHandler.run_wsgi

    def profiled(self: WSGIRequestHandler) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            run_wsgi(self)
        finally:
            profile.disable()
            with lock:
                if merged:
                    merged[0].add(profile)
                else:
                    merged.append(pstats.Stats(profile))

    WSGIRequestHandler.run_wsgi = profiled  # type: ignore[method-assign]

    def write() -> None:
        with lock:
            if merged:
                merged[0].dump_stats(path)

    return write


def main() -> None:
    from moto.server import ThreadedMotoServer

    from local import moto_patches

    write_profile = None
    if len(sys.argv) == 3 and sys.argv[1] == "--profile":
        write_profile = _profile_requests(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_patches.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    sys.stdout.write(f"{server.get_host_and_port()[1]}\n")
    sys.stdout.flush()
    sys.stdin.read()
    server.stop()
    if write_profile is not None:
        write_profile()


if __name__ == "__main__":
    main()
