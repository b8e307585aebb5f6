"""moto's server on loopback as its own process, for benchmarks whose measured process must not also
run the emulated AWS (on AWS, DynamoDB's work is not on the function's CPU either). Prints its port,
then serves until stdin closes. Uses the local stack's moto fixes (``local.moto_patches``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from moto.server import ThreadedMotoServer

    from local import moto_patches

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_patches.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    sys.stdout.write(f"{server.get_host_and_port()[1]}\n")
    sys.stdout.flush()
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
