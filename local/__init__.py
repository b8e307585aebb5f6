"""The Docker-free local runtime: ``python -m local`` (``make run``) runs Mailroom on one machine.

It reads ``template.yaml`` and plays AWS's part for the same handlers: moto (in-process, loopback)
for DynamoDB (with Streams), S3, SQS, SES, KMS, Step Functions, Scheduler; an HTTP API gateway (with
Lambda authorizers, when a template declares them); the WebSocket API and its management API; an
SMTP listener acting as SES receipt rules; SQS and DynamoDB stream event source mappings
(``local.pollers``, ``local.streams``: filters, batches, partial failures, bisecting, on-failure
queues) and schedules. State, KMS key material included, survives restarts in a state folder.
Never deployed; dev and end-to-end tests only.

Configuration (environment variables; all optional):

``MAILROOM_API_PORT``
    Port of the HTTP API on 127.0.0.1. Default ``8000``.
``MAILROOM_SMTP_PORT``
    Port of the SMTP listener (SES inbound) on 127.0.0.1. Default ``2525``.
``MAILROOM_MOTO_PORT``
    Port of the emulated AWS endpoint (moto server) on 127.0.0.1. Default ``4566``.
``MAILROOM_WS_PORT``
    Port of the WebSocket API on 127.0.0.1 (``ws://127.0.0.1:8001/events``) and of its management
    API (``http://127.0.0.1:8001/events/@connections/{id}``; ``local/websocket.py``). Default ``8001``.
``MAILROOM_STATE_DIR``
    Folder for persisted state, the admin token, ``local.env`` and the outbox.
    Default ``.mailroom/`` in the repository root (git-ignored).
``MAILROOM_AUTH_CACHE_TTL``
    Seconds a token's authentication is reused: the API functions' token cache (the template's
    ``TokenCacheTtl``, 30) and any Lambda authorizer's result cache (its ``ReauthorizeEvery``).
    ``0`` disables both: a revoked token is refused at its next request.
``MAILROOM_PARAMETER_OVERRIDES``
    Template parameter values, like ``sam deploy --parameter-overrides``:
    ``"LogLevel=DEBUG RateLimitPerMinute=10"`` (space or comma separated).
``MAILROOM_TEMPLATE``
    The template to run. Default ``template.yaml`` in the repository root.
``MAILROOM_SNAPSHOT_INTERVAL``
    Seconds between periodic state snapshots (taken only when something changed). Default ``30``;
    ``0`` snapshots only on shutdown.
``MAILROOM_LOCAL_CONCURRENCY``
    Most function invocations running at once (a thread each). Default ``64``.
``MAILROOM_LOCAL_LOG_LEVEL``
    Log level of the local runtime itself (functions use the template's ``LogLevel``). Default ``INFO``.
``MAILROOM_LOCAL_RATE_MINUTE_SECONDS``
    Real seconds a minute of a ``rate(...)`` schedule a function made at run time lasts (a task
    config's; ``local/one_off_schedules.py``). Default ``60``; the e2e tests set a few.
``MAILROOM_FAULTS``
    Fault injection (``local/faults.py``): ``"dynamodb=0.1,s3=0.1,sesv2=0.1,sqs=0.1,persist=0.1,seed=7"``
    fails that share of the functions' AWS call attempts with the service's own server error or
    throttling response, handed to botocore before the request leaves; ``persist`` is the share of
    faulted calls whose fault outlasts all their retries. Off by default.
``AWS_REGION``
    Region of the emulated account ``123456789012``. Default ``us-east-1``.

Function environment: the functions share this process, so they see one environment: the
template's variables, where a variable the template declares takes the value it has in the
environment the stack starts in, if set (with a warning; e.g. ``MAILROOM_DNS_RESOLVER=127.0.0.1:5353
make run``), plus, always: ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (``testing``), ``MOTO_PORT``,
``POWERTOOLS_TRACE_DISABLED=true``, ``POWERTOOLS_METRICS_DISABLED=true``, ``AWS_XRAY_SDK_ENABLED=false``,
``MAILROOM_WEBHOOK_ALLOW_PRIVATE=1``, ``MAILROOM_IMAP_ALLOW_PRIVATE=1`` and
``MAILROOM_LOCAL_OUTBOX=<state dir>/outbox``.

The state folder holds ``state.json`` and ``blobs/`` (the snapshot), ``admin-token`` (mode 0600, the
first start's admin token), ``api-key`` (mode 0600, an ``inai_`` key of the same organization for
``/api/v0``), ``local.env`` (how the operator CLI reaches this stack) and ``outbox/``. Each start
registers the platform domain (``MAILROOM_PLATFORM_DOMAIN``, default ``mailroom.localhost``) with
the emulated SES if it is not yet, so mail to ``/api/v0`` inboxes on it is received over SMTP.
Delete the folder to start afresh.

Stream event sources start reading at the moment the stack starts (after the snapshot is restored),
whatever their ``StartingPosition``: restored items are not changes.

Outbound mail (``local/outbound.py``): what SES v2 accepts is delivered as SES would, off moto's
request thread: recipients at domains hosted in the stack through local inbound (the receipt
rules, as for mail received over SMTP), SES's mailbox simulator addresses as documented
(``bounce@simulator.amazonses.com``, ...), everyone else into ``outbox/<ses message id>.eml``. The
configuration set's EventBridge destination (from the template) publishes Send, Delivery, Bounce
and Complaint events to the template's ``EventBridgeRule`` event sources (``local/eventbridge.py``).

Asynchronous invocations (SES receipt rules' ``Event`` actions, EventBridge rules, schedules,
``Event`` invokes through the Lambda API) are retried as Lambda retries them (``EventInvokeConfig``'s
``MaximumRetryAttempts``, default 2; after 1 and 2 seconds here, not Lambda's minutes), then go to
the function's ``OnFailure`` queue (``local/async_invoke.py``).

Not emulated: CORS, throttling and usage plans, JWT authorizers, payload format 1.0, Lambda
concurrency limits, ``MaximumEventAgeInSeconds``, FIFO ordering guarantees of event source mappings, SES
actions other than S3/Lambda/AddHeader/Stop, stream sources' ``MaximumRecordAgeInSeconds``,
``ParallelizationFactor`` and tumbling windows, Kinesis, CloudWatch alarms, KMS key policies,
SES sending quotas and DKIM signing of sent mail, EventBridge buses other than the default one.
"""
