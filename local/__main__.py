"""``python -m local``: run the local stack in the foreground until Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from local.config import ConfigError, LocalConfig
from local.runner import LocalStack
from local.template import TemplateError

log = logging.getLogger("local")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Request-level chatter from the emulators; their warnings and errors still show.
    for name in ("werkzeug", "botocore", "boto3", "urllib3", "mail.log", "moto", "mangum", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main() -> int:
    try:
        config = LocalConfig.from_env()
    except ConfigError as exc:
        logging.basicConfig()
        log.error("%s", exc)
        return 2
    _configure_logging(config.log_level)

    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = LocalStack(config)
    try:
        stack.start()
    except (TemplateError, ConfigError, OSError, RuntimeError) as exc:
        log.error("the local stack could not start: %s", exc)
        stack.stop()
        return 1
    except Exception:
        log.exception("the local stack could not start")
        stack.stop()
        return 1

    while not stopping.wait(0.2):
        pass
    code = 0 if stack.stop() else 1
    log.info("stopped")
    logging.shutdown()
    if stack.threads_left:
        # A handler is still running and Python would wait for its thread at exit, maybe forever: the
        # state is saved, so leave now rather than hang the terminal.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
