"""Teaching moto what the local stack needs of it, one module per fix.

Production code calls the real AWS APIs; these make the local emulator answer them the way AWS
does, so neither the code nor the tests carry local special cases:

* ``sesv2_dkim``: SES v2 ``PutEmailIdentityDkimSigningAttributes``, which moto lacks;
* ``ses_sends``: SES v2 sends keep the configuration set and tags moto drops, and are reported to
  listeners (the local stack delivers what SES "sends", see local/outbound.py);
* ``streams``: DynamoDB Streams keep only what the local pollers have not read yet, and expire old
  shard iterators;
* ``transactions``: a cancelled TransactWriteItems rolls back the items it names instead of a copy
  of every table it touches;
* ``item_writes``: PutItem, UpdateItem and DeleteItem are atomic (moto applies them unlocked);
* ``query_index``: a Query reads its partition or GSI entry instead of sorting the whole table;
* ``sqs_retention``: receiving from SQS no longer counts the whole queue per message;
* ``server_modules``: moto's server stops listing its own package on every request;
* ``route53_batches``: a Route 53 change batch is refused, whole, when a DELETE does not match the
  record set as it is or a CREATE finds one (moto checked neither against the zone's present state).

``install()`` is idempotent and must run before moto serves requests (the local stack, the test
fixtures and the benchmarks call it).
"""

from __future__ import annotations

from local.moto_patches import (
    item_writes,
    query_index,
    route53_batches,
    server_modules,
    ses_sends,
    sesv2_dkim,
    sqs_retention,
    streams,
    transactions,
)


def install() -> None:
    sesv2_dkim.install()
    streams.install()
    transactions.install()
    item_writes.install()
    query_index.install()
    sqs_retention.install()
    server_modules.install()
    ses_sends.install()
    route53_batches.install()
