"""Snapshots of the emulated account's data, so the local stack survives Ctrl-C and restarts.

Not moto's recorder: replaying requests would re-run their side effects (executions, sends).
A snapshot holds the *data*: every DynamoDB item, every S3 object (bodies as content-addressed
files under ``blobs/``, so unchanged objects are neither re-read nor re-written), every SQS message
(invisible and delayed ones too, with the time they have left), every EventBridge Scheduler
schedule, every SES identity (by name: a hosted domain can still send) and every symmetric KMS key
with its key material and aliases (ciphertexts stored in the table must stay decryptable; keys made
afresh by provisioning are replaced). The manifest
``state.json`` is replaced atomically and is the commit point: blobs it does not name are deleted
after it is written. Resources are created from the template first;
restore only puts data back (buckets and queues the app created at runtime are re-created).

SQS messages are read and written through moto's models, since the API cannot see invisible
messages without receiving them; this is dev tooling, pinned to the moto version in use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.aws import ChangeTracker, Clients
from local.files import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_OBJECT_FIELDS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")
_SCHEDULE_FIELDS = (
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "EndDate",
    "State",
    "Target",
    "FlexibleTimeWindow",
    "Description",
    "ActionAfterCompletion",
    "KmsKeyArn",
)


def _to_json(value: Any) -> Any:
    """JSON-safe copy: bytes become ``{"__bytes__": base64}``, datetimes ``{"__datetime__": iso}``."""
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"} and isinstance(value["__bytes__"], str):
            return base64.b64decode(value["__bytes__"])
        if set(value) == {"__datetime__"} and isinstance(value["__datetime__"], str):
            return datetime.fromisoformat(value["__datetime__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


class StateStore:
    def __init__(self, state_dir: Path, clients: Clients, *, account_id: str, region: str) -> None:
        self.state_dir = state_dir
        self.manifest_path = state_dir / "state.json"
        self.blob_dir = state_dir / "blobs"
        self._clients = clients
        self._account_id = account_id
        self._region = region
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- save

    def save(self) -> None:
        with self._lock:
            started = time.monotonic()
            previous = self._read_manifest() or {}
            manifest = {
                "version": FORMAT_VERSION,
                "saved_at": datetime.now(UTC).isoformat(),
                "dynamodb": self._save_tables(),
                "s3": self._save_buckets(previous.get("s3") or {}),
                "sqs": self._save_queues(),
                "scheduler": self._save_schedules(),
                "kms": self._save_keys(),
                "ses_identities": self._save_ses_identities(),
            }
            atomic_write(self.manifest_path, json.dumps(manifest, separators=(",", ":")).encode())
            self._collect_garbage(manifest)
            log.debug("state saved in %.0f ms", (time.monotonic() - started) * 1000)

    def _save_tables(self) -> dict[str, Any]:
        dynamodb = self._clients("dynamodb")
        tables: dict[str, Any] = {}
        for page in dynamodb.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                items: list[Any] = []
                for scan in dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
                    items.extend(_to_json(item) for item in scan["Items"])
                tables[name] = items
        return tables

    def _save_buckets(self, previous: dict[str, Any]) -> dict[str, Any]:
        s3 = self._clients("s3")
        buckets: dict[str, Any] = {}
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            known = {o["key"]: o for o in previous.get(name, [])}
            objects = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for listed in page.get("Contents", []):
                    key = listed["Key"]
                    fingerprint = [listed["ETag"], listed["Size"], listed["LastModified"].isoformat()]
                    old = known.get(key)
                    if (
                        old
                        and old.get("fingerprint") == fingerprint
                        and (self.blob_dir / old["blob"]).exists()
                    ):
                        objects.append(old)
                        continue
                    got = s3.get_object(Bucket=name, Key=key)
                    body = got["Body"].read()
                    digest = hashlib.sha256(body).hexdigest()
                    blob = self.blob_dir / digest
                    if not blob.exists():
                        atomic_write(blob, body, mode=0o600)
                    objects.append(
                        {
                            "key": key,
                            "blob": digest,
                            "fingerprint": fingerprint,
                            "metadata": got.get("Metadata") or {},
                            **{field: got[field] for field in _OBJECT_FIELDS if got.get(field)},
                        }
                    )
            buckets[name] = objects
        return buckets

    def _save_queues(self) -> dict[str, Any]:
        from moto.core.utils import unix_time_millis
        from moto.sqs.models import sqs_backends

        now = unix_time_millis()
        queues: dict[str, Any] = {}
        for queue in list(sqs_backends[self._account_id][self._region].queues.values()):
            with queue._messages_lock:
                messages = list(queue._messages)
            queues[queue.name] = [
                {
                    "id": m.id,
                    "body": m.body,
                    "message_attributes": _to_json(m.message_attributes),
                    "system_attributes": _to_json(m.system_attributes),
                    "sent_timestamp": m.sent_timestamp,
                    "first_receive_timestamp": m.approximate_first_receive_timestamp,
                    "receive_count": m.approximate_receive_count,
                    "deduplication_id": m.deduplication_id,
                    "group_id": m.group_id,
                    "sequence_number": m.sequence_number,
                    "invisible_for_ms": max(0.0, m.visible_at - now),
                    "delayed_for_ms": max(0.0, m.delayed_until - now),
                }
                for m in messages
            ]
        return queues

    def _save_keys(self) -> list[Any]:
        """KMS keys with their key material: without it, what was encrypted before a restart
        (webhook secrets) could not be decrypted after it."""
        from moto.kms.models import kms_backends

        backend = kms_backends[self._account_id][self._region]
        return [
            {
                "id": key.id,
                "arn": key.arn,
                "description": key.description,
                "material": base64.b64encode(key.key_material).decode(),
                "aliases": sorted(key.aliases),
                "tags": backend.list_resource_tags(key.id).get("Tags", []),
            }
            for key in list(backend.keys.values())
            if key.key_spec == "SYMMETRIC_DEFAULT"
        ]

    def _save_schedules(self) -> list[Any]:
        scheduler = self._clients("scheduler")
        schedules = []
        for group in scheduler.list_schedule_groups().get("ScheduleGroups", []):
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group["Name"]):
                for listed in page.get("Schedules", []):
                    full = scheduler.get_schedule(GroupName=group["Name"], Name=listed["Name"])
                    schedules.append(
                        _to_json({k: full[k] for k in _SCHEDULE_FIELDS if full.get(k) is not None})
                    )
        return schedules

    def _collect_garbage(self, manifest: dict[str, Any]) -> None:
        referenced = {o["blob"] for objects in manifest["s3"].values() for o in objects}
        if self.blob_dir.is_dir():
            for blob in self.blob_dir.iterdir():
                if blob.name not in referenced and not blob.name.startswith("."):
                    blob.unlink(missing_ok=True)

    # ----------------------------------------------------------------------------- restore

    def _read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        manifest = json.loads(self.manifest_path.read_text())
        if manifest.get("version") != FORMAT_VERSION:
            raise RuntimeError(
                f"{self.manifest_path}: snapshot format {manifest.get('version')} is not "
                f"{FORMAT_VERSION}; move the state folder away to start afresh"
            )
        return manifest  # type: ignore[no-any-return]

    def restore(self) -> bool:
        """Put the last snapshot's data back. False when there is none."""
        with self._lock:
            manifest = self._read_manifest()
            if manifest is None:
                return False
            self._restore_tables(manifest["dynamodb"])
            self._restore_buckets(manifest["s3"])
            self._restore_queues(manifest["sqs"])
            self._restore_schedules(manifest["scheduler"])
            self._restore_keys(manifest.get("kms") or [])
            self._restore_ses_identities(manifest.get("ses_identities") or [])
            counts = (
                sum(len(v) for v in manifest["dynamodb"].values()),
                sum(len(v) for v in manifest["s3"].values()),
                sum(len(v) for v in manifest["sqs"].values()),
                len(manifest["scheduler"]),
            )
            log.info(
                "restored %d items, %d objects, %d messages, %d schedules from %s (saved %s)",
                *counts,
                self.state_dir,
                manifest["saved_at"],
            )
            return True

    def _save_ses_identities(self) -> list[str]:
        """The SES identities (verified domains and addresses): without them no hosted domain could
        send after a restart (moto refuses a From it has no identity for)."""
        ses = self._clients("ses")
        return sorted(
            i for page in ses.get_paginator("list_identities").paginate() for i in page["Identities"]
        )

    def _restore_ses_identities(self, identities: list[str]) -> None:
        ses = self._clients("ses")
        for identity in identities:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            else:
                ses.verify_domain_identity(Domain=identity)

    def _restore_tables(self, tables: dict[str, Any]) -> None:
        dynamodb = self._clients("dynamodb")
        existing = {
            n for page in dynamodb.get_paginator("list_tables").paginate() for n in page["TableNames"]
        }
        for name, items in tables.items():
            if name not in existing:
                log.warning(
                    "table %s is no longer in the template: its %d saved items are skipped", name, len(items)
                )
                continue
            for start in range(0, len(items), 25):
                requests = [{"PutRequest": {"Item": _from_json(item)}} for item in items[start : start + 25]]
                _write_batch(dynamodb, name, requests)

    def _restore_buckets(self, buckets: dict[str, Any]) -> None:
        s3 = self._clients("s3")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for name, objects in buckets.items():
            if name not in existing:
                kwargs: dict[str, Any] = {"Bucket": name}
                if self._region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
                s3.create_bucket(**kwargs)
            for obj in objects:
                extra = {field: obj[field] for field in _OBJECT_FIELDS if obj.get(field)}
                s3.put_object(
                    Bucket=name,
                    Key=obj["key"],
                    Body=(self.blob_dir / obj["blob"]).read_bytes(),
                    Metadata=obj.get("metadata") or {},
                    **extra,
                )

    def _restore_queues(self, queues: dict[str, Any]) -> None:
        from moto.core.utils import unix_time_millis
        from moto.sqs.models import Message, sqs_backends

        backend = sqs_backends[self._account_id][self._region]
        sqs = self._clients("sqs")
        for name, messages in queues.items():
            if name not in backend.queues:
                attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
                sqs.create_queue(QueueName=name, Attributes=attributes)
            queue = backend.queues[name]
            now = unix_time_millis()
            restored = []
            for saved in messages:
                message = Message(saved["id"], saved["body"], _from_json(saved["system_attributes"]))
                message.message_attributes = _from_json(saved["message_attributes"])
                message.sent_timestamp = saved["sent_timestamp"]
                message.approximate_first_receive_timestamp = saved["first_receive_timestamp"]
                message.approximate_receive_count = saved["receive_count"]
                message.deduplication_id = saved["deduplication_id"]
                message.group_id = saved["group_id"]
                message.sequence_number = saved["sequence_number"]
                message.visible_at = now + saved["invisible_for_ms"] if saved["invisible_for_ms"] else 0.0
                message.delayed_until = now + saved["delayed_for_ms"] if saved["delayed_for_ms"] else 0.0
                restored.append(message)
            with queue._messages_lock:
                queue._messages.extend(restored)
                queue._messages_lock.notify_all()

    def _restore_keys(self, keys: list[Any]) -> None:
        """Put saved keys back under their ids, re-point their aliases, and drop the keys that
        provisioning made afresh for those aliases before the restore."""
        from moto.kms.models import kms_backends

        from local.aws import KMS_LOGICAL_ID_TAG

        if not keys:
            return
        backend = kms_backends[self._account_id][self._region]
        kms = self._clients("kms")
        for saved in keys:
            if saved["id"] not in backend.keys:
                key = backend.create_key(
                    None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", saved["description"], None
                )
                del backend.keys[key.id]
                key.id, key.arn = saved["id"], saved["arn"]
                key.key_material = base64.b64decode(saved["material"])
                backend.keys[key.id] = key
                if saved.get("tags"):
                    backend.tagger.tag_resource(key.id, saved["tags"])
            for alias in saved["aliases"]:
                current = backend.get_key_id_from_alias(alias)
                if current is None:
                    kms.create_alias(AliasName=alias, TargetKeyId=saved["id"])
                elif current != saved["id"]:
                    kms.update_alias(AliasName=alias, TargetKeyId=saved["id"])
        saved_ids = {k["id"] for k in keys}
        for key in list(backend.keys.values()):
            tags = {t["TagKey"] for t in backend.list_resource_tags(key.id).get("Tags", [])}
            if key.id not in saved_ids and not key.aliases and KMS_LOGICAL_ID_TAG in tags:
                del backend.keys[key.id]

    def _restore_schedules(self, schedules: list[Any]) -> None:
        if not schedules:
            return
        scheduler = self._clients("scheduler")
        groups = {g["Name"] for g in scheduler.list_schedule_groups().get("ScheduleGroups", [])}
        now = datetime.now(UTC)
        for saved in schedules:
            schedule = _from_json(saved)
            if schedule.get("GroupName", "default") not in groups:
                scheduler.create_schedule_group(Name=schedule["GroupName"])
                groups.add(schedule["GroupName"])
            start = schedule.get("StartDate")
            if isinstance(start, datetime) and start < now:
                del schedule["StartDate"]  # already started; the API refuses a start in the past
            with contextlib.suppress(scheduler.exceptions.ConflictException):
                scheduler.create_schedule(**schedule)


def _write_batch(dynamodb: Any, table: str, requests: list[Any]) -> None:
    for _ in range(10):
        response = dynamodb.batch_write_item(RequestItems={table: requests})
        unprocessed = (response.get("UnprocessedItems") or {}).get(table) or []
        if not unprocessed:
            return
        requests = unprocessed
        time.sleep(0.1)
    raise RuntimeError(f"could not restore {len(requests)} items into {table}")


class PeriodicSnapshot:
    """Saves every ``interval`` seconds when the tracker saw a change since the last save."""

    def __init__(self, store: StateStore, tracker: ChangeTracker, interval: float) -> None:
        self._store = store
        self._tracker = tracker
        self._interval = interval
        self._saved_version = tracker.version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="snapshots", daemon=True)

    def save_now(self) -> None:
        version = self._tracker.version  # read first: changes made during the save count for the next one
        self._store.save()
        self._saved_version = version

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def save_if_changed(self) -> bool:
        if self._tracker.version == self._saved_version:
            return False
        self.save_now()
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.save_if_changed()
            except Exception:
                log.exception("periodic snapshot failed (the previous one is kept)")
