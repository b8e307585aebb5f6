"""Entry points: one module per event source, each a thin translation of its event into a use case
in ``services``, wrapped in the shared stack of ``entry.runtime`` (per-invocation log keys, Tracer,
Metrics). ``functions/<name>/app.py`` names one of them; nothing else does.

- ``http``: API Gateway HTTP API events → FastAPI (Mangum); the OpenAPI document.
- ``ses_inbound``: SES receipt and S3 ``ObjectCreated`` events → inbound delivery.
- ``delivery_events``: SES sending events (bounces, complaints, deliveries) from SNS.
- ``streams``: the table's DynamoDB stream → webhook fan-out.
- ``queues``: SQS queues → webhook delivery, mailbox purge.
- ``schedules``: EventBridge schedules → DNS recheck, mailbox sweep, bulk migration sweep.
- ``steps``: the migration state machine's Lambda tasks.
"""
