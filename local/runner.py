"""Start and stop the whole local stack, in dependency order."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from local import faults, loopback, moto_patches
from local.async_invoke import AsyncInvoker
from local.aws import ChangeTracker, Clients, MotoServer, provision
from local.bootstrap import ensure_admin_token, ensure_api_key, ensure_platform_domain, write_local_env
from local.config import STACK_NAME, LocalConfig
from local.eventbridge import EventBus
from local.gateway import Gateway, HttpServer
from local.moto_patches import ses_sends
from local.moto_patches import streams as moto_streams
from local.one_off_schedules import OneOffSchedules
from local.outbound import LocalOutbound, domain_claims
from local.persistence import PeriodicSnapshot, StateStore
from local.pollers import SqsPoller
from local.runtime import FunctionRuntime
from local.schedules import Scheduler, scheduled_event
from local.smtp import InboundProcessor, SmtpServer, moto_identities, moto_rules
from local.stack import ScheduleSpec, Stack, shared_environment
from local.streams import StreamPoller
from local.template import ACCOUNT_ID, Naming
from local.websocket import WebSocketGateway, WebSocketServer, websocket_apis

log = logging.getLogger(__name__)

READY_LINE = "Mailroom local stack ready"
# Variables that could send a boto3 call to real AWS or with real credentials; never inherited.
_UNSAFE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def function_environment(
    stack: Stack, config: LocalConfig, moto_url: str, moto_port: int, inherited: Mapping[str, str]
) -> dict[str, str]:
    """The environment every function sees: the template's variables plus the local wiring.

    A variable the template declares that is also set in the environment the stack starts in takes
    that value (``MAILROOM_DNS_RESOLVER=127.0.0.1:5353 make run``); the wiring to the emulated AWS
    account always wins.
    """
    env, conflicts = shared_environment(stack.functions)
    for conflict in conflicts:
        log.warning(
            "functions disagree on an environment variable; they share one process here: %s", conflict
        )
    for name, value in env.items():
        if name in inherited and inherited[name] != value:
            log.warning("%s=%r from the environment replaces the template's %r", name, inherited[name], value)
            env[name] = inherited[name]
    if config.auth_cache_ttl is not None:
        env["MAILROOM_AUTH_CACHE_TTL"] = str(config.auth_cache_ttl)  # the functions' token cache
    env.update(
        {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            # moto's Step Functions interpreter calls Lambda at localhost:$MOTO_PORT.
            "MOTO_PORT": str(moto_port),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "AWS_XRAY_SDK_ENABLED": "false",
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            "MAILROOM_WEBHOOK_ALLOW_PRIVATE": "1",
            # Migrations import from IMAP servers on loopback (a local Dovecot) here.
            "MAILROOM_IMAP_ALLOW_PRIVATE": "1",
            # SMTP relays and verification probes reach servers on loopback here.
            "MAILROOM_SMTP_RELAY_ALLOW_PRIVATE": "1",
            "MAILROOM_VERIFY_ALLOW_PRIVATE": "1",
            "MAILROOM_LOCAL_OUTBOX": str(config.outbox),
        }
    )
    # The management API of the local WebSocket API (local/websocket.py), at its stage's URL.
    for api in websocket_apis(stack.template)[:1]:
        env["MAILROOM_WEBSOCKET_ENDPOINT"] = f"http://127.0.0.1:{config.ws_port}/{api.stage}"
    return env


def _queue_url(stack: Stack, arn: str) -> str | None:
    queue = stack.queue_by_arn(arn)
    return stack.template.queue_url(queue.logical_id) if queue is not None else None


def apply_environment(env: dict[str, str]) -> None:
    for name in list(os.environ):
        if name in _UNSAFE_VARIABLES or name.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[name]
    os.environ.update(env)


def _check_ports(config: LocalConfig) -> None:
    """Fail at once, naming the variable to change, rather than after half the stack has started."""
    for variable, port in (
        ("MAILROOM_MOTO_PORT", config.moto_port),
        ("MAILROOM_API_PORT", config.api_port),
        ("MAILROOM_SMTP_PORT", config.smtp_port),
        ("MAILROOM_WS_PORT", config.ws_port),
    ):
        with socket.socket() as probe:
            # As the servers do: connections left in TIME_WAIT by a previous run must not count as "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(
                    f"127.0.0.1:{port} is not available ({exc.strerror}); set {variable} to another port"
                ) from exc


class LocalStack:
    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self._stops: list[tuple[str, Callable[[], Any]]] = []  # run in reverse on stop
        self.stack: Stack | None = None
        self.runtime: FunctionRuntime | None = None
        self.admin_token: str | None = None
        self.threads_left = False  # a handler still running after stop: the process must exit hard

    def start(self) -> None:
        config = self.config
        _check_ports(config)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        config.outbox.mkdir(parents=True, exist_ok=True)
        # Powertools warns on every invocation that flushes no metrics; metrics are off locally anyway.
        warnings.filterwarnings("ignore", message="No application metrics to publish")

        tracker = ChangeTracker()
        moto = MotoServer(config.moto_port, tracker)
        naming = Naming(
            stack_name=STACK_NAME,
            region=config.region,
            account_id=ACCOUNT_ID,
            sqs_endpoint=f"http://127.0.0.1:{config.moto_port}",
        )
        stack = self.stack = Stack.load(config.template, naming=naming, overrides=config.parameter_overrides)
        # Before any handler or the mailroom package is imported: they read it once.
        apply_environment(function_environment(stack, config, moto.url, config.moto_port, dict(os.environ)))

        moto_patches.install()  # APIs Mailroom calls that moto lacks; before moto serves anything
        if config.faults is not None:
            self._inject_faults(config.faults)
        moto.start()
        self._stops.append(("moto", moto.stop))
        # Before any client is made: this process's calls reach the emulator without a socket.
        self._stops.append(("in-process AWS calls", loopback.serve(moto.url, moto.app)))
        clients = Clients(region=config.region, endpoint_url=moto.url)
        provision(stack, clients)

        store = StateStore(config.state_dir, clients, account_id=ACCOUNT_ID, region=config.region)
        store.restore()
        snapshots = PeriodicSnapshot(store, tracker, config.snapshot_interval)
        # Taken after every function has finished, before moto goes away.
        self._stops.append(("final snapshot", snapshots.save_now))

        runtime = self.runtime = FunctionRuntime(stack.functions, concurrency=config.concurrency)

        def stop_functions() -> None:
            self.threads_left = not runtime.shutdown(wait_seconds=10)

        self._stops.append(("functions", stop_functions))
        # Asynchronous invocations (SES rules, EventBridge, schedules, Step Functions' Event
        # invokes) are retried as Lambda retries them, then go to their OnFailure destination.
        invoker = AsyncInvoker(runtime, sqs=clients("sqs"), queue_url_of=partial(_queue_url, stack))
        self._stops.append(("asynchronous retries", invoker.stop))
        from local import stepfunctions

        stepfunctions.install(invoker)
        self._stops.append(("lambda dispatch", stepfunctions.uninstall))

        with faults.paused():  # the operator's setup, not a function's calls
            self.admin_token = ensure_admin_token(config.state_dir)
            ensure_api_key(config.state_dir)
            platform_domain = ensure_platform_domain()
        table = next((t.name for t in stack.tables), "")
        write_local_env(
            config.state_dir,
            {
                "AWS_ENDPOINT_URL": moto.url,
                "AWS_REGION": config.region,
                "AWS_DEFAULT_REGION": config.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "MAILROOM_TABLE_NAME": os.environ.get("MAILROOM_TABLE_NAME", table),
                "MAILROOM_API_URL": config.api_url,
                "MAILROOM_PLATFORM_DOMAIN": platform_domain,
            },
        )
        snapshots.save_now()  # the bootstrap's writes must survive even a crash
        snapshots.start()
        self._stops.append(("periodic snapshots", snapshots.stop))

        gateway = Gateway(
            stack.routes,
            stack.apis,
            runtime,
            region=config.region,
            account_id=ACCOUNT_ID,
            auth_ttl_override=config.auth_cache_ttl,
        )
        server = HttpServer(gateway, port=config.api_port)
        server.start()
        self._stops.append(("API gateway", server.stop))
        for api in websocket_apis(stack.template)[:1]:  # Mailroom has one
            sockets = WebSocketServer(
                WebSocketGateway(api, runtime, domain=f"127.0.0.1:{config.ws_port}"), port=config.ws_port
            )
            sockets.start()
            self._stops.append(("WebSocket API", sockets.stop))

        inbound = InboundProcessor(
            moto_rules(clients("ses")),
            invoker,
            clients("s3"),
            region=config.region,
            identities=moto_identities(clients("ses")),
        )
        smtp = SmtpServer(inbound, port=config.smtp_port, region=config.region)
        smtp.start()
        self._stops.append(("SMTP", smtp.stop))
        self._start_outbound(stack, clients, invoker, inbound)

        for mapping in stack.sqs_mappings:
            queue = stack.queue_by_arn(mapping.queue_arn)
            if not mapping.enabled or queue is None:
                log.info(
                    "SQS event source %s.%s not polled (%s)",
                    mapping.function,
                    mapping.event,
                    "disabled" if not mapping.enabled else f"no queue {mapping.queue_arn} in the template",
                )
                continue
            poller = SqsPoller(
                mapping,
                queue_url=stack.template.queue_url(queue.logical_id),
                runtime=runtime,
                sqs_client=clients("sqs"),
                region=config.region,
            )
            poller.start()
            self._stops.append((f"SQS poller {mapping.function}", poller.stop))

        self._start_stream_pollers(stack, clients, runtime)

        def fire(spec: ScheduleSpec, at: datetime) -> None:
            log.info("schedule %s.%s fired (%s)", spec.function, spec.event, spec.expression)
            invoker.submit(
                spec.function, scheduled_event(spec, at, region=config.region, account_id=ACCOUNT_ID)
            )

        scheduler = Scheduler(stack.schedules, fire)
        scheduler.start()
        self._stops.append(("scheduler", scheduler.stop))
        self._start_one_off_schedules(stack, clients, invoker)

        log.info("API          %s  (OpenAPI: %s/api/openapi.json)", config.api_url, config.api_url)
        log.info("SMTP (SES)   127.0.0.1:%d", config.smtp_port)
        for api in websocket_apis(stack.template)[:1]:
            log.info("WebSocket    %s/%s", config.ws_url, api.stage)
        log.info("AWS (moto)   %s  (account %s, %s)", moto.url, ACCOUNT_ID, config.region)
        log.info("state        %s  (CLI settings: %s)", config.state_dir, config.state_dir / "local.env")
        log.info(
            "%s: %d functions, %d routes, %d queues, %d streams, %d schedules",
            READY_LINE,
            len(stack.functions),
            len(stack.routes),
            len(stack.queues),
            len(stack.stream_mappings),
            len(stack.schedules),
        )

    def _start_one_off_schedules(self, stack: Stack, clients: Clients, invoker: AsyncInvoker) -> None:
        """Fire the ``at(...)`` schedules functions create (scheduled sends) at their time."""

        def fire(target_arn: str, event: Any) -> None:
            spec = stack.function_by_arn(target_arn)
            if spec is None:
                log.warning("schedule target %s is not a function of the template; not fired", target_arn)
                return
            invoker.submit(spec.logical_id, event)

        one_off = OneOffSchedules(
            clients("scheduler"), fire, rate_minute_seconds=self.config.rate_minute_seconds
        )
        one_off.start()
        self._stops.append(("one-off schedules", one_off.stop))

    def _inject_faults(self, plan: faults.FaultPlan) -> None:
        """Fault the functions' AWS calls from now on; on stop, the counts go to the log and to
        ``faults.json`` in the state folder."""
        injector = faults.install(plan)

        def stop() -> None:
            faults.uninstall()
            stats = injector.stats()
            log.info("fault injection: %s", injector.summary())
            path = self.config.state_dir / "faults.json"
            path.write_text(json.dumps({"plan": plan.describe(), "services": stats}, indent=2) + "\n")

        # First in, last out: the counts are final once every function has finished.
        self._stops.append(("fault injection", stop))

    def _start_outbound(
        self, stack: Stack, clients: Clients, invoker: AsyncInvoker, inbound: InboundProcessor
    ) -> None:
        """Deliver what SES accepts (local inbound, the outbox, the mailbox simulator) and publish
        the configuration set's events to the template's EventBridge rules (local/outbound.py)."""
        config = self.config
        table = next((t.name for t in stack.tables), "")
        outbound = LocalOutbound(
            inbound=inbound,
            hosted=domain_claims(clients("dynamodb"), table),
            publish=EventBus(stack.event_rules, invoker).publish,
            destinations=stack.ses_event_destinations,
            outbox=config.outbox,
            region=config.region,
            account_id=ACCOUNT_ID,
        )
        ses_sends.add_send_listener(outbound.on_send)

        def stop() -> None:
            ses_sends.remove_send_listener(outbound.on_send)
            outbound.stop()

        self._stops.append(("SES outbound", stop))

    def _start_stream_pollers(self, stack: Stack, clients: Clients, runtime: FunctionRuntime) -> None:
        """DynamoDB stream event sources, read from now on: what the snapshot restored is not news."""
        config = self.config
        checkpoints: dict[tuple[str, str], int] = {}
        readers: dict[str, int] = {}
        for mapping in stack.stream_mappings:
            if mapping.enabled:
                table = next(t.name for t in stack.tables if t.logical_id == mapping.table)
                readers[table] = readers.get(table, 0) + 1

        def trim(table: str, through: int, reader: str) -> None:
            # A record goes once every poller of that stream has read it.
            checkpoints[(table, reader)] = through
            done = [seq for (name, _), seq in checkpoints.items() if name == table]
            if len(done) == readers[table]:
                moto_streams.trim_stream(table, min(done), account_id=ACCOUNT_ID, region=config.region)

        for mapping in stack.stream_mappings:
            if not mapping.enabled:
                log.info("DynamoDB event source %s.%s not polled (disabled)", mapping.function, mapping.event)
                continue
            table = next(t.name for t in stack.tables if t.logical_id == mapping.table)
            queue = stack.queue_by_arn(mapping.on_failure_arn) if mapping.on_failure_arn else None
            reader = f"{mapping.function}.{mapping.event}"

            def trim_for(name: str, through: int, reader: str = reader) -> None:
                trim(name, through, reader)

            poller = StreamPoller(
                mapping,
                table_name=table,
                on_failure_queue_url=stack.template.queue_url(queue.logical_id) if queue else None,
                runtime=runtime,
                dynamodb=clients("dynamodb"),
                streams=clients("dynamodbstreams"),
                read=partial(moto_streams.read_stream, account_id=ACCOUNT_ID, region=config.region),
                sqs=clients("sqs"),
                region=config.region,
                starting_position="LATEST",
                trim=trim_for,
                appends=moto_streams.APPENDS,
            )
            poller.start()
            self._stops.append((f"stream poller {mapping.function}", poller.stop))

    def stop(self) -> bool:
        """Stop everything that started, newest first. False if any step failed (each one still runs)."""
        ok = True
        while self._stops:
            name, stop = self._stops.pop()
            started = time.monotonic()
            try:
                stop()
                log.debug("stopped %s in %.0f ms", name, (time.monotonic() - started) * 1000)
            except Exception:
                log.exception("stopping %s failed", name)
                ok = False
        return ok
